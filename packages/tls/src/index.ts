/**
 * @loch/tls: TLS streams for Loch on the OpenSSL that the node binary exports (the engine lives
 * in @loch/native, fed from caller memory). A TlsStream wraps any ByteStream of @loch/uring-runtime
 * (TCP or Unix, io_uring or legacy driver) and is one itself, so HTTP, Thrift and the proxy read
 * and write it like TCP. Server: SNI certificates, ALPN, tickets with shared keys, mTLS. Client:
 * verification, SNI, ALPN, resumption. Not for sockets or connection pools (@loch/transports).
 */
export {
  encodeAlpn,
  generateTicketKeys,
  rotatedTicketKeys,
  TICKET_KEY_BYTES,
  type TlsCertificateOptions,
  TlsClientContext,
  type TlsClientContextOptions,
  type TlsCommonOptions,
  type TlsRecordLayer,
  TlsServerContext,
  type TlsServerContextOptions,
  type TlsVersion,
} from './context.js';
export {
  TlsAlertError,
  TlsCertificateError,
  TlsConfigError,
  TlsError,
  type TlsErrorOptions,
  TlsHandshakeError,
  TlsPlainHttpError,
  TlsProtocolError,
  TlsTimeoutError,
} from './errors.js';
export { type TlsAcceptOptions, type TlsConnectOptions, tlsAccept, tlsConnect } from './handshake.js';
export { TlsStream } from './stream.js';
