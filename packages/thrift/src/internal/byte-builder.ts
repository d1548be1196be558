/**
 * A small append-only byte builder for framing headers (THeader/TTHeader header blocks). Not
 * for protocol bodies: those go through the protocol writers, which are tuned for it.
 */
import { ThriftTransportError } from '../errors.js';

const encoder = new TextEncoder();

/** Appends big-endian integers, varints and strings to a growable buffer. */
export class ByteBuilder {
  buf: Uint8Array;
  pos = 0;

  constructor(size = 64) {
    this.buf = new Uint8Array(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    if (v < 0 || v > 0xffff)
      throw new ThriftTransportError('ERR_THRIFT_BAD_HEADER', `${v} does not fit 16 bits`);
    this.ensure(2);
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf[this.pos++] = v >>> 24;
    this.buf[this.pos++] = v >>> 16;
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v;
  }

  varint(v: number): void {
    this.ensure(5);
    v >>>= 0;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }

  /** A string with a varint length (THeader). */
  varString(s: string): void {
    const b = encoder.encode(s);
    this.varint(b.byteLength);
    this.bytes(b);
  }

  /** A string with a u16 length (TTHeader). */
  u16String(s: string): void {
    const b = encoder.encode(s);
    this.u16(b.byteLength);
    this.bytes(b);
  }

  /** Zero bytes up to a multiple of 4 counted from `from`. */
  pad4(from: number): void {
    while ((this.pos - from) % 4 !== 0) this.u8(0);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** Bounds-checked cursor over a header block: overruns are ERR_THRIFT_BAD_HEADER. */
export class HeaderCursor {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    private readonly what: string,
  ) {
    this.pos = start;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new ThriftTransportError(
        'ERR_THRIFT_BAD_HEADER',
        `${this.what} header block truncated at byte ${this.pos}`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  varint(): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      result |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return result >>> 0;
    }
    throw new ThriftTransportError(
      'ERR_THRIFT_BAD_HEADER',
      `${this.what} varint longer than 5 bytes at ${this.pos}`,
    );
  }

  string(len: number): string {
    this.need(len);
    const s = decoder.decode(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

// ignoreBOM: a header key's or value's leading U+FEFF is part of it (the default drops it).
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
