/**
 * A tunnel between two connections after a protocol switch (WebSocket): bytes piped both ways
 * through the streams' promise-free recvTo/writeTo, one chunk in flight per direction
 * (backpressure), half-close passed on, an idle timeout, and an end after which no byte of one
 * connection can reach another. On a graceful stop (drainTunnels) each open tunnel gets its
 * server's drain time (timeouts.tunnel_drain) to end on its own, then is closed. Not for
 * deciding when to tunnel (reuse.ts).
 */
// The module's binding, not the global: Node 20's global `performance` is a lazy accessor whose
// getter runs at every read (~290 instructions each, THR's Thrift relay profile, session 48), and
// touch() reads the clock for every chunk a tunnel moves.
import { performance } from 'node:perf_hooks';
import type { HttpStream, StreamChunk } from '@loch/http';
import { workerMetrics } from '../metrics/recorder.js';

/**
 * One direction of a tunnel: receives from `from` and writes each chunk to `to` before the next
 * receive (backpressure: a slow reader slows the writer's side, one chunk in flight), through
 * the streams' promise-free recvTo/writeTo with itself as the target. At end of stream it
 * shuts `to`'s write side (half-close) and reports; a failure ends the whole tunnel.
 */
class TunnelDirection {
  /** A receive, write or shutdown of this direction is in flight. */
  busy = false;
  /** The chunk being written (released once written). */
  #chunk: StreamChunk | null = null;

  constructor(
    private readonly tunnel: Tunnel,
    private readonly from: HttpStream,
    private readonly to: HttpStream,
  ) {}

  /** Writes `head` (bytes read past the other side's HTTP head) first, then pipes. */
  start(head: Uint8Array): void {
    this.busy = true;
    if (head.byteLength > 0) this.to.writeTo(head, this);
    else this.from.recvTo(this);
  }

  onRecv(chunk: StreamChunk | null, error: unknown): void {
    this.busy = false;
    const tunnel = this.tunnel;
    if (tunnel.done) {
      chunk?.release();
      tunnel.settle();
      return;
    }
    if (error !== undefined) {
      chunk?.release();
      tunnel.end();
      return;
    }
    if (chunk === null) {
      // This side ended: the other learns it (half-close); the tunnel waits for its end.
      this.busy = true;
      this.to.shutdown().then(
        () => {
          this.busy = false;
          tunnel.directionEnded();
        },
        () => {
          this.busy = false;
          tunnel.end();
        },
      );
      return;
    }
    tunnel.touch();
    this.#chunk = chunk;
    this.busy = true;
    this.to.writeTo(chunk.bytes, this);
  }

  onWritten(error: unknown): void {
    this.busy = false;
    if (this.#chunk !== null) {
      this.#chunk.release();
      this.#chunk = null;
    }
    const tunnel = this.tunnel;
    if (tunnel.done) {
      tunnel.settle();
      return;
    }
    if (error !== undefined) {
      tunnel.end();
      return;
    }
    this.busy = true;
    this.from.recvTo(this);
  }
}

/**
 * An upgraded connection relayed byte for byte between the client's stream and the upstream's:
 * the bytes each side sent past its HTTP head go first, then each direction pipes on its own.
 * One side's end of stream shuts the other's write side (half-close); the tunnel ends when both
 * sides ended, when either fails (a reset, a failed write), or when neither sent a byte for
 * `idleMs` (the check runs on one timer per tunnel, re-armed for what is left of the period, not
 * per chunk). Then both streams are closed; `run()` resolves once no operation of the tunnel is
 * in flight any more (every received chunk released), so no byte of one connection can reach
 * another. The HttpServer closes the client's stream again when it resolves (harmless).
 */
