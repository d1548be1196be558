/**
 * Receive-buffer budgets of one thread (worker): how many received bytes one stream and all the
 * thread's streams may hold before they stop reading, so a peer that floods a stream whose reader
 * is blocked meets TCP backpressure (its bytes wait in the kernel's socket buffer) instead of
 * taking the memory every other connection needs. Both drivers use it: io_uring as the byte limit
 * of each multishot recv it arms, node:net as its pause()/resume() threshold. Not for the buffers
 * themselves (the ring's pool, the sockets' Buffers) or for when a reader asks (the streams).
 *
 * Held bytes are bytes received and not yet given back: queued on the stream plus, on io_uring,
 * chunks lent to a reader and not released yet. A stream that holds nothing may always take its
 * first `freshBytes` (one provided buffer), so a new request is never starved by floods elsewhere;
 * a stream that already holds bytes may grow only while the thread's held bytes stay at most
 * `workerBytes - reserveBytes`, which keeps the reserve for those first reads.
 */

/** Budget settings; every value in bytes. */
export interface BufferBudgetOptions {
  /**
   * Most received bytes one stream holds, at least 64 KiB. Default 256 KiB (env
   * LOCH_STREAM_BUFFER_BYTES).
   */
  readonly streamBytes?: number | undefined;
  /**
   * Most received bytes all streams of the thread hold. Default 12 MiB, 3/4 of the io_uring
   * driver's default pool (env LOCH_WORKER_BUFFER_BYTES).
   */
  readonly workerBytes?: number | undefined;
}

/** The budget numbers of one thread, read by tests and metrics. */
export interface BufferStats {
  /** The per-stream cap in bytes. */
  readonly streamCap: number;
  /** The per-thread cap in bytes. */
  readonly workerCap: number;
  /** Bytes held now by all streams of the thread. */
  readonly held: number;
  /** The most bytes the thread's streams held at once so far. */
  readonly peakHeld: number;
  /** The most bytes one stream held so far. */
  readonly peakStreamHeld: number;
  /** Streams waiting for budget (they read again once other streams gave bytes back). */
  readonly waiting: number;
  /** Times a stream stopped reading because it or the thread reached its budget. */
  readonly stops: number;
  /** io_uring: provided buffers out of the kernel's ring (queued or lent); legacy: 0. */
  readonly buffersInUse: number;
  /** io_uring: the provided-buffer pool's size in buffers; legacy: 0. */
  readonly bufferCount: number;
}

/** A stream waiting for budget. */
export interface BudgetWaiter {
  onBudgetAvailable(): void;
}

const KIB = 1024;
const DEFAULT_STREAM = 256 * KIB;
const DEFAULT_WORKER = 12 * KIB * KIB;
/** The most node:net hands over in one 'data' event (libuv reads 64 KiB at a time). */
export const MAX_SOCKET_CHUNK = 64 * KIB;
const MIN_STREAM = MAX_SOCKET_CHUNK;

