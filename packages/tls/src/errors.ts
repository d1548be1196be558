/**
 * Typed TLS errors. Each ends only its own connection, carries a stable `code` and says what to
 * fix: OpenSSL's reason, the X509 verification error, the alert code and name. They extend the
 * runtime's RuntimeError (`syscall` 'tls') so a TlsStream reports them through the same
 * ByteStream contract as an I/O failure. Not for configuration mistakes found at run time of a
 * connection: those are TlsConfigError, thrown where the context is built.
 */
import type { ByteStream, SocketAddress } from '@loch/uring-runtime';
import { RuntimeError } from '@loch/uring-runtime';

/** Options every TLS error takes. */
export interface TlsErrorOptions {
  readonly address?: SocketAddress | undefined;
  readonly cause?: unknown;
}

/** Base of every TLS failure. `code` is one of the ERR_LOCH_TLS_* codes below. */
export class TlsError extends RuntimeError {
  /** What OpenSSL (or Loch) said, without the code prefix. */
  readonly reason: string;

  constructor(code: string, reason: string, options: TlsErrorOptions = {}) {
    super(code, 'tls', { address: options.address, cause: options.cause, detail: reason });
    this.reason = reason;
    // RuntimeError fixes `name` as a literal type; each subclass still reports its own.
    Object.defineProperty(this, 'name', { value: new.target.name, configurable: true, writable: true });
  }
}

/** The handshake failed: no shared version or cipher, a malformed record, garbage, an early close. */
export class TlsHandshakeError extends TlsError {
  constructor(reason: string, options: TlsErrorOptions = {}, code = 'ERR_LOCH_TLS_HANDSHAKE') {
    super(code, reason, options);
  }
}

/**
 * The peer's certificate was refused: unknown CA, wrong host name, expired, missing where one is
 * required (mTLS).
 */
export class TlsCertificateError extends TlsError {
  constructor(reason: string, options: TlsErrorOptions = {}) {
    super('ERR_LOCH_TLS_CERTIFICATE', reason, options);
  }
}

/** The peer sent a fatal alert (RFC 8446 §6): `alert` is its code; the message names it. */
export class TlsAlertError extends TlsError {
  readonly alert: number;
  constructor(alert: number, reason: string, options: TlsErrorOptions = {}) {
    super('ERR_LOCH_TLS_ALERT', reason, options);
    this.alert = alert;
  }
}

/** The handshake did not finish within `handshakeTimeout` milliseconds. */
export class TlsTimeoutError extends TlsError {
  readonly timeout: number;
  constructor(timeout: number, options: TlsErrorOptions = {}) {
    super('ERR_LOCH_TLS_HANDSHAKE_TIMEOUT', `the TLS handshake did not finish within ${timeout} ms`, options);
    this.timeout = timeout;
  }
}

/**
 * A plain-text request reached a TLS server (its first byte was an ASCII letter, not a TLS
 * record). `received` holds the bytes that gave it away; `stream` is the raw connection when
 * tlsAccept was asked to hand it over (`plainHttp: 'hand-over'`, so an HTTP server can answer
 * 400 the way nginx does), else undefined (the connection was closed).
 */
export class TlsPlainHttpError extends TlsHandshakeError {
  readonly received: Uint8Array;
  readonly stream: ByteStream | undefined;
  constructor(received: Uint8Array, stream: ByteStream | undefined, options: TlsErrorOptions = {}) {
    super('a plain HTTP request was sent to a TLS port', options, 'ERR_LOCH_TLS_PLAIN_HTTP');
    this.received = received;
    this.stream = stream;
  }
}

/** A record after the handshake did not decrypt or parse (tampering, a broken peer). */
export class TlsProtocolError extends TlsError {
  constructor(reason: string, options: TlsErrorOptions = {}) {
    super('ERR_LOCH_TLS_PROTOCOL', reason, options);
  }
}

/**
 * A context could not be built: an unreadable or mismatched certificate or key, a bad option, or
 * the TLS engine of @loch/native is not available (`code` ERR_LOCH_TLS_UNAVAILABLE).
 */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
  readonly code: string;
  constructor(message: string, code = 'ERR_LOCH_TLS_CONFIG', options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
