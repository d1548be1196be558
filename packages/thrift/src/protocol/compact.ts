/**
 * Thrift compact protocol (TCompactProtocol): zigzag varints, field id deltas, bools folded
 * into field headers, short list headers, little-endian doubles. Varints are decoded as two
 * 32-bit halves so that i64 needs a bigint only when the caller asks for one. Not for framing.
 */
import { ThriftProtocolError } from '../errors.js';
import { type MessageHeader, type MessageType, TType } from '../types.js';
import { decodeNameAt, decodeUtf8At, ProtocolReader, type ReaderOptions } from './reader.js';
import { checkInt, joinI64, ProtocolWriter, splitI64 } from './writer.js';

/** First byte of every compact message. */
export const COMPACT_PROTOCOL_ID = 0x82;
const COMPACT_VERSION = 1;

/** Compact type nibble by Thrift type id. */
const TO_COMPACT: Int8Array = (() => {
  const m = new Int8Array(17).fill(-1);
  m[TType.STOP] = 0;
  m[TType.BOOL] = 1;
  m[TType.BYTE] = 3;
  m[TType.I16] = 4;
  m[TType.I32] = 5;
  m[TType.I64] = 6;
  m[TType.DOUBLE] = 7;
  m[TType.STRING] = 8;
  m[TType.LIST] = 9;
  m[TType.SET] = 10;
  m[TType.MAP] = 11;
  m[TType.STRUCT] = 12;
  m[TType.UUID] = 13;
  return m;
})();

/** Thrift type id by compact type nibble (-1 = invalid). Nibble 2 is bool false. */
const FROM_COMPACT: Int8Array = (() => {
  const m = new Int8Array(16).fill(-1);
  m[0] = TType.STOP;
  m[1] = TType.BOOL;
  m[2] = TType.BOOL;
  m[3] = TType.BYTE;
  m[4] = TType.I16;
  m[5] = TType.I32;
  m[6] = TType.I64;
  m[7] = TType.DOUBLE;
  m[8] = TType.STRING;
  m[9] = TType.LIST;
  m[10] = TType.SET;
  m[11] = TType.MAP;
  m[12] = TType.STRUCT;
  m[13] = TType.UUID;
  return m;
})();

/** Reader of the compact protocol. */
export class CompactReader extends ProtocolReader {
  /** Last field id per open struct (field ids are written as deltas). */
  private lastFieldIds: number[] = [];
  private lastFieldId = 0;
  /** Value of a bool folded into the last field header (-1: none pending). */
  private pendingBool = -1;

  constructor(options: ReaderOptions = {}) {
    super(options);
  }

  protected override resetState(): void {
    this.lastFieldIds.length = 0;
    this.lastFieldId = 0;
    this.pendingBool = -1;
  }

  private u8(): number {
    if (this.pos >= this.end) this.truncated(1);
    return this.buf[this.pos++]!;
  }

