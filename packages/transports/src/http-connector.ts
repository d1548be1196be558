/**
 * HttpConnector: HTTP/1.1 over any L4 connector (TCP, Unix, later TLS), with the connection
 * pool. `request(key, req)` takes an idle connection (checked alive) or connects, sends one
 * request, and streams the response; the connection returns to the pool when the body was read
 * to its end. A request that fails on a reused connection before any response byte is retried
 * once on a new connection when it is idempotent and its body can be sent again. Reload: a
 * rebuilt service's connector adopts the old one's idle connections (`adoptIdleFrom`).
 * Not for routing, load balancing or rewriting requests: the proxy does that.
 */
import {
  FixedBody,
  type H1Limits,
  type HttpBody,
  type HttpRequest,
  type HttpResponse,
  type HttpStream,
} from '@loch/http';
import type { ConnectOptions, Connector } from './connector.js';
import { AbortedError } from './errors.js';
import { type ExchangeOptions, HttpConnection } from './http-connection.js';
import { type Endpoint, formatL4Address } from './key.js';
import { ConnectionPool, type PoolOptions, type PoolStats } from './pool.js';
import { busyError, type LimitedKey, type LimitWaiter, type UpstreamLimit } from './upstream-limit.js';

/** HttpConnector settings. */
export interface HttpConnectorOptions {
  /** Pool settings (maxIdlePerKey, idleTimeout, reuse); the liveness check is the connector's own. */
  readonly pool?: Omit<PoolOptions<HttpConnection>, 'isAlive'>;
  /** Default connect deadline (ms) when a request gives none; 0 = the L4 connector's. Default 10 s. */
  readonly connectTimeout?: number;
  /** Default read timeout (ms): response head wait and gap between body reads. 0 = none. Default 60 s. */
  readonly readTimeout?: number;
  /**
   * Default write deadline (ms) of a request's head and body, as nginx's proxy_send_timeout: an
   * idle-progress deadline (the request is cut when the upstream took none of its bytes for this
   * long, never because one large write took longer while the upstream kept reading);
   * WriteError ERR_TRANSPORT_WRITE_TIMEOUT. 0 = none. Default 60 s.
   */
  readonly writeTimeout?: number;
  /** Response head limits. */
  readonly limits?: Partial<H1Limits>;
  /** Retry idempotent requests that fail on a reused connection before any response byte. Default true. */
  readonly retryIdempotent?: boolean;
}

/** Options of one request. */
export interface RequestOptions extends ExchangeOptions {
  /** Connect deadline (ms) if a new connection is needed. */
  readonly connectTimeout?: number | undefined;
}

/** Pool counters plus the connector's own. */
export interface HttpConnectorStats extends PoolStats {
  /** Requests sent again on a new connection after a reused one failed before the response. */
  retried: number;
}

const NO_REQUEST_OPTIONS: RequestOptions = {};

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Whether `request` may be sent twice: idempotent method, and a body that can be replayed. */
export function isReplayable(request: Pick<HttpRequest, 'method' | 'body'>): boolean {
  return IDEMPOTENT.has(request.method) && replayableBody(request.body);
}

function replayableBody(body: HttpBody): boolean {
  return body.kind === 'empty' || body instanceof FixedBody;
}

/**
 * HTTP/1.1 connections from an L4 connector, pooled per Endpoint id. It is also the
 * ConnectionOwner of the connections it hands out (an internal contract, so not named in the
 * published types).
 */
export class HttpConnector<K extends Endpoint = Endpoint> implements Connector<K, HttpConnection<K>> {
  /** The pool of idle connections (stats, idleCount). */
  readonly pool: ConnectionPool<K, HttpConnection<K>>;
  readonly #l4: Connector<K, HttpStream>;
  readonly #connectTimeout: number;
  readonly #readTimeout: number;
  readonly #writeTimeout: number;
  readonly #limits: Partial<H1Limits> | undefined;
  readonly #retry: boolean;
  #retried = 0;

  /** `l4` makes the streams: a UnifiedL4Connector, a TcpConnector, later a TlsConnector over one. */
  constructor(l4: Connector<K, HttpStream>, options: HttpConnectorOptions = {}) {
    this.#l4 = l4;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#readTimeout = options.readTimeout ?? 60_000;
    this.#writeTimeout = options.writeTimeout ?? 60_000;
    this.#limits = options.limits;
    this.#retry = options.retryIdempotent ?? true;
    this.pool = new ConnectionPool<K, HttpConnection<K>>({ ...options.pool, isAlive: (c) => c.alive });
  }

  /**
   * A connection to `key`: an idle one that is still alive, else a new one. It carries one
   * exchange (`send`), then goes back to the pool by itself; call `release()` if unused.
   */
  async connect(key: K, options?: ConnectOptions): Promise<HttpConnection<K>> {
    return this.#takeIdle(key) ?? (await this.#connectNew(key, options?.signal, options?.timeout));
  }

