/**
 * tlsAccept and tlsConnect: turn a connected ByteStream into a TlsStream once the handshake is
 * done, with a deadline, and the per-connection policy (server name and host check, ALPN offer,
 * session resumption from the client context's cache, plain-HTTP hand-over). Not for the record
 * layer: that is stream.ts.
 */
import { isIP } from 'node:net';
import type { NativeTlsSession } from '@loch/native';
import type { ByteStream, SocketAddress } from '@loch/uring-runtime';
import { encodeAlpn, nativeContext, type TlsClientContext, type TlsServerContext } from './context.js';
import { TlsConfigError, TlsTimeoutError } from './errors.js';
import { tlsEngine } from './internal/engine.js';
import { type OpenOptions, openTlsStream, type TlsStream } from './stream.js';

/** Options of tlsAccept. */
export interface TlsAcceptOptions {
  /** Milliseconds the handshake may take. Default: the context's (10,000). */
  readonly handshakeTimeout?: number;
  /**
   * What a plain-HTTP request to this TLS server gets: 'close' (the default) closes the
   * connection; 'hand-over' leaves it open in TlsPlainHttpError.stream so an HTTP server can
   * answer 400 ("plain HTTP request was sent to HTTPS port") and close it itself.
   */
  readonly plainHttp?: 'close' | 'hand-over';
  /**
   * Let the io_uring ring carry the session (in-ring TLS) when `stream` is a uring driver stream
   * that nothing has read from yet: decryption in the completion drain, encryption in the flush.
   * Default: on, unless the environment says LOCH_TLS_RING=0. Off, or on any other stream, the
   * engine is fed from JavaScript. The TlsStream behaves the same either way.
   */
  readonly ring?: boolean;
}

/** Options of tlsConnect. */
export interface TlsConnectOptions {
  /**
   * The server's name: sent as SNI (unless it is an IP address) and, when the context verifies,
   * the name (or IP) the certificate must be issued for.
   */
  readonly servername: string;
  /** ALPN protocols to offer on this connection. Default: the context's. */
  readonly alpn?: readonly string[];
  /**
   * A session to resume (TlsStream.session of an earlier connection is not needed: the context
   * keeps the latest one per server name). `false` forbids resumption for this connection.
   */
  readonly session?: Uint8Array | false;
  /** Milliseconds the handshake may take. Default: the context's (10,000). */
  readonly handshakeTimeout?: number;
  /** In-ring TLS on a uring stream; see TlsAcceptOptions.ring. */
  readonly ring?: boolean;
}

/** In-ring TLS unless LOCH_TLS_RING=0 (read once). */
const RING_DEFAULT = process.env.LOCH_TLS_RING !== '0';

/** The handshake deadline's error (one function for every connection: no closure per handshake). */
function timeoutError(timeout: number, address: SocketAddress | undefined): TlsTimeoutError {
  return new TlsTimeoutError(timeout, { address });
}

/** The server options made last: every accept of a listener asks for the same ones. */
let lastServerOptions: OpenOptions | undefined;

/**
 * The options of a server handshake, shared by the handshakes that ask for the same (they are
 * read-only): one object per listener's settings rather than one per connection.
 */
function serverOptions(handshakeTimeout: number, handOverPlainHttp: boolean, ring: boolean): OpenOptions {
  const last = lastServerOptions;
  if (
    last !== undefined &&
    last.handshakeTimeout === handshakeTimeout &&
    last.handOverPlainHttp === handOverPlainHttp &&
    last.ring === ring
  ) {
    return last;
  }
  lastServerOptions = {
    server: true,
    handshakeTimeout,
    handOverPlainHttp,
    onSession: undefined,
    timeoutError,
    ring,
  };
  return lastServerOptions;
}

/**
 * The server side of a handshake over `stream` (just accepted). Resolves with the TlsStream when
 * the handshake is done; rejects with TlsHandshakeError, TlsCertificateError (mTLS), TlsAlertError,
 * TlsTimeoutError or TlsPlainHttpError, after closing `stream` (except a plain-HTTP request
 * handed over). Only this connection is affected.
 */
export function tlsAccept(
  stream: ByteStream,
  context: TlsServerContext,
  options: TlsAcceptOptions = {},
): Promise<TlsStream> {
  let session: NativeTlsSession | undefined;
  try {
    const engine = tlsEngine();
    session = new engine.TlsSession(nativeContext(context));
    const timeout = options.handshakeTimeout ?? context.handshakeTimeout;
    const open = serverOptions(timeout, options.plainHttp === 'hand-over', options.ring ?? RING_DEFAULT);
    return openTlsStream(stream, engine, session, open);
  } catch (error) {
    return refuse(stream, session, error);
  }
}

/**
 * The client side of a handshake over `stream` (just connected). Resolves with the TlsStream when
 * the handshake is done; rejects with TlsCertificateError (untrusted chain, wrong host name),
 * TlsHandshakeError, TlsAlertError or TlsTimeoutError after closing `stream` (TlsConfigError for
 * a bad servername or ALPN list, also after closing it). With TLS 1.3 a server's refusal of the
 * client's certificate arrives after this resolves: the first read then fails with TlsAlertError.
 */
export function tlsConnect(
  stream: ByteStream,
  context: TlsClientContext,
  options: TlsConnectOptions,
): Promise<TlsStream> {
  let session: NativeTlsSession | undefined;
  try {
    const servername = options.servername;
    if (typeof servername !== 'string' || servername.length === 0) {
      throw new TlsConfigError('tlsConnect: servername is required (SNI and certificate check)');
    }
    const engine = tlsEngine();
    session = new engine.TlsSession(nativeContext(context));
    if (!session.setServername(servername, context.verify)) {
      throw new TlsConfigError(`tlsConnect: cannot use ${JSON.stringify(servername)} as server name`);
    }
    const alpn = options.alpn ?? context.alpn;
    if (options.alpn !== undefined && !session.setAlpn(encodeAlpn(options.alpn))) {
      throw new TlsConfigError('tlsConnect: cannot set the ALPN offer');
    }
    const key = `${isIP(servername) === 0 ? servername.toLowerCase() : servername}\0${alpn.join(',')}`;
    const resume = options.session === undefined ? context.sessionFor(key) : options.session;
    if (resume instanceof Uint8Array) session.setSession(resume);
    const timeout = options.handshakeTimeout ?? context.handshakeTimeout;
    return openTlsStream(stream, engine, session, {
      server: false,
      handshakeTimeout: timeout,
      handOverPlainHttp: false,
      onSession: options.session === false ? undefined : (bytes) => context.keepSession(key, bytes),
      timeoutError,
      ring: options.ring ?? RING_DEFAULT,
    });
  } catch (error) {
    return refuse(stream, session, error);
  }
}

/** A handshake that could not start: frees the session, closes the stream, rejects. */
function refuse(stream: ByteStream, session: NativeTlsSession | undefined, error: unknown): Promise<never> {
  session?.destroy();
  return stream.close().then(
    () => Promise.reject(error),
    () => Promise.reject(error),
  );
}
