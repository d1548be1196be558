/**
 * Receive-buffer budgets of one thread (worker): how many received bytes one stream and all the
 * thread's streams may hold before they stop reading, so a peer that floods a stream whose reader
 * is blocked meets TCP backpressure (its bytes wait in the kernel's socket buffer) instead of
 * taking the memory every other connection needs. Both drivers use it: io_uring for the byte
 * limit of each multishot recv and for how many provided buffers the kernel's ring may hold,
 * node:net as its pause()/resume() threshold. Not for the buffers themselves (the ring's pool,
 * the sockets' Buffers) or for when a reader asks (the streams).
 *
 * Held bytes are bytes received and not yet given back: queued on the stream plus chunks lent to
 * a reader and not released yet. A stream within its base (holding at most BASE_CHUNKS chunks
 * when it reads: the one a reader keeps) has its own room, the stream cap, whatever the thread
 * holds, so whatever readers keep no stream is starved; a stream growing past it also needs room
 * in the thread's share, `workerBytes - reserve`, which keeps the reserve for base reads. Nothing
 * is reserved for a read that has not received yet: on io_uring the kernel can only fill the
 * buffers in its ring, which the ring keeps within the share; node:net keeps one event's room
 * for a flowing socket past its base.
 */
/** Budget settings; every value in bytes. */
export interface BufferBudgetOptions {
  /**
   * Most received bytes one stream holds, at least 64 KiB. Default 1 MiB (Envoy's
   * per_connection_buffer_limit_bytes), or `workerBytes` when that is smaller (env
   * LOCH_STREAM_BUFFER_BYTES).
   */
  readonly streamBytes?: number | undefined;
  /**
   * Most received bytes all streams of the thread hold, beyond each stream's base chunk. Default
   * 12 MiB (env LOCH_WORKER_BUFFER_BYTES).
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
  /**
   * io_uring: bytes of free heap receive buffers the thread keeps for reuse now (the 1 KiB and
   * 16 KiB buffers a stream within its base reads into while the provided-buffer ring is nearly
   * out; emptied by the idle trim); legacy: 0.
   */
  readonly heapPooled: number;
  /** io_uring: the most bytes of free heap receive buffers kept at once so far; legacy: 0. */
  readonly heapPeakPooled: number;
  /** io_uring: heap receive buffers lent to streams now (armed, or held by a chunk); legacy: 0. */
  readonly heapLent: number;
  /** io_uring: heap receives served by a kept buffer; legacy: 0. */
  readonly heapReused: number;
  /** io_uring: heap receives that made a new buffer; legacy: 0. */
  readonly heapAllocated: number;
}

const NO_HEAP = { heapPooled: 0, heapPeakPooled: 0, heapLent: 0, heapReused: 0, heapAllocated: 0 } as const;

/** A stream waiting for budget. */
export interface BudgetWaiter {
  onBudgetAvailable(): void;
}

const KIB = 1024;
/**
 * 1 MiB, not 256 KiB: each plain multishot recv carries the stream's room as the kernel's byte
 * limit, so a keep-alive connection's recv is armed again every cap's worth of bytes (less a
 * buffer): at 256 KiB that was 0.057 more submissions and 0.056 poll arms per proxied 11 KB
 * request and 0.30 / 0.33 at 64 KiB; at 1 MiB 0.017-0.028 / 0.014-0.020 and 0.06 / 0.07
 * (bench:uring-events). Leaving the limit off while a stream holds little (a soft cap) reached
 * 2.00 / 0.00, but then the kernel fills a flooded stream past its cap until JavaScript cancels
 * the recv (completions run at any syscall, 32 buffers a pass), so the per-stream cap would
 * no longer hold; the worker's share bounds the memory either way.
 */
const DEFAULT_STREAM = 1024 * KIB;
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

