/**
 * Kitex TTHeader framing (cloudwego.io/docs/kitex/reference/transport_protocol_ttheader):
 * length, magic 0x1000, flags, seq id, header size in 4-byte words, then a u8 protocol id, u8
 * transform count and ids, info blocks (0x10 integer key-value, 0x01 string key-value, 0x11
 * ACL token, 0x00 padding) and the payload. Not for Apache THeader (varint header block).
 */
import { ThriftTransportError } from '../errors.js';
import { ByteBuilder, HeaderCursor } from '../internal/byte-builder.js';
import { headerCopy } from '../internal/header-slab.js';
import { peekSeqId } from '../protocol/message-header.js';
import {
  DEFAULT_MAX_HEADER_COUNT,
  DEFAULT_MAX_HEADER_SIZE,
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  type FrameLimits,
  type FrameSpec,
  NO_TRANSFORMS,
  protocolFromId,
  protocolId,
  TTHEADER_MAGIC,
  ViewFrame,
  writeLength,
} from './frame.js';
import { headerCountError, headerSizeError } from './theader.js';

/** TTHeader info block ids. */
export const TTHeaderInfoId = {
  PADDING: 0x00,
  KEY_VALUE: 0x01,
  INT_KEY_VALUE: 0x10,
  ACL_TOKEN: 0x11,
} as const;

/** Well-known TTHeader integer header keys (Kitex's transmeta keys, pkg/transmeta metakey.go). */
export const TTHeaderIntKey = {
  MESH_VERSION: 0,
  TRANSPORT_TYPE: 1,
  LOG_ID: 2,
  FROM_SERVICE: 3,
  FROM_CLUSTER: 4,
  FROM_IDC: 5,
  TO_SERVICE: 6,
  TO_CLUSTER: 7,
  TO_IDC: 8,
  TO_METHOD: 9,
  ENV: 10,
  DEST_ADDRESS: 11,
  RPC_TIMEOUT: 12,
  READ_TIMEOUT: 13,
  RING_HASH_KEY: 14,
  DDP_TAG: 15,
  WITH_MESH_HEADER: 16,
  CONNECT_TIMEOUT: 17,
  SPAN_CONTEXT: 18,
  SHORT_CONNECTION: 19,
  FROM_METHOD: 20,
  STRESS_TAG: 21,
  MSG_TYPE: 22,
  HTTP_CONTENT_TYPE: 23,
  RAW_RING_HASH_KEY: 24,
  LB_TYPE: 25,
} as const;

/**
 * Decodes a whole TTHeader frame (length prefix included) under `limits`, as decodeFrame takes
 * them: `maxHeaderSize` and `maxHeaderCount` bound the header block (FrameCodecOptions says how;
 * over them: ERR_THRIFT_HEADER_SIZE); `maxFrameSize` is the reader's (no transform here).
 */
export function decodeTTHeader(frame: Uint8Array, limits: FrameLimits = {}): ViewFrame {
  return decodeTTHeaderAt(frame, 0, frame.byteLength, limits.maxHeaderSize, limits.maxHeaderCount);
}

/**
 * @internal decodeTTHeader of the frame whose byte i is `frame[at + i]`, ending at `end`. Its
 * length prefix (the 4 bytes from `at`) is never read, so `at` may lie up to 4 before the view's
 * start: a frame whose body was received apart from its prefix (FrameReader.feedChunk).
 */
