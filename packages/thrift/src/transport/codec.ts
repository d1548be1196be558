/**
 * One entry point over every framing: find where a frame ends in a byte stream, decode it into
 * a ThriftFrame (payload untouched), encode a payload with any framing, and rewrite seq ids
 * and headers when re-framing (e.g. framed binary in, TTHeader out). Not an I/O loop: the
 * stream side is in rpc/frame-reader.ts.
 */
import { ThriftTransportError } from '../errors.js';
import { headerBytes } from '../internal/header-slab.js';
import { MessageBoundsFinder } from '../protocol/message-bounds.js';
import { peekSeqId, rewriteSeqId, strictBinaryHeaderAt } from '../protocol/message-header.js';
import type { ReaderOptions } from '../protocol/reader.js';
import type { ProtocolName } from '../types.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  type FrameSpec,
  type FramingName,
  frameSize,
  NO_TRANSFORMS,
  type ThriftFrame,
  ViewFrame,
  writeLength,
} from './frame.js';
import { decodeTHeaderAt, encodeTHeaderParts } from './theader.js';
import { decodeTTHeaderAt, encodeTTHeaderParts } from './ttheader.js';

/** Options of frame decoding. */
export interface FrameCodecOptions extends ReaderOptions {
  /** Largest frame accepted, in bytes (default 16 MiB). Also bounds unframed messages. */
  readonly maxFrameSize?: number;
  /**
   * Largest THeader/TTHeader header block accepted, in bytes (default DEFAULT_MAX_HEADER_SIZE,
   * 64 KiB): the info headers between a frame's fixed 14 bytes and its payload, as the frame's
   * header-size field gives it (a multiple of 4, padding included). Over it the frame is refused
   * (ERR_THRIFT_HEADER_SIZE) before any header is decoded.
   */
  readonly maxHeaderSize?: number | undefined;
  /**
   * Most info headers (key-values of every kind) accepted in one THeader/TTHeader frame
   * (default DEFAULT_MAX_HEADER_COUNT, 1,000); over it: ERR_THRIFT_HEADER_SIZE, checked on each
   * block's count before its entries are read.
   */
  readonly maxHeaderCount?: number | undefined;
  /**
   * Protocol of framed/unframed payloads when it cannot be sniffed (old-style binary).
   * Default: sniffed from the first payload byte.
   */
  readonly protocol?: ProtocolName;
}

/**
 * Splits frames out of a byte stream. Reuse one per connection: `find` answers where the frame
 * at `offset` ends (-1: need more bytes) and validates lengths as soon as they are readable.
 */
export class FrameSplitter {
  private readonly bounds: MessageBoundsFinder;
  private readonly maxFrameSize: number;
  private readonly protocol: ProtocolName | undefined;

  constructor(options: FrameCodecOptions = {}) {
    this.bounds = new MessageBoundsFinder(options);
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.protocol = options.protocol;
  }

  /** Offset one past the frame that starts at `bytes[offset]`, or -1 when incomplete. */
  find(framing: FramingName, bytes: Uint8Array, offset: number, end: number): number {
    if (framing !== 'unframed') {
      const size = frameSize(bytes, offset, end, this.maxFrameSize);
      return size < 0 || end - offset < size ? -1 : offset + size;
    }
    if (end <= offset) return -1;
    const protocol = this.protocol ?? sniffOrThrow(bytes[offset]!);
    const stop = this.bounds.find(protocol, bytes, offset, end);
    if (stop < 0 && end - offset > this.maxFrameSize) {
      throw new ThriftTransportError(
        'ERR_THRIFT_FRAME_SIZE',
        `unframed message over the limit ${this.maxFrameSize}`,
      );
    }
    return stop;
  }
}

function sniffOrThrow(b: number): ProtocolName {
  if (b === 0x80) return 'binary';
  if (b === 0x82) return 'compact';
  throw new ThriftTransportError(
    'ERR_THRIFT_UNKNOWN_PROTOCOL',
    `cannot tell the protocol from byte 0x${b.toString(16)}`,
  );
}

/** Decodes one whole frame of `framing` (as delimited by FrameSplitter). */
export function decodeFrame(
  framing: FramingName,
  frame: Uint8Array,
  options: FrameCodecOptions = {},
): ViewFrame {
  switch (framing) {
    case 'theader':
      return decodeTHeaderAt(
        frame,
        0,
        frame.length,
        options.maxFrameSize,
        options.maxHeaderSize,
        options.maxHeaderCount,
      );
    case 'ttheader':
      return decodeTTHeaderAt(frame, 0, frame.length, options.maxHeaderSize, options.maxHeaderCount);
    default:
      // `length`, not byteLength: node 20's TurboFan inlines the one and calls a builtin for the other.
      return decodePayload(framing, frame, framing === 'framed' ? 4 : 0, frame.length, frame.length, options);
  }
}

