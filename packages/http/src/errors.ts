/**
 * Typed errors of @loch/http. Every protocol failure carries a stable `code` a caller can branch
 * on and, where the server answers it, the HTTP `status` it maps to (400, 413, 414, 431, 501,
 * 505...). Not for I/O failures: those are the runtime's RuntimeError and pass through unchanged.
 */

/** Codes of messages the parser rejects. Each maps to one status in {@link parseErrorStatus}. */
export type HttpParseErrorCode =
  | 'ERR_HTTP_BARE_LF'
  | 'ERR_HTTP_BARE_CR'
  | 'ERR_HTTP_INVALID_METHOD'
  | 'ERR_HTTP_UNKNOWN_METHOD'
  | 'ERR_HTTP_DATA_AFTER_CLOSE'
  | 'ERR_HTTP_FORBIDDEN_TRAILER'
  | 'ERR_HTTP_INVALID_TARGET'
  | 'ERR_HTTP_INVALID_VERSION'
  | 'ERR_HTTP_UNSUPPORTED_VERSION'
  | 'ERR_HTTP_INVALID_STATUS'
  | 'ERR_HTTP_UNSOLICITED_UPGRADE'
  | 'ERR_HTTP_INVALID_HEADER_NAME'
  | 'ERR_HTTP_INVALID_HEADER_VALUE'
  | 'ERR_HTTP_WHITESPACE_BEFORE_COLON'
  | 'ERR_HTTP_OBS_FOLD'
  | 'ERR_HTTP_INVALID_CONTENT_LENGTH'
  | 'ERR_HTTP_DUPLICATE_CONTENT_LENGTH'
  | 'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING'
  | 'ERR_HTTP_INVALID_TRANSFER_ENCODING'
  | 'ERR_HTTP_UNSUPPORTED_TRANSFER_CODING'
  | 'ERR_HTTP_MISSING_HOST'
  | 'ERR_HTTP_DUPLICATE_HOST'
  | 'ERR_HTTP_INVALID_HOST'
  | 'ERR_HTTP_INVALID_CHUNK_SIZE'
  | 'ERR_HTTP_INVALID_CHUNK_EXTENSION'
  | 'ERR_HTTP_INVALID_CHUNK_END'
  | 'ERR_HTTP_CHUNK_LINE_TOO_LONG'
  | 'ERR_HTTP_HEAD_TOO_LARGE'
  | 'ERR_HTTP_TOO_MANY_HEADERS'
  | 'ERR_HTTP_HEADER_LINE_TOO_LONG'
  | 'ERR_HTTP_REQUEST_LINE_TOO_LONG'
  | 'ERR_HTTP_INCOMPLETE_MESSAGE';

const STATUS: Record<HttpParseErrorCode, number> = {
  ERR_HTTP_BARE_LF: 400,
  ERR_HTTP_BARE_CR: 400,
  ERR_HTTP_INVALID_METHOD: 400,
  ERR_HTTP_UNKNOWN_METHOD: 501,
  ERR_HTTP_DATA_AFTER_CLOSE: 400,
  ERR_HTTP_FORBIDDEN_TRAILER: 400,
  ERR_HTTP_INVALID_TARGET: 400,
  ERR_HTTP_INVALID_VERSION: 400,
  ERR_HTTP_UNSUPPORTED_VERSION: 505,
  ERR_HTTP_INVALID_STATUS: 502,
  ERR_HTTP_UNSOLICITED_UPGRADE: 502,
  ERR_HTTP_INVALID_HEADER_NAME: 400,
  ERR_HTTP_INVALID_HEADER_VALUE: 400,
  ERR_HTTP_WHITESPACE_BEFORE_COLON: 400,
  ERR_HTTP_OBS_FOLD: 400,
  ERR_HTTP_INVALID_CONTENT_LENGTH: 400,
  ERR_HTTP_DUPLICATE_CONTENT_LENGTH: 400,
  ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING: 400,
  ERR_HTTP_INVALID_TRANSFER_ENCODING: 400,
  ERR_HTTP_UNSUPPORTED_TRANSFER_CODING: 501,
  ERR_HTTP_MISSING_HOST: 400,
  ERR_HTTP_DUPLICATE_HOST: 400,
  ERR_HTTP_INVALID_HOST: 400,
  ERR_HTTP_INVALID_CHUNK_SIZE: 400,
  ERR_HTTP_INVALID_CHUNK_EXTENSION: 400,
  ERR_HTTP_INVALID_CHUNK_END: 400,
  ERR_HTTP_CHUNK_LINE_TOO_LONG: 400,
  ERR_HTTP_HEAD_TOO_LARGE: 431,
  ERR_HTTP_TOO_MANY_HEADERS: 431,
  ERR_HTTP_HEADER_LINE_TOO_LONG: 431,
  ERR_HTTP_REQUEST_LINE_TOO_LONG: 414,
  ERR_HTTP_INCOMPLETE_MESSAGE: 400,
};

