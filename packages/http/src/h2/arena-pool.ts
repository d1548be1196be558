/**
 * The HTTP/2 server output arenas of this thread (a module instance per worker thread): the
 * buffers connections write frames into (server-output.ts) and give back once no write reads
 * them, for the next connection's or the next response's frames. One size, so any pooled arena
 * holds any frame up to a full DATA frame (16,384 octets and its header) with the small frames
 * that move along with it (server-output.ts' CARRY_MAX). Not for arenas of other sizes (a frame
 * larger than that gets its own, never pooled).
 *
 * The pool keeps what the busiest moment of the thread's connections gave back, up to POOL_MAX,
 * and hands back to the GC, once a second, the arenas above POOL_BASE that no connection took
 * during the whole last second (the low-water mark of that second): a burst's arenas are kept
 * while bursts go on and dropped after a quiet second. An arena made anew is a zeroed 40 KiB
 * ArrayBuffer whose external memory brings V8's major collections: over TLS (where DATA is
 * copied into arenas) at h2load -c64 -m1 for 165,854 B answers each connection held ~5 arenas
 * until its write ended, so a pool of 64 made ~4 arenas per response and ~35% of loch's CPU went
 * to major GC.
 */

/**
 * Octets of a pooled arena: two full DATA frames (2 x 16,393) with up to 4 KiB of small frames,
 * or three 11 KB answers. With 24 KiB a second full frame never fit, so a 165,854 B answer took
 * ~10 arenas and 64 connections' answers in flight ran the pool dry (h2c, mallocs per request
 * -c64 -m1 34.3 with 24 KiB, 15.3 with 40 KiB; -c16 -m16 45.1 and 22.1).
 */
export const ARENA_SIZE = 40 * 1024;

/**
 * Arenas this thread keeps at most (40 KiB each: 16 MiB). A connection with a write in flight
 * holds the arenas its queued frames are in until the write ends (its output bound, 256 KiB by
 * default, is ~7 arenas): 64 TLS connections each answering 165,854 B held ~320.
 */
const POOL_MAX = 400;

/** Arenas kept however quiet the thread is (2.5 MiB). */
const POOL_BASE = 64;

/** How often the unused surplus above POOL_BASE is dropped. */
const TRIM_PERIOD_MS = 1000;

/** The empty arena of a connection that holds none (idle): any frame replaces it. */
export const NO_ARENA = new Uint8Array(0);

const pool: Uint8Array[] = [];
/** The fewest arenas the pool held since the last trim: those were not needed meanwhile. */
let lowWater = 0;
let trimTimer: ReturnType<typeof setInterval> | null = null;

/** A free arena of ARENA_SIZE octets: a pooled one (its old bytes are still there), or a new one. */
export function takeArena(): Uint8Array {
  const arena = pool.pop();
  if (arena === undefined) return new Uint8Array(ARENA_SIZE);
  if (pool.length < lowWater) lowWater = pool.length;
  return arena;
}

/**
 * Gives back an arena no write reads any more (the caller's promise: a pooled arena is written
 * into by another connection). Ones of another size, and more than the pool keeps, are dropped.
 */
export function giveArena(arena: Uint8Array): void {
  if (arena.length !== ARENA_SIZE || pool.length >= POOL_MAX) return;
  pool.push(arena);
  if (pool.length > POOL_BASE && trimTimer === null) {
    lowWater = pool.length;
    trimTimer = setInterval(trimArenas, TRIM_PERIOD_MS);
    trimTimer.unref();
  }
}

/**
 * Drops the arenas above POOL_BASE that stayed in the pool since the last trim (the timer's
 * work, once a second while the pool holds more than POOL_BASE); returns how many. @internal
 * exported for tests
 */
export function trimArenas(): number {
  const drop = Math.min(lowWater, pool.length - POOL_BASE);
  if (drop > 0) pool.length -= drop;
  lowWater = pool.length;
  if (pool.length <= POOL_BASE && trimTimer !== null) {
    clearInterval(trimTimer);
    trimTimer = null;
  }
  return Math.max(drop, 0);
}

/** Arenas in the pool now (tests). */
export function pooledArenas(): number {
  return pool.length;
}
