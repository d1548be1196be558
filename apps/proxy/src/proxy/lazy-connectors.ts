/**
 * The upstream connectors a config may never use, imported at their first use rather than with
 * the worker: TLS for `https` upstreams (@loch/transports/tls, and @loch/tls under it) and
 * HTTP/2 for `upstream_http_version = "http2"` or `"auto"` routes (@loch/transports/h2, and
 * @loch/http's h2 client under it). A worker whose upstreams are all plain HTTP/1.1 loads
 * neither (issue 18, bench/idle-memory/readings-2026-12-06d.md). The first exchange that needs
 * one waits for its import (lazy-module.ts); a failed import fails that exchange as a connect
 * failure (502) and the next one imports again. Later exchanges go straight through: no promise
 * of their own. Not for the HTTP/1.1 pool or the request path (upstream.ts).
 */
import type { HttpRequest, HttpResponse, HttpStream } from '@loch/http';
import {
  ConnectError,
  type ConnectOptions,
  type Connector,
  type Endpoint,
  formatL4Address,
  type H2ConnectorOptions,
  type RequestOptions,
} from '@loch/transports';
import type { H2Connector } from '@loch/transports/h2';
import type { TlsConnector } from '@loch/transports/tls';
import type { ByteStream } from '@loch/uring-runtime';
import { lazyModule } from '../lazy-module.js';

/** TlsConnector's module, imported at the first `https` connect. */
const TLS = lazyModule(() => import('@loch/transports/tls'));
/** H2Connector's module, imported at the first HTTP/2 exchange. */
const H2 = lazyModule(() => import('@loch/transports/h2'));

/**
 * TlsConnector's contract (`https` endpoints get TLS over `inner`'s streams, `http` ones pass
 * through untouched) with the TLS code imported at the first `https` connect.
 */
export class LazyTlsConnector<K extends Endpoint = Endpoint> implements Connector<K, ByteStream> {
  readonly #inner: Connector<K, ByteStream>;
  #tls: TlsConnector<K> | undefined;

  constructor(inner: Connector<K, ByteStream>) {
    this.#inner = inner;
  }

  connect(key: K, options?: ConnectOptions): Promise<ByteStream> {
    if (key.scheme !== 'https' || key.tls === undefined) return this.#inner.connect(key, options);
    const tls = this.#tls;
    if (tls !== undefined) return tls.connect(key, options);
    return TLS.load().then(
      (m) => {
        this.#tls ??= new m.TlsConnector(this.#inner);
        return this.#tls.connect(key, options);
      },
      (error: unknown) => {
        throw new ConnectError(
          'ERR_TRANSPORT_TLS_FAILED',
          'connect',
          `cannot load the TLS code: ${(error as Error)?.message ?? String(error)}`,
          { cause: error, address: formatL4Address(key.address) },
        );
      },
    );
  }
}

/**
 * H2Connector's request() and close() with the HTTP/2 code imported at the first request. The
 * connector itself is made then, over `l4` with `options`.
 */
export class LazyH2Connector<K extends Endpoint = Endpoint> {
  readonly #l4: Connector<K, HttpStream>;
  readonly #options: H2ConnectorOptions;
  #h2: H2Connector<K> | undefined;

  constructor(l4: Connector<K, HttpStream>, options: H2ConnectorOptions = {}) {
    this.#l4 = l4;
    this.#options = options;
  }

  /** H2Connector.request (its options' hooks apply to an import failure too: onError). */
  request(key: K, request: HttpRequest, options?: RequestOptions): Promise<HttpResponse> {
    const h2 = this.#h2;
    if (h2 !== undefined) return h2.request(key, request, options);
    return H2.load().then(
      (m) => {
        this.#h2 ??= new m.H2Connector(this.#l4, this.#options);
        return this.#h2.request(key, request, options);
      },
      (error: unknown) => {
        const failure = new ConnectError(
          'ERR_TRANSPORT_CONNECT_FAILED',
          'connect',
          `cannot load the HTTP/2 code: ${(error as Error)?.message ?? String(error)}`,
          { cause: error, address: formatL4Address(key.address) },
        );
        throw options?.onError === undefined ? failure : options.onError(failure, key);
      },
    );
  }

  /** H2Connector.close: idle sessions close now, busy ones after their last stream (none before the import). */
  close(): void {
    this.#h2?.close();
  }
}

/**
 * Whether `cause` is H2Connector's H2NotNegotiatedError (the `https` upstream chose HTTP/1.1 by
 * ALPN): only an H2Connector makes one, so the module is loaded whenever it is.
 */
export function isH2NotNegotiated(cause: unknown): boolean {
  const h2 = H2.loaded;
  return h2 !== undefined && cause instanceof h2.H2NotNegotiatedError;
}
