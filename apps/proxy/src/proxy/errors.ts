/**
 * Typed failures of the proxy path and the status each one answers: no route 404, a target the
 * proxy will not forward 400 (a path that climbs above the root or hides a "/" or NUL in an
 * escape, a bad authority or scheme, an empty Host), CONNECT 405, an upstream that refuses, resets or breaks protocol before a
 * response 502, an upstream too slow to connect or answer 504, a route whose upstreams are all
 * down (ejected or failing health checks) or at its connection limit (max_connections and
 * max_pending) 503, a gateway route whose dispatch could not be imported 503. `classifyUpstreamError` turns
 * what the runtime and @loch/http throw into one of these. Not for config errors (config/load.ts).
 */
import { HttpConnectionError, HttpParseError, HttpTimeoutError } from '@loch/http';
import { TransportError } from '@loch/transports';

/** Stable codes of ProxyError. */
export type ProxyErrorCode =
  | 'ERR_LOCH_NO_ROUTE'
  | 'ERR_LOCH_BAD_PATH'
  | 'ERR_LOCH_ENCODED_SLASH'
  | 'ERR_LOCH_BAD_TARGET'
  | 'ERR_LOCH_BAD_HOST'
  | 'ERR_LOCH_METHOD_NOT_ALLOWED'
  | 'ERR_LOCH_UPSTREAM_REFUSED'
  | 'ERR_LOCH_UPSTREAM_RESET'
  | 'ERR_LOCH_UPSTREAM_PROTOCOL'
  | 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT'
  | 'ERR_LOCH_UPSTREAM_TIMEOUT'
  | 'ERR_LOCH_UPSTREAM_FAILED'
  | 'ERR_LOCH_NO_HEALTHY_UPSTREAM'
  | 'ERR_LOCH_UPSTREAM_BUSY'
  | 'ERR_LOCH_GATEWAY_UNAVAILABLE';

const STATUS: Record<ProxyErrorCode, number> = {
  ERR_LOCH_NO_ROUTE: 404,
  ERR_LOCH_BAD_PATH: 400,
  ERR_LOCH_ENCODED_SLASH: 400,
  ERR_LOCH_BAD_TARGET: 400,
  ERR_LOCH_BAD_HOST: 400,
  ERR_LOCH_METHOD_NOT_ALLOWED: 405,
  ERR_LOCH_UPSTREAM_REFUSED: 502,
  ERR_LOCH_UPSTREAM_RESET: 502,
  ERR_LOCH_UPSTREAM_PROTOCOL: 502,
  ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT: 504,
  ERR_LOCH_UPSTREAM_TIMEOUT: 504,
  ERR_LOCH_UPSTREAM_FAILED: 502,
  ERR_LOCH_NO_HEALTHY_UPSTREAM: 503,
  ERR_LOCH_UPSTREAM_BUSY: 503,
  ERR_LOCH_GATEWAY_UNAVAILABLE: 503,
};

/** A request the proxy answers itself, with `status` and a one-line body naming `code`. */
export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  /** The status sent to the client. */
  readonly status: number;
  /** Fields the answer carries besides its content type (a 405's Allow). */
  readonly headers: readonly (readonly [string, string])[] | undefined;
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: readonly (readonly [string, string])[] },
  ) {
    super(message, options);
    this.status = STATUS[code];
    this.headers = options?.headers;
  }
}

/**
 * A call whose lazily imported code (lazy-module.ts: the gateway's dispatch, the gRPC schema side)
 * failed to load: answered 503 ERR_LOCH_GATEWAY_UNAVAILABLE, failing closed, with one stable code
 * and no stack per request; `what` names the code ("the gateway cannot load its dispatch").
 */
export function gatewayUnavailable(what: string, error: unknown): ProxyError {
  return new ProxyError(
    'ERR_LOCH_GATEWAY_UNAVAILABLE',
    `${what}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}

/**
 * Maps a failure while connecting to or exchanging with an upstream (before any response byte
 * was passed on) to a ProxyError. `label` names the upstream for the message.
 */
export function classifyUpstreamError(
  error: unknown,
  phase: 'connect' | 'exchange',
  label: string,
): ProxyError {
  if (error instanceof ProxyError) return error;
  if (error instanceof TransportError) return fromTransport(error, label);
  if (error instanceof HttpTimeoutError) {
    return new ProxyError('ERR_LOCH_UPSTREAM_TIMEOUT', `upstream ${label}: ${error.kind} timeout`, {
      cause: error,
    });
  }
  if (error instanceof HttpParseError) {
    return new ProxyError('ERR_LOCH_UPSTREAM_PROTOCOL', `upstream ${label}: ${error.code}`, { cause: error });
  }
  if (error instanceof HttpConnectionError) {
    return new ProxyError('ERR_LOCH_UPSTREAM_RESET', `upstream ${label}: closed before a response`, {
      cause: error,
    });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ETIMEDOUT') {
    return phase === 'connect'
      ? new ProxyError('ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT', `upstream ${label}: connect timeout`, {
          cause: error,
        })
      : new ProxyError('ERR_LOCH_UPSTREAM_TIMEOUT', `upstream ${label}: timeout`, { cause: error });
  }
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new ProxyError('ERR_LOCH_UPSTREAM_REFUSED', `upstream ${label}: ${String(code)}`, {
      cause: error,
    });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') {
    return new ProxyError('ERR_LOCH_UPSTREAM_RESET', `upstream ${label}: ${String(code)}`, { cause: error });
  }
  return new ProxyError(
    'ERR_LOCH_UPSTREAM_FAILED',
    `upstream ${label}: ${(error as Error | null)?.message ?? String(error)}`,
    { cause: error },
  );
}

/** Maps @loch/transports' typed errors (they already tell connect from read, refused from timeout). */
function fromTransport(error: TransportError, label: string): ProxyError {
  const code: ProxyErrorCode =
    error.code === 'ERR_TRANSPORT_CONNECT_REFUSED'
      ? 'ERR_LOCH_UPSTREAM_REFUSED'
      : error.code === 'ERR_TRANSPORT_CONNECT_TIMEOUT'
        ? 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT'
        : error.code === 'ERR_TRANSPORT_READ_TIMEOUT' || error.code === 'ERR_TRANSPORT_WRITE_TIMEOUT'
          ? 'ERR_LOCH_UPSTREAM_TIMEOUT'
          : error.code === 'ERR_TRANSPORT_READ_FAILED' || error.code === 'ERR_TRANSPORT_WRITE_FAILED'
            ? 'ERR_LOCH_UPSTREAM_RESET'
            : error.code === 'ERR_TRANSPORT_PROTOCOL'
              ? 'ERR_LOCH_UPSTREAM_PROTOCOL'
              : error.code === 'ERR_TRANSPORT_UPSTREAM_BUSY'
                ? 'ERR_LOCH_UPSTREAM_BUSY'
                : 'ERR_LOCH_UPSTREAM_FAILED';
  return new ProxyError(code, `upstream ${label}: ${error.message}`, { cause: error });
}
