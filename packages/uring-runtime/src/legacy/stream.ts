/**
 * ByteStream on a node:net Socket (TCP or Unix), for the legacy driver: the driver primitives
 * recvTo(), read(buf) and sendTo() (writeTo with an AbortSignal); recv(), iteration, writeAll and
 * writev come from StreamForms (internal/stream-forms.ts). Incoming data is kept as the Buffers
 * the socket emitted: recvTo() hands them out as chunks without a copy, read(buf) copies into
 * the caller's buffer. The socket is paused when the next 'data' event could take this stream
 * or the thread past its receive budget (internal/buffer-budget.ts), and resumed as the reader
 * takes bytes and the budget has room again. Writes settle on the socket's write callback (data reached the kernel), so awaiting
 * writes honours backpressure. Not for listeners or connecting: see listener.ts and driver.ts.
 */
import type { Socket } from 'node:net';
import type { RuntimeError } from '../errors.js';
import {
  BASE_CHUNKS,
  type BudgetWaiter,
  type BufferBudget,
  MAX_SOCKET_CHUNK,
} from '../internal/buffer-budget.js';
import { StreamForms } from '../internal/stream-forms.js';
import { closeBatch, deliverRecv, openBatch } from '../internal/target-delivery.js';
import {
  type ConnectionFacts,
  type IoOptions,
  type IoResult,
  plainFacts,
  type RecvChunk,
  type RecvTarget,
  type SocketAddress,
  type WriteTarget,
} from '../stream.js';
import { cancelled, closedError, errnoError, toRuntimeError } from './node-errors.js';

/**
 * A chunk of the socket's own Buffer. Nothing goes back to a pool, but its bytes count in the
 * stream's held bytes until release(), as a pooled chunk's do on io_uring: a reader that takes
 * chunks and keeps them (its write is blocked) stops the stream at the same budget.
 */
class LegacyChunk implements RecvChunk {
  #stream: LegacyStream | undefined;
  constructor(
    readonly bytes: Uint8Array,
    stream: LegacyStream,
  ) {
    this.#stream = stream;
  }
  release(): void {
    const stream = this.#stream;
    if (stream === undefined) return;
    this.#stream = undefined;
    stream.chunkReleased(this.bytes.byteLength);
  }
}

/** A read(buf) waiting for bytes: served in its turn with the recvTo() targets (see #serve). */
class ReadWaiter {
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly buf: Uint8Array,
    readonly resolve: (value: IoResult<Uint8Array>) => void,
    readonly reject: (error: RuntimeError) => void,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/** A waiting reader: a read(buf), or a recvTo() target held as is (recv() is one of those). */
type Waiter = ReadWaiter | RecvTarget;

/** Registry the driver uses to close every open stream on driver.close(). */
export interface StreamRegistry {
  add(stream: LegacyStream): void;
  delete(stream: LegacyStream): void;
  /** Bumped on every new stream and every chunk received (the runtime's idle-trim policy reads it). */
  activity: number;
  /** The thread's receive budgets. */
  readonly budget: BufferBudget;
}

/** The driver's set of open streams, with the activity counter streams bump and the budgets. */
export class LegacyStreamSet extends Set<LegacyStream> implements StreamRegistry {
  activity = 0;
  constructor(readonly budget: BufferBudget) {
    super();
  }
}

/** Converts a Node socket address to the runtime's SocketAddress. */
export function toSocketAddress(
  address: string | undefined,
  family: string | undefined,
  port: number | undefined,
): SocketAddress {
  return {
    family: family === 'IPv6' ? 'ipv6' : 'ipv4',
    address: address ?? '',
    port: port ?? 0,
  };
}

/**
 * What sentBytes reads of a socket's libuv handle (Node's TCPWrap/PipeWrap, not public API):
 * bytes handed to the handle so far, and those of them still in libuv's write queue.
 */
interface StreamHandle {
  readonly bytesWritten?: number;
  readonly writeQueueSize?: number;
}

/** A connected node:net socket behind the ByteStream contract. */
export class LegacyStream extends StreamForms implements BudgetWaiter {
  readonly driver = 'legacy' as const;
  readonly remoteAddress: SocketAddress;
  readonly localAddress: SocketAddress;
  readonly #socket: Socket;
  readonly #registry: StreamRegistry;
  readonly #isTcp: boolean;
  #chunks: Buffer[] = [];
  #headOffset = 0;
  #buffered = 0;
  /** Bytes of chunks handed to readers and not released yet. */
  #lent = 0;
  /** Chunks handed to readers and not released yet. */
  #lentChunks = 0;
  /**
   * Budget promised to the next 'data' event while the socket flows and this stream is past its
   * base chunk (0 or MAX_SOCKET_CHUNK): Node reads before anyone can say no, so the room is kept first.
   */
  #promise = 0;
  #paused = false;
  #eof = false;
  #error: RuntimeError | undefined;
  /** Waiting readers in call order; only while nothing is there for the first one. */
  #waiters: Waiter[] = [];
  #closed = false;
  #shutdown = false;
  #closePromise: Promise<void> | undefined;
  #facts: ConnectionFacts | undefined = undefined;
  /** The last write progress read (sentBytes), kept for when the handle is gone. */
  #sent = 0;

