/**
 * Memory for the small framing headers written with every message: a framed length prefix, a
 * THeader or TTHeader header block. Why: V8 keeps a typed array of at most 64 bytes on its own
 * heap, and native code that takes it (the io_uring driver pins every buffer it writes) first
 * moves it off the heap: a malloc and a backing store registered process-wide, later swept and
 * freed, for each 4-byte prefix. Headers carved out of one 16 KiB slab cost one such allocation
 * per few thousand messages. Bytes handed out are never reused (a full slab is replaced; views
 * keep the old one alive while their writes are pending), so no write can see them change. Not
 * for payloads.
 */

const SLAB_BYTES = 16 * 1024;
/** Larger headers get memory of their own (off V8's heap already, and rare). */
const MAX_SLAB_PIECE = 1024;

let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/** `n` fresh bytes (zero) for a header that is written once and then only sent. */
export function headerBytes(n: number): Uint8Array {
  if (n > MAX_SLAB_PIECE) return new Uint8Array(n);
  if (used + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const piece = slab.subarray(used, used + n);
  // Keep pieces 8-byte aligned: neighbours never share a word.
  used += (n + 7) & ~7;
  return piece;
}

/** `bytes` copied into header memory (see headerBytes). */
export function headerCopy(bytes: Uint8Array): Uint8Array {
  const out = headerBytes(bytes.byteLength);
  out.set(bytes);
  return out;
}
