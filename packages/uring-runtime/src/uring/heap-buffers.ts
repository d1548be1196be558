/**
 * The free list of one thread's heap receive buffers (HeapRecv in stream.ts: the 1 KiB and 16 KiB
 * buffers a stream within its base reads into when the provided-buffer ring is nearly out), so a
 * heap receive under load reuses a buffer instead of making a new zeroed ArrayBuffer each time
 * (external memory V8 counts towards its major GCs). Not for the provided buffers (the ring's
 * pool) or the in-ring TLS plaintext pool, and not for buffers of any other size.
 *
 * Ownership: a buffer is either on this list or lent to exactly one stream (armed in a recv, or
 * held by a chunk until its release); the stream gives it back exactly once, when it takes it out
 * of its own table (released, dropped at close, or its recv ended with nothing lent). So a buffer
 * is never handed out while a chunk still has it: a reader that keeps a view of a chunk after
 * release() breaks the chunk's contract, as with a provided buffer.
 */
import type { BufferStats } from '../internal/buffer-budget.js';

/** Size of a heap receive's first read (nginx's client_header_buffer_size). */
export const SMALL_HEAP_BYTES = 1024;
/** Size of a heap receive after one that filled its buffer (nginx's large header buffers). */
export const LARGE_HEAP_BYTES = 16 * 1024;

/**
 * Default bytes of free buffers a thread keeps: 4 MiB (256 x 16 KiB). What the list must hold is
 * the swing between the most and the fewest heap buffers lent at once, one or two per stream read
 * within its base while the ring is out: h2c -c16 -m16 at 165,854 B through loch (256 HTTP/1.1
 * answers in flight over the worker's share) peaked at 3.2-3.5 MiB on the list, and made no new
 * buffer after its warm-up (bench/http2/notes.md). Env LOCH_HEAP_POOL_BYTES, or the driver's
 * `heapPoolBytes`; 0 turns reuse off.
 */
export const DEFAULT_HEAP_POOL_BYTES = 4 * 1024 * 1024;

/** The most bytes a thread may keep (512 x 16 KiB), whatever the option says. */
export const MAX_HEAP_POOL_BYTES = 8 * 1024 * 1024;

/** Reads the bound: the option, else env LOCH_HEAP_POOL_BYTES, else the default; at most the maximum. */
export function resolveHeapPoolBytes(
  option: number | undefined,
  env: string | undefined = process.env.LOCH_HEAP_POOL_BYTES,
): number {
  const v = option ?? (env !== undefined && env !== '' ? Number(env) : DEFAULT_HEAP_POOL_BYTES);
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`heapPoolBytes must be an integer >= 0, got ${v}`);
  return Math.min(v, MAX_HEAP_POOL_BYTES);
}

/** The heap receive numbers of one thread (BufferStats' heap fields). */
export type HeapBufferCounts = Pick<
  BufferStats,
  'heapPooled' | 'heapPeakPooled' | 'heapLent' | 'heapReused' | 'heapAllocated'
>;

/** One thread's free heap receive buffers, by size class, within a byte bound. */
export class HeapBufferPool {
  readonly #small: Uint8Array[] = [];
  readonly #large: Uint8Array[] = [];
  #maxBytes: number;
  #pooled = 0;
  #peak = 0;
  #lent = 0;
  #reused = 0;
  #allocated = 0;
  #closed = false;

  /** `maxBytes`: the most bytes of free buffers kept (0: none, every receive makes its own). */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /**
   * A buffer for a receive of at most `len` bytes (1..LARGE_HEAP_BYTES): SMALL_HEAP_BYTES when it
   * fits, else LARGE_HEAP_BYTES (the recv is limited to `len`). Its old bytes are still there.
   */
  take(len: number): Uint8Array {
    const small = len <= SMALL_HEAP_BYTES;
    const list = small ? this.#small : this.#large;
    this.#lent++;
    const buf = list.pop();
    if (buf !== undefined) {
      this.#pooled -= buf.byteLength;
      this.#reused++;
      return buf;
    }
    this.#allocated++;
    return new Uint8Array(small ? SMALL_HEAP_BYTES : LARGE_HEAP_BYTES);
  }

  /**
   * Gives back a buffer take() lent (the caller's promise: nothing reads or receives into it any
   * more). Kept while the list has room, else left to the GC.
   */
  give(buf: Uint8Array): void {
    this.#lent--;
    const size = buf.byteLength;
    if (this.#closed || this.#pooled + size > this.#maxBytes) return;
    if (size === SMALL_HEAP_BYTES) this.#small.push(buf);
    else if (size === LARGE_HEAP_BYTES) this.#large.push(buf);
    else return;
    const pooled = (this.#pooled += size);
    if (pooled > this.#peak) this.#peak = pooled;
  }

  /** Lets go of every free buffer (the thread's idle trim); returns the bytes dropped. */
  trim(): number {
    const dropped = this.#pooled;
    this.#small.length = 0;
    this.#large.length = 0;
    this.#pooled = 0;
    return dropped;
  }

  /** The ring is gone: lets go of every free buffer and keeps none given back from now on. */
  close(): void {
    this.#closed = true;
    this.trim();
  }

  /** @internal True when `buf` is on the free list now (tests: never also lent). */
  holds(buf: ArrayBufferLike): boolean {
    for (const b of this.#small) if (b.buffer === buf) return true;
    for (const b of this.#large) if (b.buffer === buf) return true;
    return false;
  }

  /** The numbers, for bufferStats(). */
  counts(): HeapBufferCounts {
    return {
      heapPooled: this.#pooled,
      heapPeakPooled: this.#peak,
      heapLent: this.#lent,
      heapReused: this.#reused,
      heapAllocated: this.#allocated,
    };
  }
}