  /** Reads an unsigned varint of at most 32 bits. */
  private varint32(): number {
    const b = this.buf;
    let p = this.pos;
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      if (p >= this.end) {
        this.pos = p;
        this.truncated(1);
      }
      const byte = b[p++]!;
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = p;
        return result;
      }
      shift += 7;
    }
    throw new ThriftProtocolError('ERR_THRIFT_BAD_VARINT', 'varint32 longer than 5 bytes', this.pos);
  }

  /** Reads an unsigned varint of at most 64 bits into i64Hi/i64Lo (raw, not zigzag-decoded). */
  private varint64(): void {
    const b = this.buf;
    let p = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (p >= this.end) {
        this.pos = p;
        this.truncated(1);
      }
      const byte = b[p++]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (byte < 0x80) {
        this.pos = p;
        this.i64Lo = lo;
        this.i64Hi = hi;
        return;
      }
    }
    throw new ThriftProtocolError('ERR_THRIFT_BAD_VARINT', 'varint64 longer than 10 bytes', this.pos);
  }

  /** Steps over a varint of at most `max` bytes. */
  private skipVarint(max: number): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < max; i++) {
      if (p >= this.end) {
        this.pos = p;
        this.truncated(1);
      }
      if (b[p++]! < 0x80) {
        this.pos = p;
        return;
      }
    }
    throw new ThriftProtocolError('ERR_THRIFT_BAD_VARINT', `varint longer than ${max} bytes`, this.pos);
  }

  private typeOf(nibble: number): TType {
    const t = FROM_COMPACT[nibble] ?? -1;
    if (t <= 0)
      throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `bad compact type ${nibble}`, this.pos - 1);
    return t as TType;
  }

  private header(): { type: MessageType; seqId: number } | number {
    const start = this.pos;
    const id = this.u8();
    if (id !== COMPACT_PROTOCOL_ID) {
      throw new ThriftProtocolError(
        'ERR_THRIFT_BAD_VERSION',
        `bad compact protocol id 0x${id.toString(16)}`,
        start,
      );
    }
    const vt = this.u8();
    if ((vt & 0x1f) !== COMPACT_VERSION) {
      throw new ThriftProtocolError('ERR_THRIFT_BAD_VERSION', `bad compact version ${vt & 0x1f}`, start + 1);
    }
    const type = vt >>> 5;
    if (type < 1 || type > 4)
      throw new ThriftProtocolError('ERR_THRIFT_BAD_VERSION', `bad message type ${type}`, start + 1);
    return type;
  }

  override readMessageBegin(): MessageHeader {
    const type = this.header() as MessageType;
    const seqId = this.varint32() | 0;
    const name = this.readName();
    return { name, type, seqId };
  }

  override skipMessageBegin(): number {
    this.messageType = this.header() as number;
    const seqId = this.varint32() | 0;
    const len = this.varint32();
    this.checkStringLength(len);
    this.pos += len;
    return seqId;
  }

  override readStructBegin(): void {
    this.enter();
    this.lastFieldIds.push(this.lastFieldId);
    this.lastFieldId = 0;
  }

  override readStructEnd(): void {
    this.depth--;
    this.lastFieldId = this.lastFieldIds.pop() ?? 0;
  }

  override readFieldBegin(): TType {
    const byte = this.u8();
    if (byte === 0) return TType.STOP;
    const nibble = byte & 0x0f;
    const type = this.typeOf(nibble);
    const delta = byte >>> 4;
    if (delta === 0) this.fieldId = (this.zigzag32(this.varint32()) << 16) >> 16;
    else this.fieldId = ((this.lastFieldId + delta) << 16) >> 16;
    this.lastFieldId = this.fieldId;
    if (type === TType.BOOL) this.pendingBool = nibble === 1 ? 1 : 0;
    return type;
  }

  private zigzag32(n: number): number {
    return (n >>> 1) ^ -(n & 1);
  }

  override readListBegin(): number {
    this.enter();
    const byte = this.u8();
    this.elemType = this.typeOf(byte & 0x0f);
    let size = byte >>> 4;
    if (size === 15) {
      size = this.varint32();
      if (size < 0)
        throw new ThriftProtocolError('ERR_THRIFT_NEGATIVE_SIZE', `negative size ${size}`, this.pos);
    }
    this.checkContainerSize(size, 1);
    return size;
  }

  override readMapBegin(): number {
    this.enter();
    const size = this.varint32();
    if (size === 0) {
      this.keyType = TType.STOP as TType;
      this.valueType = TType.STOP as TType;
      return 0;
    }
    if (size < 0)
      throw new ThriftProtocolError('ERR_THRIFT_NEGATIVE_SIZE', `negative size ${size}`, this.pos);
    const kv = this.u8();
    this.keyType = this.typeOf(kv >>> 4);
    this.valueType = this.typeOf(kv & 0x0f);
    this.checkContainerSize(size, 2);
    return size;
  }

  override readBool(): boolean {
    if (this.pendingBool >= 0) {
      const v = this.pendingBool === 1;
      this.pendingBool = -1;
      return v;
    }
    return this.u8() === 1;
  }

  override readByte(): number {
    return (this.u8() << 24) >> 24;
  }

  override readI16(): number {
    return (this.zigzag32(this.varint32()) << 16) >> 16;
  }

  override readI32(): number {
    return this.zigzag32(this.varint32()) | 0;
  }

  override readI64Split(): void {
    this.varint64();
    const lo = this.i64Lo;
    const hi = this.i64Hi;
    const sign = -(lo & 1);
    this.i64Lo = (((lo >>> 1) | (hi << 31)) ^ sign) >>> 0;
    this.i64Hi = ((hi >>> 1) ^ sign) | 0;
  }

  override readI64(): bigint {
    this.readI64Split();
    return joinI64(this.i64Hi, this.i64Lo);
  }

  override readDouble(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  override readBinary(): Uint8Array {
    const len = this.varint32();
    this.checkStringLength(len);
    const p = this.pos;
    this.pos = p + len;
    return this.buf.subarray(p, p + len);
  }

  override readString(): string {
    const len = this.varint32();
    this.checkStringLength(len);
    const p = this.pos;
    this.pos = p + len;
    return decodeUtf8At(this.buf, p, len);
  }

  /** A message name: readString, with names seen lately taken from a cache (decodeNameAt). */
  private readName(): string {
    const len = this.varint32();
    this.checkStringLength(len);
    const p = this.pos;
    this.pos = p + len;
    return decodeNameAt(this.buf, p, len);
  }

  override skip(type: TType): void {
    switch (type) {
      case TType.BOOL:
        if (this.pendingBool >= 0) this.pendingBool = -1;
        else this.u8();
        return;
      case TType.BYTE:
        this.u8();
        return;
      case TType.I16:
        this.skipVarint(3);
        return;
      case TType.I32:
        this.skipVarint(5);
        return;
      case TType.I64:
        this.skipVarint(10);
        return;
      case TType.DOUBLE:
        this.need(8);
        this.pos += 8;
        return;
      case TType.UUID:
        this.need(16);
        this.pos += 16;
        return;
      case TType.STRING: {
        const len = this.varint32();
        this.checkStringLength(len);
        this.pos += len;
        return;
      }
      case TType.STRUCT: {
        this.enter();
        for (;;) {
          const byte = this.u8();
          if (byte === 0) break;
          const nibble = byte & 0x0f;
          const t = this.typeOf(nibble);
          // Ids do not matter when skipping; a long-form id is a zigzag i16 varint.
          if (byte >>> 4 === 0) this.skipVarint(3);
          if (t === TType.BOOL) continue; // the value is in the nibble
          this.skip(t);
        }
        this.depth--;
        return;
      }
      case TType.LIST:
      case TType.SET: {
        const n = this.readListBegin();
        const et = this.elemType;
        if (et === TType.BOOL || et === TType.BYTE) {
          this.need(n);
          this.pos += n;
        } else if (et === TType.DOUBLE || et === TType.UUID) {
          const w = et === TType.DOUBLE ? 8 : 16;
          this.need(n * w);
          this.pos += n * w;
        } else {
          for (let i = 0; i < n; i++) this.skip(et);
        }
        this.depth--;
        return;
      }
      case TType.MAP: {
        const n = this.readMapBegin();
        const kt = this.keyType;
        const vt = this.valueType;
        for (let i = 0; i < n; i++) {
          this.skipElement(kt);
          this.skipElement(vt);
        }
        this.depth--;
        return;
      }
      default:
        throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `cannot skip type ${type}`, this.pos);
    }
  }

  /** Skips a container element (bools are a byte each, never folded). */
  private skipElement(t: TType): void {
    if (t === TType.BOOL) this.u8();
    else this.skip(t);
  }
}

