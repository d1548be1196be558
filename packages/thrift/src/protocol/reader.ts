/**
 * The protocol reader contract and the state every reader shares: a cursor over one byte
 * buffer, nesting depth and size limits, and the results of `read*Begin` calls kept in fields
 * (fieldId, elemType, keyType, valueType) so that decoding allocates nothing per field. Not for
 * framing (transport/) and not an owner of the bytes: a reader only holds a view of them.
 */
import { ThriftProtocolError } from '../errors.js';
import type { MessageHeader, TType } from '../types.js';

/** Limits a reader enforces on untrusted input. */
export interface ReaderOptions {
  /** Deepest nesting of structs and containers (default 64); deeper input is a depth bomb. */
  readonly maxDepth?: number;
  /** Longest string or binary in bytes (default: no limit beyond the bytes present). */
  readonly maxStringLength?: number;
  /** Most elements in one list, set or map (default: no limit beyond the bytes present). */
  readonly maxContainerSize?: number;
  /**
   * Binary protocol only: reject old-style (non-strict, unversioned) message headers.
   * Default false: both styles are read.
   */
  readonly strictRead?: boolean;
}

/** Default nesting limit: deep enough for real schemas, shallow enough to stop depth bombs. */
export const DEFAULT_MAX_DEPTH = 64;

/**
 * Thrown (not an Error, preallocated) when a reader in scan mode runs out of bytes, so that a
 * bounds finder can answer "need more" without building an Error per attempt.
 */
export const NEED_MORE: { readonly needMore: true } = Object.freeze({ needMore: true });

/**
 * A reader of one protocol over `buf[pos, end)`. Reuse one reader for many messages with
 * `reset`. Results of `read*Begin` calls are left in fields: after `readFieldBegin()` returns a
 * type, `fieldId` holds the id; after `readListBegin()`/`readSetBegin()` returns a size,
 * `elemType` holds the element type; after `readMapBegin()`, `keyType` and `valueType`.
 * Strings and binaries are views into the buffer (`readBinary`) or decoded (`readString`).
 */
export abstract class ProtocolReader {
  /** The buffer being read. */
  buf: Uint8Array = new Uint8Array(0);
  /** Next byte to read. */
  pos = 0;
  /** One past the last readable byte. */
  end = 0;
  /** Field id set by the last `readFieldBegin`. */
  fieldId = 0;
  /** Element type set by the last `readListBegin`/`readSetBegin`. */
  elemType: TType = 0 as TType;
  /** Key type set by the last `readMapBegin`. */
  keyType: TType = 0 as TType;
  /** Value type set by the last `readMapBegin`. */
  valueType: TType = 0 as TType;
  /** High 32 bits (signed) of the last `readI64Split`. */
  i64Hi = 0;
  /** Low 32 bits (unsigned) of the last `readI64Split`. */
  i64Lo = 0;
  /** Current nesting depth of structs and containers. */
  depth = 0;
  /** When true, running out of bytes throws NEED_MORE instead of ERR_THRIFT_TRUNCATED. */
  scanMode = false;

  private viewCache: DataView = new DataView(new ArrayBuffer(0));
  private viewFor: Uint8Array | null = null;
  protected readonly maxDepth: number;
  protected readonly maxStringLength: number;
  protected readonly maxContainerSize: number;
  protected readonly strictRead: boolean;

  constructor(options: ReaderOptions = {}) {
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxStringLength = options.maxStringLength ?? 0x7fffffff;
    this.maxContainerSize = options.maxContainerSize ?? 0x7fffffff;
    this.strictRead = options.strictRead ?? false;
  }

  /**
   * Points the reader at `buf[offset, end)` and clears its state. (`end` defaults to `length`,
   * not byteLength: node 20's TurboFan inlines the one and calls a builtin for the other, and a
   * relayed call resets readers several times.)
   */
  reset(buf: Uint8Array, offset = 0, end: number = buf.length): this {
    this.buf = buf;
    this.pos = offset;
    this.end = end;
    this.depth = 0;
    this.resetState();
    return this;
  }