function positive(
  value: number | undefined,
  env: string | undefined,
  fallback: number,
  name: string,
): number {
  const v = value ?? (env !== undefined && env !== '' ? Number(env) : fallback);
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** One thread's budget: the caps, the bytes held, the streams waiting for room. */
export class BufferBudget {
  readonly streamCap: number;
  readonly workerCap: number;
  /** What a stream holding nothing may always take (one provided buffer, at most the stream cap). */
  readonly freshBytes: number;
  /** Kept free of streams that already hold bytes, for first reads. */
  readonly reserve: number;
  /** Smallest room worth a receive: below it a stream waits instead of reading a sliver. */
  readonly minRead: number;
  held = 0;
  /** Bytes promised to armed receives of streams that hold bytes (io_uring), not received yet. */
  promised = 0;
  peakHeld = 0;
  peakStreamHeld = 0;
  stops = 0;
  /** Streams waiting for room, in the order they stopped (a Set keeps insertion order). */
  readonly #waiters = new Set<BudgetWaiter>();
  #waking = false;

  constructor(options: BufferBudgetOptions = {}, freshBytes = 64 * KIB) {
    this.streamCap = positive(
      options.streamBytes,
      process.env.LOCH_STREAM_BUFFER_BYTES,
      DEFAULT_STREAM,
      'streamBytes',
    );
    this.workerCap = positive(
      options.workerBytes,
      process.env.LOCH_WORKER_BUFFER_BYTES,
      DEFAULT_WORKER,
      'workerBytes',
    );
    if (this.streamCap < MIN_STREAM) {
      // node:net reads up to 64 KiB at a time: a smaller cap could not be held on that driver.
      throw new RangeError(`streamBytes must be at least ${MIN_STREAM}, got ${this.streamCap}`);
    }
    if (this.workerCap < this.streamCap) {
      throw new RangeError(
        `workerBytes (${this.workerCap}) must be at least streamBytes (${this.streamCap})`,
      );
    }
    this.freshBytes = Math.min(freshBytes, this.streamCap);
    this.reserve = Math.min(this.workerCap >> 2, Math.max(this.freshBytes, this.workerCap - this.streamCap));
    this.minRead = Math.min(this.freshBytes, 16 * KIB);
  }

  /**
   * How many more bytes a stream holding `streamHeld` may receive now (0: it must wait). A fresh
   * stream (holding nothing) gets up to `freshBytes` outside the thread's busy share.
   */
  allowance(streamHeld: number): number {
    if (streamHeld === 0) return this.freshBytes;
    const own = this.streamCap - streamHeld;
    const room = this.workerCap - this.reserve - this.held - this.promised;
    const n = Math.min(own, room);
    return n >= this.minRead ? n : 0;
  }

  /** `n` bytes arrived on a stream now holding `streamHeld` (after them). */
  charge(n: number, streamHeld: number): void {
    const held = (this.held += n);
    if (held > this.peakHeld) this.peakHeld = held;
    if (streamHeld > this.peakStreamHeld) this.peakStreamHeld = streamHeld;
  }

  /** `n` held bytes were given back: streams waiting for room get another look. */
  discharge(n: number): void {
    this.held -= n;
    if (this.#waiters.size > 0) this.#wake();
  }

  /** Unused promise given back (an armed receive ended below its limit). */
  unpromise(n: number): void {
    this.promised -= n;
    if (n > 0 && this.#waiters.size > 0) this.#wake();
  }

  /** `waiter` reads again (onBudgetAvailable) once some room came back. */
  wait(waiter: BudgetWaiter): void {
    if (this.#waiters.has(waiter)) return;
    this.stops++;
    this.#waiters.add(waiter);
  }

  /** Drops a waiter (its stream closed). */
  forget(waiter: BudgetWaiter): void {
    this.#waiters.delete(waiter);
  }

  get waiting(): number {
    return this.#waiters.size;
  }

  /** Hands room to waiters in order, while there is room for one more read. */
  #wake(): void {
    if (this.#waking) return;
    this.#waking = true;
    try {
      // A waiter that finds no room calls wait() again and goes to the back: stop after one pass.
      let n = this.#waiters.size;
      for (const waiter of this.#waiters) {
        if (n-- === 0 || this.workerCap - this.reserve - this.held - this.promised < this.minRead) break;
        this.#waiters.delete(waiter);
        waiter.onBudgetAvailable();
      }
    } finally {
      this.#waking = false;
    }
  }

  /** The numbers (buffer counts come from the driver). */
  stats(buffersInUse = 0, bufferCount = 0): BufferStats {
    return {
      streamCap: this.streamCap,
      workerCap: this.workerCap,
      held: this.held,
      peakHeld: this.peakHeld,
      peakStreamHeld: this.peakStreamHeld,
      waiting: this.#waiters.size,
      stops: this.stops,
      buffersInUse,
      bufferCount,
    };
  }
}
