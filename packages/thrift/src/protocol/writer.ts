/**
 * The protocol writer contract and the growable output buffer every writer shares. A writer
 * appends one message (or any values) to its buffer; `finish()` hands out a view of the bytes.
 * Reuse one writer per connection with `reset()`. Not for framing: transport/ wraps the bytes.
 */
import { ThriftProtocolError } from '../errors.js';
import type { MessageType, TType } from '../types.js';

const utf8Encoder = new TextEncoder();

/** A writer of one protocol into a growable buffer. */
export abstract class ProtocolWriter {
  /** The output buffer; bytes [0, pos) are written. */
  buf: Uint8Array;
  /** Bytes written so far. */
  pos = 0;
  protected view: DataView;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(Math.max(16, initialSize));
    this.view = new DataView(this.buf.buffer);
  }

  /** Forgets what was written (keeps the buffer). */
  reset(): this {
    this.pos = 0;
    this.resetState();
    return this;
  }

  /** Clears protocol-specific state. */
  protected resetState(): void {}

  /** A view of the bytes written; valid until the next write or `reset()`. */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of the bytes written, owned by the caller. */
  finishCopy(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /**
   * Makes room for `n` more bytes. Every write calls this, so it is only the compare, small
   * enough for V8 to inline into each write; the growth is out of line in `growBuffer`. (One method
   * holding both was not inlined: a call per written value, ~22% of writing a 10 KiB struct.)
   */
  protected ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.growBuffer(n);
  }

  /** Makes room for `n` more bytes by doubling the buffer until they fit. */
  private growBuffer(n: number): void {
    const need = this.pos + n;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Appends raw bytes (already encoded values, e.g. a forwarded struct). */
  writeRaw(bytes: Uint8Array): void {
    this.ensure(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  /**
   * Encodes `s` as UTF-8 at `pos` (room for 3 bytes per UTF-16 unit must be ensured) and
   * returns the byte count. ASCII is copied by hand: faster than TextEncoder for short strings.
   */
  protected encodeUtf8At(s: string, pos: number): number {
    const n = s.length;
    if (n <= 32) {
      const b = this.buf;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[pos + i] = c;
      }
      if (i === n) return n;
    }
    return utf8Encoder.encodeInto(s, this.buf.subarray(pos)).written;
  }

  /** Writes a message header. */
  abstract writeMessageBegin(name: string, type: MessageType, seqId: number): void;
  /** Ends a message (no bytes). */
  writeMessageEnd(): void {}
  /** Begins a struct. */
  writeStructBegin(): void {}
  /** Ends a struct (the field stop is written by `writeFieldStop`). */
  writeStructEnd(): void {}
  /** Writes a field header. */
  abstract writeFieldBegin(type: TType, id: number): void;
  /** Ends a field (no bytes). */
  writeFieldEnd(): void {}
  /** Writes the end-of-fields marker of a struct. */
  abstract writeFieldStop(): void;
  /** Begins a list of `size` elements of `elemType`. */
  abstract writeListBegin(elemType: TType, size: number): void;
  /** Ends a list (no bytes). */
  writeListEnd(): void {}
  /** Begins a set. */
  writeSetBegin(elemType: TType, size: number): void {
    this.writeListBegin(elemType, size);
  }
  /** Ends a set (no bytes). */
  writeSetEnd(): void {}
  /** Begins a map. */
  abstract writeMapBegin(keyType: TType, valueType: TType, size: number): void;
  /** Ends a map (no bytes). */
  writeMapEnd(): void {}
  /** Writes a bool. */
  abstract writeBool(v: boolean): void;
  /** Writes a signed byte. */
  abstract writeByte(v: number): void;
  /** Writes an i16. */
  abstract writeI16(v: number): void;
  /** Writes an i32. */
  abstract writeI32(v: number): void;
  /** Writes an i64 (a bigint, or a number that is a safe integer). */
  abstract writeI64(v: bigint | number): void;
  /** Writes an i64 from its signed high and unsigned low halves (the bigint-free path). */
  abstract writeI64Split(hi: number, lo: number): void;
  /** Writes a double. */
  abstract writeDouble(v: number): void;
  /** Writes a string as UTF-8. */
  abstract writeString(v: string): void;
  /** Writes a binary. */
  abstract writeBinary(v: Uint8Array): void;
  /** Writes a uuid given as a canonical string or 16 bytes. */
  writeUuid(v: string | Uint8Array): void {
    this.ensure(16);
    if (typeof v === 'string') parseUuidInto(v, this.buf, this.pos);
    else {
      if (v.byteLength !== 16)
        throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', 'uuid must be 16 bytes');
      this.buf.set(v, this.pos);
    }
    this.pos += 16;
  }
}

/** Splits an i64 into signed high and unsigned low halves. */
export function splitI64(v: bigint | number): [hi: number, lo: number] {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', `i64 ${v} is not a safe integer`);
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) | 0;
    return [hi, lo];
  }
  const u = BigInt.asUintN(64, v);
  if (BigInt.asIntN(64, v) !== v)
    throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', `i64 ${v} out of range`);
  return [Number(u >> 32n) | 0, Number(u & 0xffffffffn)];
}

/** Joins signed high and unsigned low halves into a bigint. */
export function joinI64(hi: number, lo: number): bigint {
  return (BigInt(hi | 0) << 32n) | BigInt(lo >>> 0);
}

/** Validates an integer range for fixed-width types. */
export function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', `${what} ${v} out of range`);
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses a canonical uuid string (8-4-4-4-12 hex) into 16 bytes at `offset`. */
export function parseUuidInto(s: string, out: Uint8Array, offset: number): void {
  if (s.length !== 36 || s[8] !== '-' || s[13] !== '-' || s[18] !== '-' || s[23] !== '-') {
    throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', `bad uuid ${JSON.stringify(s)}`);
  }
  let j = 0;
  for (let i = 0; i < 36; ) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      i++;
      continue;
    }
    const h = hexValue(s.charCodeAt(i));
    const l = hexValue(s.charCodeAt(i + 1));
    if (h < 0 || l < 0)
      throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', `bad uuid ${JSON.stringify(s)}`);
    out[offset + j++] = (h << 4) | l;
    i += 2;
  }
}
