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
  type Http2ClientOptions,
  Http2RequestRefusedError,
  HttpAbortedError,
  type HttpBody,
  type HttpExchangeCancel,
  type HttpExchangeTarget,
  type HttpRequest,
  HttpRequestBodyError,
  type HttpResponse,
  type HttpSendOptions,
  type HttpStream,
  HttpTimeoutError,
  nextNow,
  type ReadyBodyIterator,
} from '@loch/http';
import { H2ClientSession } from '@loch/http/h2';
import { pendingPromise, takeReject, takeResolve } from '@loch/service-async';
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
/** Schedules a retry after the failing session's report (a settled promise: no AsyncResource). */
const SETTLED = Promise.resolve();

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
  /** The send options of requests without a signal, for the last read timeout seen (shared, never mutated). */
  #lastSendOptions: HttpSendOptions = { responseTimeout: -1, bodyTimeout: -1 };

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
   *
   * Not async: one promise per request (the one returned, settled from the session's report),
   * one object (H2Exchange: the session's target, then the response body's wrapper), and the
   * options' hooks run inside the session's report, as HttpConnector's do.
   */
  request(key: K, request: HttpRequest, options: RequestOptions = NO_OPTIONS): Promise<HttpResponse> {
    const promise = pendingPromise<HttpResponse>();
    const ex = new H2Exchange<K>(this, key, request, options, takeResolve<HttpResponse>(), takeReject());
    this.start(ex);
    return promise;
  }

  /** @internal Takes a stream slot for `ex` (at once when a session has one) and sends it. */
  start(ex: H2Exchange<K>): void {
    let session: H2ClientSession | undefined;
    try {
      session = this.pool.tryAcquire(ex.key);
    } catch (error) {
      ex.failAcquire(error);
      return;
    }
    if (session !== undefined) {
      this.#send(ex, session);
      return;
    }
    this.pool.acquire(ex.key, { signal: ex.options.signal }).then(
      (s) => this.#send(ex, s),
      (error: unknown) => ex.failAcquire(error),
    );
  }

  /** One exchange of `ex` on `session`; its stream slot is given back when the response ends. */
  #send(ex: H2Exchange<K>, session: H2ClientSession): void {
    ex.session = session;
    const options = ex.options;
    let cancel: HttpExchangeCancel;
    try {
      cancel = session.exchange(ex.request, this.#sendOptions(options), ex);
    } catch (error) {
      ex.onFailure(error);
      return;
    }
    options.onExchange?.(ex.request, cancel);
  }

  /** The session's send options of a request: one shared object unless it has a signal or a deadline of its own. */
  #sendOptions(options: RequestOptions): HttpSendOptions {
    const read = options.readTimeout ?? this.#readTimeout;
    const signal = options.signal;
    if (signal !== undefined) return { signal, responseTimeout: read, bodyTimeout: read };
    let shared = this.#lastSendOptions;
    if (shared.responseTimeout !== read) {
      shared = { responseTimeout: read, bodyTimeout: read };
      this.#lastSendOptions = shared;
    }
    return shared;
  }

  /**
   * @internal `ex` failed with a refusal the server never processed: true when it is sent again
   * (on another stream, after this turn: the failing session finishes its own bookkeeping first).
   */
  retry(ex: H2Exchange<K>, error: unknown): boolean {
    if (
      !(error instanceof Http2RequestRefusedError) ||
      ex.attempt >= this.#maxRetries ||
      !replayable(ex.request.body)
    )
      return false;
    this.#retried++;
    ex.attempt++;
    void SETTLED.then(() => this.start(ex));
    return true;
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

/** The end of a body (shared: nothing in it to mutate). */
const BODY_DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });

/**
 * One request through H2Connector: the session's exchange target (its head or failure settles
 * the request's promise, through the options' hooks), and once the head arrived the response
 * body the caller reads (it wraps the session's body: its end, failure or early return gives the
 * stream slot back, once, and its failures come out as TransportErrors). Steps the session's
 * body has at hand are taken without a promise (nextNow), so a proxy relays a small answer that
 * came with its head without one. @internal
 */