export function decodeTTHeaderAt(
  frame: Uint8Array,
  at: number,
  end: number,
  maxHeaderSize = DEFAULT_MAX_HEADER_SIZE,
  maxHeaderCount = DEFAULT_MAX_HEADER_COUNT,
): ViewFrame {
  const length = end - at;
  if (length < 16) {
    throw new ThriftTransportError('ERR_THRIFT_FRAME_SIZE', `TTHeader frame of ${length} bytes is too short`);
  }
  const magic = (frame[at + 4]! << 8) | frame[at + 5]!;
  if (magic !== TTHEADER_MAGIC)
    throw new ThriftTransportError('ERR_THRIFT_BAD_HEADER', `bad TTHeader magic 0x${magic.toString(16)}`);
  const flags = (frame[at + 6]! << 8) | frame[at + 7]!;
  const seqId = (frame[at + 8]! << 24) | (frame[at + 9]! << 16) | (frame[at + 10]! << 8) | frame[at + 11]!;
  const headerSize = ((frame[at + 12]! << 8) | frame[at + 13]!) * 4;
  const headerEnd = 14 + headerSize;
  if (headerSize < 4 || headerEnd > length) {
    throw new ThriftTransportError(
      'ERR_THRIFT_BAD_HEADER',
      `TTHeader header size ${headerSize} is invalid for the frame`,
    );
  }
  if (headerSize > maxHeaderSize) throw headerSizeError('TTHeader', headerSize, maxHeaderSize);
  const c = new HeaderCursor(frame, at + 14, at + headerEnd, 'TTHeader');
  const protocol = protocolFromId(c.u8());
  const nTransforms = c.u8();
  if (nTransforms !== 0) {
    throw new ThriftTransportError(
      'ERR_THRIFT_UNKNOWN_TRANSFORM',
      `TTHeader transform ${c.u8()} is not supported`,
    );
  }
  let headers: Map<string, string> | undefined;
  let intHeaders: Map<number, string> | undefined;
  let aclToken: string | undefined;
  // Key-values of every block so far, bounded before a block's entries are read.
  let entries = 0;
  while (c.pos < at + headerEnd) {
    const id = c.u8();
    switch (id) {
      case TTHeaderInfoId.PADDING:
        break;
      case TTHeaderInfoId.KEY_VALUE: {
        const count = c.u16();
        entries += count;
        if (entries > maxHeaderCount) throw headerCountError('TTHeader', entries, maxHeaderCount);
        headers ??= new Map();
        for (let i = 0; i < count; i++) {
          const key = c.string(c.u16());
          headers.set(key, c.string(c.u16()));
        }
        break;
      }
      case TTHeaderInfoId.INT_KEY_VALUE: {
        const count = c.u16();
        entries += count;
        if (entries > maxHeaderCount) throw headerCountError('TTHeader', entries, maxHeaderCount);
        intHeaders ??= new Map();
        for (let i = 0; i < count; i++) {
          const key = c.u16();
          intHeaders.set(key, c.string(c.u16()));
        }
        break;
      }
      case TTHeaderInfoId.ACL_TOKEN:
        aclToken = c.string(c.u16());
        break;
      default:
        throw new ThriftTransportError(
          'ERR_THRIFT_BAD_HEADER',
          `unknown TTHeader info id 0x${id.toString(16)}`,
        );
    }
  }
  // The payload is a range of the received bytes, its view made when read (ViewFrame).
  return new ViewFrame(
    'ttheader',
    protocol,
    seqId,
    flags,
    headers ?? EMPTY_HEADERS,
    intHeaders ?? EMPTY_INT_HEADERS,
    EMPTY_HEADERS,
    aclToken,
    NO_TRANSFORMS,
    frame,
    at + headerEnd,
    end,
    length,
  );
}

/**
 * Encodes a TTHeader frame around `payload` as [prefix + header block, payload] for writev.
 * Blocks are written in Kitex's order: integer headers, string headers, ACL token, padding.
 */
export function encodeTTHeaderParts(spec: FrameSpec, payload: Uint8Array): Uint8Array[] {
  if (spec.transforms && spec.transforms.length > 0) {
    throw new ThriftTransportError('ERR_THRIFT_UNKNOWN_TRANSFORM', 'TTHeader transforms are not supported');
  }
  const b = new ByteBuilder(64);
  b.u32(0);
  b.u16(TTHEADER_MAGIC);
  b.u16(spec.flags ?? 0);
  b.u32(spec.seqId ?? peekSeqId(spec.protocol, payload));
  b.u16(0);
  const start = b.pos;
  b.u8(protocolId(spec.protocol));
  b.u8(0);
  if (spec.intHeaders && spec.intHeaders.size > 0) {
    b.u8(TTHeaderInfoId.INT_KEY_VALUE);
    b.u16(spec.intHeaders.size);
    for (const [k, v] of spec.intHeaders) {
      b.u16(k);
      b.u16String(v);
    }
  }
  if (spec.headers && spec.headers.size > 0) {
    b.u8(TTHeaderInfoId.KEY_VALUE);
    b.u16(spec.headers.size);
    for (const [k, v] of spec.headers) {
      b.u16String(k);
      b.u16String(v);
    }
  }
  if (spec.aclToken !== undefined) {
    b.u8(TTHeaderInfoId.ACL_TOKEN);
    b.u16String(spec.aclToken);
  }
  b.pad4(start);
  const headerSize = b.pos - start;
  if (headerSize / 4 > 0xffff)
    throw new ThriftTransportError('ERR_THRIFT_BAD_HEADER', 'TTHeader header block over 256 KiB');
  const out = headerCopy(b.finish());
  writeLength(out, 0, out.byteLength - 4 + payload.byteLength);
  out[12] = (headerSize / 4) >>> 8;
  out[13] = headerSize / 4;
  return [out, payload];
}
