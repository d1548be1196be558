/**
 * HttpConnection: one pooled HTTP/1.1 connection (an @loch/http HttpClient over a stream from an
 * L4 connector) that carries one exchange per hand-out. It decides reuse: the connection goes
 * back to its pool only when the response body was read to its end and neither side said
 * `Connection: close`; after an error, an abort or a body abandoned half-way it is closed. While
 * idle in the pool it keeps a receive pending, so a peer that closes an idle connection (nginx's
 * keepalive_timeout) is noticed and evicted before reuse. Errors come out as TransportErrors.
 * Like HttpClient it reads and writes through the stream's promise-free recvTo/writeTo only
 * (HttpStream's contract); its one promise per exchange is the one `send()` returns. A response
 * that switched protocols (a 101 to an upgrade request) leaves the pool for good: its
 * `takeOver` (or the connection's `takeOver()`) hands the raw stream to the caller.
 * Not for retries and pool policy: HttpConnector (http-connector.ts) does those.
 */
import {
  HttpClient,
  type HttpClientOptions,
  HttpConnectionError,
  HttpError,
  type HttpExchangeCancel,
  type HttpExchangeTarget,
  HttpParseError,
  type HttpRequest,
  HttpRequestBodyError,
  type HttpResponse,
  type HttpSendOptions,
  type HttpStream,
  HttpTimeoutError,
  type HttpUpgradedConnection,
  type ResponseBodyOwner,
} from '@loch/http';
import { asksToClose } from '@loch/http/h1';
import { pendingPromise, takeReject, takeResolve } from '@loch/service-async';
import {
  type RecvChunk,
  type RecvTarget,
  RuntimeError,
  sentBytes,
  type WriteTarget,
} from '@loch/uring-runtime';
import {
  AbortedError,
  ProtocolError,
  ReadError,
  type TransportError,
  timeoutError,
  WriteError,
} from './errors.js';
import { type Endpoint, formatL4Address } from './key.js';
import type { UpstreamLimit } from './upstream-limit.js';

/** Options of one exchange. */
export interface ExchangeOptions {
  /** Aborts the exchange (and closes the connection): AbortedError. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Longest wait (ms) for the response head after the request, and between two reads of the
   * body, as nginx's proxy_read_timeout; ReadError ERR_TRANSPORT_READ_TIMEOUT. 0 = none.
   */
  readonly readTimeout?: number | undefined;
  /**
   * Runs on the response head, synchronously, before the exchange's promise resolves; the
   * promise resolves with what it returns. It lets a caller filter every response (headers,
   * body wrapper) without a promise and a microtask of its own per request. `key` is the
   * endpoint the request was sent to. Must not throw.
   */
  readonly onResponse?: ((response: HttpResponse, key: Endpoint) => HttpResponse) | undefined;
  /**
   * Maps the error the exchange (or, for HttpConnector.request, the connect) rejects with, once
   * and synchronously: to classify failures without a promise of one's own per request.
   */
  readonly onError?: ((error: unknown, key: Endpoint) => unknown) | undefined;
  /**
   * Runs when the request is handed to a connection (HTTP/1.1) or a stream (HTTP/2), synchronously,
   * with the exchange's cancel handle: keep it to cancel the exchange while it waits for its
   * response head (a proxy's client went away). Again on each retry (a new handle). One option
   * object serves every request: the handle names the request it cancels. Must not throw.
   */
  readonly onExchange?: ((request: HttpRequest, exchange: HttpExchangeCancel) => void) | undefined;
}

const NO_EXCHANGE_OPTIONS: ExchangeOptions = {};

/** What a connection reports to the connector that handed it out. @internal */
export interface ConnectionOwner<K extends Endpoint> {
  /** The exchange ended: keep the connection when `reusable`, else close it. */
  releaseConnection(conn: HttpConnection<K>, reusable: boolean): void;
  /** The peer closed (or wrote to) an idle connection: drop it from the pool. */
  idleConnectionDied(conn: HttpConnection<K>): void;
  /**
   * An exchange started with `retry` failed before any response byte on a reused connection
   * (the connection is already finished): the promise of another attempt, or null to fail.
   */
  retryExchange(key: K, request: HttpRequest, options: ExchangeOptions): Promise<HttpResponse> | null;
}