  /**
   * Sends `request` to `key` and resolves with the response at its head; the body streams.
   * Read the body to its end (or `return()` it) to release the connection. Rejects with a
   * TransportError: ConnectError (refused 502, timeout 504), WriteError/ReadError (reset,
   * closed, read timeout 504), ProtocolError (invalid response), AbortedError (signal).
   */
  request(key: K, request: HttpRequest, options: RequestOptions = NO_REQUEST_OPTIONS): Promise<HttpResponse> {
    const limit = (key as LimitedKey).limit;
    if (limit !== undefined) return this.#requestLimited(limit, key, request, options);
    // An idle connection is taken synchronously; only a new connection costs a connect's wait.
    const idle = this.#takeIdle(key);
    if (idle !== undefined) return idle.exchange(key, request, options, this.#retry);
    return this.#sendOnNew(key, request, options, undefined);
  }

  /** @internal ConnectionOwner: a reused connection failed before any response byte. */
  retryExchange(key: K, request: HttpRequest, options: RequestOptions): Promise<HttpResponse> | null {
    if (!isReplayable(request)) return null;
    this.#retried++;
    // The same request goes on: it takes its slot again (released with the failed connection)
    // without queueing behind others.
    const limit = (key as LimitedKey).limit;
    if (limit !== undefined) limit.inUse++;
    return this.#sendOnNew(key, request, options, limit);
  }

  /**
   * `request` for a key with an UpstreamLimit: with a slot free, as usual (the connection holds
   * the slot until released); at the cap, queued until a slot frees (up to the connect
   * deadline) or refused at once when the queue is full: ERR_TRANSPORT_UPSTREAM_BUSY.
   */
  #requestLimited(
    limit: UpstreamLimit,
    key: K,
    request: HttpRequest,
    options: RequestOptions,
  ): Promise<HttpResponse> {
    if (limit.tryAcquire()) return this.#requestHolding(limit, key, request, options);
    const mapped = (error: unknown) => (options.onError === undefined ? error : options.onError(error, key));
    const address = formatL4Address(key.address);
    return new Promise<HttpResponse>((resolve, reject) => {
      const signal = options.signal;
      const onAbort = () => {
        if (limit.remove(waiter))
          reject(
            mapped(
              new AbortedError('ERR_TRANSPORT_ABORTED', 'connect', 'aborted waiting for a connection', {
                cause: signal?.reason,
                address,
              }),
            ),
          );
      };
      const waiter: LimitWaiter = {
        start: () =>
          queueMicrotask(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve(this.#requestHolding(limit, key, request, options));
          }),
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(mapped(error));
        },
        timer: undefined,
      };
      const deadline = options.connectTimeout ?? this.#connectTimeout;
      if (!limit.enqueue(waiter, deadline, address)) {
        reject(
          mapped(busyError(address, `${limit.maxConnections} connections in use, ${limit.pending} waiting`)),
        );
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sends with a slot of `limit` taken: the connection used holds it until released. */
  #requestHolding(
    limit: UpstreamLimit,
    key: K,
    request: HttpRequest,
    options: RequestOptions,
  ): Promise<HttpResponse> {
    const idle = this.#takeIdle(key);
    if (idle !== undefined) {
      idle.heldLimit = limit;
      return idle.exchange(key, request, options, this.#retry);
    }
    return this.#sendOnNew(key, request, options, limit);
  }

  async #sendOnNew(
    key: K,
    request: HttpRequest,
    options: RequestOptions,
    limit: UpstreamLimit | undefined,
  ): Promise<HttpResponse> {
    let conn: HttpConnection<K>;
    try {
      conn = await this.#connectNew(key, options.signal, options.connectTimeout);
    } catch (error) {
      limit?.release();
      throw options.onError === undefined ? error : options.onError(error, key);
    }
    conn.heldLimit = limit;
    return conn.exchange(key, request, options, false);
  }

  /** Counters: pool gauges and totals, and retries. */
  stats(): HttpConnectorStats {
    return { ...this.pool.stats(), retried: this.#retried };
  }

  /**
   * Takes over the idle connections of the connector being replaced (hot reload: call from
   * MakeService.make(old)). Connections in use stay with `old` and close when released there
   * after `old.close()`.
   */
  adoptIdleFrom(old: HttpConnector<K>): number {
    return this.pool.adoptIdleFrom(old.pool, (conn) => conn.adopt(this));
  }

  /** Closes idle connections; connections in use close when their exchange ends. */
  close(): void {
    this.pool.close();
  }

  /** @internal ConnectionOwner */
  releaseConnection(conn: HttpConnection<K>, reusable: boolean): void {
    if (reusable) conn.watchIdle();
    this.pool.release(conn.key, conn, reusable);
    // After the pool took it back, so a waiter given the slot can reuse this connection.
    const held = conn.heldLimit;
    if (held !== undefined) {
      conn.heldLimit = undefined;
      held.release();
    }
  }

  /** @internal ConnectionOwner */
  idleConnectionDied(conn: HttpConnection<K>): void {
    this.pool.removeIdle(conn.key, conn);
  }

  #takeIdle(key: K): HttpConnection<K> | undefined {
    const conn = this.pool.acquire(key);
    if (conn !== undefined) conn.handOut(this, true);
    return conn;
  }

  async #connectNew(
    key: K,
    signal: AbortSignal | undefined,
    timeout: number | undefined,
  ): Promise<HttpConnection<K>> {
    const ms = timeout ?? this.#connectTimeout;
    const stream = await this.#l4.connect(key, { signal, ...(ms > 0 ? { timeout: ms } : {}) });
    const conn = new HttpConnection<K>(key, stream, this, {
      readTimeout: this.#readTimeout,
      writeTimeout: this.#writeTimeout,
      ...(this.#limits !== undefined ? { limits: this.#limits } : {}),
    });
    this.pool.created(key, conn);
    conn.handOut(this, false);
    return conn;
  }
}
