/**
 * Copies of small byte runs cut from one shared slab, as Node's Buffer pool does, but as plain
 * Uint8Arrays: a gateway call copies its encoded Thrift call and its JSON answer out of the
 * buffers they were written in (those are reused by the next call), and an ArrayBuffer of its
 * own per copy (`slice()`) costs ~670 ns against ~50-80 ns for a view of the slab (120-200 B,
 * fixed-count loop on this 2-core VM): two of them were ~15% of a small call's JavaScript
 * (bench/gateway/core.ts). The slab is only ever bump-allocated, never reused: a view is never
 * overwritten; a slab lives until the last view of it is gone (at most 64 KiB per live copy).
 * Copies above SLAB / 8 get their own buffer. Not for bytes the caller keeps for long.
 */

const SLAB = 64 * 1024;
let slab = new ArrayBuffer(SLAB);
let used = 0;

/** A copy of `bytes` (from the slab when small). */
export function slabCopy(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength;
  if (n > SLAB / 8) return bytes.slice();
  if (used + n > SLAB) {
    slab = new ArrayBuffer(SLAB);
    used = 0;
  }
  const out = new Uint8Array(slab, used, n);
  // 8-byte aligned starts, so that a DataView or a wider typed array over a copy is aligned.
  used += (n + 7) & ~7;
  out.set(bytes);
  return out;
}
