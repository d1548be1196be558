/**
 * The error a handler sees when its HTTP/2 stream ends under it: the client reset the stream
 * (RST_STREAM), the connection ended (GOAWAY, a protocol error, the peer left), or the request
 * turned out malformed while its body arrived (content-length against DATA). Thrown from the
 * request body's reads; the response is not sent. Not a codec error (errors.ts): those end a
 * stream or connection, this one tells the application that it did.
 */
import { HttpError } from '../errors.js';
import { http2ErrorCodeName } from './errors.js';

/** A request's stream ended before its exchange did; `errorCode` is the RFC 9113 code. */
export class Http2StreamResetError extends HttpError {
  override readonly name = 'Http2StreamResetError';
  constructor(
    /** The stream. */
    readonly streamId: number,
    /** The RFC 9113 error code the stream or connection ended with. */
    readonly errorCode: number,
    /** Who ended it: the peer (RST_STREAM, GOAWAY, left) or this server (a rule the peer broke). */
    readonly by: 'peer' | 'server',
  ) {
    super(
      'ERR_HTTP2_STREAM_RESET',
      400,
      `HTTP/2 stream ${streamId} reset by the ${by} (${http2ErrorCodeName(errorCode)})`,
    );
  }
}
