/**
 * TlsConnector: TLS on top of any L4 connector (monoio-transports' stacking), for `https`
 * endpoints; `http` endpoints pass through untouched, so one stack serves both. The handshake
 * (SNI and name check from the endpoint's `tls.serverName`, its ALPN offer, session resumption
 * from the client context's cache) runs under the connect deadline; a failure is a ConnectError
 * `ERR_TRANSPORT_TLS_FAILED` (502) carrying the typed TLS error as its cause. One client context
 * per (verify, CA) profile, made on first use and kept. Not for pooling: HttpConnector pools
 * what this returns, keyed by the endpoint id (which names every TLS parameter).
 */
import { readFileSync } from 'node:fs';
import { TlsClientContext, tlsConnect } from '@loch/tls';
import type { ByteStream } from '@loch/uring-runtime';
import type { ConnectOptions, Connector } from './connector.js';
import { ConnectError } from './errors.js';
import { type Endpoint, formatL4Address } from './key.js';

/** TlsConnector options. */
export interface TlsConnectorOptions {
  /** Handshake deadline in ms when the connect has none of its own. Default 10 s. */
  readonly handshakeTimeout?: number;
  /** Sessions kept per profile for resumption (TlsClientContext.sessionCacheSize). Default 256. */
  readonly sessionCacheSize?: number;
}

/** TLS for `https` endpoints over `inner`'s streams. */
export class TlsConnector<K extends Endpoint = Endpoint> implements Connector<K, ByteStream> {
  readonly #inner: Connector<K, ByteStream>;
  readonly #options: TlsConnectorOptions;
  readonly #contexts = new Map<string, TlsClientContext>();

  constructor(inner: Connector<K, ByteStream>, options: TlsConnectorOptions = {}) {
    this.#inner = inner;
    this.#options = options;
  }

  async connect(key: K, options?: ConnectOptions): Promise<ByteStream> {
    const stream = await this.#inner.connect(key, options);
    const tls = key.tls;
    if (key.scheme !== 'https' || tls === undefined) return stream;
    let context: TlsClientContext;
    try {
      context = this.#context(tls.verify, tls.ca);
    } catch (error) {
      void stream.close().catch(() => {});
      throw tlsFailure(key, error);
    }
    try {
      return await tlsConnect(stream, context, {
        servername: tls.serverName,
        alpn: tls.alpn,
        handshakeTimeout: options?.timeout ?? this.#options.handshakeTimeout ?? 10_000,
      });
    } catch (error) {
      // tlsConnect closed the stream.
      throw tlsFailure(key, error);
    }
  }

  /** The client context of a profile (one per verify mode and CA bundle). */
  #context(verify: boolean, ca: string): TlsClientContext {
    const id = `${verify ? 1 : 0}|${ca}`;
    let context = this.#contexts.get(id);
    if (context === undefined) {
      context = new TlsClientContext({
        verify,
        ca: ca === 'system' ? 'system' : readFileSync(ca, 'utf8'),
        ...(this.#options.sessionCacheSize === undefined
          ? {}
          : { sessionCacheSize: this.#options.sessionCacheSize }),
      });
      this.#contexts.set(id, context);
    }
    return context;
  }
}

function tlsFailure(key: Endpoint, error: unknown): ConnectError {
  return new ConnectError(
    'ERR_TRANSPORT_TLS_FAILED',
    'connect',
    `TLS with ${key.tls?.serverName ?? key.authority}: ${(error as Error)?.message ?? String(error)}`,
    { cause: error, address: formatL4Address(key.address) },
  );
}
