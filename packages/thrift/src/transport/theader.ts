/**
 * Apache THeader framing (doc/specs/HeaderFormat.md): length, magic 0x0FFF, flags, seq id,
 * header size in 4-byte words, then a varint header block (protocol id, transforms, info
 * headers: key-value and persistent key-value) and the payload. The zlib transform is applied
 * and undone here; other transforms are refused with a typed error. Not for Kitex TTHeader.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { ThriftTransportError } from '../errors.js';
import { ByteBuilder, HeaderCursor } from '../internal/byte-builder.js';
import { headerCopy } from '../internal/header-slab.js';
import { peekSeqId } from '../protocol/message-header.js';
import type { ProtocolName } from '../types.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_HEADER_COUNT,
  DEFAULT_MAX_HEADER_SIZE,
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  type FrameLimits,
  type FrameSpec,
  protocolFromId,
  protocolId,
  THEADER_MAGIC,
  ViewFrame,
  writeLength,
} from './frame.js';

/** THeader transform ids. Only ZLIB is supported. */
export const THeaderTransform = { ZLIB: 1, HMAC: 2, SNAPPY: 3, QLZ: 4, ZSTD: 5 } as const;
/** THeader info header types. */
export const THeaderInfoType = { KEY_VALUE: 1, PERSISTENT_KEY_VALUE: 2 } as const;

/**
 * Decodes a whole THeader frame (length prefix included) under `limits`, as decodeFrame takes
 * them: `maxFrameSize` also bounds the inflated size of a zlib payload; `maxHeaderSize` and
 * `maxHeaderCount` bound the header block (FrameCodecOptions says how; over them:
 * ERR_THRIFT_HEADER_SIZE). A number is `maxFrameSize` alone (the earlier signature).
 */
export function decodeTHeader(frame: Uint8Array, limits: FrameLimits | number = {}): ViewFrame {
  const l = typeof limits === 'number' ? { maxFrameSize: limits } : limits;
  return decodeTHeaderAt(frame, 0, frame.byteLength, l.maxFrameSize, l.maxHeaderSize, l.maxHeaderCount);
}

/**
 * @internal decodeTHeader of the frame whose byte i is `frame[at + i]`, ending at `end`. Its
 * length prefix (the 4 bytes from `at`) is never read, so `at` may lie up to 4 before the view's
 * start: a frame whose body was received apart from its prefix (FrameReader.feedChunk).
 */
