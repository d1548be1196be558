/**
 * Typed errors of @loch/thrift. Every failure to read or frame bytes is a ThriftProtocolError
 * or ThriftTransportError with a stable `code` and the byte offset where the input went wrong,
 * so a server can close the one bad connection and a log line says what was wrong. Not for
 * I/O failures (those are the runtime's RuntimeError) nor for application exceptions that a
 * service returns to its caller (TApplicationException in application-exception.ts).
 */

/** Codes of errors found while reading or writing protocol bytes (binary, compact). */
export type ThriftProtocolErrorCode =
  /** The buffer ended inside a value: the message is incomplete. */
  | 'ERR_THRIFT_TRUNCATED'
  /** A varint was longer than its type allows (over 5 bytes for 32 bits, 10 for 64). */
  | 'ERR_THRIFT_BAD_VARINT'
  /** Structs, lists, sets or maps nest deeper than the reader's `maxDepth`. */
  | 'ERR_THRIFT_DEPTH_LIMIT'
  /** A string, binary or container length was negative. */
  | 'ERR_THRIFT_NEGATIVE_SIZE'
  /** A string, binary or container length exceeds the configured limit or the bytes left. */
  | 'ERR_THRIFT_SIZE_LIMIT'
  /** The message header has a bad version or protocol id. */
  | 'ERR_THRIFT_BAD_VERSION'
  /** A field or element type id is not a Thrift type. */
  | 'ERR_THRIFT_BAD_TYPE'
  /** A value is not representable (e.g. an i16 out of range or a malformed uuid string). */
  | 'ERR_THRIFT_INVALID_DATA';

/** Codes of errors found while framing messages (framed, THeader, TTHeader, detection). */
export type ThriftTransportErrorCode =
  /** A frame length is negative, zero, too small for its header or over `maxFrameSize`. */
  | 'ERR_THRIFT_FRAME_SIZE'
  /** A protocol id (THeader/TTHeader) is not binary or compact. */
  | 'ERR_THRIFT_UNKNOWN_PROTOCOL'
  /** The first bytes match no known framing (framed, unframed, THeader, TTHeader). */
  | 'ERR_THRIFT_UNKNOWN_FRAMING'
  /** A THeader/TTHeader header block is malformed (sizes, info ids, strings). */
  | 'ERR_THRIFT_BAD_HEADER'
  /** A THeader/TTHeader header block is over `maxHeaderSize` bytes or `maxHeaderCount` entries. */
  | 'ERR_THRIFT_HEADER_SIZE'
  /** A THeader transform id is not supported (only zlib is). */
  | 'ERR_THRIFT_UNKNOWN_TRANSFORM'
  /** A transform failed (corrupt zlib data, or inflating past `maxFrameSize`). */
  | 'ERR_THRIFT_TRANSFORM_FAILED'
  /** The framing was recognised but is not among the ones accepted (`framings` option). */
  | 'ERR_THRIFT_FRAMING_REFUSED';

/** Codes of errors of the client and server loops. */
export type ThriftRpcErrorCode =
  /** A call, read or idle period outlived its timeout. */
  | 'ERR_THRIFT_TIMEOUT'
  /** The connection closed (or was closed) before the reply arrived. */
  | 'ERR_THRIFT_CLOSED'
  /** A reply did not match its call (unknown seq id, other method name, not a reply). */
  | 'ERR_THRIFT_BAD_REPLY';

/** Base class: every error thrown by this package carries a stable `code`. */
export abstract class ThriftError extends Error {
  /** Stable machine-readable code, e.g. 'ERR_THRIFT_TRUNCATED'. */
  abstract readonly code: string;
}

/** Bad or incomplete protocol bytes. `offset` is where the reader stood. */
export class ThriftProtocolError extends ThriftError {
  override readonly name = 'ThriftProtocolError';
  readonly code: ThriftProtocolErrorCode;
  /** Byte offset in the buffer being read (or -1 when writing). */
  readonly offset: number;
  constructor(code: ThriftProtocolErrorCode, message: string, offset = -1) {
    super(offset >= 0 ? `${message} (at byte ${offset})` : message);
    this.code = code;
    this.offset = offset;
  }
}

/** Bad framing: frame sizes, header blocks, protocol ids, transforms. */
export class ThriftTransportError extends ThriftError {
  override readonly name = 'ThriftTransportError';
  readonly code: ThriftTransportErrorCode;
  constructor(code: ThriftTransportErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A client or server loop failure: timeout, closed connection, mismatched reply. */
export class ThriftRpcError extends ThriftError {
  override readonly name = 'ThriftRpcError';
  readonly code: ThriftRpcErrorCode;
  constructor(code: ThriftRpcErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
