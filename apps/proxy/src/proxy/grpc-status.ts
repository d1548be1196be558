/**
 * gRPC answers for the proxy's own failures. A gRPC client reads the outcome of a call from
 * `grpc-status`, not from the HTTP status: a bare 502 or 504 reaches its application as
 * UNAVAILABLE or UNKNOWN with "Received HTTP status code 504", so a timeout cannot be told from
 * a refused upstream. As Envoy does for its local replies, a request whose content-type is
 * `application/grpc` (or `application/grpc+proto`, `+json`, `;...`) that loch cannot proxy is
 * answered with a trailers-only response (RFC 9113 HEADERS with END_STREAM; gRPC's "Trailers-Only"):
 * HTTP 200, `grpc-status` and a percent-encoded `grpc-message`. A failure after the upstream's
 * response head was passed on to an HTTP/2 client (GrpcRelayBody) ends the stream with trailers
 * when the relay stands between two gRPC messages, else it is reset as before. Not for gRPC-Web
 * (`application/grpc-web*`), whose clients expect their own framing.
 */
import {
  type BodyKind,
  createResponse,
  EMPTY_BODY,
  HeaderName,
  Http2RequestRefusedError,
  Http2StreamResetError,
  type HttpBody,
  HttpHeaders,
  type HttpRequest,
  type HttpResponse,
  nextNow,
  type ReadyBodyIterator,
} from '@loch/http';
import { TransportError } from '@loch/transports';
import { classifyUpstreamError } from './errors.js';

