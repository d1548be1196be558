/**
 * H2Connector: HTTP/2 over any L4 connector, with sessions shared between callers from a
 * SharedConnectionPool per Endpoint (RFC 9113 §9.1: one connection per origin, a few when the
 * server's stream limit is low). `https` endpoints speak h2 chosen by ALPN (a TlsConnector below
 * offers the endpoint's `alpn`, which must include `h2`; a server that picks anything else is a
 * ConnectError), `http` endpoints h2c by prior knowledge. A request the server never processed
 * (REFUSED_STREAM, above a GOAWAY's last-stream-id, or the session ended before it was sent) is
 * sent again on another connection when its body can be replayed; a session that announced
 * GOAWAY drains (its streams finish) while new requests go to a new one. Errors come out as
 * TransportErrors, as HttpConnector's do, so a proxy maps both the same way.
 * Not for HTTP/1.1 (HttpConnector) nor for choosing between the two (the caller decides per
 * upstream).
 */
import {
  FixedBody,
  H2ClientSession,
  type Http2ClientOptions,
  Http2RequestRefusedError,
  HttpAbortedError,
  type HttpBody,
  type HttpExchangeCancel,
  type HttpRequest,
  HttpRequestBodyError,
  type HttpResponse,
  type HttpStream,
  HttpTimeoutError,
} from '@loch/http';
import type { Connector } from './connector.js';
import {
  AbortedError,
  ConnectError,
  ReadError,
  type TransportError,
  timeoutError,
  WriteError,
} from './errors.js';
import type { RequestOptions } from './http-connector.js';
import { type Endpoint, formatL4Address } from './key.js';
import { SharedConnectionPool, type SharedPoolOptions, type SharedPoolStats } from './shared-pool.js';

/** H2Connector settings. */
export interface H2ConnectorOptions {
  /** Shared pool settings (maxConnectionsPerKey, maxWaiting, idleTimeout). */
  readonly pool?: Omit<SharedPoolOptions<Endpoint, H2ClientSession>, 'connect'>;
  /** Connect deadline (ms) when a request gives none; 0 = the L4 connector's. Default 10 s. */
  readonly connectTimeout?: number;
  /** Default read timeout (ms): response head wait and gap between body reads. 0 = none. Default 60 s. */
  readonly readTimeout?: number;
  /**
   * Write deadline (ms) of a session's frames, as nginx's proxy_send_timeout: an idle-progress
   * deadline (the session is cut when the upstream took none of its bytes for this long).
   * WriteError ERR_TRANSPORT_WRITE_TIMEOUT. 0 = none. Default 60 s.
   */
  readonly writeTimeout?: number;
  /** HTTP/2 settings of the sessions. */
  readonly http2?: Http2ClientOptions['http2'];
  /** How many times a never-processed request is sent again on another connection. Default 2. */
  readonly maxRetries?: number;
}

/**
 * The cause of the ConnectError an `https` endpoint fails with when its server's ALPN choice is
 * not `h2` (`alpnProtocol`: what it chose, or null). The request was not sent: a caller that
 * offered `http/1.1` too may send it over HTTP/1.1 instead (loch's `upstream_http_version =
 * "auto"`).
 */
export class H2NotNegotiatedError extends Error {
  override readonly name = 'H2NotNegotiatedError';
  readonly code = 'ERR_TRANSPORT_H2_NOT_NEGOTIATED';
  constructor(readonly alpnProtocol: string | null) {
    super(`upstream did not choose h2 by ALPN (got ${alpnProtocol ?? 'none'})`);
  }
}

/** Shared pool counters plus the connector's own. */
export interface H2ConnectorStats extends SharedPoolStats {
  /** Requests sent again after a server said it never processed them. */
  retried: number;
}

const NO_OPTIONS: RequestOptions = {};

/** Whether a body can be sent twice (held in memory, or none). */
function replayable(body: HttpBody): boolean {
  return body.kind === 'empty' || body instanceof FixedBody;
}

/** HTTP/2 sessions from an L4 connector, shared per Endpoint id. */
export class H2Connector<K extends Endpoint = Endpoint> {
  /** The shared pool of sessions (stats, counts). */
  readonly pool: SharedConnectionPool<K, H2ClientSession>;
  readonly #l4: Connector<K, HttpStream>;
  readonly #connectTimeout: number;
  readonly #readTimeout: number;
  readonly #writeTimeout: number | undefined;
  readonly #http2: Http2ClientOptions['http2'];
  readonly #maxRetries: number;
  #retried = 0;

  /** `l4` makes the streams: a TlsConnector over a UnifiedL4Connector for `https`, any L4 connector for h2c. */
  constructor(l4: Connector<K, HttpStream>, options: H2ConnectorOptions = {}) {
    this.#l4 = l4;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#readTimeout = options.readTimeout ?? 60_000;
    this.#writeTimeout = options.writeTimeout;
    this.#http2 = options.http2;
    this.#maxRetries = options.maxRetries ?? 2;
    this.pool = new SharedConnectionPool<K, H2ClientSession>({
      ...(options.pool as Omit<SharedPoolOptions<K, H2ClientSession>, 'connect'> | undefined),
      connect: (key) => this.#connect(key),
    });
  }