  /** A DataView of the buffer, made on first use per buffer (only doubles and i64 need it). */
  protected get view(): DataView {
    if (this.viewFor !== this.buf) {
      this.viewCache = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      this.viewFor = this.buf;
    }
    return this.viewCache;
  }

  /** Clears protocol-specific state (compact's field id stack). */
  protected resetState(): void {}

  /** Bytes left to read. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Fails unless `n` more bytes are present. */
  protected need(n: number): void {
    if (this.end - this.pos < n) this.truncated(n);
  }

  /** Reports running out of bytes (NEED_MORE in scan mode). */
  protected truncated(n: number): never {
    if (this.scanMode) throw NEED_MORE;
    throw new ThriftProtocolError(
      'ERR_THRIFT_TRUNCATED',
      `need ${n} bytes, ${this.end - this.pos} left`,
      this.pos,
    );
  }

  /** Enters one nesting level (struct or container), enforcing `maxDepth`. */
  protected enter(): void {
    if (++this.depth > this.maxDepth) {
      throw new ThriftProtocolError(
        'ERR_THRIFT_DEPTH_LIMIT',
        `nesting deeper than ${this.maxDepth}`,
        this.pos,
      );
    }
  }

  /** Validates a string/binary length read from the wire. */
  protected checkStringLength(len: number): void {
    if (len < 0)
      throw new ThriftProtocolError('ERR_THRIFT_NEGATIVE_SIZE', `negative length ${len}`, this.pos);
    if (len > this.maxStringLength) {
      throw new ThriftProtocolError(
        'ERR_THRIFT_SIZE_LIMIT',
        `string length ${len} over limit ${this.maxStringLength}`,
        this.pos,
      );
    }
    this.need(len);
  }

  /** Validates a container size read from the wire (each element takes at least `minBytes`). */
  protected checkContainerSize(size: number, minBytes: number): void {
    if (size < 0)
      throw new ThriftProtocolError('ERR_THRIFT_NEGATIVE_SIZE', `negative size ${size}`, this.pos);
    if (size > this.maxContainerSize) {
      throw new ThriftProtocolError(
        'ERR_THRIFT_SIZE_LIMIT',
        `container size ${size} over limit ${this.maxContainerSize}`,
        this.pos,
      );
    }
    if (minBytes > 0 && size * minBytes > this.end - this.pos) {
      // In scan mode more bytes may still arrive; otherwise the size cannot be honest.
      if (this.scanMode) throw NEED_MORE;
      throw new ThriftProtocolError(
        'ERR_THRIFT_SIZE_LIMIT',
        `container size ${size} exceeds the ${this.end - this.pos} bytes left`,
        this.pos,
      );
    }
  }

