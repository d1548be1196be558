/**
 * A growable byte buffer that JSON text is written into as UTF-8: what the compiled Thrift ->
 * JSON readers (thrift-to-json.ts) emit into, so an answer's JSON is built as bytes once, with
 * no intermediate strings per value and no re-encoding of a whole string at the end. Printable
 * ASCII Thrift strings without `"` or `\` are copied byte for byte. Not a JSON parser and not a
 * general string builder.
 */

import { slabCopy } from './slab-copy.js';

const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** JSON text being written; reuse one per thread with `reset()` (writing is synchronous). */
export class JsonText {
  buf: Buffer = Buffer.allocUnsafe(1024);
  pos = 0;

  reset(): this {
    this.pos = 0;
    return this;
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** One byte (an ASCII character code). */
  byte(c: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** Bytes as they are (pre-encoded field names, literals). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A string known to be ASCII (numbers, base64, escaped JSON). */
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Any string, as UTF-8 (already JSON text). */
  text(s: string): void {
    this.ensure(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** An integer that fits a double exactly, in decimal. */
  int(v: number): void {
    if (v >= 0 && v < 10) {
      this.byte(0x30 + v);
      return;
    }
    this.ascii(String(v));
  }

  /**
   * The bytes of a Thrift string as a JSON string. Printable ASCII without `"` or `\` is its
   * own JSON text: copied with its quotes and nothing else (measured 2x on 5-40 byte strings
   * against decode + JSON.stringify); anything else is decoded and escaped. The check and the
   * copy are one pass (`pos` moves only at the end, so a string that needs escaping is written
   * over what was copied): a second pass plus `set()` per string cost 7-15% of reading the
   * 10 KiB bench struct (bench/gateway/convert.ts).
   */
  string(b: Uint8Array): void {
    this.stringAt(b, 0, b.length);
  }

  /** As string(), for the bytes `src[start, end)` (no view of them is made unless escaped). */
  stringAt(src: Uint8Array, start: number, end: number): void {
    this.ensure(end - start + 2);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = 0x22;
    for (let i = start; i < end; i++) {
      const c = src[i] as number;
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.text(JSON.stringify(utf8.decode(src.subarray(start, end))));
        return;
      }
      buf[p++] = c;
    }
    buf[p] = 0x22;
    this.pos = p + 1;
  }

  /** The text from `start` on, as a string (map keys that must be re-quoted). */
  since(start: number): string {
    return this.buf.toString('utf8', start, this.pos);
  }

  /** A copy of what was written, owned by the caller (small ones share a slab: slab-copy.ts). */
  finishCopy(): Uint8Array {
    return slabCopy(new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.pos));
  }

  /** What was written, as a string. */
  toString(): string {
    return this.buf.toString('utf8', 0, this.pos);
  }
}

/** `s` as UTF-8 bytes (for pre-encoding names once). */
export function utf8Bytes(s: string): Uint8Array {
  return encoder.encode(s);
}