/**
 * @internal The frame of `framing` (framed, THeader or TTHeader) whose body, every byte after its
 * 4-byte length prefix, is `bytes[start, end)`: for a reader that received the prefix in one
 * chunk and the body in the next (FrameReader.feedChunk), so the body is decoded where it lies.
 */
export function decodeFrameBody(
  framing: FramingName,
  bytes: Uint8Array,
  start: number,
  end: number,
  options: FrameCodecOptions,
): ViewFrame {
  switch (framing) {
    case 'theader':
      // The decoders never read a frame's length prefix: its place may lie before the view.
      return decodeTHeaderAt(
        bytes,
        start - 4,
        end,
        options.maxFrameSize,
        options.maxHeaderSize,
        options.maxHeaderCount,
      );
    case 'ttheader':
      return decodeTTHeaderAt(bytes, start - 4, end, options.maxHeaderSize, options.maxHeaderCount);
    case 'framed':
      return decodePayload('framed', bytes, start, end, end - start + 4, options);
    default:
      throw new TypeError('an unframed message has no length prefix');
  }
}

/**
 * The frame of a framed (or unframed) message whose payload is `bytes[start, end)`, `wireLength`
 * bytes on the wire: a ViewFrame, its payload's view not made here when a strict binary header
 * gives the seq id.
 */
function decodePayload(
  framing: 'framed' | 'unframed',
  bytes: Uint8Array,
  start: number,
  end: number,
  wireLength: number,
  options: FrameCodecOptions,
): ViewFrame {
  if (end === start) throw new ThriftTransportError('ERR_THRIFT_FRAME_SIZE', 'empty frame');
  const protocol = options.protocol ?? sniffOrThrow(bytes[start]!);
  let payload: Uint8Array | undefined;
  let seqId: number;
  if (protocol === 'binary' && strictBinaryHeaderAt(bytes, start, end, peeked) !== 0) seqId = peeked.seqId;
  else {
    payload = bytes.subarray(start, end);
    seqId = peekSeqId(protocol, payload);
  }
  return new ViewFrame(
    framing,
    protocol,
    seqId,
    0,
    EMPTY_HEADERS,
    EMPTY_INT_HEADERS,
    EMPTY_HEADERS,
    undefined,
    NO_TRANSFORMS,
    bytes,
    start,
    end,
    wireLength,
    payload,
  );
}

/** decodePayload's scratch for a strict binary header's type and seq id. */
const peeked = { type: 0, seqId: 0 };

/**
 * Encodes `payload` (a whole message in `spec.protocol`) with `spec`'s framing, as the list of
 * buffers to hand to `writev` (the payload itself is not copied unless transformed).
 */
export function frameParts(spec: FrameSpec, payload: Uint8Array): Uint8Array[] {
  switch (spec.framing) {
    case 'unframed':
      return [payload];
    case 'framed': {
      const prefix = headerBytes(4);
      writeLength(prefix, 0, payload.length);
      return [prefix, payload];
    }
    case 'theader':
      return encodeTHeaderParts(spec, payload);
    case 'ttheader':
      return encodeTTHeaderParts(spec, payload);
  }
}

/** Encodes `payload` with `spec`'s framing into one buffer. */
export function encodeFrame(spec: FrameSpec, payload: Uint8Array): Uint8Array {
  const parts = frameParts(spec, payload);
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Changes to apply when re-framing a frame. */
export interface ReframeOptions {
  /** Target framing (default: the frame's own). */
  readonly framing?: FramingName;
  /** New seq id, written into both the framing header and the message header. */
  readonly seqId?: number;
  /** Replaces the string headers. */
  readonly headers?: ReadonlyMap<string, string>;
  /** Replaces the TTHeader integer headers. */
  readonly intHeaders?: ReadonlyMap<number, string>;
  /** Replaces the THeader transforms. */
  readonly transforms?: readonly number[];
}

/**
 * Re-encodes a decoded frame, optionally with another framing, seq id or headers. The
 * payload's body is never decoded; its seq id is rewritten when `seqId` is given (in place for
 * binary: the frame's payload buffer is modified).
 */
export function reframe(frame: ThriftFrame, options: ReframeOptions = {}): Uint8Array[] {
  const framing = options.framing ?? frame.framing;
  let payload = frame.payload;
  let seqId = frame.seqId;
  if (options.seqId !== undefined) {
    payload = rewriteSeqId(frame.protocol, payload, options.seqId);
    seqId = options.seqId;
  }
  return frameParts(
    {
      framing,
      protocol: frame.protocol,
      seqId,
      flags: frame.flags,
      headers: options.headers ?? frame.headers,
      intHeaders: options.intHeaders ?? frame.intHeaders,
      persistentHeaders: frame.persistentHeaders,
      aclToken: frame.aclToken,
      transforms: framing === 'theader' ? (options.transforms ?? frame.transforms) : [],
    },
    payload,
  );
}

/** Rewrites the seq id of a THeader/TTHeader frame's header in place (bytes 8-11). */
export function setHeaderSeqId(frame: Uint8Array, seqId: number): void {
  writeLength(frame, 8, seqId);
}