export class Tunnel {
  /** Set once the tunnel is over: late results are released and dropped. */
  done = false;
  readonly #down: HttpStream;
  readonly #up: HttpStream;
  readonly #toUp: TunnelDirection;
  readonly #toDown: TunnelDirection;
  readonly #downHead: Uint8Array;
  readonly #upHead: Uint8Array;
  readonly #idleMs: number;
  /** Ms this tunnel may go on once a graceful stop began (undefined: until it ends). */
  readonly #drainMs: number | undefined;
  #drainTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #lastActivity = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #ended = 0;
  #resolve: () => void = () => {};

  constructor(
    down: HttpStream,
    downHead: Uint8Array,
    up: HttpStream,
    upHead: Uint8Array,
    idleMs: number,
    drainMs?: number,
  ) {
    this.#drainMs = drainMs;
    this.#down = down;
    this.#up = up;
    this.#downHead = downHead;
    this.#upHead = upHead;
    this.#idleMs = idleMs;
    this.#toUp = new TunnelDirection(this, down, up);
    this.#toDown = new TunnelDirection(this, up, down);
  }

  /** Pipes until the tunnel ends; never rejects. */
  run(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      workerMetrics.tunnelOpened();
      try {
        this.#up.setNoDelay(true);
      } catch {
        // not every stream has TCP_NODELAY
      }
      this.touch();
      if (this.#idleMs > 0) this.#timer = setTimeout(this.#checkIdle, this.#idleMs);
      openTunnels.add(this);
      if (draining !== null) this.drain();
      this.#toUp.start(this.#downHead);
      this.#toDown.start(this.#upHead);
    });
  }

  /** A byte moved: the idle period starts again. */
  touch(): void {
    this.#lastActivity = performance.now();
  }

  readonly #checkIdle = (): void => {
    this.#timer = undefined;
    if (this.done) return;
    const silent = performance.now() - this.#lastActivity;
    if (silent >= this.#idleMs) {
      this.end();
      return;
    }
    this.#timer = setTimeout(this.#checkIdle, this.#idleMs - silent);
  };

  /** A graceful stop began: the tunnel is closed after its drain time unless it ends first. */
  drain(): void {
    if (this.done || this.#drainTimer !== undefined || this.#drainMs === undefined) return;
    this.#drainTimer = setTimeout(this.#drained, this.#drainMs);
  }

  readonly #drained = (): void => {
    this.#drainTimer = undefined;
    if (!this.done) draining?.closed.push(this);
    this.end();
  };

  /** One side's end of stream was passed on to the other. */
  directionEnded(): void {
    if (++this.#ended === 2) this.end();
  }

  /** Ends the tunnel: both streams closed (which settles what is in flight on them). */
  end(): void {
    if (this.done) {
      this.settle();
      return;
    }
    this.done = true;
    workerMetrics.tunnelClosed();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#drainTimer !== undefined) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
    }
    void this.#up.close().catch(() => {});
    void this.#down.close().catch(() => {});
    this.settle();
  }

  /** Resolves run() once both directions have nothing in flight. */
  settle(): void {
    if (this.done && !this.#toUp.busy && !this.#toDown.busy) {
      openTunnels.delete(this);
      if (draining !== null && openTunnels.size === 0) draining.resolve();
      const resolve = this.#resolve;
      this.#resolve = () => {};
      resolve();
    }
  }
}

/** The tunnels open in this thread (a worker serves on one thread): what a graceful stop drains. */
const openTunnels = new Set<Tunnel>();

/** The graceful stop in progress: tunnels closed at their drain time, and its end. */
let draining: { closed: Tunnel[]; resolve: () => void; done: Promise<void> } | null = null;

/**
 * Starts the graceful stop of this thread's tunnels: each (and each opened from now on) gets
 * its drain time to end on its own, then both its connections are closed. Resolves with how
 * many had to be closed, once no tunnel is open.
 */
export function drainTunnels(): Promise<number> {
  if (draining === null) {
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    draining = { closed: [], resolve, done };
    for (const t of openTunnels) t.drain();
    if (openTunnels.size === 0) resolve();
  }
  const state = draining;
  return state.done.then(() => state.closed.length);
}