  constructor(
    socket: Socket,
    registry: StreamRegistry,
    unixPath?: { readonly local: string; readonly remote: string },
  ) {
    super();
    this.#socket = socket;
    this.#registry = registry;
    this.#isTcp = unixPath === undefined;
    if (unixPath === undefined) {
      this.remoteAddress = toSocketAddress(socket.remoteAddress, socket.remoteFamily, socket.remotePort);
      this.localAddress = toSocketAddress(socket.localAddress, socket.localFamily, socket.localPort);
    } else {
      this.remoteAddress = { family: 'unix', path: unixPath.remote };
      this.localAddress = { family: 'unix', path: unixPath.local };
    }
    socket.on('data', (chunk: Buffer) => {
      // A received chunk is this driver's completion batch: what it wakes is delivered at its
      // end, without a microtask (target-delivery.ts).
      const outer = openBatch();
      try {
        this.#onData(chunk);
      } finally {
        closeBatch(outer);
      }
    });
    socket.on('end', () => {
      this.#eof = true;
      this.#serve();
    });
    socket.on('error', (error) => {
      this.#error ??= toRuntimeError(error, 'read', this.remoteAddress);
      this.#serve();
    });
    socket.on('close', () => {
      this.#eof = true;
      this.#registry.delete(this);
      this.#serve();
    });
    registry.add(this);
    registry.activity++;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  /** Plain facts (no TLS, the peer is the client), made on first use. */
  get facts(): ConnectionFacts {
    return (this.#facts ??= plainFacts(this.remoteAddress));
  }

  #onData(chunk: Buffer): void {
    const registry = this.#registry;
    registry.activity++;
    if (this.#closed) return;
    this.#chunks.push(chunk);
    const n = chunk.byteLength;
    this.#buffered += n;
    registry.budget.charge(n, this.#buffered + this.#lent);
    this.#rebalance();
    this.#serve();
  }

  /** `n` queued bytes were copied out by read(buf): no longer held. */
  #consumed(n: number): void {
    this.#buffered -= n;
    this.#registry.budget.discharge(n);
    this.#rebalance();
  }

  /** `n` queued bytes were handed to a reader as a chunk: held until it is released. */
  #lend(n: number): void {
    this.#buffered -= n;
    this.#lent += n;
    this.#lentChunks++;
  }

  /** @internal A lent chunk of `n` bytes was released. */
  chunkReleased(n: number): void {
    // close() gave every lent byte back already: a chunk dropped unreleased after it (the
    // socket's own memory, collected by GC) cannot keep budget from the thread.
    if (this.#closed) return;
    this.#lent -= n;
    this.#lentChunks--;
    this.#registry.budget.discharge(n);
    this.#rebalance();
  }

  /** Received bytes this stream holds now (queued, or lent to a reader and not released). */
  get heldBytes(): number {
    return this.#buffered + this.#lent;
  }

  /**
   * Write progress (ByteStream.sentBytes): what libuv handed to the kernel, i.e. the bytes the
   * handle was given (its bytesWritten) less those still in its write queue (writeQueueSize),
   * which shrinks as the socket drains during a write; the last count once the handle is gone.
   */
  get sentBytes(): number {
    const handle = (this.#socket as unknown as { readonly _handle?: StreamHandle | null })._handle;
    const given = handle?.bytesWritten;
    const queued = handle?.writeQueueSize;
    if (typeof given === 'number' && typeof queued === 'number') this.#sent = given - queued;
    return this.#sent;
  }

  /** Called by the budget when room came back after this stream paused for it. */
  onBudgetAvailable(): void {
    this.#rebalance();
  }

  /**
   * Flows while the budget has room for one more 'data' event (the most libuv reads at once). A
   * stream within its base chunk (holding at most the chunk a reader keeps) needs only its own
   * room, so an idle keep-alive socket reserves nothing; past it the room is promised from the
   * thread's share while the socket flows. Otherwise it pauses and waits for room.
   */
  #rebalance(): void {
    const budget = this.#registry.budget;
    budget.promised -= this.#promise;
    this.#promise = 0;
    if (this.#closed) return;
    const held = this.#buffered + this.#lent;
    const chunks = this.#chunks.length + this.#lentChunks;
    // A stream holding its base chunk flows unpromised while the share has room for its next
    // event (one holding nothing flows whatever the thread holds: its first read is its own).
    if (
      budget.allowance(held, chunks) >= MAX_SOCKET_CHUNK &&
      (chunks === 0 || chunks > BASE_CHUNKS || budget.shareRoom >= MAX_SOCKET_CHUNK)
    ) {
      if (chunks > BASE_CHUNKS) {
        this.#promise = MAX_SOCKET_CHUNK;
        budget.promised += MAX_SOCKET_CHUNK;
      }
      if (this.#paused) {
        this.#paused = false;
        this.#socket.resume();
      }
    } else {
      if (!this.#paused) {
        this.#paused = true;
        this.#socket.pause();
      }
      budget.wait(this);
    }
  }

  /** Bytes, the error or the end are there for a reader. */
  get #ready(): boolean {
    return this.#chunks.length > 0 || this.#error !== undefined || this.#eof;
  }

  /**
   * Serves the waiting readers in call order, each at once from what is there (bytes, then the
   * error or the end), until one has to wait. A read(buf) copies its bytes here, before its
   * promise settles, so no reader behind it can take them meanwhile.
   */
  #serve(): void {
    const waiters = this.#waiters;
    while (waiters.length > 0 && this.#ready) {
      const waiter = waiters.shift()!;
      if (waiter instanceof ReadWaiter) {
        if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
        this.#finishRead(waiter.buf, waiter.resolve, waiter.reject);
      } else this.#serveTarget(waiter);
    }
  }

  /** Settles a read of `buf` from what is there: queued bytes first, then the error or the end. */
  #finishRead<B extends Uint8Array>(
    buf: B,
    resolve: (value: IoResult<B>) => void,
    reject: (error: RuntimeError) => void,
  ): void {
    if (this.#chunks.length > 0) resolve([this.#copyOut(buf), buf]);
    else if (this.#error !== undefined) reject(toRuntimeError(this.#error, 'read', undefined, buf));
    else resolve([0, buf]);
  }

  /** Copies queued bytes into `buf`; returns the count. */
  #copyOut(buf: Uint8Array): number {
    let n = 0;
    while (n < buf.byteLength && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.byteLength - this.#headOffset, buf.byteLength - n);
      buf.set(chunk.subarray(this.#headOffset, this.#headOffset + take), n);
      n += take;
      this.#headOffset += take;
      if (this.#headOffset === chunk.byteLength) {
        this.#chunks.shift();
        this.#headOffset = 0;
      }
    }
    this.#consumed(n);
    return n;
  }

  read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    const signal = options?.signal;
    if (this.#closed) return Promise.reject(closedError('read', this.remoteAddress, buf));
    if (signal?.aborted) return Promise.reject(cancelled('read', this.remoteAddress, buf));
    return new Promise<IoResult<B>>((resolve, reject) => {
      if (this.#waiters.length === 0 && this.#ready) {
        this.#finishRead(buf, resolve, reject);
        return;
      }
      // Takes no bytes, so it need not wait its turn.
      if (buf.byteLength === 0) {
        resolve([0, buf]);
        return;
      }
      const waiter = new ReadWaiter(buf, resolve as ReadWaiter['resolve'], reject, signal);
      if (signal !== undefined) {
        waiter.onAbort = () => {
          const index = this.#waiters.indexOf(waiter);
          if (index < 0) return;
          this.#waiters.splice(index, 1);
          reject(cancelled('read', this.remoteAddress, buf));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  recvTo(target: RecvTarget): void {
    if (this.#closed) deliverRecv(target, null, closedError('recv', this.remoteAddress));
    else if (this.#waiters.length === 0 && this.#ready) this.#serveTarget(target);
    // The target itself waits in the reader queue: nothing is allocated for the wait.
    else this.#waiters.push(target);
  }

  protected override takeReady(): RecvChunk | undefined {
    if (this.#waiters.length > 0 || this.#closed) return undefined;
    const head = this.#chunks.shift();
    if (head === undefined) return undefined;
    const bytes = this.#headOffset === 0 ? head : head.subarray(this.#headOffset);
    this.#headOffset = 0;
    this.#lend(bytes.byteLength);
    return new LegacyChunk(bytes, this);
  }

  protected withdrawRecv(target: RecvTarget): boolean {
    const index = this.#waiters.indexOf(target);
    if (index < 0) return false;
    this.#waiters.splice(index, 1);
    return true;
  }

  /** Hands `target` the next chunk, or the error, or the end (one of them is there: #ready). */
  #serveTarget(target: RecvTarget): void {
    const head = this.#chunks.shift();
    if (head !== undefined) {
      const bytes = this.#headOffset === 0 ? head : head.subarray(this.#headOffset);
      this.#headOffset = 0;
      this.#lend(bytes.byteLength);
      deliverRecv(target, new LegacyChunk(bytes, this), undefined);
    } else if (this.#error !== undefined) deliverRecv(target, null, this.#error);
    else deliverRecv(target, null, undefined);
  }

  /** Checks that a write may start; returns the error to throw, if any. */
  #writeBlocked(
    syscall: string,
    buf: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): RuntimeError | undefined {
    if (this.#closed) return closedError(syscall, this.remoteAddress, buf);
    if (signal?.aborted) return cancelled(syscall, this.remoteAddress, buf);
    if (this.#shutdown) return errnoError('EPIPE', syscall, this.remoteAddress, buf);
    if (this.#error !== undefined) return toRuntimeError(this.#error, syscall, undefined, buf);
    if (this.#socket.destroyed) return errnoError('EPIPE', syscall, this.remoteAddress, buf);
    return undefined;
  }

  /**
   * Queues `bufs` on the socket (corked into one writev when several); `settle` runs once, from
   * the last write callback. Abort mid-write destroys the socket: bytes already queued cannot be
   * taken back, so the stream is unusable; the write settles only after Node released the
   * buffers, so the caller really owns them again.
   */
  #sendThen(
    bufs: readonly Uint8Array[],
    syscall: string,
    signal: AbortSignal | undefined,
    settle: (error: RuntimeError | undefined) => void,
  ): void {
    const socket = this.#socket;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      socket.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (error: Error | null | undefined) => {
      signal?.removeEventListener('abort', onAbort);
      const lent = bufs.length === 1 ? bufs[0] : undefined;
      // Node calls back without an error for writes cut short by destroy(): after close() (or an
      // abort) the write did not complete, whatever the callback says.
      if (aborted || this.#closed) settle(cancelled(syscall, this.remoteAddress, lent));
      else if (error) settle(this.#writeError(error, syscall, lent));
      // The same for a socket the peer's reset destroyed (the read side's ECONNRESET): its
      // pending writes are called back without an error, their bytes never sent. io_uring
      // reports that send's ECONNRESET; say the same. (A write the kernel had taken whole but
      // whose callback comes after the reset reads as failed too: only counts and logs differ,
      // the peer is gone either way.)
      else if (socket.destroyed && socket.errored !== null)
        settle(this.#writeError(socket.errored, syscall, lent));
      else settle(undefined);
    };
    const last = bufs.length - 1;
    if (last > 0) socket.cork();
    for (let i = 0; i < last; i++) socket.write(bufs[i]!);
    socket.write(bufs[last]!, done);
    if (last > 0) socket.uncork();
  }

  /** The error of a failed write: the socket's own error when Node only says "destroyed". */
  #writeError(error: Error, syscall: string, lent: Uint8Array | undefined): RuntimeError {
    const mapped = toRuntimeError(error, syscall, this.remoteAddress, lent);
    if (mapped.code !== 'EBADF' || this.#closed) return mapped;
    return this.#error !== undefined
      ? toRuntimeError(this.#error, syscall, this.remoteAddress, lent)
      : errnoError('EPIPE', syscall, this.remoteAddress, lent);
  }

  /** An abort destroys the socket (see #sendThen): node:net cannot take queued bytes back. */
  protected sendTo(
    data: Uint8Array | readonly Uint8Array[],
    target: WriteTarget,
    signal: AbortSignal | undefined,
  ): void {
    const single = data instanceof Uint8Array;
    const blocked = this.#writeBlocked(single ? 'write' : 'writev', single ? data : undefined, signal);
    if (blocked !== undefined) {
      queueMicrotask(() => target.onWritten(blocked));
      return;
    }
    const bufs: readonly Uint8Array[] = single ? [data] : data;
    if (bufs.length === 0) {
      queueMicrotask(() => target.onWritten(undefined));
      return;
    }
    this.#sendThen(bufs, single ? 'write' : 'writev', signal, (error) => target.onWritten(error));
  }

  shutdown(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError('shutdown', this.remoteAddress));
    if (this.#shutdown || this.#socket.destroyed) return Promise.resolve();
    this.#shutdown = true;
    return new Promise<void>((resolve) => {
      const settle = () => {
        this.#socket.off('finish', settle);
        this.#socket.off('close', settle);
        resolve();
      };
      this.#socket.once('finish', settle);
      this.#socket.once('close', settle);
      this.#socket.end();
    });
  }

  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (waiter instanceof ReadWaiter) {
        if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
        waiter.reject(cancelled('read', this.remoteAddress, waiter.buf));
      } else deliverRecv(waiter, null, cancelled('recv', this.remoteAddress));
    }
    this.#chunks = [];
    const budget = this.#registry.budget;
    budget.forget(this);
    budget.promised -= this.#promise;
    this.#promise = 0;
    const held = this.#buffered + this.#lent;
    this.#buffered = 0;
    this.#lent = 0;
    this.#lentChunks = 0;
    budget.discharge(held);
    const socket = this.#socket;
    this.#closePromise = socket.closed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.destroy();
        });
    this.#registry.delete(this);
    return this.#closePromise;
  }

  setNoDelay(enabled: boolean): void {
    if (this.#isTcp && !this.#socket.destroyed) this.#socket.setNoDelay(enabled);
  }

  /** Always false: Node's net.Socket has no SO_RCVLOWAT (and no setsockopt to set one). */
  override setRecvLowWater(_bytes: number): boolean {
    return false;
  }
}
