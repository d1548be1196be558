/**
 * Finds where a whole message ends in a byte stream without decoding its body: the message
 * header is stepped over (the name is not decoded) and the one struct that follows is skipped.
 * This is what a proxy needs for unframed transports, where nothing but the bytes themselves
 * says where a message ends. Allocates nothing per field; incomplete input answers -1.
 */
import { ThriftProtocolError } from '../errors.js';
import { type ProtocolName, TType } from '../types.js';
import { BinaryReader } from './binary.js';
import { COMPACT_PROTOCOL_ID, CompactReader } from './compact.js';
import { NEED_MORE, type ReaderOptions } from './reader.js';

/** Names the protocol of a message from its first byte (null when it is neither). */
export function sniffProtocol(firstByte: number): ProtocolName | null {
  if (firstByte === 0x80) return 'binary';
  if (firstByte === COMPACT_PROTOCOL_ID) return 'compact';
  return null;
}

/**
 * Reusable finder of message bounds. Keeps one reader per protocol; call `find` as bytes
 * arrive. After a successful `find`, `seqId` holds the message's sequence id.
 */
export class MessageBoundsFinder {
  /** Sequence id of the last message found. */
  seqId = 0;
  private readonly binary: BinaryReader;
  private readonly compact: CompactReader;

  constructor(options: ReaderOptions = {}) {
    this.binary = new BinaryReader(options);
    this.compact = new CompactReader(options);
    this.binary.scanMode = true;
    this.compact.scanMode = true;
  }

  /**
   * Returns the offset one past the end of the message that starts at `bytes[offset]`, or -1
   * when `bytes[offset, end)` holds only part of it. Throws ThriftProtocolError on bytes that
   * cannot be a message (bad version, bad type, bad varint, negative size, depth bomb).
   */
  find(protocol: ProtocolName, bytes: Uint8Array, offset = 0, end: number = bytes.byteLength): number {
    const r = protocol === 'binary' ? this.binary : this.compact;
    r.reset(bytes, offset, end);
    try {
      this.seqId = r.skipMessageBegin();
      r.skip(TType.STRUCT);
      return r.pos;
    } catch (e) {
      if (e === NEED_MORE) return -1;
      throw e;
    }
  }
}

/**
 * Skips one value of `type` in `bytes[offset, end)` and returns the offset after it. Throws
 * ERR_THRIFT_TRUNCATED when the value does not fit.
 */
export function skipValue(
  protocol: ProtocolName,
  type: TType,
  bytes: Uint8Array,
  offset = 0,
  end: number = bytes.byteLength,
  options: ReaderOptions = {},
): number {
  const custom =
    options.maxDepth !== undefined ||
    options.maxStringLength !== undefined ||
    options.maxContainerSize !== undefined;
  const r = custom
    ? protocol === 'binary'
      ? new BinaryReader(options)
      : new CompactReader(options)
    : protocol === 'binary'
      ? sharedBinary
      : sharedCompact;
  r.reset(bytes, offset, end);
  try {
    r.skip(type);
    return r.pos;
  } finally {
    if (!custom) r.reset(EMPTY);
  }
}

const sharedBinary = new BinaryReader();
const sharedCompact = new CompactReader();
const EMPTY = new Uint8Array(0);

/** Throws unless `protocol` names a protocol this package speaks. */
export function assertProtocol(protocol: string): asserts protocol is ProtocolName {
  if (protocol !== 'binary' && protocol !== 'compact') {
    throw new ThriftProtocolError('ERR_THRIFT_BAD_VERSION', `unknown protocol ${protocol}`);
  }
}