/**
 * Chunks a stream may hold and still receive outside the thread's share: the chunk a reader keeps
 * between messages (an HTTP/1.1 client keeps its last one). Such a stream's next read is its
 * own, like a first read, so whatever readers keep, every stream can always take one more chunk.
 */
export const BASE_CHUNKS = 1;

/** One thread's budget: the caps, the bytes held, the streams waiting for room. */
export class BufferBudget {
  readonly streamCap: number;
  readonly workerCap: number;
  /** What a stream holding nothing may always take (one provided buffer, at most the stream cap). */
  readonly freshBytes: number;
  /** Kept free of streams growing past their base chunk, for first and base reads. */
  readonly reserve: number;
  /**
   * What streams past their base chunk may hold together (workerCap less the reserve). On
   * io_uring it also bounds the provided buffers the kernel may fill: held bytes plus the buffers
   * in the kernel's ring stay within it (Ring.publish), so no receive needs a promise.
   */
  readonly share: number;
  /** Smallest room worth a receive: below it a stream waits instead of reading a sliver. */
  readonly minRead: number;
  held = 0;
  /**
   * node:net only: room kept for the next 'data' event of flowing sockets past their base chunk
   * (Node reads before anyone can say no). io_uring promises nothing (see `share`).
   */
  promised = 0;
  peakHeld = 0;
  peakStreamHeld = 0;
  stops = 0;
  /** Streams waiting for room, in the order they stopped (a Set keeps insertion order). */
  readonly #waiters = new Set<BudgetWaiter>();
  #waking = false;

  constructor(options: BufferBudgetOptions = {}, freshBytes = 64 * KIB) {
    this.workerCap = positive(
      options.workerBytes,
      process.env.LOCH_WORKER_BUFFER_BYTES,
      DEFAULT_WORKER,
      'workerBytes',
    );
    // The default follows a smaller worker cap (a stream cap above it is refused below).
    this.streamCap = positive(
      options.streamBytes,
      process.env.LOCH_STREAM_BUFFER_BYTES,
      Math.min(DEFAULT_STREAM, this.workerCap),
      'streamBytes',
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
    this.share = this.workerCap - this.reserve;
    this.minRead = Math.min(this.freshBytes, 16 * KIB);
  }

  /**
   * How many more bytes a stream holding `streamHeld` bytes in `chunks` chunks may receive now
   * (0: it must wait). A stream within its base chunk has its own room (the stream cap less what
   * it holds) whatever the thread holds; past it, the stream also needs room in the share.
   */
  allowance(streamHeld: number, chunks: number): number {
    const own = this.streamCap - streamHeld;
    const n = chunks <= BASE_CHUNKS ? own : Math.min(own, this.share - this.held - this.promised);
    return n >= this.minRead ? n : 0;
  }

  /** Room left in the share (bytes), less what is promised. */
  get shareRoom(): number {
    return this.share - this.held - this.promised;
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

  /**
   * `n` held bytes were given back, waiters not told yet (io_uring returns the chunk's buffer to
   * the kernel first, so a waiter that reads again finds it there); call notify() after.
   */
  uncharge(n: number): void {
    this.held -= n;
  }

  /** Streams waiting for room get another look (after uncharge()). */
  notify(): void {
    if (this.#waiters.size > 0) this.#wake();
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
        if (n-- === 0 || this.shareRoom < this.minRead) break;
        this.#waiters.delete(waiter);
        waiter.onBudgetAvailable();
      }
    } finally {
      this.#waking = false;
    }
  }

  /** The numbers (buffer counts and heap receive buffers come from the driver). */
  stats(
    buffersInUse = 0,
    bufferCount = 0,
    heap: Pick<BufferStats, keyof typeof NO_HEAP> = NO_HEAP,
  ): BufferStats {
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
      heapPooled: heap.heapPooled,
      heapPeakPooled: heap.heapPeakPooled,
      heapLent: heap.heapLent,
      heapReused: heap.heapReused,
      heapAllocated: heap.heapAllocated,
    };
  }
}