  /** Reads a message header (name, type, seq id). */
  abstract readMessageBegin(): MessageHeader;
  /**
   * Steps over a message header without decoding the name; returns the seq id and leaves the
   * message type in `messageType`.
   */
  abstract skipMessageBegin(): number;
  /** The message type of the header skipMessageBegin() stepped over last. */
  messageType = 0;
  /** Ends a message (no bytes on the wire). */
  readMessageEnd(): void {}
  /** Begins a struct (enforces the depth limit). */
  readStructBegin(): void {
    this.enter();
  }
  /** Ends a struct. */
  readStructEnd(): void {
    this.depth--;
  }
  /** Reads a field header; returns its type (TType.STOP at the end) and sets `fieldId`. */
  abstract readFieldBegin(): TType;
  /** Ends a field (no bytes on the wire). */
  readFieldEnd(): void {}
  /** Begins a list; returns its size and sets `elemType`. */
  abstract readListBegin(): number;
  /** Ends a list. */
  readListEnd(): void {
    this.depth--;
  }
  /** Begins a set; returns its size and sets `elemType`. */
  readSetBegin(): number {
    return this.readListBegin();
  }
  /** Ends a set. */
  readSetEnd(): void {
    this.depth--;
  }
  /** Begins a map; returns its size and sets `keyType` and `valueType`. */
  abstract readMapBegin(): number;
  /** Ends a map. */
  readMapEnd(): void {
    this.depth--;
  }
  /** Reads a bool. */
  abstract readBool(): boolean;
  /** Reads a signed byte. */
  abstract readByte(): number;
  /** Reads an i16. */
  abstract readI16(): number;
  /** Reads an i32. */
  abstract readI32(): number;
  /** Reads an i64 as a bigint. */
  abstract readI64(): bigint;
  /**
   * Reads an i64 without a bigint: leaves the signed high half in `i64Hi` and the unsigned low
   * half in `i64Lo` (the fast path for code that only inspects or forwards it).
   */
  abstract readI64Split(): void;
  /** Reads a double. */
  abstract readDouble(): number;
  /** Reads a binary as a view into the buffer (valid as long as the buffer is). */
  abstract readBinary(): Uint8Array;
  /** Reads a UTF-8 string. */
  readString(): string {
    const bytes = this.readBinary();
    return decodeUtf8(bytes);
  }
  /** Reads a uuid (16 bytes) as its canonical lower-case string form. */
  readUuid(): string {
    this.need(16);
    const s = formatUuid(this.buf, this.pos);
    this.pos += 16;
    return s;
  }
  /** Steps over one value of type `type` without building it. */
  abstract skip(type: TType): void;
}

// ignoreBOM: a string's leading U+FEFF is part of its value (the default decoder drops it).
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Decodes UTF-8, with an allocation-light path for short ASCII strings. */
export function decodeUtf8(bytes: Uint8Array): string {
  return decodeUtf8At(bytes, 0, bytes.byteLength);
}

/**
 * Decodes the `n` UTF-8 bytes of `buf` at `start`. A short ASCII string is read where it lies;
 * only TextDecoder gets a view (readers' `readString` calls this instead of decoding
 * `readBinary()`'s view, which cost a Uint8Array per string).
 */
export function decodeUtf8At(buf: Uint8Array, start: number, n: number): string {
  if (n <= 24) {
    const end = start + n;
    let i = start;
    while (i < end && buf[i]! < 0x80) i++;
    if (i === end) {
      let s = '';
      for (let j = start; j < end; j++) s += String.fromCharCode(buf[j]!);
      return s;
    }
  }
  return utf8Decoder.decode(buf.subarray(start, start + n));
}

/**
 * Message names seen lately, by a hash of their bytes: a server or proxy reads the same few
 * method names in every call, and a short ASCII name decoded afresh is one string allocation per
 * character (the `+=` above): 5 for "bench", ~100 B per call (bench/thrift/per-call.ts). A hit is
 * compared byte by byte, so a collision only costs a decode. Per thread (module state).
 */
const nameCache: string[] = Array.from({ length: 64 }, () => '');

/** decodeUtf8At for a message name: a short ASCII name seen lately is returned without a decode. */
export function decodeNameAt(buf: Uint8Array, start: number, n: number): string {
  if (n === 0 || n > 24) return decodeUtf8At(buf, start, n);
  let h = n;
  for (let i = start, end = start + n; i < end; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  const slot = h & 63;
  const cached = nameCache[slot]!;
  if (cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return cached;
  }
  const name = decodeUtf8At(buf, start, n);
  // Only a name that is one UTF-16 unit per byte (ASCII) can be compared with its bytes above.
  if (name.length === n) nameCache[slot] = name;
  return name;
}

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Formats 16 bytes at `offset` as a canonical uuid string. */
export function formatUuid(b: Uint8Array, o: number): string {
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += hex[b[o + i]!];
  }
  return s;
}
