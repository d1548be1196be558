/**
 * The thread's HTTP/2 output arena pool (arena-pool.ts): it keeps a burst's arenas (up to 400,
 * where it used to keep 64 and leave the rest to the GC: a new 40 KiB arena per ~40 KB of DATA
 * over TLS at h2load -c64 -m1, and the major collections their external memory brought), and
 * drops, at each trim, the arenas above 64 that stayed unused since the last one. The trims are
 * called by hand here (the pool's own timer calls them once a second).
 */
import { describe, expect, it } from 'vitest';
import { ARENA_SIZE, giveArena, pooledArenas, takeArena, trimArenas } from '../../src/h2/arena-pool.js';

describe('HTTP/2 output arena pool', () => {
  it("keeps a burst's arenas, then drops those no connection took since the last trim, down to 64", () => {
    expect(pooledArenas()).toBe(0);
    // 300 connections' arenas in flight at once, all given back.
    const burst = Array.from({ length: 300 }, () => takeArena());
    expect(new Set(burst).size).toBe(300);
    for (const a of burst) giveArena(a);
    expect(pooledArenas()).toBe(300);
    // The next burst takes them again, none made anew.
    const again = Array.from({ length: 300 }, () => takeArena());
    expect(again.every((a) => burst.includes(a))).toBe(true);
    for (const a of again) giveArena(a);
    // The pool was empty during that burst: nothing stayed unused.
    expect(trimArenas()).toBe(0);
    expect(pooledArenas()).toBe(300);
    // A quieter second: only 100 taken at once, so 200 stayed unused.
    const some = Array.from({ length: 100 }, () => takeArena());
    for (const a of some) giveArena(a);
    expect(trimArenas()).toBe(200);
    expect(pooledArenas()).toBe(100);
    // A quiet second: down to the 64 every thread keeps.
    expect(trimArenas()).toBe(36);
    expect(pooledArenas()).toBe(64);
    expect(trimArenas()).toBe(0);
    expect(pooledArenas()).toBe(64);
  });

  it('keeps at most 400, and never an arena of another size', () => {
    const many = Array.from({ length: 450 }, () => takeArena());
    for (const a of many) giveArena(a);
    expect(pooledArenas()).toBe(400);
    giveArena(new Uint8Array(ARENA_SIZE + 1));
    expect(pooledArenas()).toBe(400);
    trimArenas();
    trimArenas();
    expect(pooledArenas()).toBe(64);
  });
});
