/**
 * The framings Thrift runs over and the shape of a decoded frame. A frame is one message with
 * whatever framing wraps it: nothing (unframed), a length (framed), or a length plus a header
 * block (Apache THeader, Kitex TTHeader). Detection reads the first bytes of a connection.
 * Not for protocol bytes: a frame's payload is handed to a protocol reader.
 */
import { ThriftTransportError } from '../errors.js';
import { COMPACT_PROTOCOL_ID } from '../protocol/compact.js';
import type { ProtocolName } from '../types.js';

/** How messages are delimited on a connection. */
export type FramingName = 'unframed' | 'framed' | 'theader' | 'ttheader';

/** Magic of Apache THeader (bytes 4-5 of a frame). */
export const THEADER_MAGIC = 0x0fff;
/** Magic of Kitex TTHeader (bytes 4-5 of a frame). */
export const TTHEADER_MAGIC = 0x1000;
/** Default largest frame accepted: 16 MiB (Apache's default is ~16 MB too). */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/**
 * Default largest THeader/TTHeader header block accepted (the info headers between a frame's
 * fixed 14 bytes and its payload, as its header-size field gives it): 64 KiB, as generous as
 * Envoy's 60 KiB request-header limit and nginx's 4 x 8 KiB large_client_header_buffers. Real
 * peers send tens to hundreds of bytes (Kitex's transmeta keys, a caller tag, a log id).
 */
export const DEFAULT_MAX_HEADER_SIZE = 64 * 1024;
/**
 * Default largest count of info headers (string, persistent and integer key-values together) in
 * one THeader/TTHeader frame: 1,000. An explicit bound, not only what the byte bound implies:
 * 64 KiB hold up to 16,383 TTHeader entries (4 bytes each, empty values) or 32,767 THeader ones
 * (2 bytes), each a string pair decoded into a Map: 8.8-10.3 ms of CPU a frame for ~80 KB sent,
 * against 0.34-0.45 ms for 1,000 (decodeFrame in a loop, unheld; .changeset/thrift-max-header-size.md).
 * Envoy's max_headers_count is 100; Kitex's own transmeta keys are about 25.
 */
export const DEFAULT_MAX_HEADER_COUNT = 1000;

/** The limits of decoding one frame (FrameCodecOptions has them too); absent: the defaults. */
export interface FrameLimits {
  /** Largest frame (and inflated zlib payload), bytes: DEFAULT_MAX_FRAME_SIZE. */
  readonly maxFrameSize?: number | undefined;
  /** Largest THeader/TTHeader header block, bytes: DEFAULT_MAX_HEADER_SIZE. */
  readonly maxHeaderSize?: number | undefined;
  /** Most info headers in one THeader/TTHeader frame: DEFAULT_MAX_HEADER_COUNT. */
  readonly maxHeaderCount?: number | undefined;
}

/**
 * A decoded frame: the message bytes and what the framing said about them. The frames this
 * package decodes (decodeFrame, FrameReader) are ViewFrames, whose `payload` is an accessor:
 * copy one with `{ ...frame, payload: frame.payload }`, not `{ ...frame }` alone.
 */
export interface ThriftFrame {
  /** Framing the message came in. */
  readonly framing: FramingName;
  /** Protocol of the payload. */
  readonly protocol: ProtocolName;
  /** Seq id from the framing header (THeader/TTHeader), else from the message header. */
  readonly seqId: number;
  /** Flags of a THeader/TTHeader frame (0 otherwise). */
  readonly flags: number;
  /** String info headers (THeader key-value, TTHeader string key-value). */
  readonly headers: ReadonlyMap<string, string>;
  /** TTHeader integer-keyed info headers. */
  readonly intHeaders: ReadonlyMap<number, string>;
  /** THeader persistent key-value headers. */
  readonly persistentHeaders: ReadonlyMap<string, string>;
  /** TTHeader ACL token, when one was sent. */
  readonly aclToken: string | undefined;
  /** Transform ids applied to the payload on the wire (already undone here). */
  readonly transforms: readonly number[];
  /** The message: header and body in `protocol`'s encoding. */
  readonly payload: Uint8Array;
  /** Bytes the frame took on the wire, framing included. */
  readonly wireLength: number;
}

/** The shared empty string-header map of frames without headers (never mutated). */
export const EMPTY_HEADERS: ReadonlyMap<string, string> = new Map();
/** The shared empty integer-header map of frames without TTHeader integer headers. */
export const EMPTY_INT_HEADERS: ReadonlyMap<number, string> = new Map();
/** @internal The shared (frozen) empty transform list of frames without transforms: none made per frame. */
export const NO_TRANSFORMS: readonly number[] = Object.freeze([]);

/**
 * A decoded frame whose payload lies where it was received: `bytes[payloadStart, payloadEnd)`.
 * Every frame decodeFrame() and FrameReader return is one. Its `payload` view of those bytes is
 * made on the first read of `payload` (and the same view returned after), so a relay that peeks
 * the message header by offset (`bytes`, `payloadStart`) and forwards the frame as it came
 * makes no typed array for it: a view is ~390 instructions with its allocation, two per relayed
 * call (bench/thrift/readings-2026-12-07e.md). `payload` being an accessor of the class, not an
 * own property, `{ ...frame }` copies no payload (name it: `{ ...frame, payload: frame.payload }`)
 * and toEqual against a plain object sees none. `bytes` may be a whole receive buffer: read no
 * byte of it outside the payload's range.
 */
