/**
 * ProxyHeaderConnector: writes a PROXY protocol header (haproxy's `send-proxy` /
 * `send-proxy-v2`) as the first bytes of each new connection whose key carries one, before
 * anything stacked above speaks (a TlsConnector above it sends its ClientHello after the
 * header, as the receiver's accept order wants). Keys without a header pass through untouched.
 *
 * The header names one client, so a connection that sent it belongs to that client: a key with
 * a header must have an `id` of its own per header (see `withProxyHeader`), so that the pool
 * never hands the connection to another client. Not for choosing the addresses: the caller
 * knows the client (ConnectionFacts.clientAddress) and encodes the header.
 */
import type { ByteStream } from '@loch/uring-runtime';
import type { ConnectOptions, Connector } from './connector.js';
import { ConnectError } from './errors.js';
import { type Endpoint, formatL4Address } from './key.js';

/** A key that may carry the header to send first (bytes from encodeProxyHeader). */
export interface ProxyHeaderKey {
  readonly proxyHeader?: Uint8Array | undefined;
}

/**
 * The endpoint `key` with `header` to send first, under an id of its own (the base id plus the
 * header's bytes), so pooled connections are reused only by a request whose header is the same:
 * the same client address and port, i.e. in practice the same client connection.
 */
export function withProxyHeader<K extends Endpoint>(key: K, header: Uint8Array): K & ProxyHeaderKey {
  return { ...key, id: `${key.id}|proxy:${Buffer.from(header).toString('base64')}`, proxyHeader: header };
}

/** Writes `key.proxyHeader` first on every connection `inner` makes for such a key. */
export class ProxyHeaderConnector<K extends Endpoint & ProxyHeaderKey = Endpoint & ProxyHeaderKey>
  implements Connector<K, ByteStream>
{
  readonly #inner: Connector<K, ByteStream>;

  constructor(inner: Connector<K, ByteStream>) {
    this.#inner = inner;
  }

  async connect(key: K, options?: ConnectOptions): Promise<ByteStream> {
    const stream = await this.#inner.connect(key, options);
    const header = key.proxyHeader;
    if (header === undefined) return stream;
    try {
      await stream.writeAll(header, options?.signal === undefined ? undefined : { signal: options.signal });
    } catch (error) {
      void stream.close().catch(() => {});
      throw new ConnectError(
        'ERR_TRANSPORT_CONNECT_FAILED',
        'connect',
        `sending the PROXY protocol header: ${(error as Error)?.message ?? String(error)}`,
        { cause: error, address: formatL4Address(key.address) },
      );
    }
    return stream;
  }
}