class H2Exchange<K extends Endpoint> implements HttpExchangeTarget, HttpBody, ReadyBodyIterator {
  kind: HttpBody['kind'] = 'empty';
  length = 0;
  /** The session carrying it (null until a slot was taken; again on a retry). */
  session: H2ClientSession | null = null;
  /** Attempts made after refusals (H2Connector.retry). */
  attempt = 0;
  #inner: HttpBody | null = null;
  #it: AsyncIterator<Uint8Array> | null = null;
  /** The stream slot is still held: given back at the body's end (or the exchange's failure). */
  #holding = false;
  #resolve: (value: HttpResponse | PromiseLike<HttpResponse>) => void;
  #reject: (error: unknown) => void;

  constructor(
    readonly connector: H2Connector<K>,
    readonly key: K,
    readonly request: HttpRequest,
    readonly options: RequestOptions,
    resolve: (value: HttpResponse | PromiseLike<HttpResponse>) => void,
    reject: (error: unknown) => void,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  get trailers(): HttpBody['trailers'] {
    return this.#inner === null ? null : this.#inner.trailers;
  }

  /** HttpExchangeTarget: the response head (from inside the session's read). */
  onResponse(response: HttpResponse): void {
    const inner = response.body;
    this.#inner = inner;
    this.kind = inner.kind;
    this.length = inner.length;
    // An empty body may still be a stream's (HEAD): iterating it ends it; the slot goes back now.
    if (inner.kind === 'empty' && inner.trailers === null) this.connector.pool.release(this.session!);
    else this.#holding = true;
    response.body = this;
    const onResponse = this.options.onResponse;
    if (onResponse === undefined) {
      this.#resolve(response);
      return;
    }
    try {
      this.#resolve(onResponse(response, this.key));
    } catch (error) {
      // A hook that throws (its contract says it must not; none does) gets no body reader: the
      // stream would hold its slot until the body deadline. Let go of it (RST_STREAM CANCEL,
      // the slot back) and reject with the hook's own error, unmapped, as HttpConnection does:
      // not a ReadError "before the response" a proxy would retry, since the upstream answered.
      this.#abandon();
      this.#reject(error);
    }
  }

  /** Lets go of the response body at once: its stream is reset (if still open) and the slot given back. */
  #abandon(): void {
    try {
      // The session's body resets the stream synchronously; its promise settles with done.
      this.#iterator()
        .return?.()
        .catch(() => {});
    } catch {
      // A body that cannot even be let go of has nothing more to give back.
    }
    this.#done();
  }

  /** HttpExchangeTarget: the exchange failed before its head (or could not start). */
  onFailure(error: unknown): void {
    this.connector.pool.release(this.session!);
    this.session = null;
    if (this.connector.retry(this, error)) return;
    this.#rejectMapped(error);
  }

  /** No stream slot could be had (the pool's error, or the signal aborted the wait). */
  failAcquire(error: unknown): void {
    const onError = this.options.onError;
    try {
      this.#reject(onError === undefined ? error : onError(error, this.key));
    } catch (e) {
      this.#reject(e);
    }
  }

  #rejectMapped(error: unknown): void {
    const mapped = mapError(error, 'response', this.key, this.options.signal);
    this.failAcquire(mapped);
  }

  #iterator(): AsyncIterator<Uint8Array> {
    this.#it ??= this.#inner![Symbol.asyncIterator]();
    return this.#it;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  #done(): void {
    if (!this.#holding) return;
    this.#holding = false;
    this.connector.pool.release(this.session!);
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    let step: Promise<IteratorResult<Uint8Array>>;
    try {
      step = this.#iterator().next();
    } catch (error) {
      this.#done();
      return Promise.reject(this.#bodyError(error));
    }
    return step.then(
      (r) => {
        if (r.done) this.#done();
        return r;
      },
      (error: unknown) => {
        this.#done();
        throw this.#bodyError(error);
      },
    );
  }

  /** A step the session's body has at hand (see ReadyBodyIterator), else null. */
  nextNow(): IteratorResult<Uint8Array> | null {
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = nextNow(this.#iterator());
    } catch (error) {
      this.#done();
      throw this.#bodyError(error);
    }
    if (r?.done) {
      this.#done();
      return BODY_DONE;
    }
    return r;
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    try {
      await this.#iterator().return?.();
    } finally {
      this.#done();
    }
    return BODY_DONE;
  }

  #bodyError(error: unknown): unknown {
    return mapError(error, 'body', this.key, this.options.signal);
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