export class ViewFrame implements ThriftFrame {
  #payload: Uint8Array | undefined;

  constructor(
    readonly framing: FramingName,
    readonly protocol: ProtocolName,
    readonly seqId: number,
    readonly flags: number,
    readonly headers: ReadonlyMap<string, string>,
    readonly intHeaders: ReadonlyMap<number, string>,
    readonly persistentHeaders: ReadonlyMap<string, string>,
    readonly aclToken: string | undefined,
    readonly transforms: readonly number[],
    /** The bytes the payload is a range of (the payload's own when it was made apart: inflated). */
    readonly bytes: Uint8Array,
    /** Where the payload starts in `bytes`. */
    readonly payloadStart: number,
    /** One past the payload's last byte in `bytes`. */
    readonly payloadEnd: number,
    readonly wireLength: number,
    /** The payload's view when the decoder already made it (else made on first read). */
    payload?: Uint8Array,
  ) {
    this.#payload = payload;
  }

  /** The message: header and body in `protocol`'s encoding (a view of `bytes`, made once). */
  get payload(): Uint8Array {
    return (this.#payload ??= this.bytes.subarray(this.payloadStart, this.payloadEnd));
  }

  /** The payload's length in bytes, without making its view. */
  get payloadLength(): number {
    return this.payloadEnd - this.payloadStart;
  }
}

/** What to frame a message with: a ThriftFrame is one, so a frame can be re-framed. */
export interface FrameSpec {
  readonly framing: FramingName;
  readonly protocol: ProtocolName;
  readonly seqId?: number;
  readonly flags?: number;
  readonly headers?: ReadonlyMap<string, string>;
  readonly intHeaders?: ReadonlyMap<number, string>;
  readonly persistentHeaders?: ReadonlyMap<string, string>;
  readonly aclToken?: string | undefined;
  readonly transforms?: readonly number[];
}

/** Result of framing detection. */
export interface DetectedFraming {
  readonly framing: FramingName;
  /** Protocol when the framing itself tells (unframed, framed); THeader/TTHeader carry it. */
  readonly protocol: ProtocolName | null;
}

/**
 * Detects the framing of the message at `bytes[offset]` from its first bytes. Returns null
 * when more bytes are needed (at most 6), throws ERR_THRIFT_UNKNOWN_FRAMING on anything else.
 * Old-style (unversioned) binary cannot be told from garbage and must be configured.
 */
export function detectFraming(
  bytes: Uint8Array,
  offset = 0,
  end: number = bytes.length,
): DetectedFraming | null {
  const n = end - offset;
  if (n < 1) return null;
  const b0 = bytes[offset]!;
  if (b0 === 0x80) {
    if (n < 2) return null;
    if (bytes[offset + 1] === 0x01) return { framing: 'unframed', protocol: 'binary' };
  } else if (b0 === COMPACT_PROTOCOL_ID) {
    return { framing: 'unframed', protocol: 'compact' };
  } else {
    if (n < 6) return null;
    const b4 = bytes[offset + 4]!;
    const b5 = bytes[offset + 5]!;
    const magic = (b4 << 8) | b5;
    if (magic === THEADER_MAGIC) return { framing: 'theader', protocol: null };
    if (magic === TTHEADER_MAGIC) return { framing: 'ttheader', protocol: null };
    if (b4 === 0x80 && b5 === 0x01) return { framing: 'framed', protocol: 'binary' };
    if (b4 === COMPACT_PROTOCOL_ID) return { framing: 'framed', protocol: 'compact' };
  }
  const shown = Array.from(bytes.subarray(offset, Math.min(end, offset + 8)), (b) =>
    b.toString(16).padStart(2, '0'),
  );
  throw new ThriftTransportError(
    'ERR_THRIFT_UNKNOWN_FRAMING',
    `unknown framing, first bytes ${shown.join(' ')}`,
  );
}

/**
 * Reads the length prefix of a length-framed message (framed, THeader, TTHeader) and returns
 * the whole frame's size in bytes, prefix included; -1 when fewer than 4 bytes are present.
 * Negative, zero and oversized lengths are ERR_THRIFT_FRAME_SIZE.
 */
export function frameSize(bytes: Uint8Array, offset: number, end: number, maxFrameSize: number): number {
  if (end - offset < 4) return -1;
  const len =
    (bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
  if (len <= 0)
    throw new ThriftTransportError('ERR_THRIFT_FRAME_SIZE', `frame length ${len} is not positive`);
  if (len > maxFrameSize) {
    throw new ThriftTransportError(
      'ERR_THRIFT_FRAME_SIZE',
      `frame length ${len} over the limit ${maxFrameSize}`,
    );
  }
  return len + 4;
}

/** Protocol named by a THeader/TTHeader protocol id. */
export function protocolFromId(id: number): ProtocolName {
  if (id === 0) return 'binary';
  if (id === 2) return 'compact';
  throw new ThriftTransportError('ERR_THRIFT_UNKNOWN_PROTOCOL', `unknown protocol id ${id}`);
}

/** THeader/TTHeader protocol id of a protocol. */
export function protocolId(protocol: ProtocolName): number {
  return protocol === 'binary' ? 0 : 2;
}

/** Writes a big-endian u32 length prefix. */
export function writeLength(out: Uint8Array, offset: number, len: number): void {
  out[offset] = len >>> 24;
  out[offset + 1] = len >>> 16;
  out[offset + 2] = len >>> 8;
  out[offset + 3] = len;
}
