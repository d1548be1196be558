/**
 * WriteSlab: reused memory for the small buffers an HTTP/1.1 connection writes (encoded message
 * heads, with a short body or first chunk copied behind them), so that a head costs no
 * `Buffer.allocUnsafe` (whose 8 KiB pool, malloc'd and freed only when V8 collects it, turned over
 * every ~16 requests) and no malloc at all once the slabs exist.
 *
 * The lending rule: a piece is lent to the writes it goes out in and is given back only when the
 * last of them completed (the stream's write completion, `onWritten`: the only signal that the
 * kernel is done reading it; a write can be partial, queued behind others or cut by a reset, and
 * its bytes are read until then). A slab is counted, not its pieces: it is reused (filled again
 * from its start) only once every piece lent from it was given back. A piece never given back
 * (a connection that dropped it unwritten, or the lender forgot its count) only keeps its slab
 * from being reused: the slab is then the garbage collector's, like Node's pool, never
 * overwritten. One set of slabs per thread (module state). Pieces above MAX_LENT bytes are not
 * lent (the caller allocates them), so a stalled write pins at most one SLAB_BYTES slab, as a
 * Node pool piece pinned its 8 KiB pool.
 */

/** Size of a slab: a few dozen heads. */
const SLAB_BYTES = 16 * 1024;
/** Largest piece lent; larger ones are the caller's own buffers. */
export const MAX_LENT = 4 * 1024;
/** Slabs kept for reuse beyond the current one (the rest go to the garbage collector). */
const MAX_SPARE = 4;

/** One slab of write memory. */
export class WriteSlab {
  readonly buffer: ArrayBuffer = new ArrayBuffer(SLAB_BYTES);
  /** First free byte. */
  top = 0;
  /** Pieces lent and not given back. */
  lent = 0;
  /** Times the slab was filled again from its start (a piece is intact while this is unchanged). */
  generation = 0;
}

let current: WriteSlab | null = null;
const spare: WriteSlab[] = [];
/** The slab of the last piece lendBytes returned, or null when it was not lent. */
let lastSlab: WriteSlab | null = null;

/** What the slabs did (tests, benches). */
export const writeSlabStats = { slabsMade: 0, lent: 0, givenBack: 0, unlent: 0, reused: 0 };

/**
 * `n` bytes for a write: a piece of the current slab (lentSlab() then names it; the caller owes
 * one giveBack for it after the write completed), or a buffer of its own when `n` is over
 * MAX_LENT (lentSlab() is then null and nothing is owed).
 */
export function lendBytes(n: number): Uint8Array {
  if (n > MAX_LENT) {
    lastSlab = null;
    writeSlabStats.unlent++;
    return Buffer.allocUnsafe(n);
  }
  let s = current;
  if (s === null || s.top + n > SLAB_BYTES) {
    if (s !== null && s.lent === 0) {
      s.top = 0;
      s.generation++;
      writeSlabStats.reused++;
    } else {
      // Still lent: it comes back to `spare` when its last piece does (giveBack).
      s = spare.pop() ?? null;
      if (s === null) {
        s = new WriteSlab();
        writeSlabStats.slabsMade++;
      } else writeSlabStats.reused++;
      current = s;
    }
  }
  const at = s.top;
  s.top = at + n;
  s.lent++;
  lastSlab = s;
  writeSlabStats.lent++;
  return new Uint8Array(s.buffer, at, n);
}

/** The slab of the last piece lendBytes returned, or null when it was not lent. */
export function lentSlab(): WriteSlab | null {
  return lastSlab;
}

/**
 * Gives `count` pieces of `slab` back: every write they went out in has completed (or they were
 * never handed to a write and never will be). A slab left with none lent is reused.
 */
export function giveBack(slab: WriteSlab, count: number): void {
  writeSlabStats.givenBack += count;
  const left = (slab.lent -= count);
  if (left < 0) {
    // More given back than lent: a lender's bug. Its pieces may still be in flight: the slab is
    // never reused (left to the garbage collector) rather than overwritten.
    slab.lent = 2 ** 30;
    return;
  }
  if (left > 0 || slab === current) return;
  if (spare.length < MAX_SPARE) {
    slab.top = 0;
    slab.generation++;
    spare.push(slab);
  }
}
