/**
 * Typed errors of the HTTP/2 wire codec (RFC 9113 §5.4, §7). A {@link Http2ConnectionError} ends
 * the whole connection (the session answers it with GOAWAY carrying `errorCode`); a
 * {@link Http2StreamError} ends one stream (RST_STREAM with `errorCode`) and the connection goes
 * on. Both carry a stable `code` (`ERR_HTTP2_*`) to branch on and a message that names the rule
 * the peer broke. Not for I/O failures: those stay the runtime's errors.
 */

/** RFC 9113 §7 error codes, as sent in RST_STREAM and GOAWAY frames. */
export const Http2ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** One of the {@link Http2ErrorCode} values (a peer may also send codes unknown to us). */
export type Http2ErrorCode = (typeof Http2ErrorCode)[keyof typeof Http2ErrorCode];

/** The RFC name of an error code, e.g. `PROTOCOL_ERROR`, or `UNKNOWN_0x1f` for an unknown one. */
export function http2ErrorCodeName(errorCode: number): string {
  for (const name in Http2ErrorCode) {
    if (Http2ErrorCode[name as keyof typeof Http2ErrorCode] === errorCode) return name;
  }
  return `UNKNOWN_0x${errorCode.toString(16)}`;
}

/** Stable codes of connection errors the codec raises. */
export type Http2ConnectionErrorReason =
  | 'ERR_HTTP2_BAD_PREFACE'
  | 'ERR_HTTP2_FIRST_FRAME_NOT_SETTINGS'
  | 'ERR_HTTP2_FRAME_TOO_LARGE'
  | 'ERR_HTTP2_FRAME_SIZE'
  | 'ERR_HTTP2_STREAM_ID'
  | 'ERR_HTTP2_PADDING'
  | 'ERR_HTTP2_SETTINGS_VALUE'
  | 'ERR_HTTP2_FLOW_CONTROL_SETTING'
  | 'ERR_HTTP2_PUSH_PROMISE_REJECTED'
  | 'ERR_HTTP2_WINDOW_UPDATE_ZERO'
  | 'ERR_HTTP2_CONTINUATION_EXPECTED'
  | 'ERR_HTTP2_UNEXPECTED_CONTINUATION'
  | 'ERR_HTTP2_HEADER_BLOCK_TOO_LARGE'
  | 'ERR_HTTP2_HPACK_INTEGER'
  | 'ERR_HTTP2_HPACK_TRUNCATED'
  | 'ERR_HTTP2_HPACK_INDEX'
  | 'ERR_HTTP2_HPACK_TABLE_SIZE'
  | 'ERR_HTTP2_HPACK_HUFFMAN'
  | 'ERR_HTTP2_FLOW_CONTROL'
  | 'ERR_HTTP2_FLOOD'
  | 'ERR_HTTP2_IDLE_STREAM'
  | 'ERR_HTTP2_STREAM_ID_REUSED'
  | 'ERR_HTTP2_SETTINGS_TIMEOUT';

/** Stable codes of stream errors the codec raises. */
export type Http2StreamErrorReason =
  | 'ERR_HTTP2_FRAME_SIZE'
  | 'ERR_HTTP2_WINDOW_UPDATE_ZERO'
  | 'ERR_HTTP2_PRIORITY_SELF_DEPENDENCY'
  | 'ERR_HTTP2_HEADER_LIST_TOO_LARGE'
  | 'ERR_HTTP2_INVALID_FIELD_NAME'
  | 'ERR_HTTP2_INVALID_FIELD_VALUE'
  | 'ERR_HTTP2_CONNECTION_SPECIFIC_FIELD'
  | 'ERR_HTTP2_INVALID_TE'
  | 'ERR_HTTP2_PSEUDO_HEADER_AFTER_REGULAR'
  | 'ERR_HTTP2_UNKNOWN_PSEUDO_HEADER'
  | 'ERR_HTTP2_DUPLICATE_PSEUDO_HEADER'
  | 'ERR_HTTP2_MISSING_PSEUDO_HEADER'
  | 'ERR_HTTP2_PSEUDO_HEADER_IN_TRAILERS';

/**
 * The peer broke a rule that leaves the connection unusable (framing or compression state lost).
 * The session sends GOAWAY with `errorCode` and closes.
 */
export class Http2ConnectionError extends Error {
  override readonly name = 'Http2ConnectionError';
  constructor(
    /** Stable code to branch on. */
    readonly code: Http2ConnectionErrorReason,
    /** The RFC 9113 error code for GOAWAY. */
    readonly errorCode: Http2ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The peer broke a rule that affects one stream only. The session sends RST_STREAM with
 * `errorCode` on `streamId` (or answers 4xx where RFC 9113 allows it) and keeps the connection.
 */
export class Http2StreamError extends Error {
  override readonly name = 'Http2StreamError';
  constructor(
    /** Stable code to branch on. */
    readonly code: Http2StreamErrorReason,
    /** The RFC 9113 error code for RST_STREAM. */
    readonly errorCode: Http2ErrorCode,
    /** The stream to reset; 0 when the raiser does not know it (the session fills it in). */
    readonly streamId: number,
    message: string,
  ) {
    super(message);
  }
}