  /**
   * Sends `request` to `key` on a shared session and resolves with the response at its head;
   * the body streams (read it to its end or `return()` it to free the stream slot). Rejects with
   * a TransportError: ConnectError (refused 502, timeout 504, no h2 by ALPN 502), WriteError,
   * ReadError (reset, closed, read timeout 504; `retryable` when the server never processed it
   * and retries are spent), AbortedError (signal), or the pool's PoolError.
   */
  async request(key: K, request: HttpRequest, options: RequestOptions = NO_OPTIONS): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      let session: H2ClientSession;
      try {
        session = this.pool.tryAcquire(key) ?? (await this.pool.acquire(key, { signal: options.signal }));
      } catch (error) {
        throw options.onError === undefined ? error : options.onError(error, key);
      }
      try {
        const response = await this.#exchange(session, key, request, options);
        return options.onResponse === undefined ? response : options.onResponse(response, key);
      } catch (error) {
        if (
          error instanceof Http2RequestRefusedError &&
          attempt < this.#maxRetries &&
          replayable(request.body)
        ) {
          this.#retried++;
          continue;
        }
        const mapped = mapError(error, 'response', key, options.signal);
        throw options.onError === undefined ? mapped : options.onError(mapped, key);
      }
    }
  }

  /** One exchange on `session`; its stream slot is given back when the response ends. */
  #exchange(
    session: H2ClientSession,
    key: K,
    request: HttpRequest,
    options: RequestOptions,
  ): Promise<HttpResponse> {
    const read = options.readTimeout ?? this.#readTimeout;
    const sendOptions = { signal: options.signal, responseTimeout: read, bodyTimeout: read };
    return new Promise<HttpResponse>((resolve, reject) => {
      const release = (): void => {
        this.pool.release(session);
      };
      let exchange: HttpExchangeCancel;
      try {
        exchange = session.exchange(request, sendOptions, {
          onResponse: (response) => {
            if (response.body.kind === 'empty' && response.body.trailers === null) {
              release();
              // An empty body may still be a stream's (HEAD): iterating it ends it.
            }
            response.body = new ReleasingBody(response.body, release, key, options.signal);
            resolve(response);
          },
          onFailure: (error) => {
            release();
            reject(error);
          },
        });
      } catch (error) {
        release();
        reject(error);
        return;
      }
      options.onExchange?.(request, exchange);
    });
  }

  /** Counters: the shared pool's gauges and totals, and retries. */
  stats(): H2ConnectorStats {
    return { ...this.pool.stats(), retried: this.#retried };
  }

  /** Takes over the sessions of the connector being replaced (hot reload), streams in flight included. */
  adoptFrom(old: H2Connector<K>): number {
    return this.pool.adoptFrom(old.pool);
  }

  /** Closes idle sessions; sessions with streams close when their last one ends. */
  close(): void {
    this.pool.close();
  }

  async #connect(key: K): Promise<H2ClientSession> {
    const ms = this.#connectTimeout;
    const stream = await this.#l4.connect(key, ms > 0 ? { timeout: ms } : {});
    if (key.scheme === 'https' && stream.facts?.alpnProtocol !== 'h2') {
      void stream.close().catch(() => {});
      const cause = new H2NotNegotiatedError(stream.facts?.alpnProtocol ?? null);
      throw new ConnectError('ERR_TRANSPORT_CONNECT_FAILED', 'connect', cause.message, {
        address: formatL4Address(key.address),
        cause,
      });
    }
    const session: H2ClientSession = new H2ClientSession(stream, {
      authority: key.authority,
      scheme: key.scheme,
      ...(this.#writeTimeout !== undefined ? { writeTimeout: this.#writeTimeout } : {}),
      ...(this.#http2 !== undefined ? { http2: this.#http2 } : {}),
      onChange: (s) => this.pool.changed(s),
    });
    return session;
  }
}

/** A response body that gives the stream slot back at its end, failure or early return. */
class ReleasingBody implements HttpBody {
  readonly kind: HttpBody['kind'];
  readonly length: number;
  #release: (() => void) | null;

  constructor(
    private readonly inner: HttpBody,
    release: () => void,
    private readonly key: Endpoint,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.kind = inner.kind;
    this.length = inner.length;
    this.#release = inner.kind === 'empty' && inner.trailers === null ? null : release;
  }

  get trailers(): HttpBody['trailers'] {
    return this.inner.trailers;
  }

  #done(): void {
    const r = this.#release;
    this.#release = null;
    r?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const it = this.inner[Symbol.asyncIterator]();
    return {
      next: async () => {
        try {
          const r = await it.next();
          if (r.done) this.#done();
          return r;
        } catch (error) {
          this.#done();
          throw mapError(error, 'body', this.key, this.signal);
        }
      },
      return: async () => {
        try {
          await it.return?.();
        } finally {
          this.#done();
        }
        return { done: true, value: undefined };
      },
    };
  }
}

/** The TransportError an HTTP/2 exchange failure maps to. */
function mapError(
  error: unknown,
  phase: 'response' | 'body',
  key: Endpoint,
  signal: AbortSignal | undefined,
): unknown {
  const address = formatL4Address(key.address);
  if (error instanceof ConnectError || error instanceof AbortedError) return error;
  if (error instanceof HttpAbortedError || signal?.aborted)
    return new AbortedError('ERR_TRANSPORT_ABORTED', phase, 'exchange aborted', {
      cause: signal?.reason ?? error,
      address,
    });
  if (error instanceof HttpTimeoutError) return timeoutError(error, phase, address);
  if (error instanceof HttpRequestBodyError)
    return new WriteError(
      'ERR_TRANSPORT_REQUEST_BODY_FAILED',
      'write',
      `reading the request body failed: ${error.message}`,
      { cause: error, address },
    );
  const e: TransportError = new ReadError(
    'ERR_TRANSPORT_READ_FAILED',
    phase,
    `HTTP/2 exchange failed: ${error instanceof Error ? error.message : String(error)}`,
    {
      cause: error,
      address,
      retryable: error instanceof Http2RequestRefusedError,
      // Before the response head (the stream was reset or the session ended first): a proxy
      // may send an idempotent request to another upstream, as after an HTTP/1.1 reset.
      beforeResponse: phase === 'response',
    },
  );
  return e;
}
