/**
 * The HTTP/2 server output arenas of this thread (a module instance per worker thread): the
 * buffers connections write frames into (server-output.ts) and give back once no write reads
 * them, for the next connection's or the next response's frames. One size, so any pooled arena
 * holds any frame up to a full DATA frame (16,384 octets and its header) with the small frames
 * that move along with it (server-output.ts' CARRY_MAX). Not for arenas of other sizes (a frame
 * larger than that gets its own, never pooled).
 */

/**
 * Octets of a pooled arena: two full DATA frames (2 x 16,393) with up to 4 KiB of small frames,
 * or three 11 KB answers. With 24 KiB a second full frame never fit, so a 165,854 B answer took
 * ~10 arenas and 64 connections' answers in flight ran the pool dry (h2c, mallocs per request
 * -c64 -m1 34.3 with 24 KiB, 15.3 with 40 KiB; -c16 -m16 45.1 and 22.1).
 */
export const ARENA_SIZE = 40 * 1024;

/**
 * Arenas this thread keeps (40 KiB each: 2.5 MiB). A connection with a write in flight holds the
 * arenas its queued frames are in until the write ends (h2load -c16 -m16 at 11,268 B: a ~125 KB
 * burst per connection, about 4 arenas); the pool covers the difference between the busiest and
 * the quietest moment of a thread's connections. More than this are left to the GC.
 */
const POOL_MAX = 64;

/** The empty arena of a connection that holds none (idle): any frame replaces it. */
export const NO_ARENA = new Uint8Array(0);

const pool: Uint8Array[] = [];

/** A free arena of ARENA_SIZE octets: a pooled one (its old bytes are still there), or a new one. */
export function takeArena(): Uint8Array {
  return pool.pop() ?? new Uint8Array(ARENA_SIZE);
}

/**
 * Gives back an arena no write reads any more (the caller's promise: a pooled arena is written
 * into by another connection). Ones of another size, and more than the pool keeps, are dropped.
 */
export function giveArena(arena: Uint8Array): void {
  if (arena.length === ARENA_SIZE && pool.length < POOL_MAX) pool.push(arena);
}

/** Arenas in the pool now (tests). */
export function pooledArenas(): number {
  return pool.length;
}
