/**
 * A growable byte buffer that JSON text is written into as UTF-8: what the compiled Thrift ->
 * JSON readers (thrift-to-json.ts) emit into, so an answer's JSON is built as bytes once, with
 * no intermediate strings per value and no re-encoding of a whole string at the end. Thrift
 * strings are copied byte for byte where they are well-formed UTF-8 (escapes written in place);
 * only malformed ones are decoded. Not a JSON parser and not a general string builder.
 */

import { slabCopy } from './slab-copy.js';

// ignoreBOM: a string's leading U+FEFF is part of it (TextDecoder drops it by default).
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const encoder = new TextEncoder();

/** JSON text being written; reuse one per thread with `reset()` (writing is synchronous). */
export class JsonText {
  buf: Buffer = Buffer.allocUnsafe(1024);
  pos = 0;

  reset(): this {
    this.pos = 0;
    return this;
  }

  /**
   * Room for `n` more bytes. Only the compare, so that V8 inlines it into every write; the
   * growth is out of line in `grow`.
   */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  /** Doubles the buffer (bytes [0, pos) are kept): for writers that cannot tell their size ahead. */
  expand(): void {
    this.grow(this.buf.length - this.pos + 1);
  }

  /** Makes room for `n` more bytes by doubling the buffer (bytes [0, pos) are kept). */
  private grow(n: number): void {
    const need = this.pos + n;
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

  /**
   * Bytes as they are (pre-encoded field names, literals). Short ones are copied by hand: a
   * `set()` is a builtin call per field name.
   */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.ensure(n);
    if (n > 24) {
      this.buf.set(bytes, this.pos);
      this.pos += n;
      return;
    }
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = bytes[i] as number;
    this.pos = p;
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
   * The bytes of a Thrift string as a JSON string, written as JSON.stringify would write the
   * string they decode to. Printable ASCII without `"` or `\` is its own JSON text: copied
   * with its quotes and nothing else (measured 2x on 5-40 byte strings against decode +
   * JSON.stringify). From the first other byte on (stringRest): `"`, `\` and control
   * characters are escaped in place and well-formed UTF-8 sequences are copied as they are
   * (no decode, no re-encode: JSON.stringify escapes nothing else, U+2028/2029 included); only
   * a string that is not well-formed UTF-8 is decoded (each bad sequence U+FFFD, as TextDecoder
   * does) and escaped. The ASCII check and the copy are one pass: a second pass plus `set()`
   * per string cost 7-15% of reading the 10 KiB bench struct (bench/gateway/convert.ts).
   */
  string(b: Uint8Array): void {
    this.stringAt(b, 0, b.length);
  }

  /** As string(), for the bytes `src[start, end)` (no view of them is made unless malformed). */
  stringAt(src: Uint8Array, start: number, end: number): void {
    this.ensure(end - start + 2);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = 0x22;
    for (let i = start; i < end; i++) {
      const c = src[i] as number;
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.pos = p;
        this.stringRest(src, start, i, end);
        return;
      }
      buf[p++] = c;
    }
    buf[p] = 0x22;
    this.pos = p + 1;
  }

  /**
   * The rest of a string from `src[i]` on, `"` and `src[start, i)` being written already
   * (`pos` after them), and its closing quote.
   */
  private stringRest(src: Uint8Array, start: number, i: number, end: number): void {
    // The opening quote's place, for a string that must be decoded after all.
    const open = this.pos - (i - start) - 1;
    // Worst case: every byte a control character, `\u00XX`.
    this.ensure((end - i) * 6 + 1);
    const buf = this.buf;
    let p = this.pos;
    while (i < end) {
      const c = src[i] as number;
      if (c < 0x80) {
        if (c >= 0x20 && c !== 0x22 && c !== 0x5c) buf[p++] = c;
        else {
          buf[p++] = 0x5c;
          const short = SHORT_ESCAPE[c] as number;
          if (short !== 0) buf[p++] = short;
          else {
            buf[p++] = 0x75; // u00XX, lower-case hex as JSON.stringify writes it
            buf[p++] = 0x30;
            buf[p++] = 0x30;
            buf[p++] = HEX[c >> 4] as number;
            buf[p++] = HEX[c & 15] as number;
          }
        }
        i++;
        continue;
      }
      const n = utf8SequenceLength(src, i, end);
      if (n === 0) {
        this.pos = open;
        this.text(JSON.stringify(utf8.decode(src.subarray(start, end))));
        return;
      }
      for (let k = 0; k < n; k++) buf[p++] = src[i + k] as number;
      i += n;
    }
    buf[p++] = 0x22;
    this.pos = p;
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

/** The escape letter of `"`, `\` and the control characters that have one (0: `\u00XX`). */
const SHORT_ESCAPE: Uint8Array = (() => {
  const t = new Uint8Array(0x80);
  t[0x08] = 0x62; // \b
  t[0x09] = 0x74; // \t
  t[0x0a] = 0x6e; // \n
  t[0x0c] = 0x66; // \f
  t[0x0d] = 0x72; // \r
  t[0x22] = 0x22; // \"
  t[0x5c] = 0x5c; // \\
  return t;
})();

const HEX = utf8Bytes('0123456789abcdef');

/**
 * The length of the well-formed UTF-8 sequence of a non-ASCII character at `src[i]` (2-4), or
 * 0 when it is not one: a stray continuation byte, an overlong form, a surrogate (ED A0-BF),
 * past U+10FFFF, or cut off by `end` (Unicode's table 3-7 of well-formed byte sequences).
 */
function utf8SequenceLength(src: Uint8Array, i: number, end: number): number {
  const c = src[i] as number;
  if (c < 0xc2) return 0;
  if (c < 0xe0) return i + 1 < end && ((src[i + 1] as number) & 0xc0) === 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (i + 2 >= end) return 0;
    const c1 = src[i + 1] as number;
    if (((src[i + 2] as number) & 0xc0) !== 0x80) return 0;
    if (c === 0xe0) return c1 >= 0xa0 && c1 <= 0xbf ? 3 : 0;
    if (c === 0xed) return c1 >= 0x80 && c1 <= 0x9f ? 3 : 0;
    return (c1 & 0xc0) === 0x80 ? 3 : 0;
  }
  if (c > 0xf4 || i + 3 >= end) return 0;
  const c1 = src[i + 1] as number;
  if (((src[i + 2] as number) & 0xc0) !== 0x80 || ((src[i + 3] as number) & 0xc0) !== 0x80) return 0;
  if (c === 0xf0) return c1 >= 0x90 && c1 <= 0xbf ? 4 : 0;
  if (c === 0xf4) return c1 >= 0x80 && c1 <= 0x8f ? 4 : 0;
  return (c1 & 0xc0) === 0x80 ? 4 : 0;
}

/** `s` as UTF-8 bytes (for pre-encoding names once). */
export function utf8Bytes(s: string): Uint8Array {
  return encoder.encode(s);
}