/** The status a server answers for a parse error code. */
export function parseErrorStatus(code: HttpParseErrorCode): number {
  return STATUS[code];
}

/** Base class of every @loch/http error. */
export class HttpError extends Error {
  override readonly name: string = 'HttpError';
  /** Stable machine-readable code, `ERR_HTTP_*`. */
  readonly code: string;
  /** The HTTP status this error maps to when a server answers it. */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = status;
  }
}

/** A message the HTTP/1 parser rejected; the connection it came from cannot be trusted further. */
export class HttpParseError extends HttpError {
  override readonly name = 'HttpParseError';
  declare readonly code: HttpParseErrorCode;
  /** Byte offset in the head (or chunk line) where the problem was found, -1 when not known. */
  readonly offset: number;

  constructor(code: HttpParseErrorCode, detail: string, offset = -1) {
    super(code, STATUS[code], `${code}: ${detail}${offset >= 0 ? ` at byte ${offset}` : ''}`);
    this.offset = offset;
  }
}

/** A header name or value that cannot be put on the wire (not a token, or holds CR/LF/NUL/controls). */
export class InvalidHeaderError extends HttpError {
  override readonly name = 'InvalidHeaderError';
  constructor(what: 'name' | 'value', header: string) {
    super(
      what === 'name' ? 'ERR_HTTP_INVALID_HEADER_NAME' : 'ERR_HTTP_INVALID_HEADER_VALUE',
      500,
      `invalid header ${what} for ${JSON.stringify(header)}`,
    );
  }
}

/** Which deadline expired. */
export type HttpTimeoutKind = 'idle' | 'head' | 'body' | 'write' | 'response';

/** A connection deadline expired (keep-alive idle, reading the head or body, writing, awaiting a response). */
export class HttpTimeoutError extends HttpError {
  override readonly name = 'HttpTimeoutError';
  /** The deadline that expired. */
  readonly kind: HttpTimeoutKind;
  constructor(kind: HttpTimeoutKind, ms: number) {
    super(
      'ERR_HTTP_TIMEOUT',
      kind === 'write' || kind === 'idle' ? 0 : 408,
      `${kind} timeout after ${ms} ms`,
    );
    this.kind = kind;
  }
}

/**
 * A body did not hold what its framing promised (fewer or more bytes than its length, or a size
 * limit), was iterated twice, or was read after the server took it over
 * (`ERR_HTTP_BODY_TAKEN`: its response was complete or the connection ended).
 */
export class HttpBodyError extends HttpError {
  override readonly name = 'HttpBodyError';
  constructor(
    code:
      | 'ERR_HTTP_BODY_LENGTH_MISMATCH'
      | 'ERR_HTTP_BODY_TOO_LARGE'
      | 'ERR_HTTP_BODY_CONSUMED'
      | 'ERR_HTTP_BODY_TAKEN',
    message: string,
  ) {
    super(code, code === 'ERR_HTTP_BODY_TOO_LARGE' ? 413 : 500, message);
  }
}

/** The peer closed the connection before a complete message arrived, or the connection is no longer usable. */
export class HttpConnectionError extends HttpError {
  override readonly name = 'HttpConnectionError';
  constructor(code: 'ERR_HTTP_CONNECTION_CLOSED' | 'ERR_HTTP_CONNECTION_BUSY', message: string) {
    super(code, 502, message);
  }
}

/** An exchange aborted through its AbortSignal; `cause` is the signal's reason. The connection is not reusable. */
export class HttpAbortedError extends HttpError {
  override readonly name = 'HttpAbortedError';
  constructor(options: { cause?: unknown } = {}) {
    super('ERR_HTTP_ABORTED', 499, 'exchange aborted', options);
  }
}

/**
 * Reading the request body to send it failed (its source threw: for a proxy, the client went
 * away mid-upload); `cause` is what it threw. The exchange fails at once and the connection is
 * not reusable (the peer holds half a request).
 */
export class HttpRequestBodyError extends HttpError {
  override readonly name = 'HttpRequestBodyError';
  constructor(cause: unknown) {
    super(
      'ERR_HTTP_REQUEST_BODY_FAILED',
      cause instanceof HttpError && cause.status >= 400 ? cause.status : 400,
      `request body failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
