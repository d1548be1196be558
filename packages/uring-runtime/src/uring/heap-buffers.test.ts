// The free list of heap receive buffers on its own (no ring): size classes, the byte bound, the
// trim and close, the counts and the bound's resolution. Streams using it over real sockets:
// heap-recv-pool.test.ts.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HEAP_POOL_BYTES,
  HeapBufferPool,
  LARGE_HEAP_BYTES,
  MAX_HEAP_POOL_BYTES,
  resolveHeapPoolBytes,
  SMALL_HEAP_BYTES,
} from './heap-buffers.js';

describe('HeapBufferPool', () => {
  it('hands out the size class that fits and takes back the same buffer', () => {
    const pool = new HeapBufferPool(1024 * 1024);
    const small = pool.take(1);
    const small2 = pool.take(SMALL_HEAP_BYTES);
    const large = pool.take(SMALL_HEAP_BYTES + 1);
    const large2 = pool.take(LARGE_HEAP_BYTES);
    expect([small, small2, large, large2].map((b) => b.byteLength)).toEqual([
      SMALL_HEAP_BYTES,
      SMALL_HEAP_BYTES,
      LARGE_HEAP_BYTES,
      LARGE_HEAP_BYTES,
    ]);
    expect(pool.counts()).toMatchObject({ heapAllocated: 4, heapReused: 0, heapLent: 4, heapPooled: 0 });
    pool.give(small);
    pool.give(large);
    expect(pool.counts()).toMatchObject({ heapLent: 2, heapPooled: SMALL_HEAP_BYTES + LARGE_HEAP_BYTES });
    expect(pool.holds(small.buffer)).toBe(true);
    expect(pool.holds(small2.buffer)).toBe(false);
    // Each class from its own list.
    expect(pool.take(100)).toBe(small);
    expect(pool.take(5000)).toBe(large);
    expect(pool.counts()).toMatchObject({ heapAllocated: 4, heapReused: 2, heapLent: 4, heapPooled: 0 });
    expect(pool.holds(small.buffer)).toBe(false);
  });

  it('keeps at most its bound in bytes, and buffers of other sizes never', () => {
    const pool = new HeapBufferPool(LARGE_HEAP_BYTES + 2 * SMALL_HEAP_BYTES);
    const bufs = [pool.take(LARGE_HEAP_BYTES), pool.take(LARGE_HEAP_BYTES)];
    for (let i = 0; i < 4; i++) bufs.push(pool.take(1));
    for (const b of bufs) pool.give(b);
    // The first large one fits, the second does not; two of the four small ones fit after it.
    expect(pool.counts()).toMatchObject({
      heapPooled: LARGE_HEAP_BYTES + 2 * SMALL_HEAP_BYTES,
      heapPeakPooled: LARGE_HEAP_BYTES + 2 * SMALL_HEAP_BYTES,
      heapLent: 0,
    });
    const odd = new HeapBufferPool(1024 * 1024);
    odd.take(1);
    odd.give(new Uint8Array(4096));
    expect(odd.counts()).toMatchObject({ heapPooled: 0, heapLent: 0 });
  });

  it('keeps nothing with a bound of 0 (every receive makes its own)', () => {
    const pool = new HeapBufferPool(0);
    pool.give(pool.take(1));
    pool.take(1);
    expect(pool.counts()).toMatchObject({ heapPooled: 0, heapAllocated: 2, heapReused: 0 });
  });

  it('trim() empties it; after close() it keeps nothing given back', () => {
    const pool = new HeapBufferPool(1024 * 1024);
    const a = pool.take(1);
    const b = pool.take(LARGE_HEAP_BYTES);
    const c = pool.take(1);
    pool.give(a);
    pool.give(b);
    expect(pool.trim()).toBe(SMALL_HEAP_BYTES + LARGE_HEAP_BYTES);
    expect(pool.counts()).toMatchObject({
      heapPooled: 0,
      heapPeakPooled: SMALL_HEAP_BYTES + LARGE_HEAP_BYTES,
    });
    expect(pool.take(1)).not.toBe(a);
    pool.close();
    pool.give(c);
    expect(pool.counts()).toMatchObject({ heapPooled: 0, heapLent: 1 });
  });
});

describe('resolveHeapPoolBytes', () => {
  it('takes the option, else the environment, else the default, never past the maximum', () => {
    expect(resolveHeapPoolBytes(65536, '0')).toBe(65536);
    expect(resolveHeapPoolBytes(0, '65536')).toBe(0);
    expect(resolveHeapPoolBytes(undefined, '65536')).toBe(65536);
    expect(resolveHeapPoolBytes(undefined, '')).toBe(DEFAULT_HEAP_POOL_BYTES);
    expect(resolveHeapPoolBytes(undefined, undefined)).toBe(DEFAULT_HEAP_POOL_BYTES);
    expect(resolveHeapPoolBytes(1 << 30, undefined)).toBe(MAX_HEAP_POOL_BYTES);
    expect(MAX_HEAP_POOL_BYTES).toBe(512 * LARGE_HEAP_BYTES);
    expect(() => resolveHeapPoolBytes(-1, undefined)).toThrow(RangeError);
    expect(() => resolveHeapPoolBytes(undefined, 'lots')).toThrow(RangeError);
  });
});
