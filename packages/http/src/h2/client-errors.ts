/**
 * Typed errors of the HTTP/2 client session (client-session.ts): a request the server never
 * processed (safe to send again on another connection) and a stream the server reset after it
 * may have acted on it. Not codec errors (errors.ts): those are the rules a peer broke.
 */
import { HttpError } from '../errors.js';
import { http2ErrorCodeName } from './errors.js';

/** Why a request was never processed by the server. */
export type Http2RefusedReason = 'refused-stream' | 'goaway' | 'not-sent';

/**
 * The server did not process the request (RFC 9113 §8.7): it answered RST_STREAM with
 * REFUSED_STREAM, its GOAWAY's last-stream-id is below the stream, or the connection ended
 * before the request's HEADERS left. `retryable` is always true: the request may be sent again
 * on another connection, whatever its method.
 */
export class Http2RequestRefusedError extends HttpError {
  override readonly name = 'Http2RequestRefusedError';
  /** Always true: the server did not act on the request. */
  readonly retryable = true;
  constructor(
    /** The stream the request was (or would have been) sent on. */
    readonly streamId: number,
    readonly reason: Http2RefusedReason,
    /** The RFC 9113 code of the RST_STREAM or GOAWAY (REFUSED_STREAM, NO_ERROR...). */
    readonly errorCode: number,
  ) {
    super(
      'ERR_HTTP2_REQUEST_REFUSED',
      503,
      `HTTP/2 request on stream ${streamId} not processed by the server (${reason}, ${http2ErrorCodeName(errorCode)})`,
    );
  }
}

/**
 * The HTTP/2 connection failed as a whole while the exchange was in progress: the server sent a
 * connection error (a GOAWAY with an error code, which ended a stream it may have processed), or
 * broke a rule of the protocol (`by: 'client'`: this session sent GOAWAY). Not retryable.
 */
export class Http2SessionError extends HttpError {
  override readonly name = 'Http2SessionError';
  constructor(
    /** The RFC 9113 error code. */
    readonly errorCode: number,
    readonly by: 'server' | 'client',
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_HTTP2_SESSION',
      502,
      `HTTP/2 session failed (${http2ErrorCodeName(errorCode)}): ${detail}`,
      options,
    );
  }
}
