/**
 * Thrift binary protocol (TBinaryProtocol): big-endian fixed-width integers, i32 length
 * prefixes, strict (versioned, 0x8001) and old-style (name first) message headers. Readers
 * accept both header styles unless `strictRead`; writers write strict headers unless told
 * otherwise. Not for framing: see transport/.
 */
import { ThriftProtocolError } from '../errors.js';
import { isValueType, type MessageHeader, type MessageType, TType } from '../types.js';
import { decodeNameAt, decodeUtf8At, ProtocolReader, type ReaderOptions } from './reader.js';
import { checkInt, ProtocolWriter, splitI64 } from './writer.js';

/** Version word of strict binary message headers (0x8001 in the high half). */
export const BINARY_VERSION_1 = 0x80010000 | 0;
const VERSION_MASK = 0xffff0000 | 0;

/** Byte width of fixed-size binary values by type id (0 = variable). */
const FIXED_WIDTH: Int8Array = (() => {
  const w = new Int8Array(17);
  w[TType.BOOL] = 1;
  w[TType.BYTE] = 1;
  w[TType.DOUBLE] = 8;
  w[TType.I16] = 2;
  w[TType.I32] = 4;
  w[TType.I64] = 8;
  w[TType.UUID] = 16;
  return w;
})();

/** Reader of the binary protocol. */
export class BinaryReader extends ProtocolReader {
  constructor(options: ReaderOptions = {}) {
    super(options);
  }

  private u8(): number {
    if (this.pos >= this.end) this.truncated(1);
    return this.buf[this.pos++]!;
  }

  private i32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  private msgType(t: number): MessageType {
    if (t < 1 || t > 4)
      throw new ThriftProtocolError('ERR_THRIFT_BAD_VERSION', `bad message type ${t}`, this.pos);
    return t as MessageType;
  }

  override readMessageBegin(): MessageHeader {
    const start = this.pos;
    const word = this.i32();
    if (word < 0) {
      if ((word & VERSION_MASK) !== BINARY_VERSION_1) {
        throw new ThriftProtocolError(
          'ERR_THRIFT_BAD_VERSION',
          `bad binary version 0x${(word >>> 0).toString(16)}`,
          start,
        );
      }
      const type = this.msgType(word & 0xff);
      const name = this.readName();
      const seqId = this.i32();
      return { name, type, seqId };
    }
    if (this.strictRead) {
      throw new ThriftProtocolError(
        'ERR_THRIFT_BAD_VERSION',
        'old-style message header while strictRead',
        start,
      );
    }
    this.pos = start;
    const name = this.readName();
    const type = this.msgType(this.u8());
    const seqId = this.i32();
    return { name, type, seqId };
  }

  override skipMessageBegin(): number {
    const start = this.pos;
    const word = this.i32();
    if (word < 0) {
      if ((word & VERSION_MASK) !== BINARY_VERSION_1) {
        throw new ThriftProtocolError(
          'ERR_THRIFT_BAD_VERSION',
          `bad binary version 0x${(word >>> 0).toString(16)}`,
          start,
        );
      }
      this.messageType = this.msgType(word & 0xff);
      const len = this.i32();
      this.checkStringLength(len);
      this.pos += len;
      return this.i32();
    }
    if (this.strictRead) {
      throw new ThriftProtocolError(
        'ERR_THRIFT_BAD_VERSION',
        'old-style message header while strictRead',
        start,
      );
    }
    this.checkStringLength(word);
    this.pos += word;
    this.messageType = this.msgType(this.u8());
    return this.i32();
  }