export function decodeTHeaderAt(
  frame: Uint8Array,
  at: number,
  end: number,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
  maxHeaderSize = DEFAULT_MAX_HEADER_SIZE,
  maxHeaderCount = DEFAULT_MAX_HEADER_COUNT,
): ViewFrame {
  const length = end - at;
  if (length < 14) {
    throw new ThriftTransportError('ERR_THRIFT_FRAME_SIZE', `THeader frame of ${length} bytes is too short`);
  }
  const magic = (frame[at + 4]! << 8) | frame[at + 5]!;
  if (magic !== THEADER_MAGIC)
    throw new ThriftTransportError('ERR_THRIFT_BAD_HEADER', `bad THeader magic 0x${magic.toString(16)}`);
  const flags = (frame[at + 6]! << 8) | frame[at + 7]!;
  const seqId = (frame[at + 8]! << 24) | (frame[at + 9]! << 16) | (frame[at + 10]! << 8) | frame[at + 11]!;
  const headerSize = ((frame[at + 12]! << 8) | frame[at + 13]!) * 4;
  const headerEnd = 14 + headerSize;
  if (headerEnd > length) {
    throw new ThriftTransportError(
      'ERR_THRIFT_BAD_HEADER',
      `THeader header size ${headerSize} exceeds the frame`,
    );
  }
  if (headerSize > maxHeaderSize) throw headerSizeError('THeader', headerSize, maxHeaderSize);
  const c = new HeaderCursor(frame, at + 14, at + headerEnd, 'THeader');
  const protocol = protocolFromId(c.varint());
  const nTransforms = c.varint();
  const transforms: number[] = [];
  for (let i = 0; i < nTransforms; i++) {
    const id = c.varint();
    if (id !== THeaderTransform.ZLIB) {
      throw new ThriftTransportError(
        'ERR_THRIFT_UNKNOWN_TRANSFORM',
        `THeader transform ${id} is not supported`,
      );
    }
    transforms.push(id);
  }
  let headers: Map<string, string> | undefined;
  let persistentHeaders: Map<string, string> | undefined;
  // Key-values of every block so far, bounded before a block's entries are read.
  let entries = 0;
  while (c.pos < at + headerEnd) {
    const type = c.varint();
    if (type === THeaderInfoType.KEY_VALUE || type === THeaderInfoType.PERSISTENT_KEY_VALUE) {
      const into =
        type === THeaderInfoType.KEY_VALUE ? (headers ??= new Map()) : (persistentHeaders ??= new Map());
      const count = c.varint();
      entries += count;
      if (entries > maxHeaderCount) throw headerCountError('THeader', entries, maxHeaderCount);
      for (let i = 0; i < count; i++) {
        const key = c.string(c.varint());
        into.set(key, c.string(c.varint()));
      }
    } else {
      // 0 is padding; an unknown info type has no length, so nothing after it can be read
      // (Apache's C++ and Python readers stop there too).
      break;
    }
  }
  // Without transforms the payload is a range of the received bytes, its view made when read
  // (ViewFrame); an inflated one is bytes of its own.
  let bytes = frame;
  let start = at + headerEnd;
  let stop = end;
  let payload: Uint8Array | undefined;
  for (let i = transforms.length - 1; i >= 0; i--) {
    try {
      const out = inflateSync(payload ?? frame.subarray(start, stop), { maxOutputLength: maxFrameSize });
      payload = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (e) {
      throw new ThriftTransportError('ERR_THRIFT_TRANSFORM_FAILED', `zlib: ${(e as Error).message}`);
    }
    bytes = payload;
    start = 0;
    stop = payload.length;
  }
  return new ViewFrame(
    'theader',
    protocol,
    seqId,
    flags,
    headers ?? EMPTY_HEADERS,
    EMPTY_INT_HEADERS,
    persistentHeaders ?? EMPTY_HEADERS,
    undefined,
    transforms,
    bytes,
    start,
    stop,
    length,
    payload,
  );
}

/** ERR_THRIFT_HEADER_SIZE for a header block of `size` bytes over `limit` (THeader, TTHeader). */
export function headerSizeError(what: string, size: number, limit: number): ThriftTransportError {
  return new ThriftTransportError(
    'ERR_THRIFT_HEADER_SIZE',
    `${what} header block of ${size} bytes over the limit ${limit} (max_header_size)`,
  );
}

/** ERR_THRIFT_HEADER_SIZE for a header block of at least `count` entries, over `limit`. */
export function headerCountError(what: string, count: number, limit: number): ThriftTransportError {
  return new ThriftTransportError(
    'ERR_THRIFT_HEADER_SIZE',
    `${what} header block of ${count} or more entries over the limit ${limit} (max_header_count)`,
  );
}

/** Encodes a THeader frame around `payload` as [prefix + header block, payload] for writev. */
export function encodeTHeaderParts(spec: FrameSpec, payload: Uint8Array): Uint8Array[] {
  const b = new ByteBuilder(64);
  b.u32(0); // length, patched below
  b.u16(THEADER_MAGIC);
  b.u16(spec.flags ?? 0);
  b.u32(spec.seqId ?? peekSeqId(spec.protocol, payload));
  b.u16(0); // header words, patched below
  const start = b.pos;
  b.varint(protocolId(spec.protocol));
  const transforms = spec.transforms ?? [];
  b.varint(transforms.length);
  for (const t of transforms) {
    if (t !== THeaderTransform.ZLIB) {
      throw new ThriftTransportError(
        'ERR_THRIFT_UNKNOWN_TRANSFORM',
        `THeader transform ${t} is not supported`,
      );
    }
    b.varint(t);
  }
  writeInfo(b, THeaderInfoType.KEY_VALUE, spec.headers);
  writeInfo(b, THeaderInfoType.PERSISTENT_KEY_VALUE, spec.persistentHeaders);
  b.pad4(start);
  const headerSize = b.pos - start;
  if (headerSize / 4 > 0xffff)
    throw new ThriftTransportError('ERR_THRIFT_BAD_HEADER', 'THeader header block over 256 KiB');
  for (let i = 0; i < transforms.length; i++) {
    const out = deflateSync(payload);
    payload = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  const out = headerCopy(b.finish());
  writeLength(out, 0, out.byteLength - 4 + payload.byteLength);
  out[12] = (headerSize / 4) >>> 8;
  out[13] = headerSize / 4;
  return [out, payload];
}

function writeInfo(b: ByteBuilder, type: number, map: ReadonlyMap<string, string> | undefined): void {
  if (!map || map.size === 0) return;
  b.varint(type);
  b.varint(map.size);
  for (const [k, v] of map) {
    b.varString(k);
    b.varString(v);
  }
}

/** Protocol of a THeader frame without decoding the rest (for routing by protocol). */
export function theaderProtocol(frame: Uint8Array): ProtocolName {
  return protocolFromId(new HeaderCursor(frame, 14, frame.byteLength, 'THeader').varint());
}