/** The gRPC status codes loch answers with (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  CANCELLED: 1,
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
  return isGrpcType(request.headers.get(CONTENT_TYPE));
}

/** Whether a content-type value is gRPC's (isGrpcRequest). */
function isGrpcType(type: string | undefined): boolean {
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

/** Which timeout bounds a relayed gRPC answer's gaps (named in the grpc-message of a cut). */
export interface GrpcRelayTimeout {
  /** `upstream_read`, or `grpc-timeout` when the call's deadline was the shorter. */
  readonly name: string;
  /** Its length in ms. */
  readonly ms: number;
}

/**
 * The gRPC status of an upstream's RST_STREAM code after the response head, as gRPC maps it
 * (PROTOCOL-HTTP2.md, "Errors"; grpc-go and grpc-js alike): what the client would have seen
 * from the upstream directly.
 */
function statusOfResetCode(code: number): number {
  switch (code) {
    case 0x7: // REFUSED_STREAM
      return GrpcStatus.UNAVAILABLE;
    case 0x8: // CANCEL
      return GrpcStatus.CANCELLED;
    case 0xb: // ENHANCE_YOUR_CALM
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 0xc: // INADEQUATE_SECURITY
      return GrpcStatus.PERMISSION_DENIED;
    default: // NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR and the rest
      return GrpcStatus.INTERNAL;
  }
}

/** RFC 9113 error code names for grpc-message (unknown codes in hex). */
const RESET_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/**
 * The status and message that end a relayed gRPC answer whose upstream failed after its head
 * (see GrpcRelayBody), or null for a failure that is not the upstream's (the client went away:
 * its stream is reset anyway). A timeout is DEADLINE_EXCEEDED; the upstream's own RST_STREAM is
 * what gRPC maps its code to (INTERNAL_ERROR -> INTERNAL, CANCEL -> CANCELLED, REFUSED_STREAM ->
 * UNAVAILABLE...); a lost upstream connection (reset, closed, GOAWAY with an error) is
 * UNAVAILABLE, as gRPC reports a connection that broke mid-call (statuscodes.md); a stream loch
 * reset for the upstream's protocol error, or anything else, INTERNAL. The message names loch's code, never the upstream's address.
 * @internal exported for tests
 */
export function grpcFailureAfterHead(
  error: unknown,
  timeout: GrpcRelayTimeout,
): { status: number; message: string } | null {
  if (error instanceof TransportError && error.code === 'ERR_TRANSPORT_ABORTED') return null;
  const cause = error instanceof TransportError ? error.cause : error;
  if (cause instanceof Http2StreamResetError || cause instanceof Http2RequestRefusedError) {
    const code = cause.errorCode;
    const name = RESET_NAMES[code] ?? `0x${code.toString(16)}`;
    // loch's client reset the stream for a rule the upstream broke on it: a protocol error.
    if (cause instanceof Http2StreamResetError && cause.by !== 'peer')
      return { status: GrpcStatus.INTERNAL, message: `upstream broke HTTP/2 on the stream (${name})` };
    return {
      status: statusOfResetCode(code),
      message: `upstream reset the stream after the response head (${name})`,
    };
  }
  const mapped = classifyUpstreamError(error, 'exchange', '');
  switch (mapped.code) {
    case 'ERR_LOCH_UPSTREAM_TIMEOUT':
      return {
        status: GrpcStatus.DEADLINE_EXCEEDED,
        message: `upstream timeout after the response head: no response data within ${timeout.name} (${timeout.ms} ms) (ERR_LOCH_UPSTREAM_TIMEOUT)`,
      };
    case 'ERR_LOCH_UPSTREAM_RESET':
      return {
        status: GrpcStatus.UNAVAILABLE,
        message: 'upstream connection lost after the response head (ERR_LOCH_UPSTREAM_RESET)',
      };
    default:
      return {
        status: GrpcStatus.INTERNAL,
        message: `upstream failed after the response head (${mapped.code})`,
      };
  }
}

/**
 * A relayed gRPC response body (HTTP/2 client, 200 with a gRPC content-type) that watches the
 * 5-byte length prefixes of the messages passing through (a compressed flag and a 32-bit length;
 * three numbers per chunk, no copy), so that a failure of the upstream after the response head
 * ends the client's stream well when it can: at a message boundary (every message relayed whole,
 * none begun) the body ends there with trailers `grpc-status` and `grpc-message`
 * (grpcFailureAfterHead), one HEADERS frame with END_STREAM, as the gateway's pseudonymizer ends
 * a response it cannot rewrite. Mid-message, trailers would hand the client a truncated message
 * it cannot tell from a whole one: the failure is thrown as before (the server resets the stream,
 * RST_STREAM INTERNAL_ERROR). A body announced with a content-length is never ended short. The
 * upstream stream has been reset (or its connection closed) by the transport already.
 */
export class GrpcRelayBody implements HttpBody, ReadyBodyIterator {
  readonly kind: BodyKind;
  readonly length: number;
  #it: AsyncIterator<Uint8Array> | null = null;
  /** Set when a failure ended the body with trailers of loch's. */
  #failure: HttpHeaders | null = null;
  /** Prefix bytes of the current message seen (0 to 4; 0 also between messages). */
  #head = 0;
  /** The length being read from the current prefix. */
  #len = 0;
  /** Payload bytes of the current message still to come. */
  #rest = 0;

  constructor(
    private readonly source: HttpBody,
    private readonly timeout: GrpcRelayTimeout,
  ) {
    this.kind = source.kind;
    this.length = source.length;
  }

  get trailers(): HttpHeaders | null {
    return this.#failure ?? this.source.trailers;
  }

  /** Whether every message relayed so far was whole (none begun and not finished). */
  get atBoundary(): boolean {
    return this.#head === 0 && this.#rest === 0;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#it ??= this.source[Symbol.asyncIterator]();
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#failure !== null) return { done: true, value: undefined };
    const it = (this.#it ??= this.source[Symbol.asyncIterator]());
    let r: IteratorResult<Uint8Array>;
    try {
      r = await it.next();
    } catch (error) {
      return this.#failed(error);
    }
    if (!r.done) this.#track(r.value);
    return r;
  }

  /** A step the source can take without waiting (ReadyBodyIterator), else null. */
  nextNow(): IteratorResult<Uint8Array> | null {
    if (this.#failure !== null) return { done: true, value: undefined };
    const it = (this.#it ??= this.source[Symbol.asyncIterator]());
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = nextNow(it);
    } catch (error) {
      return this.#failed(error);
    }
    if (r !== null && !r.done) this.#track(r.value);
    return r;
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    const it = (this.#it ??= this.source[Symbol.asyncIterator]());
    await it.return?.();
    return { done: true, value: undefined };
  }

  /** The source failed: trailers at a message boundary, else the failure as it was. */
  #failed(error: unknown): IteratorResult<Uint8Array> {
    if (!this.atBoundary || this.length >= 0) throw error;
    const failure = grpcFailureAfterHead(error, this.timeout);
    if (failure === null) throw error;
    this.#failure = new HttpHeaders([
      ['grpc-status', String(failure.status)],
      ['grpc-message', percentEncodeGrpcMessage(failure.message)],
    ]);
    return { done: true, value: undefined };
  }

  /** Follows the message framing through `chunk`. */
  #track(chunk: Uint8Array): void {
    const n = chunk.length;
    let rest = this.#rest;
    let head = this.#head;
    let len = this.#len;
    let i = 0;
    while (i < n) {
      if (rest > 0) {
        const take = Math.min(rest, n - i);
        rest -= take;
        i += take;
        continue;
      }
      // Byte 0 of a prefix is the compressed flag; bytes 1-4 the length, big-endian.
      if (head > 0) len = len * 256 + chunk[i]!;
      i++;
      if (++head === 5) {
        rest = len;
        head = 0;
        len = 0;
      }
    }
    this.#rest = rest;
    this.#head = head;
    this.#len = len;
  }
}

/**
 * The response filter of a gRPC call from an HTTP/2 client: a gRPC answer (200, gRPC
 * content-type, a streamed body of unannounced length) is relayed through a GrpcRelayBody;
 * anything else as it is.
 */
export function relayGrpcResponse(res: HttpResponse, timeout: GrpcRelayTimeout): HttpResponse {
  const body = res.body;
  // A sized body (never ended short) or none: nothing to watch.
  if (res.status !== 200 || body.kind === 'empty' || body.length >= 0) return res;
  if (!isGrpcType(res.headers.get(CONTENT_TYPE))) return res;
  res.body = new GrpcRelayBody(body, timeout);
  return res;
}