/**
 * `upgraded`: a response switched protocols and the connection waits for takeOver() (still
 * counted active by the pool); it never goes back to the pool.
 */
type State = 'ready' | 'busy' | 'idle' | 'upgraded' | 'closed';

/**
 * The stream handed to HttpClient: delegates to the real stream, counts the request writes that
 * completed, and owns the idle watch. While a connection is idle one recvTo is kept pending on
 * it, with this object as its target; when the connection is taken again, the reader's recvTo
 * takes that same receive over (its result is forwarded) and it becomes the first read of the
 * next response, so taking a connection out of the pool cancels nothing and allocates nothing
 * (no abort, no race, no promise, no error object).
 *
 * Bytes the watch receives before the first write of the next request COMPLETED predate that
 * request, so they are never its answer: the connection is dead, and a reader that took the
 * watch sees the end of the stream. Counting completions (onWritten) rather than writes issued
 * matters because bytes can already sit in the kernel when the connection is taken and written
 * to in the same tick. On the io_uring driver results reach their targets in the order the
 * kernel completed them (see the runtime's WriteTarget), so bytes whose receive completed first
 * are seen first; but the kernel may complete a receive for bytes that arrived just before the
 * write only after it (seen across processes on a loaded machine). The legacy driver (node:net)
 * reads the socket only in the event loop's poll phase, after a write made in the same tick.
 * Either way, as in nginx, bytes that arrive in the very moment the connection is reused cannot
 * be told apart from its answer; bytes sent while it is idle are noticed and evict it.
 */
class ExchangeStream implements HttpStream, RecvTarget, WriteTarget {
  /** Writes of the current exchange that completed (reset when an exchange starts). */
  written = 0;
  /** An idle watch recvTo is in flight. */
  #watching = false;
  /** The reader that took over the in-flight watch. */
  #forward: RecvTarget | null = null;
  /** A watch result that arrived while busy before any reader asked (delivered at its recvTo). */
  #held = false;
  #heldChunk: RecvChunk | null = null;
  #heldError: RuntimeError | undefined = undefined;
  /** The caller of the writeTo in flight (HttpClient has at most one). */
  #writeTarget: WriteTarget | null = null;

  constructor(
    readonly inner: HttpStream,
    readonly conn: HttpConnection<Endpoint>,
  ) {}

  /** Starts the idle watch: one recvTo kept pending (see HttpConnection.watchIdle). */
  watch(): void {
    this.#watching = true;
    this.inner.recvTo(this);
  }

  /** Whether an idle watch is still pending (not settled, or settled and not yet handed to a reader). */
  get watching(): boolean {
    return this.#watching || this.#held;
  }

  get remoteAddress() {
    return this.inner.remoteAddress;
  }
  get localAddress() {
    return this.inner.localAddress;
  }
  get driver() {
    return this.inner.driver;
  }
  get closed() {
    return this.inner.closed;
  }
  get facts() {
    return this.inner.facts;
  }
  /**
   * The write progress of the stream below (see @loch/uring-runtime's sentBytes): without it the
   * client's write deadline could not tell a slow upstream that keeps reading from a stalled one,
   * and would be per write.
   */
  get sentBytes(): number {
    return sentBytes(this.inner);
  }

  recvTo(target: RecvTarget): void {
    if (this.#watching && this.#forward === null) {
      this.#forward = target;
      return;
    }
    if (this.#held) {
      // Never from inside recvTo: deliver as the runtime would, at the next microtask.
      const chunk = this.#heldChunk;
      const error = this.#heldError;
      this.#held = false;
      this.#heldChunk = null;
      this.#heldError = undefined;
      queueMicrotask(() => target.onRecv(chunk, error));
      return;
    }
    this.inner.recvTo(target);
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    this.#writeTarget = target;
    this.inner.writeTo(data, this);
  }

  /** WriteTarget of every writeTo: counts the completion, then reports it to the caller. */
  onWritten(error: RuntimeError | undefined): void {
    const target = this.#writeTarget!;
    this.#writeTarget = null;
    if (error === undefined) this.written++;
    target.onWritten(error);
  }

