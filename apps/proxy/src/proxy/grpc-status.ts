/**
 * gRPC answers for the proxy's own failures. A gRPC client reads the outcome of a call from
 * `grpc-status`, not from the HTTP status: a bare 502 or 504 reaches its application as
 * UNAVAILABLE or UNKNOWN with "Received HTTP status code 504", so a timeout cannot be told from
 * a refused upstream. As Envoy does for its local replies, a request whose content-type is
 * `application/grpc` (or `application/grpc+proto`, `+json`, `;...`) that loch cannot proxy is
 * answered with a trailers-only response (RFC 9113 HEADERS with END_STREAM; gRPC's "Trailers-Only"):
 * HTTP 200, `grpc-status` and a percent-encoded `grpc-message`. Not for failures after the
 * upstream's response head was passed on (the stream is reset then), nor for gRPC-Web
 * (`application/grpc-web*`), whose clients expect their own framing.
 */
import { createResponse, EMPTY_BODY, HeaderName, type HttpRequest, type HttpResponse } from '@loch/http';

/** The gRPC status codes loch answers with (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** One of GrpcStatus' values. */
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const GRPC_TYPE = 'application/grpc';
/** Read on every proxied request (isGrpcRequest): resolved once. */
const CONTENT_TYPE = new HeaderName('content-type');

/**
 * Whether `request` is a gRPC call: its content-type is `application/grpc`, alone or followed by
 * `+<codec>` or parameters (case-insensitive, as media types are). gRPC-Web is not.
 */
export function isGrpcRequest(request: HttpRequest): boolean {
  const type = request.headers.get(CONTENT_TYPE);
  if (type === undefined || type.length < GRPC_TYPE.length) return false;
  if (type.slice(0, GRPC_TYPE.length).toLowerCase() !== GRPC_TYPE) return false;
  if (type.length === GRPC_TYPE.length) return true;
  const next = type.charCodeAt(GRPC_TYPE.length);
  return next === 0x2b /* + */ || next === 0x3b /* ; */ || next === 0x20 || next === 0x09;
}

/**
 * The gRPC status of a failure loch answers itself, from its error code and the HTTP status it
 * would have sent. The choices follow Envoy's local replies: a refused, reset or unreachable
 * upstream is UNAVAILABLE (also a connect timeout: the call never reached a server, so a client
 * may retry it elsewhere), an upstream that did not answer in time DEADLINE_EXCEEDED, no route
 * UNIMPLEMENTED (what a gRPC server says of an unknown method), a body or head over a limit
 * RESOURCE_EXHAUSTED, anything else INTERNAL.
 */
export function grpcStatusOf(httpStatus: number, code: string): GrpcStatusCode {
  switch (code) {
    case 'ERR_LOCH_NO_ROUTE':
      return GrpcStatus.UNIMPLEMENTED;
    case 'ERR_LOCH_UPSTREAM_TIMEOUT':
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT':
    case 'ERR_LOCH_UPSTREAM_REFUSED':
    case 'ERR_LOCH_UPSTREAM_RESET':
      return GrpcStatus.UNAVAILABLE;
  }
  switch (httpStatus) {
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 413:
    case 431:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 429:
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/**
 * `text` as a grpc-message value (gRPC over HTTP/2 spec): UTF-8, with every byte outside
 * printable ASCII (0x20-0x7E) and `%` itself written as `%XX`.
 */
export function percentEncodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = '';
  for (const byte of new TextEncoder().encode(text)) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte);
  }
  return out;
}

/**
 * The trailers-only answer to a gRPC call loch fails itself: HTTP 200 with
 * `content-type: application/grpc`, `grpc-status` (from grpcStatusOf) and `grpc-message`
 * (`message`, percent-encoded), no body. Over HTTP/2 it is one HEADERS frame with END_STREAM.
 */
export function grpcErrorResponse(httpStatus: number, code: string, message: string): HttpResponse {
  return createResponse(200, {
    headers: [
      ['content-type', GRPC_TYPE],
      ['grpc-status', String(grpcStatusOf(httpStatus, code))],
      ['grpc-message', percentEncodeGrpcMessage(message)],
    ],
    body: EMPTY_BODY,
  });
}

/** Milliseconds per grpc-timeout unit (gRPC over HTTP/2: Hours, Minutes, Seconds, milli-, micro-, nanoseconds). */
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * The deadline a gRPC client sent in `grpc-timeout`, in whole ms (rounded up, so a sub-ms
 * deadline, `0m` included, is 1 ms: 0 would mean "none"), or undefined when the value is absent or
 * malformed: 1 to 8 ASCII digits then one case-sensitive unit (`M` is minutes, `m` ms). A
 * malformed value is ignored, as Envoy does (Grpc::Common::getGrpcTimeout gives no timeout and
 * the route's applies), never answered with an error.
 */
export function grpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined;
  const perUnit = TIMEOUT_UNIT_MS[value[value.length - 1]!];
  if (perUnit === undefined) return undefined;
  let amount = 0;
  for (let i = 0; i < value.length - 1; i++) {
    const digit = value.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    amount = amount * 10 + digit;
  }
  return Math.max(1, Math.ceil(amount * perUnit));
}
