/**
 * An in-memory HttpStream for the in-process CPU benchmarks (apps/proxy/bench/proxy-core.ts,
 * gateway/core.ts): no sockets, no kernel, only loch's own code.
 *
 * Results go through the runtime's own delivery queue (deliverRecv/deliverWritten), as the
 * drivers deliver them: Node's queueMicrotask would add an AsyncResource and a bound function
 * per call (~800 instructions per request) that loch itself does not pay. These streams have no
 * completion batches (a result comes from inside writeTo), so their results always take the
 * queue's microtask, one promise each time it is scheduled; the drivers deliver what a
 * completion batch produced at its end, without one. The delivery queue
 * runs a batch of results in one turn: idle-memory/in-process.ts keeps its own queueMicrotask
 * stream, because with this one its 2,000 connections started at once read 4.3 KB of live heap
 * per connection instead of ~1 KB (not yet explained; likely more pooled upstream connections
 * when every first request reaches the pool in the same turn).
 */
import type { HttpStream, StreamChunk } from '@loch/http';
import {
  deliverRecv,
  deliverWritten,
  plainFacts,
  type RecvTarget,
  type WriteTarget,
} from '@loch/uring-runtime';

const noop = () => {};
let nextPort = 1;

/**
 * %TypedArray%.prototype's byteLength getter, read once. take() sees Buffers (the write slab's
 * heads above the lending size, tests) and plain Uint8Arrays (lent pieces of the slab): with
 * `data instanceof Uint8Array` and `data.byteLength` that load stayed generic in the callers'
 * optimized code (a LoadIC call each in writeTo and writeStreamBody, ~290 instructions a proxied
 * request of the harness's own in callgrind-core.sh's count: bench/http-proxy/
 * per-request-2026-12-06e.md). Array.isArray and the known getter called with .call are
 * reduced by TurboFan to a type check and a field load for both kinds.
 */
const byteLengthOf = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  'byteLength',
)!.get as (this: Uint8Array) => number;

function chunkOf(bytes: Uint8Array): StreamChunk {
  return { bytes, release: noop };
}

/**
 * A receive gets `first` (if any), later ones wait for `deliver`. A subclass plays the peer:
 * `wrote()` runs once a write's result is queued (the peer's turn), `take()` sees what was
 * written. Both the callback forms (recvTo/writeTo) and the promise forms (recv/writev, which
 * ThriftStream users take) are served.
 */
export class MemoryStream implements HttpStream {
  readonly remoteAddress = { family: 'ipv4', address: '127.0.0.1', port: nextPort++ & 0xffff } as const;
  readonly localAddress = { family: 'ipv4', address: '127.0.0.1', port: 18080 } as const;
  readonly driver = 'legacy' as const;
  readonly facts = plainFacts(this.remoteAddress);
  closed = false;
  written = 0;
  #waiting: RecvTarget | ((chunk: StreamChunk | null) => void) | null = null;
  /** Bytes (or null: the end) for the next receive; undefined while there are none. */
  #ready: Uint8Array | null | undefined;

  constructor(first?: Uint8Array) {
    this.#ready = first;
  }

  /** Bytes for the pending (or next) receive; null ends the stream. */
  protected deliver(bytes: Uint8Array | null): void {
    const target = this.#waiting;
    if (target === null) {
      this.#ready = bytes;
      return;
    }
    this.#waiting = null;
    const chunk = bytes === null ? null : chunkOf(bytes);
    if (typeof target === 'function') target(chunk);
    else deliverRecv(target, chunk, undefined);
  }

  recvTo(target: RecvTarget): void {
    const ready = this.#ready;
    if (ready === undefined) {
      this.#waiting = target;
      return;
    }
    this.#ready = undefined;
    deliverRecv(target, ready === null ? null : chunkOf(ready), undefined);
  }

  recv(): Promise<StreamChunk | null> {
    const ready = this.#ready;
    if (ready !== undefined) {
      this.#ready = undefined;
      return Promise.resolve(ready === null ? null : chunkOf(ready));
    }
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    this.take(data);
    deliverWritten(target, undefined);
    // The peer's turn: its bytes are delivered after the write's result (the queue keeps order).
    this.wrote();
  }

  writev(data: readonly Uint8Array[]): Promise<number> {
    const n = this.take(data);
    return Promise.resolve(n).then((n) => {
      this.wrote();
      return n;
    });
  }

  /** Counts (and a subclass may keep) what was written; returns its size. */
  protected take(data: Uint8Array | readonly Uint8Array[]): number {
    let n = 0;
    if (!Array.isArray(data)) n = byteLengthOf.call(data as Uint8Array);
    else for (let i = 0; i < data.length; i++) n += byteLengthOf.call(data[i] as Uint8Array);
    this.written += n;
    return n;
  }

  /** A write completed: the peer's turn (nothing by default: a peer that never answers). */
  protected wrote(): void {}

  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
  }
  setNoDelay(): void {}
}
