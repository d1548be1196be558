/**
 * @loch/transports: stackable connectors (TCP, Unix, unified L4, TLS, HTTP/1.1, HTTP/2) and the
 * connection pools (monoio-transports for Loch). Public surface only; src/internal/ is not
 * exported. TlsConnector is @loch/transports/tls, H2Connector @loch/transports/h2.
 */
export {
  type ConnectOptions,
  type Connector,
  connectError,
  type L4ConnectorOptions,
  type L4Target,
  l4AddressOf,
  TcpConnector,
  type TcpConnectorOptions,
  type TcpTarget,
  UnifiedL4Connector,
  type UnifiedTarget,
  UnixConnector,
  type UnixTarget,
} from './connector.js';
export {
  AbortedError,
  ConnectError,
  InvalidAddressError,
  ProtocolError,
  ReadError,
  TransportError,
  type TransportErrorCode,
  type TransportPhase,
  WriteError,
} from './errors.js';
// The TLS and HTTP/2 connectors are the subpaths @loch/transports/tls and @loch/transports/h2
// (they load @loch/tls and @loch/http's HTTP/2 client): a process that speaks neither loads
// neither. Their option and stats types are here too (no code).
export type { H2ConnectorOptions, H2ConnectorStats } from './h2-connector.js';
export { type ExchangeOptions, HttpConnection } from './http-connection.js';
export {
  HttpConnector,
  type HttpConnectorOptions,
  type HttpConnectorStats,
  isReplayable,
  type RequestOptions,
} from './http-connector.js';
export {
  type Endpoint,
  type EndpointInit,
  type EndpointScheme,
  endpoint,
  formatL4Address,
  type L4Address,
  parseL4Address,
  type TcpAddress,
  type TlsParams,
  type UnixAddress,
} from './key.js';
export { ConnectionPool, type Poolable, type PoolKey, type PoolOptions, type PoolStats } from './pool.js';
export {
  crc32c,
  DEFAULT_MAX_V2_LENGTH,
  type DecodedProxyHeader,
  decodeProxyHeader,
  encodeProxyHeader,
  PP2_TYPE,
  type ProxyHeader,
  type ProxyHeaderInit,
  ProxyProtocolError,
  type ProxyProtocolErrorCode,
  type ProxyTlv,
  V1_MAX_LENGTH,
  V2_SIGNATURE,
} from './proxy-protocol.js';
export { ProxyHeaderConnector, type ProxyHeaderKey, withProxyHeader } from './proxy-protocol-connector.js';
export {
  type ProxyProtocolAcceptOptions,
  ProxyProtocolStream,
  proxyProtocolAccept,
} from './proxy-protocol-stream.js';
export {
  type Multiplexed,
  PoolError,
  type PoolErrorCode,
  type SharedAcquireOptions,
  SharedConnectionPool,
  type SharedPoolOptions,
  type SharedPoolStats,
} from './shared-pool.js';
export type { TlsConnectorOptions } from './tls-connector.js';
export { type LimitedKey, type LimitWaiter, UpstreamLimit } from './upstream-limit.js';