  /** RecvTarget of the idle watch. */
  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    this.#watching = false;
    const forward = this.#forward;
    this.#forward = null;
    const conn = this.conn;
    if (conn.watchSettled()) {
      // The connection is dead: the stale result goes nowhere; a reader that took the watch
      // sees the end of the stream (the exchange fails before any response byte).
      chunk?.release();
      forward?.onRecv(null, undefined);
      return;
    }
    if (forward !== null) {
      forward.onRecv(chunk, error);
    } else if (conn.isClosed) {
      chunk?.release();
    } else {
      this.#held = true;
      this.#heldChunk = chunk;
      this.#heldError = error;
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  close(): Promise<void> {
    // HttpClient closing a switched connection nobody took over (its deadline): the pool stops
    // counting it.
    this.conn.upgradedClosed();
    return this.inner.close();
  }
  setNoDelay(enabled: boolean): void {
    this.inner.setNoDelay(enabled);
  }
}

/** What HttpClient.exchange reports to. */
type ExchangeTarget = HttpExchangeTarget;

const NO_RESOLVE = (): void => {};

/** One HTTP/1.1 connection to `key`. Obtain it from HttpConnector.connect(); one exchange per hand-out. */
export class HttpConnection<K extends Endpoint = Endpoint> implements HttpExchangeCancel {
  /** The endpoint this connection leads to. */
  readonly key: K;
  readonly #io: ExchangeStream;
  readonly #client: HttpClient;
  /** Per-exchange client options for the default read timeout (shared, never mutated). */
  readonly #defaultSend: HttpSendOptions;
  readonly #defaultReadTimeout: number;
  #owner: ConnectionOwner<K>;
  /**
   * @internal The upstream limit whose slot this connection's current exchange holds
   * (HttpConnector gives it back on release).
   */
  heldLimit: UpstreamLimit | undefined = undefined;
  #state: State = 'ready';
  #reused = false;
  #signal: AbortSignal | undefined = undefined;
  #aborted = false;
  /**
   * The exchange's signal's reason when it aborted the exchange: its errors' cause, also when
   * they are mapped after the signal was let go (a body's failure is mapped after its end freed
   * the connection).
   */
  #abortReason: unknown = undefined;
  #dead = false;
  #exchanges = 0;
  readonly #onAbort = (): void => {
    this.#aborted = true;
    this.#abortReason = this.#signal?.reason;
    void this.#client.close().catch(() => {});
  };
  /**
   * The exchange in progress (one at a time): what the head and failure handlers need. Kept in
   * fields so the handlers are two functions per connection, not two closures per request.
   */
  #exRequest: HttpRequest | null = null;
  #exOptions: ExchangeOptions = NO_EXCHANGE_OPTIONS;
  #exKey: K;
  #exRetry = false;
  /** The settlers of the exchange's promise. */
  #resolve: (value: HttpResponse | Promise<HttpResponse>) => void = NO_RESOLVE;
  #reject: (error: unknown) => void = NO_RESOLVE;
  /** The request of the response whose body is being read asked to close the connection. */
  #closeRequested = false;
  /** `response.takeOver` of a response that switched protocols (one function per connection). */
  readonly #takeOver = (): HttpUpgradedConnection => this.takeOver();
  /** HttpClient reports the exchange's head or failure here (one object per connection). */
  readonly #target: ExchangeTarget = {
    onResponse: (res: HttpResponse): void => this.#headArrived(res),
    onFailure: (error: unknown): void => this.#exchangeFailed(error),
  };
  /**
   * HttpClient tells the end of each response body here, and lets it map a failed body step's
   * error (one object per connection): the caller reads the client's body as it is, with no
   * body object of this connection's around it per response (nor a promise reaction per step
   * that waits).
   */
  readonly #bodyOwner: ResponseBodyOwner = {
    responseBodyEnded: (failed: boolean): void => {
      if (failed) {
        this.#finish(false);
        return;
      }
      this.#exchanges++;
      this.#finish(this.#client.reusable && !this.#closeRequested);
    },
    responseBodyError: (error: unknown): unknown => this.#mapError(error, 'body'),
  };

  /** @internal Built by HttpConnector. */
  constructor(
    key: K,
    stream: HttpStream,
    owner: ConnectionOwner<K>,
    options: { readTimeout: number; writeTimeout: number; limits?: HttpClientOptions['limits'] },
  ) {
    this.key = key;
    this.#exKey = key;
    this.#owner = owner;
    this.#io = new ExchangeStream(stream, this as HttpConnection<Endpoint>);
    this.#defaultReadTimeout = options.readTimeout;
    this.#defaultSend = { responseTimeout: options.readTimeout, bodyTimeout: options.readTimeout };
    const clientOptions: HttpClientOptions = {
      authority: key.authority,
      responseTimeout: options.readTimeout,
      bodyTimeout: options.readTimeout,
      writeTimeout: options.writeTimeout,
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
    };
    this.#client = new HttpClient(this.#io, clientOptions);
    this.#client.setResponseBodyOwner(this.#bodyOwner);
  }

  /** The underlying stream (TCP, Unix, later TLS). */
  get stream(): HttpStream {
    return this.#io.inner;
  }

  /** Exchanges completed on this connection (1 after the first response was fully read). */
  get exchanges(): number {
    return this.#exchanges;
  }

  /** True when this connection came out of the pool rather than from a fresh connect. */
  get reused(): boolean {
    return this.#reused;
  }

  /** Bytes of response received during the current (or last) exchange. */
  get responseBytes(): number {
    return this.#client.responseBytes;
  }

  /** False once the peer closed it or it failed; the pool skips such connections. */
  get alive(): boolean {
    return !this.#dead && this.#state !== 'closed' && !this.#io.closed;
  }

  /**
   * Sends `request` and resolves at the response head. The response body streams from the
   * connection; reading it to the end returns the connection to the pool (when reusable),
   * abandoning it (`return()`, `break` in for-await) or an error closes it. A response without
   * a body releases the connection at once. Rejects with a TransportError.
   */
  send(request: HttpRequest, options: ExchangeOptions = NO_EXCHANGE_OPTIONS): Promise<HttpResponse> {
    return this.exchange(this.key, request, options, false);
  }

  /**
   * @internal `send` for the owner: `key` is the endpoint the caller asked for (given to the
   * options' hooks), `retry` lets a failure before any response byte on a reused connection ask
   * the owner for another attempt. Not async: the only promise per exchange besides the
   * client's is the one its head and failure handlers make.
   */
  exchange(key: K, request: HttpRequest, options: ExchangeOptions, retry: boolean): Promise<HttpResponse> {
    if (this.#state !== 'ready')
      return Promise.reject(
        new HttpConnectionError('ERR_HTTP_CONNECTION_BUSY', `connection is ${this.#state}, not ready`),
      );
    this.#state = 'busy';
    this.#io.written = 0;
    this.#aborted = false;
    this.#abortReason = undefined;
    const rt = options.readTimeout;
    const sendOptions =
      rt === undefined || rt === this.#defaultReadTimeout
        ? this.#defaultSend
        : { responseTimeout: rt, bodyTimeout: rt };
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#finish(this.alive);
        const error = new AbortedError(
          'ERR_TRANSPORT_ABORTED',
          'write',
          'request aborted before it was sent',
          {
            cause: signal.reason,
            address: this.#address(),
          },
        );
        return Promise.reject(options.onError === undefined ? error : options.onError(error, key));
      }
      this.#signal = signal;
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.#exRequest = request;
    this.#exOptions = options;
    this.#exKey = key;
    this.#exRetry = retry;
    const promise = pendingPromise<HttpResponse>();
    this.#resolve = takeResolve<HttpResponse>();
    this.#reject = takeReject();
    try {
      this.#client.exchange(request, sendOptions, this.#target);
    } catch (error) {
      this.#exchangeFailed(error);
      return promise;
    }
    options.onExchange?.(request, this);
    return promise;
  }

  /**
   * HttpExchangeCancel: while `request`'s exchange waits for its response head, aborts it (as its
   * signal would: AbortedError, the connection closed and never pooled). Does nothing for
   * another request (a stale handle: this connection may serve another exchange by then).
   */
  cancelExchange(request: HttpRequest): void {
    if (this.#exRequest !== request || this.#aborted) return;
    this.#aborted = true;
    void this.#client.close().catch(() => {});
  }

  #headArrived(res: HttpResponse): void {
    const request = this.#exRequest!;
    const options = this.#exOptions;
    const resolve = this.#resolve;
    const reject = this.#reject;
    this.#exRequest = null;
    this.#exOptions = NO_EXCHANGE_OPTIONS;
    this.#resolve = NO_RESOLVE;
    this.#reject = NO_RESOLVE;
    // Whether any Connection field of the request names `close`: the encoder noted it when it
    // wrote the head (measureFieldBlock's cache, unchanged since), so no search per exchange.
    const closeRequested = asksToClose(request.headers);
    // The body the client streams (its end frees the connection: #bodyOwner), or null.
    let streamed: AsyncIterable<Uint8Array> | null = null;
    if (this.#client.upgraded) {
      // HTTP ends on this connection: it waits for takeOver(), never for the pool.
      this.#exchanges++;
      this.#detachSignal();
      this.#state = 'upgraded';
      res.takeOver = this.#takeOver;
    } else if (res.body.kind === 'empty') {
      // No body on the wire (HEAD, 204, 304, Content-Length: 0): the exchange is over.
      this.#exchanges++;
      this.#finish(this.#client.reusable && !closeRequested);
    } else {
      // The client's body, as it is: the client tells #bodyOwner its end.
      this.#closeRequested = closeRequested;
      streamed = res.body;
    }
    const onResponse = options.onResponse;
    if (onResponse === undefined) {
      resolve(res);
      return;
    }
    try {
      resolve(onResponse(res, this.#exKey));
    } catch (e) {
      // A hook that throws (its contract says it must not; none does) leaves the body with no
      // reader and no read deadline armed: the connection would be held, neither pooled nor
      // closed, until the upstream closed it. Let go of the body now (the connection is dropped),
      // as the h2 connector resets its stream.
      if (streamed !== null) void streamed[Symbol.asyncIterator]().return?.();
      reject(e);
    }
  }

  #exchangeFailed(error: unknown): void {
    const request = this.#exRequest!;
    const options = this.#exOptions;
    const key = this.#exKey;
    const resolve = this.#resolve;
    const reject = this.#reject;
    this.#exRequest = null;
    this.#exOptions = NO_EXCHANGE_OPTIONS;
    this.#resolve = NO_RESOLVE;
    this.#reject = NO_RESOLVE;
    try {
      const mapped = this.#mapError(error, 'response');
      this.#finish(false);
      if (this.#exRetry && mapped.retryable && !options.signal?.aborted) {
        const again = this.#owner.retryExchange(key, request, options);
        if (again !== null) {
          resolve(again);
          return;
        }
      }
      reject(options.onError === undefined ? mapped : options.onError(mapped, key));
    } catch (e) {
      reject(e);
    }
  }

  /**
   * Takes the connection over after its response switched protocols (a 101 answering a request
   * that carried Upgrade; `response.takeOver` is this): the raw stream, and the bytes the server
   * sent behind the response head. The connection leaves the pool for good (it stops counting as
   * active); the stream is the caller's to read, write and close. Not taken over within the
   * read timeout, the connection is closed. Throws @loch/http's HttpError `ERR_HTTP_NOT_UPGRADED`
   * when no response switched protocols, HttpConnectionError `ERR_HTTP_CONNECTION_CLOSED` when
   * it was taken over or closed already.
   */
  takeOver(): HttpUpgradedConnection {
    if (this.#state !== 'upgraded') {
      throw this.#client.upgraded
        ? new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'the upgraded connection is gone')
        : new HttpError('ERR_HTTP_NOT_UPGRADED', 500, 'no response switched protocols');
    }
    const { head } = this.#client.takeOver();
    this.#state = 'closed';
    this.#dead = true;
    this.#owner.releaseConnection(this, false);
    // The raw stream: the exchange wrapper's bookkeeping (idle watch, write counts) is over.
    return { stream: this.#io.inner, head };
  }

  /** @internal HttpClient closed the stream of a switched connection that was not taken over */
  upgradedClosed(): void {
    if (this.#state !== 'upgraded') return;
    this.#state = 'closed';
    this.#dead = true;
    this.#owner.releaseConnection(this, false);
  }

  /** Gives the connection back without an exchange (after connect() when it was not needed). */
  release(): void {
    if (this.#state === 'ready') this.#finish(this.#client.reusable);
  }

  /** Closes the connection now (an exchange in progress fails). */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    // Held but unused, or switched and not taken over: it stops counting as active.
    const handedOut = this.#state === 'ready' || this.#state === 'upgraded';
    this.#state = 'closed';
    this.#detachSignal();
    const closing = this.#client.close().catch(() => {});
    // (An exchange in progress releases it when it fails.)
    if (handedOut) this.#owner.releaseConnection(this, false);
    return closing;
  }

  /** @internal handed out by the connector: `reused` when it came from the pool */
  handOut(owner: ConnectionOwner<K>, reused: boolean): void {
    this.#owner = owner;
    this.#reused = reused;
    if (this.#state === 'idle') this.#state = 'ready';
  }

  /** @internal points an adopted idle connection at its new owner */
  adopt(owner: ConnectionOwner<K>): void {
    this.#owner = owner;
  }

  /** @internal the connection went idle in the pool: watch for the peer closing it */
  watchIdle(): void {
    if (this.#state !== 'ready') return;
    this.#state = 'idle';
    if (this.#io.watching) return; // still watching since the last idle period
    this.#io.watch();
  }

  /** @internal the connection was closed (a late idle watch result is dropped) */
  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /**
   * @internal the idle watch (recvTo) settled; true when that made the connection dead (its
   * result is stale), false when the result belongs to the exchange in progress. While idle, an
   * HTTP/1.1 connection must stay silent: data (an early 408, garbage), end of stream or an
   * error all make it unusable, so it is evicted. Once taken, a result that arrives before the
   * first write of the request completed predates the request: the connection is closed (the
   * exchange fails before any response byte, and is retried when reused). The caller drops
   * a stale result.
   */
  watchSettled(): boolean {
    if (this.#state === 'idle') {
      this.#dead = true;
      this.#owner.idleConnectionDied(this);
      void this.close();
      return true;
    }
    if (this.#state !== 'closed' && this.#io.written === 0) {
      this.#dead = true;
      void this.#client.close().catch(() => {});
      return true;
    }
    return false;
  }

  #detachSignal(): void {
    if (this.#signal !== undefined) {
      this.#signal.removeEventListener('abort', this.#onAbort);
      this.#signal = undefined;
    }
  }

  #finish(reusable: boolean): void {
    this.#detachSignal();
    if (this.#state !== 'closed' && reusable && this.alive) {
      this.#state = 'ready';
      this.#owner.releaseConnection(this, true);
      return;
    }
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      void this.#client.close().catch(() => {});
    }
    this.#owner.releaseConnection(this, false);
  }

  #address(): string {
    return formatL4Address(this.key.address);
  }

  #mapError(error: unknown, phase: 'response' | 'body'): TransportError {
    const address = this.#address();
    const reused = this.#reused;
    if (this.#aborted || error instanceof AbortedError)
      return error instanceof AbortedError
        ? error
        : new AbortedError('ERR_TRANSPORT_ABORTED', phase, 'exchange aborted', {
            cause: this.#abortReason ?? error,
            address,
            reused,
          });
    if (error instanceof HttpTimeoutError) return timeoutError(error, phase, address, reused);
    if (error instanceof HttpRequestBodyError)
      return new WriteError(
        'ERR_TRANSPORT_REQUEST_BODY_FAILED',
        'write',
        `reading the request body failed: ${error.message}`,
        { cause: error, address, reused },
      );
    const beforeResponse = phase === 'response' && this.#client.responseBytes === 0;
    const retryable = reused && beforeResponse;
    if (error instanceof HttpParseError && error.code !== 'ERR_HTTP_INCOMPLETE_MESSAGE')
      return new ProtocolError('ERR_TRANSPORT_PROTOCOL', phase, `invalid response: ${error.message}`, {
        cause: error,
        address,
        reused,
      });
    if (error instanceof RuntimeError && (error.syscall === 'write' || error.syscall === 'writev'))
      return new WriteError(
        'ERR_TRANSPORT_WRITE_FAILED',
        phase,
        `writing the request failed: ${error.code}`,
        {
          cause: error,
          address,
          reused,
          retryable,
          beforeResponse,
        },
      );
    const what =
      error instanceof HttpConnectionError
        ? 'connection closed before a response'
        : error instanceof HttpParseError
          ? 'connection closed inside the response body'
          : error instanceof RuntimeError
            ? `read failed: ${error.code}`
            : `exchange failed: ${error instanceof Error ? error.message : String(error)}`;
    return new ReadError('ERR_TRANSPORT_READ_FAILED', phase, what, {
      cause: error,
      address,
      reused,
      retryable,
      beforeResponse,
    });
  }
}