  override readFieldBegin(): TType {
    const t = this.u8();
    if (t === TType.STOP) return TType.STOP;
    if (!isValueType(t))
      throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `bad field type ${t}`, this.pos - 1);
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.fieldId = ((b[p]! << 24) | (b[p + 1]! << 16)) >> 16;
    this.pos = p + 2;
    return t;
  }

  private elemTypeAt(t: number): TType {
    if (!isValueType(t))
      throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `bad element type ${t}`, this.pos - 1);
    return t;
  }

  override readListBegin(): number {
    this.enter();
    this.elemType = this.elemTypeAt(this.u8());
    const size = this.i32();
    this.checkContainerSize(size, FIXED_WIDTH[this.elemType] || 1);
    return size;
  }

  override readMapBegin(): number {
    this.enter();
    this.keyType = this.elemTypeAt(this.u8());
    this.valueType = this.elemTypeAt(this.u8());
    const size = this.i32();
    this.checkContainerSize(size, (FIXED_WIDTH[this.keyType] || 1) + (FIXED_WIDTH[this.valueType] || 1));
    return size;
  }

  override readBool(): boolean {
    return this.u8() !== 0;
  }

  override readByte(): number {
    return (this.u8() << 24) >> 24;
  }

  override readI16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return ((b[p]! << 24) | (b[p + 1]! << 16)) >> 16;
  }

  override readI32(): number {
    return this.i32();
  }

  override readI64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  override readI64Split(): void {
    this.i64Hi = this.i32();
    this.i64Lo = this.i32() >>> 0;
  }

  override readDouble(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  override readBinary(): Uint8Array {
    const len = this.i32();
    this.checkStringLength(len);
    const p = this.pos;
    this.pos = p + len;
    return this.buf.subarray(p, p + len);
  }

  override readString(): string {
    const len = this.i32();
    this.checkStringLength(len);
    const p = this.pos;
    this.pos = p + len;
    return decodeUtf8At(this.buf, p, len);
  }

  /** A message name: readString, with names seen lately taken from a cache (decodeNameAt). */
  private readName(): string {
    const len = this.i32();
    this.checkStringLength(len);
    const p = this.pos;
    this.pos = p + len;
    return decodeNameAt(this.buf, p, len);
  }

  override skip(type: TType): void {
    const w = FIXED_WIDTH[type];
    if (w) {
      this.need(w);
      this.pos += w;
      return;
    }
    switch (type) {
      case TType.STRING: {
        const len = this.i32();
        this.checkStringLength(len);
        this.pos += len;
        return;
      }
      case TType.STRUCT: {
        this.enter();
        for (;;) {
          const t = this.u8();
          if (t === TType.STOP) break;
          if (!isValueType(t))
            throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `bad field type ${t}`, this.pos - 1);
          this.need(2);
          this.pos += 2;
          this.skip(t);
        }
        this.depth--;
        return;
      }
      case TType.LIST:
      case TType.SET: {
        const n = this.readListBegin();
        const et = this.elemType;
        const ew = FIXED_WIDTH[et];
        if (ew) {
          this.need(n * ew);
          this.pos += n * ew;
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
        const kw = FIXED_WIDTH[kt];
        const vw = FIXED_WIDTH[vt];
        if (kw && vw) {
          this.need(n * (kw + vw));
          this.pos += n * (kw + vw);
        } else {
          for (let i = 0; i < n; i++) {
            this.skip(kt);
            this.skip(vt);
          }
        }
        this.depth--;
        return;
      }
      default:
        throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `cannot skip type ${type}`, this.pos);
    }
  }
}

/** Options of a binary writer. */
export interface BinaryWriterOptions {
  /** Write strict (versioned) message headers (default true); false writes old-style ones. */
  readonly strictWrite?: boolean;
  /** Initial buffer size in bytes. */
  readonly initialSize?: number;
}

/** Writer of the binary protocol. */
export class BinaryWriter extends ProtocolWriter {
  private readonly strictWrite: boolean;

  constructor(options: BinaryWriterOptions = {}) {
    super(options.initialSize);
    this.strictWrite = options.strictWrite ?? true;
  }

  private i32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  override writeMessageBegin(name: string, type: MessageType, seqId: number): void {
    if (this.strictWrite) {
      this.i32(BINARY_VERSION_1 | type);
      this.writeString(name);
      this.i32(seqId);
    } else {
      this.writeString(name);
      this.ensure(1);
      this.buf[this.pos++] = type;
      this.i32(seqId);
    }
  }

  override writeFieldBegin(type: TType, id: number): void {
    this.ensure(3);
    const b = this.buf;
    const p = this.pos;
    b[p] = type;
    b[p + 1] = id >>> 8;
    b[p + 2] = id;
    this.pos = p + 3;
  }

  override writeFieldStop(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0;
  }

  override writeListBegin(elemType: TType, size: number): void {
    this.ensure(1);
    this.buf[this.pos++] = elemType;
    this.i32(size);
  }

  override writeMapBegin(keyType: TType, valueType: TType, size: number): void {
    this.ensure(2);
    this.buf[this.pos++] = keyType;
    this.buf[this.pos++] = valueType;
    this.i32(size);
  }

  override writeBool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  override writeByte(v: number): void {
    checkInt(v, -128, 127, 'byte');
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  override writeI16(v: number): void {
    checkInt(v, -32768, 32767, 'i16');
    this.ensure(2);
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v;
  }

  override writeI32(v: number): void {
    checkInt(v, -2147483648, 2147483647, 'i32');
    this.i32(v);
  }

  override writeI64(v: bigint | number): void {
    if (typeof v === 'bigint' && BigInt.asIntN(64, v) === v) {
      this.ensure(8);
      this.view.setBigInt64(this.pos, v);
      this.pos += 8;
      return;
    }
    const [hi, lo] = splitI64(v);
    this.writeI64Split(hi, lo);
  }

  override writeI64Split(hi: number, lo: number): void {
    this.i32(hi);
    this.i32(lo);
  }

  override writeDouble(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  override writeString(v: string): void {
    this.ensure(4 + v.length * 3);
    const n = this.encodeUtf8At(v, this.pos + 4);
    this.i32(n);
    this.pos += n;
  }

  override writeBinary(v: Uint8Array): void {
    this.i32(v.byteLength);
    this.writeRaw(v);
  }
}
