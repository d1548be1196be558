/**
 * Typed errors of @loch/transports. Each one says in which phase an upstream exchange failed
 * (connect, write, read, protocol, caller abort), carries a stable `code` and the HTTP `status`
 * a proxy answers for it (connect refused/failed -> 502, connect or read timeout -> 504, reset
 * or malformed response -> 502, upstream connection limit reached -> 503), and keeps the runtime's or codec's error as `cause`.
 * Not for errors of the runtime or the codec themselves: those stay in their packages.
 */
import type { HttpTimeoutError } from '@loch/http';

/** Stable codes of transport errors. */
export type TransportErrorCode =
  | 'ERR_TRANSPORT_CONNECT_REFUSED'
  | 'ERR_TRANSPORT_CONNECT_TIMEOUT'
  | 'ERR_TRANSPORT_CONNECT_FAILED'
  | 'ERR_TRANSPORT_UPSTREAM_BUSY'
  | 'ERR_TRANSPORT_TLS_FAILED'
  | 'ERR_TRANSPORT_WRITE_FAILED'
  | 'ERR_TRANSPORT_WRITE_TIMEOUT'
  | 'ERR_TRANSPORT_REQUEST_BODY_FAILED'
  | 'ERR_TRANSPORT_READ_FAILED'
  | 'ERR_TRANSPORT_READ_TIMEOUT'
  | 'ERR_TRANSPORT_PROTOCOL'
  | 'ERR_TRANSPORT_ABORTED'
  | 'ERR_TRANSPORT_INVALID_ADDRESS';

/** Where in an exchange a failure happened. */
export type TransportPhase = 'connect' | 'write' | 'response' | 'body';

const STATUS: Record<TransportErrorCode, number> = {
  ERR_TRANSPORT_CONNECT_REFUSED: 502,
  ERR_TRANSPORT_CONNECT_TIMEOUT: 504,
  ERR_TRANSPORT_CONNECT_FAILED: 502,
  ERR_TRANSPORT_UPSTREAM_BUSY: 503,
  ERR_TRANSPORT_TLS_FAILED: 502,
  ERR_TRANSPORT_WRITE_FAILED: 502,
  ERR_TRANSPORT_WRITE_TIMEOUT: 504,
  ERR_TRANSPORT_REQUEST_BODY_FAILED: 400,
  ERR_TRANSPORT_READ_FAILED: 502,
  ERR_TRANSPORT_READ_TIMEOUT: 504,
  ERR_TRANSPORT_PROTOCOL: 502,
  ERR_TRANSPORT_ABORTED: 499,
  ERR_TRANSPORT_INVALID_ADDRESS: 500,
};

/**
 * The transport error for one of @loch/http's client deadlines that passed: the write deadline
 * (the upstream took none of the request's bytes for its whole timeout: 504) or a read one (no
 * response head, or a gap inside the body: 504). Shared by the HTTP/1.1 and HTTP/2 connectors.
 */
export function timeoutError(
  error: HttpTimeoutError,
  phase: 'response' | 'body',
  address: string | undefined,
  reused = false,
): TransportError {
  return error.kind === 'write'
    ? new WriteError('ERR_TRANSPORT_WRITE_TIMEOUT', 'write', 'the upstream took no request bytes in time', {
        cause: error,
        address,
        reused,
      })
    : new ReadError('ERR_TRANSPORT_READ_TIMEOUT', phase, `read timed out waiting for the ${phase}`, {
        cause: error,
        address,
        reused,
      });
}

/** Base class of every transport error. */
export class TransportError extends Error {
  override readonly name: string = 'TransportError';
  /** Stable machine-readable code. */
  readonly code: TransportErrorCode;
  /** The status a proxy answers for this failure (502, 504; 499 for a caller abort). */
  readonly status: number;
  /** The phase of the exchange that failed. */
  readonly phase: TransportPhase;
  /** The upstream address (`host:port` or `unix:/path`) when known. */
  readonly address: string | undefined;
  /** True when the failure happened on a connection taken from the pool (not a fresh one). */
  readonly reused: boolean;
  /**
   * True when the failure happened on a reused connection before any byte of the response
   * arrived (the peer most likely closed the idle connection as the request went out): an
   * idempotent request with a replayable body may be sent again on a new connection.
   */
  readonly retryable: boolean;
  /**
   * True when the connection failed (reset, closed, write error) before any byte of the
   * response arrived, fresh connection or not: the upstream cannot have answered, so a proxy
   * may send an idempotent request to another upstream. Always false for timeouts.
   */
  readonly beforeResponse: boolean;

  constructor(
    code: TransportErrorCode,
    phase: TransportPhase,
    message: string,
    options: {
      cause?: unknown;
      address?: string | undefined;
      reused?: boolean;
      retryable?: boolean;
      beforeResponse?: boolean;
    } = {},
  ) {
    super(
      options.address === undefined ? message : `${message} (${options.address})`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.status = STATUS[code];
    this.phase = phase;
    this.address = options.address;
    this.reused = options.reused ?? false;
    this.retryable = options.retryable ?? false;
    this.beforeResponse = options.beforeResponse ?? false;
  }
}

/**
 * Connecting failed: refused (502), timed out (504), another errno such as ENOENT for a Unix
 * path (502), or not tried because the upstream's UpstreamLimit was reached (503).
 */
export class ConnectError extends TransportError {
  override readonly name = 'ConnectError';
}

/** Writing the request failed (the peer reset or closed the connection). */
export class WriteError extends TransportError {
  override readonly name = 'WriteError';
}

/** Reading the response failed: reset, closed before or inside the response (502), or the read timeout passed (504). */
export class ReadError extends TransportError {
  override readonly name = 'ReadError';
}

/** The upstream sent something that is not valid HTTP (the codec's HttpParseError is the cause). */
export class ProtocolError extends TransportError {
  override readonly name = 'ProtocolError';
}

/** The caller aborted the exchange through its AbortSignal; the signal's reason is the cause. */
export class AbortedError extends TransportError {
  override readonly name = 'AbortedError';
}

/** A URL or address that cannot be connected to (unknown scheme, missing port, bad path). */
export class InvalidAddressError extends TransportError {
  override readonly name = 'InvalidAddressError';
  constructor(message: string) {
    super('ERR_TRANSPORT_INVALID_ADDRESS', 'connect', message);
  }
}