/** Options of a compact writer. */
export interface CompactWriterOptions {
  /** Initial buffer size in bytes. */
  readonly initialSize?: number;
}

/** Writer of the compact protocol. */
export class CompactWriter extends ProtocolWriter {
  private lastFieldIds: number[] = [];
  private lastFieldId = 0;
  /** Field id of a bool field whose header waits for its value. */
  private pendingBoolField = 0;
  private hasPendingBool = false;

  constructor(options: CompactWriterOptions = {}) {
    super(options.initialSize);
  }

  protected override resetState(): void {
    this.lastFieldIds.length = 0;
    this.lastFieldId = 0;
    this.hasPendingBool = false;
  }

  private varint32(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    v >>>= 0;
    while (v >= 0x80) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  private varint64(hi: number, lo: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    hi >>>= 0;
    lo >>>= 0;
    while (hi !== 0 || lo >= 0x80) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  override writeMessageBegin(name: string, type: MessageType, seqId: number): void {
    this.ensure(2);
    this.buf[this.pos++] = COMPACT_PROTOCOL_ID;
    this.buf[this.pos++] = (type << 5) | COMPACT_VERSION;
    this.varint32(seqId);
    this.writeString(name);
  }

  override writeStructBegin(): void {
    this.lastFieldIds.push(this.lastFieldId);
    this.lastFieldId = 0;
  }

  override writeStructEnd(): void {
    this.lastFieldId = this.lastFieldIds.pop() ?? 0;
  }

  private fieldHeader(nibble: number, id: number): void {
    const delta = id - this.lastFieldId;
    if (delta > 0 && delta <= 15) {
      this.ensure(1);
      this.buf[this.pos++] = (delta << 4) | nibble;
    } else {
      this.ensure(1);
      this.buf[this.pos++] = nibble;
      this.varint32((id << 1) ^ (id >> 31));
    }
    this.lastFieldId = id;
  }

  override writeFieldBegin(type: TType, id: number): void {
    checkInt(id, -32768, 32767, 'field id');
    if (type === TType.BOOL) {
      this.pendingBoolField = id;
      this.hasPendingBool = true;
      return;
    }
    this.fieldHeader(TO_COMPACT[type]!, id);
  }

  override writeFieldStop(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0;
  }

  override writeListBegin(elemType: TType, size: number): void {
    const t = TO_COMPACT[elemType]!;
    this.ensure(1);
    if (size < 15) this.buf[this.pos++] = (size << 4) | t;
    else {
      this.buf[this.pos++] = 0xf0 | t;
      this.varint32(size);
    }
  }

  override writeMapBegin(keyType: TType, valueType: TType, size: number): void {
    if (size === 0) {
      this.ensure(1);
      this.buf[this.pos++] = 0;
      return;
    }
    this.varint32(size);
    this.ensure(1);
    this.buf[this.pos++] = (TO_COMPACT[keyType]! << 4) | TO_COMPACT[valueType]!;
  }

  override writeBool(v: boolean): void {
    if (this.hasPendingBool) {
      this.hasPendingBool = false;
      this.fieldHeader(v ? 1 : 2, this.pendingBoolField);
      return;
    }
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 2;
  }

  override writeByte(v: number): void {
    checkInt(v, -128, 127, 'byte');
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  override writeI16(v: number): void {
    checkInt(v, -32768, 32767, 'i16');
    this.varint32((v << 1) ^ (v >> 31));
  }

  override writeI32(v: number): void {
    checkInt(v, -2147483648, 2147483647, 'i32');
    this.varint32((v << 1) ^ (v >> 31));
  }

  override writeI64(v: bigint | number): void {
    const [hi, lo] = splitI64(v);
    this.writeI64Split(hi, lo);
  }

  override writeI64Split(hi: number, lo: number): void {
    const sign = hi >> 31;
    const zhi = ((hi << 1) | (lo >>> 31)) ^ sign;
    const zlo = (lo << 1) ^ sign;
    this.varint64(zhi, zlo);
  }

  override writeDouble(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  override writeString(v: string): void {
    const max = v.length * 3;
    if (max < 0x80) {
      // The length fits one varint byte whatever the encoding turns out to be.
      this.ensure(1 + max);
      const n = this.encodeUtf8At(v, this.pos + 1);
      this.buf[this.pos] = n;
      this.pos += 1 + n;
      return;
    }
    this.ensure(5 + max);
    const start = this.pos;
    const n = this.encodeUtf8At(v, start + 5);
    this.varint32(n);
    this.buf.copyWithin(this.pos, start + 5, start + 5 + n);
    this.pos += n;
  }

  override writeBinary(v: Uint8Array): void {
    this.varint32(v.byteLength);
    this.writeRaw(v);
  }
}
