/**
 * HeadSlab: the memory decoded message heads live in. A decoder copies each complete head (its
 * only copy) into the current slab, followed by the offsets of its field lines (five 32-bit words
 * per line) and their summary (SUMMARY words, internal/head-summary.ts), so an HttpHeaders needs
 * no typed array, string or array of its own until a field is read or added, and an encoder can
 * forward untouched lines as byte-range copies. Slabs are filled front to back and never reused:
 * a slab is freed by the garbage collector once no head in it is referenced (like Node's Buffer
 * pool), so a long-lived request pins at most one slab.
 * Heads larger than a quarter of a slab get a slab of their own. One slab per thread (module
 * state); not for bodies and not for anything a caller writes into.
 */

/** Words per decoded field line: nameStart, nameEnd, valueStart, valueEnd, meta. */
export const ENTRY = 5;
/** meta: the known-name id in the low byte, and this flag when the line is exactly `name: value\r\n`. */
export const CANONICAL = 0x100;
export const ID_MASK = 0xff;

/** Size of a shared slab: a few hundred typical heads. */
const SLAB_BYTES = 32 * 1024;
/** Reservations above this get their own exactly sized slab. */
const OWN_SLAB_ABOVE = SLAB_BYTES / 4;

/** One slab: bytes and a word view over the same memory. */
export class HeadSlab {
  /** The slab as bytes. */
  readonly bytes: Uint8Array;
  /** The slab as 32-bit words (same memory). */
  readonly words: Int32Array;
  /** The memory itself (`bytes.buffer` is a call into V8's runtime; views of ranges start here). */
  readonly buffer: ArrayBuffer;
  /** Byte offset of the first free byte (a multiple of 4). */
  top = 0;
  /** Byte offset where the last reservation starts. */
  mark = 0;

  constructor(size: number) {
    const buf = new ArrayBuffer(size);
    this.buffer = buf;
    this.bytes = new Uint8Array(buf);
    this.words = new Int32Array(buf);
  }
}

let current: HeadSlab | null = null;

/**
 * Reserves `nbytes` bytes followed (4-aligned) by `nwords` words; the reservation starts at
 * `slab.mark` of the slab returned. Call `release(slab, endWord)` once the words actually used
 * are known to give the rest back.
 */
export function reserveHead(nbytes: number, nwords: number): HeadSlab {
  const need = ((nbytes + 3) & ~3) + 4 * nwords;
  if (need > OWN_SLAB_ABOVE) {
    const own = new HeadSlab(need);
    own.mark = 0;
    own.top = need;
    return own;
  }
  let s = current;
  if (s === null || s.top + need > SLAB_BYTES) {
    s = new HeadSlab(SLAB_BYTES);
    current = s;
  }
  s.mark = s.top;
  s.top += need;
  return s;
}

/** Ends the last reservation of `slab` at word index `endWord` (frees the unused words). */
export function trimHead(slab: HeadSlab, endWord: number): void {
  if (slab === current) slab.top = endWord << 2;
}
