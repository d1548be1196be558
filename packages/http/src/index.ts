/**
 * @loch/http: HTTP server and client on the Loch runtime. The root is what applications use
 * (server, client, messages, headers, bodies, errors); the HTTP/1.1 wire codec is the subpath
 * @loch/http/h1, HTTP/2's codec, client session and server session @loch/http/h2 (the root loads
 * HTTP/2's errors only: HttpServer imports the rest with its first HTTP/2 connection).
 * src/internal/ is not exported.
 */

export type { BodyKind, HttpBody, ReadyBodyIterator } from './body.js';
export {
  consumeBody,
  EMPTY_BODY,
  FixedBody,
  fixedBody,
  nextNow,
  readBody,
  readText,
  StreamBody,
  streamBody,
} from './body.js';
export type { HttpClientOptions, HttpExchangeCancel, HttpExchangeTarget, HttpSendOptions } from './client.js';
export { HttpClient } from './client.js';
export type { ConnectionSchema, HttpConnectionContext } from './context.js';
export { ConnectionContext, connectionContext } from './context.js';
export type { HttpParseErrorCode, HttpTimeoutKind } from './errors.js';
export {
  HttpAbortedError,
  HttpBodyError,
  HttpConnectionError,
  HttpError,
  HttpParseError,
  HttpRequestBodyError,
  HttpTimeoutError,
  InvalidHeaderError,
  parseErrorStatus,
} from './errors.js';
export type { ResponseBodyOwner } from './h1/client.js';
// The limits a server or client takes; the HTTP/1.1 codec itself is @loch/http/h1.
export type { H1Limits, RequestDecoderOptions } from './h1/decoder.js';
export {
  CHUNK_END,
  chunkHeader,
  encodeRequestHead,
  encodeRequestHeadBytes,
  encodeResponseHead,
  encodeResponseHeadBytes,
  httpDate,
  lastChunk,
  requestFraming,
  responseFraming,
  responseHasNoBody,
} from './h1/encoder.js';
// The HTTP/2 client's options and errors. The session itself (H2ClientSession: the same
// options and exchange target as HttpClient) is @loch/http/h2's, so a process that speaks no
// HTTP/2 loads none of its code; its errors stay here for `instanceof` without it.
export type { Http2RefusedReason } from './h2/client-errors.js';
export { Http2RequestRefusedError, Http2SessionError } from './h2/client-errors.js';
export type { Http2ClientLimits, Http2ClientOptions } from './h2/client-session.js';
// The HTTP/2 options a server takes, and the error a handler sees when its stream is reset.
export type { Http2ServerLimits } from './h2/limits.js';
export { Http2StreamResetError } from './h2/stream-reset-error.js';
export type { HeadersInit } from './headers.js';
export { HeaderName, HeaderNameSet, HttpHeaders } from './headers.js';
export type {
  HttpRequest,
  HttpResponse,
  HttpServerRequest,
  HttpTunnel,
  HttpUpgradedConnection,
  HttpVersion,
  TargetForm,
} from './message.js';
export { authorityOf, createRequest, createResponse, pathOf, targetFormOf } from './message.js';
export type {
  HttpHandler,
  HttpRejection,
  HttpServerOptions,
  HttpServerTimeouts,
  ServedConnection,
} from './server.js';
export { HttpServer } from './server.js';
export type {
  DriverName,
  HttpListener,
  HttpStream,
  SocketAddress,
  StreamChunk,
  StreamIoOptions,
  StreamRecvTarget,
  StreamWriteTarget,
} from './transport.js';
