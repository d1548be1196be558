/**
 * HttpServer: the HTTP/1.1 server core. Accepts connections from a runtime listener (or is handed
 * streams), decodes requests with RequestDecoder straight from pooled receive chunks, runs an
 * HttpHandler (a Service: request, carrying its connection's context, -> response, at once or
 * later) per request, and writes responses with the
 * framing their body implies. Bodies stream both ways with backpressure: a request body is read
 * from the socket only when the handler pulls it, a response body is pulled only after the
 * previous chunk was written. Connections are kept alive per RFC 9112 §9.3 and pipelined
 * requests are answered in order. Deadlines (idle keep-alive, head, body, write) are checked by
 * one coarse timer per server, so arming one costs two field writes.
 *
 * I/O goes through the stream's promise-free recvTo/writeTo only, with the connection as the
 * target of both: a parked keep-alive connection is one pending recvTo, a response write one
 * writeTo. The promises that callers wait on (a handler's request body read, a streamed
 * response part's write) are built on those two in one place each: recvChunk() and send().
 *
 * A request the decoder rejects is answered with its status (400, 414, 431, 501, 505) and the
 * connection closed; a handler that throws costs its request a 500 (or the status of the
 * HttpError it threw) and never the worker. Not a router, not HTTP/2 (the request and response
 * types are ready for it), not TLS (wrap the stream).
 */
import type { Service } from '@loch/service-async';
import { EMPTY_BODY, FixedBody, type HttpBody, nextNow } from './body.js';
import { connectionContext, type HttpConnectionContext } from './context.js';
import {
  HttpBodyError,
  HttpError,
  HttpParseError,
  HttpTimeoutError,
  type HttpTimeoutKind,
} from './errors.js';
import { DecodeEvent, RequestDecoder, type RequestDecoderOptions } from './h1/decoder.js';
import {
  asksToClose,
  CHUNK_END,
  chunkHeader,
  encodeResponseHeadBytes,
  lastChunk,
  ResponseHeadCache,
  type ResponseHeadOptions,
  responseFraming,
  statusLineBytes,
} from './h1/encoder.js';
import { HttpHeaders } from './headers.js';
import { pendingPromise, takeReject, takeResolve } from './internal/promise-settlers.js';
import type { HttpRequest, HttpResponse, HttpServerRequest } from './message.js';
import type { HttpListener, HttpStream, StreamChunk } from './transport.js';

/**
 * The service a server runs for every request: a `Service` from @loch/service-async, so a
 * service chain plugs in as it is. `request.context` is the connection's context. It may answer
 * synchronously (no promise on the way: see Service) or with a promise.
 */
export type HttpHandler<Cx = HttpConnectionContext> = Service<HttpServerRequest<Cx>, HttpResponse>;

/** Deadlines in milliseconds; 0 disables one. */
export interface HttpServerTimeouts {
  /** Waiting for the first byte of the next request on a kept-alive connection (default 60 s). */
  readonly idle?: number;
  /** From the first byte of a request to the end of its head (default 30 s); answers 408. */
  readonly head?: number;
  /** Between two reads of a request body (default 60 s); answers 408 if no response started. */
  readonly body?: number;
  /** For each write to make progress (default 60 s); closes the connection. */
  readonly write?: number;
}

/**
 * A request the server answered itself, without running the handler: a message the decoder
 * rejected (400, 414, 431, 501, 505), a head or body that timed out (408), an unsupported
 * Expect (417). For an access log: the handler never saw these.
 */
export interface HttpRejection {
  /** The status answered. */
  readonly status: number;
  /** The stable code of the reason (`ERR_HTTP_*`), also the answer's body. */
  readonly code: string;
  /** Method and target, when the request head was decoded (null for a head that was rejected). */
  readonly method: string | null;
  readonly target: string | null;
  /** Bytes of the answer's body. */
  readonly bytes: number;
  /** The error behind it (an HttpParseError, an HttpTimeoutError), or null. */
  readonly error: unknown;
}

/** HttpServer options. */
export interface HttpServerOptions<Cx> {
  /** Decoder limits and method policy. */
  readonly limits?: RequestDecoderOptions;
  /** Deadlines. */
  readonly timeouts?: HttpServerTimeouts;
  /** Unread request body bytes the server reads and discards to keep a connection alive (default 64 KiB). */
  readonly maxDrainBytes?: number;
  /** Requests served on one connection before it is closed (default 0: no limit). */
  readonly maxRequestsPerConnection?: number;
  /** Add a `date` field to responses that lack one (default true). */
  readonly date?: boolean;
  /** Builds the context of a connection (default: a ConnectionContext with peerAddr, localAddr, driver). */
  readonly context?: (stream: HttpStream) => Cx;
  /** Called with errors that do not reach a client: handler failures, connection failures. */
  readonly onError?: (error: unknown) => void;
  /**
   * Called after the server answered a request itself (see HttpRejection), with the
   * connection's context. Not called for requests the handler answered. Must not throw.
   */
  readonly onRejected?: (rejection: HttpRejection, context: Cx) => void;
}

const DEFAULT_TIMEOUTS: Required<HttpServerTimeouts> = {
  idle: 60_000,
  head: 30_000,
  body: 60_000,
  write: 60_000,
};
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const EOF = -1;
/** No held-back answers: shared by every connection (never pushed to), so idle ones hold no array. */
const NO_PENDING: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];
/** Most idle decoders a server keeps for reuse. */
const MAX_SPARE_DECODERS = 256;
/** How ServerConnection.run starts: fresh, after an idle recvTo delivered (a chunk or EOF), or after it failed. */
const WAKE_NONE = 0;
const WAKE_CHUNK = 1;
const WAKE_ERROR = 2;
/** run() resumes after a response whose last write was left in flight with its body's end unseen. */
const WAKE_RESUME = 3;
/**
 * writeResponse's answer when the response's last write is in flight and the body's end is still
 * to be seen (onWritten looks, then resumes the request loop): the loop returns meanwhile.
 */
const DEFERRED = Symbol('deferred');
/** What writeResponse answers: whether the connection stays open, or DEFERRED. */
type ResponseOutcome = boolean | typeof DEFERRED;
/** Thrown inside attach() when the server is closing (not reported to onError). */
const CLOSING = Symbol('closing');
const NO_DEADLINE = Number.POSITIVE_INFINITY;
/** Most bytes of responses held back for one batched write to pipelining clients. */
const MAX_PENDING_BYTES = 64 * 1024;
/**
 * A first body chunk up to this size is copied behind the head (one buffer); larger ones go as a
 * writev of [head, chunk]. Copying a 3 KB chunk cost more (the copy plus a Buffer pool refill every
 * other response) than the second iovec: 3,269 B proxied ~0.9 us/request cheaper at 1024 than at 4096.
 */
const COALESCE_BYTES = 1024;
/** Lingering close: how long and how much to read away after the last answer. */
const LINGER_MS = 500;
const LINGER_BYTES = 1024 * 1024;

/** The HTTP/1.1 server core. One instance serves any number of listeners and connections. */
export class HttpServer<Cx = HttpConnectionContext> {
  /** @internal */ readonly handler: HttpHandler<Cx>;
  /** @internal */ readonly limits: RequestDecoderOptions;
  /** @internal */ readonly timeouts: Required<HttpServerTimeouts>;
  /** @internal */ readonly maxDrainBytes: number;
  /** @internal */ readonly date: boolean;
  /** @internal */ readonly maxRequests: number;
  /** @internal */ readonly makeContext: (stream: HttpStream) => Cx;
  /** @internal */ readonly onError: (error: unknown) => void;
  /** @internal */ readonly onRejected: ((rejection: HttpRejection, context: Cx) => void) | null;
  /** @internal coarse clock for deadlines, refreshed by the sweep timer */
  now = performance.now();
  /** @internal */ closing = false;
  /** @internal the last fixed-length response head, shared by every connection */
  readonly heads = new ResponseHeadCache();
  /**
   * @internal what a parked connection holds instead of a decoder: never fed, so always idle
   * (shutdownIfIdle reads it).
   */
  readonly idleDecoder: RequestDecoder;
  /** @internal the response head options, rewritten and read synchronously per response */
  readonly headOptions: { -readonly [K in keyof ResponseHeadOptions]: ResponseHeadOptions[K] };
  /** Decoders of parked connections, for the next one that wakes up. */
  private readonly decoders: RequestDecoder[] = [];
  private readonly live = new Set<ServerConnection<Cx>>();
  private readonly listeners = new Set<HttpListener>();
  private sweeper: ReturnType<typeof setInterval> | null = null;
  private readonly tick: number;
  private drained: (() => void) | null = null;

  /**
   * Creates a server that runs `handler` for every request. The `context` option is required
   * when the handler needs a context the default ConnectionContext cannot satisfy.
   */
  constructor(
    handler: HttpHandler<Cx>,
    ...rest: HttpConnectionContext extends Cx
      ? [options?: HttpServerOptions<Cx>]
      : [options: HttpServerOptions<Cx> & { readonly context: (stream: HttpStream) => Cx }]
  ) {
    const options: HttpServerOptions<Cx> = rest[0] ?? {};
    this.handler = handler;
    this.limits = options.limits ?? {};
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.maxDrainBytes = options.maxDrainBytes ?? 64 * 1024;
    this.date = options.date ?? true;
    this.idleDecoder = new RequestDecoder(this.limits);
    this.headOptions = {
      framing: 'none',
      length: 0,
      keepAlive: true,
      requestMinor: 1,
      requestMethod: 'GET',
      date: this.date,
    };
    this.maxRequests = options.maxRequestsPerConnection ?? 0;
    this.makeContext = options.context ?? (connectionContext as unknown as (stream: HttpStream) => Cx);
    this.onError = options.onError ?? (() => {});
    this.onRejected = options.onRejected ?? null;
    const active = Object.values(this.timeouts).filter((t) => t > 0);
    this.tick = Math.max(10, Math.min(1000, Math.floor(Math.min(...active, 4000) / 4)));
  }

  /** Number of open connections. */
  get connections(): number {
    return this.live.size;
  }

  /**
   * Accepts connections from `listener` until it is closed (or the server is), serving each on
   * its own task. Resolves when accepting stops.
   */
  async serve(listener: HttpListener): Promise<void> {
    this.listeners.add(listener);
    try {
      while (!this.closing) {
        let stream: HttpStream;
        try {
          stream = await listener.accept();
        } catch (e) {
          if (this.closing || (e as { code?: string }).code === 'ECANCELED') return;
          this.onError(e);
          // EMFILE and friends: back off a little instead of spinning.
          await new Promise((resolve) => setTimeout(resolve, 10));
          continue;
        }
        this.attach(stream, null);
      }
    } finally {
      this.listeners.delete(listener);
    }
  }

  /** Serves one connected stream until it closes. Never rejects. */
  serveConnection(stream: HttpStream): Promise<void> {
    return new Promise((resolve) => this.attach(stream, () => resolve()));
  }

  /**
   * Starts serving `stream` and calls `onClosed(stream)` once it is closed; like serveConnection
   * without a promise per connection (what a server holding many idle connections wants: pass
   * one function for all of them). No suspended function either: an idle connection is one
   * pending recv.
   */
  attach(stream: HttpStream, onClosed: ((stream: HttpStream) => void) | null = null): void {
    let conn: ServerConnection<Cx>;
    try {
      if (this.closing) throw CLOSING;
      conn = new ServerConnection(this, stream, this.makeContext(stream), onClosed);
    } catch (e) {
      if (e !== CLOSING) this.onError(e);
      void stream
        .close()
        .catch(() => {})
        .then(() => onClosed?.(stream));
      return;
    }
    this.live.add(conn);
    this.startSweeper();
    void conn.run(WAKE_NONE, null, null);
  }

  /** A decoder for a connection that starts or wakes up. @internal */
  takeDecoder(): RequestDecoder {
    return this.decoders.pop() ?? new RequestDecoder(this.limits);
  }

  /** A parked connection's decoder (idle: no buffered input, no message in progress). @internal */
  spareDecoder(d: RequestDecoder): void {
    if (this.decoders.length < MAX_SPARE_DECODERS) this.decoders.push(d);
  }

  /** A connection is gone (the end of its run). @internal */
  release(conn: ServerConnection<Cx>): void {
    this.live.delete(conn);
    if (this.live.size === 0) {
      this.stopSweeper();
      this.drained?.();
    }
  }

  /**
   * Stops accepting (closes the listeners passed to serve), closes idle connections, lets active
   * requests finish with `connection: close`, and resolves when every connection is gone.
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.listeners].map((l) => l.close().catch(() => {})));
    for (const c of this.live) c.shutdownIfIdle();
    if (this.live.size === 0) return;
    await new Promise<void>((resolve) => {
      this.drained = resolve;
    });
  }

  private startSweeper(): void {
    if (this.sweeper !== null) return;
    this.now = performance.now();
    this.sweeper = setInterval(() => {
      const now = (this.now = performance.now());
      for (const c of this.live) if (c.deadline <= now) c.expire();
    }, this.tick);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper === null) return;
    clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

/** What the connection's pending recvTo (at most one) is for: see ServerConnection.onRecv. */
const READ_NONE = 0;
/** Parked between requests: the result starts the request loop again (wake). */
const READ_PARKED = 1;
/** A promise waits for it (recvChunk: a head or body wait, the lingering close). */
const READ_AWAITED = 2;
/** Its waiter gave up (a head or body deadline answered 408): the result is dropped. */
const READ_ABANDONED = 3;

/** One accepted connection: the request loop, body reading and response writing. @internal */
class ServerConnection<Cx> {
  deadline = NO_DEADLINE;
  private deadlineKind: HttpTimeoutKind = 'idle';
  private expired: HttpTimeoutKind | null = null;
  /** What the pending recvTo is for (READ_*). */
  private reading = READ_NONE;
  /** The settlers of recvChunk()'s promise while READ_AWAITED. */
  private readResolve: ((c: StreamChunk | null) => void) | null = null;
  private readReject: ((e: unknown) => void) | null = null;
  /** While parked: the server's never-fed idle decoder; the real one went back to the pool. */
  private decoder: RequestDecoder;
  private chunk: StreamChunk | null = null;
  private waitingIdle = false;
  /** The current request's body state. */
  private expectContinue = false;
  private continueSent = false;
  private bodyDone = true;
  private responseStarted = false;
  /**
   * The current request's body while its handler may read it; null once the server took it
   * over (to drain it, or at the end of the connection): reads of a taken body fail. @internal
   */
  reqBody: IncomingRequestBody | null = null;
  /** The last wait of a request body read (the handler's read in flight, if not settled). */
  private bodyWait: Promise<number> | null = null;
  /** The failure of the current request's body as its reader saw it (a parse error, a timeout). */
  private bodyError: unknown = null;
  /** Encoded responses held back while more pipelined requests were buffered. */
  private pending: Uint8Array[] = NO_PENDING;
  private pendingBytes = 0;
  /** Requests answered on this connection. */
  private served = 0;
  /** The connection ends on a failure (the peer may still be sending). */
  private failed = false;
  /**
   * A writeTo is in flight. A final response write is not waited for: the request loop goes on
   * (parks) and onWritten settles it.
   */
  private writing = false;
  /** Whoever waits for the write in flight (send(), afterWrite()). */
  private writeResolve: (() => void) | null = null;
  private writeReject: ((e: unknown) => void) | null = null;
  /** A write that failed while nobody waited for it: reported once, by whoever looks next. */
  private writeFailure: unknown = null;
  /**
   * A response whose last write is in flight while its body's end is unseen (DEFERRED): the body's
   * iterator, the body, the keep-alive decision, and a failure of the tail for the resumed loop.
   */
  private tail: AsyncIterator<Uint8Array> | null = null;
  private tailBody: HttpBody | null = null;
  private tailKeepAlive = false;
  private tailError: unknown = null;

  constructor(
    private readonly server: HttpServer<Cx>,
    private readonly stream: HttpStream,
    private readonly context: Cx,
    private readonly onClosed: ((stream: HttpStream) => void) | null,
  ) {
    this.decoder = server.takeDecoder();
    try {
      stream.setNoDelay(true);
    } catch {
      // Unix streams and adapters may not support it.
    }
  }

  /** Deadline check from the server's sweep timer. */
  expire(): void {
    if (this.expired !== null) return;
    const kind = this.deadlineKind;
    this.expired = kind;
    this.deadline = NO_DEADLINE;
    if (kind === 'idle' || kind === 'write') {
      // Nothing will be answered: closing settles the pending operation.
      void this.stream.close().catch(() => {});
    } else if (this.reading === READ_AWAITED) {
      // A head or body wait: its waiter fails now (the answer is a 408), while the receive stays
      // pending until the connection closes; its result is dropped then (onRecv).
      this.reading = READ_ABANDONED;
      const reject = this.readReject!;
      this.readResolve = null;
      this.readReject = null;
      reject(new HttpTimeoutError(kind, this.timeoutOf(kind)));
    }
  }

  /** Closes the connection now if it waits for a next request (server shutdown). */
  shutdownIfIdle(): void {
    // A final answer still in flight goes out first (onWritten asks again).
    if (this.waitingIdle && this.decoder.idle && !this.writing) {
      this.expired = 'idle';
      void this.stream.close().catch(() => {});
    }
  }

  private timeoutOf(kind: HttpTimeoutKind): number {
    const t = this.server.timeouts;
    return kind === 'idle' ? t.idle : kind === 'head' ? t.head : kind === 'body' ? t.body : t.write;
  }

  private arm(kind: HttpTimeoutKind): void {
    const ms = this.timeoutOf(kind);
    this.deadlineKind = kind;
    this.deadline = ms > 0 ? this.server.now + ms : NO_DEADLINE;
  }

  /**
   * Waits for input and polls again: NeedMore never comes back, EOF (-1) does when the peer
   * closed between messages. Throws HttpParseError, RuntimeError, or the timeout (also for a
   * wait after a deadline expired: nothing more is read then).
   */
  async fill(kind: 'head' | 'body'): Promise<number> {
    const d = this.decoder;
    for (;;) {
      if (this.chunk !== null) {
        this.chunk.release();
        this.chunk = null;
      }
      // A write that failed unobserved ends the connection; answers held back for pipelined
      // requests go out before waiting for more. A write in flight goes on (bodies stream both
      // ways at once).
      if (this.writeFailure !== null) await this.afterWrite();
      if (this.pending.length > 0) await this.flushPending();
      const idle = kind === 'head' && d.idle;
      this.arm(idle ? 'idle' : kind);
      this.waitingIdle = idle;
      if (idle && this.server.closing) return EOF;
      let c: StreamChunk | null;
      try {
        // After a deadline nothing more is read.
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
        c = await this.recvChunk();
      } catch (e) {
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
        throw e;
      } finally {
        this.waitingIdle = false;
        this.deadline = NO_DEADLINE;
      }
      if (c === null) {
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
        const ev = d.finish();
        return ev === DecodeEvent.End ? ev : EOF;
      }
      this.chunk = c;
      d.feed(c.bytes);
      const ev = d.poll();
      if (ev !== DecodeEvent.NeedMore) return ev;
    }
  }

  /**
   * The promise form of a receive, built on recvTo (the connection is the target): what fill()
   * and the lingering close wait on. One at a time, never beside a parked receive.
   */
  private recvChunk(): Promise<StreamChunk | null> {
    const p = pendingPromise<StreamChunk | null>();
    this.readResolve = takeResolve();
    this.readReject = takeReject();
    this.reading = READ_AWAITED;
    this.stream.recvTo(this);
    return p;
  }

  /**
   * Waits for a next request without a suspended async function: one recvTo whose result
   * starts run() again. The wait is 'idle' (the sweep closes the stream), as in fill(). Only
   * when nothing is buffered, held back or closing.
   */
  private park(): void {
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    // With the last answer still in flight its write deadline holds; onWritten arms the idle one.
    this.arm(this.writing ? 'write' : 'idle');
    this.waitingIdle = true;
    // The connection itself is the receive's target (onRecv): no promise, reaction or closure
    // per parked connection.
    this.reading = READ_PARKED;
    try {
      this.stream.recvTo(this);
    } catch (e) {
      this.reading = READ_NONE;
      this.waitingIdle = false;
      this.deadline = NO_DEADLINE;
      throw e;
    }
    // Between messages a decoder holds no state of this connection: lend it back.
    this.server.spareDecoder(this.decoder);
    this.decoder = this.server.idleDecoder;
  }

  /**
   * The outcome of the pending recvTo (RecvTarget): a parked connection wakes (the next request
   * starts, or the end), a waiting recvChunk() settles, an abandoned wait's result is dropped.
   * @internal
   */
  onRecv(c: StreamChunk | null, error: unknown): void {
    const how = this.reading;
    this.reading = READ_NONE;
    if (how === READ_PARKED) {
      if (error !== undefined) this.wake(WAKE_ERROR, null, error);
      else this.wake(WAKE_CHUNK, c, null);
    } else if (how === READ_AWAITED) {
      const resolve = this.readResolve!;
      const reject = this.readReject!;
      this.readResolve = null;
      this.readReject = null;
      if (error !== undefined) reject(error);
      else resolve(c);
    } else {
      c?.release();
    }
  }

  private wake(how: number, c: StreamChunk | null, error: unknown): void {
    this.waitingIdle = false;
    if (!this.writing) this.deadline = NO_DEADLINE;
    this.decoder = this.server.takeDecoder();
    void this.run(how, c, error);
  }

  /** The tail of fill() for a parked wait: the first event of the next request, or NeedMore. */
  private woke(how: number, c: StreamChunk | null, error: unknown): number {
    if (how === WAKE_ERROR) {
      if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
      throw error;
    }
    const d = this.decoder;
    if (c === null) {
      if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
      const ev = d.finish();
      return ev === DecodeEvent.End ? ev : EOF;
    }
    this.chunk = c;
    d.feed(c.bytes);
    return d.poll();
  }

  /**
   * The request loop. Between requests it parks (returns, keeping nothing suspended) and is
   * started again by wake(); the connection's cleanup runs once, when the loop really ends.
   */
  async run(how: number, c: StreamChunk | null, error: unknown): Promise<void> {
    const d = this.decoder;
    const server = this.server;
    let parked = false;
    try {
      for (;;) {
        if (how === WAKE_RESUME) {
          // The tail of a DEFERRED response: what the loop does after a response.
          how = WAKE_NONE;
          if (this.writeFailure !== null) throw this.writeFailure;
          const failure = this.tailError;
          if (failure !== null) {
            this.tailError = null;
            this.responseStarted = true;
            throw failure;
          }
          if (!this.tailKeepAlive || this.stream.closed) break;
          if (!this.bodyDone && !(await this.drainBody())) break;
        }
        // Nothing of the next response is out yet: a failure from here on can still be answered.
        this.responseStarted = false;
        let ev: number;
        if (how !== WAKE_NONE) {
          ev = this.woke(how, c, error);
          how = WAKE_NONE;
          c = null;
          error = null;
        } else {
          ev = d.poll();
          if (ev === DecodeEvent.NeedMore && d.idle && this.pending.length === 0 && !server.closing) {
            this.park();
            parked = true;
            return;
          }
        }
        if (ev === DecodeEvent.NeedMore) ev = await this.fill('head');
        if (ev === EOF) break;
        const req = d.message!;
        // The request lives in this frame from here on: an idle connection keeps no last request.
        d.message = null;
        // CONNECT turns a connection into a tunnel, which this core does not run: answer, then close.
        this.served++;
        let keepAlive =
          d.keepAlive &&
          !server.closing &&
          req.method !== 'CONNECT' &&
          (server.maxRequests === 0 || this.served < server.maxRequests);
        this.responseStarted = false;
        this.expectContinue = d.expectContinue;
        this.continueSent = false;
        if (d.expectUnsupported) {
          await this.reject(417, 'ERR_HTTP_EXPECTATION_FAILED', req, null);
          break;
        }
        if (d.framing === 'none') {
          this.bodyDone = true;
          req.body = EMPTY_BODY;
          // The End event of a bodiless message.
          d.poll();
        } else {
          this.bodyDone = false;
          this.bodyWait = null;
          this.bodyError = null;
          req.body = this.reqBody = new IncomingRequestBody(
            this,
            d.framing === 'length' ? d.contentLength : -1,
          );
        }
        let res: HttpResponse;
        try {
          // The decoder types the context as unknown; from here on it is this connection's.
          req.context = this.context;
          const out = server.handler.call(req as HttpServerRequest<Cx>);
          // A synchronous handler's answer needs no trip through the microtask queue.
          res = out instanceof Promise ? await out : out;
          if (
            res === null ||
            typeof res !== 'object' ||
            typeof res.status !== 'number' ||
            res.headers === undefined ||
            res.body === undefined
          ) {
            throw new HttpError('ERR_HTTP_INVALID_RESPONSE', 500, 'handler returned no valid HttpResponse');
          }
          if (res.status < 200) {
            // 100 Continue is the server's business; 101 would need a protocol switch this core does not do.
            // The answer will not be sent: let go of its body.
            await closeBody(res.body);
            throw new HttpError(
              'ERR_HTTP_INVALID_RESPONSE',
              500,
              `handler returned interim status ${res.status}`,
            );
          }
        } catch (e) {
          server.onError(e);
          res = this.errorResponse(e);
          // A broken body or an expired deadline leaves the stream unusable; a handler bug does not.
          if (e instanceof HttpParseError || this.expired !== null || !this.bodyDone) keepAlive = false;
        }
        try {
          const w = this.writeResponse(req, res, keepAlive);
          const outcome = typeof w === 'boolean' || w === DEFERRED ? w : await w;
          if (outcome === DEFERRED) {
            // onWritten resumes the loop (run(WAKE_RESUME)); this call holds nothing meanwhile.
            parked = true;
            return;
          }
          keepAlive = outcome;
        } catch (e) {
          // Nothing of the answer went out: it could not be encoded (bad status, reason or
          // header), or its body failed at its first step. Answer that instead, and close.
          if (this.responseStarted || this.stream.closed) throw e;
          server.onError(e);
          await this.writeUnsentFailure(e);
          break;
        }
        if (!keepAlive || this.stream.closed) break;
        if (!this.bodyDone && !(await this.drainBody())) break;
      }
    } catch (e) {
      await this.answerFailure(e);
    } finally {
      if (!parked) await this.cleanup();
    }
  }

  /** The end of a connection: flush, linger if needed, close, and tell the server. */
  private async cleanup(): Promise<void> {
    const d = this.decoder;
    // Reads of the body from here on fail (the stream is about to close).
    this.reqBody = null;
    try {
      if (this.chunk !== null) {
        this.chunk.release();
        this.chunk = null;
      }
      if (this.writing || this.writeFailure !== null) {
        try {
          await this.afterWrite();
        } catch (e) {
          // The last answer's write failed after the loop moved on: report it as the loop would have.
          if (!(e instanceof HttpTimeoutError)) this.server.onError(e);
        }
      }
      this.deadline = NO_DEADLINE;
      if (this.pending.length > 0) await this.flushPending().catch(() => {});
      // Closing with unread input makes the kernel send RST, which can destroy the answer
      // before the client read it: half-close first and read the rest away for a moment.
      if (!this.stream.closed && this.expired === null && (!this.bodyDone || d.hasInput || this.failed)) {
        await this.lingerClose();
      }
      await this.stream.close().catch(() => {});
    } finally {
      this.server.release(this);
      try {
        this.onClosed?.(this.stream);
      } catch (e) {
        this.server.onError(e);
      }
    }
  }

  /**
   * Half-closes and discards what the peer still sends, for at most LINGER_MS (then the stream
   * is closed, which ends the pending receive) or LINGER_BYTES.
   */
  private async lingerClose(): Promise<void> {
    const stream = this.stream;
    const timer = setTimeout(() => void stream.close().catch(() => {}), LINGER_MS);
    try {
      await stream.shutdown();
      // A request body read still in flight (its handler answered without waiting for it) keeps
      // its receive: let it settle first (it fails once the timer closes the stream).
      if (this.bodyWait !== null) await this.bodyWait.catch(() => {});
      for (let budget = LINGER_BYTES; budget > 0 && !stream.closed; ) {
        const c = await this.recvChunk();
        if (c === null) break;
        budget -= c.bytes.byteLength;
        c.release();
      }
    } catch {
      // Reset, cancelled or timed out: the stream closes next anyway.
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes the responses held back while pipelined requests were still buffered. */
  private flushPending(): Promise<void> {
    const bufs = this.pending;
    this.pending = NO_PENDING;
    this.pendingBytes = 0;
    return this.send(bufs);
  }

  /**
   * Starts one writeTo under the write deadline; onWritten settles it. Only when no write is in
   * flight. No promise: send() adds one for a caller that waits. @internal
   */
  startWrite(out: Uint8Array | Uint8Array[]): void {
    this.arm('write');
    this.writing = true;
    this.stream.writeTo(out, this);
  }

  /** The outcome of the write in flight (writeTo target). Never throws. @internal */
  onWritten(error: unknown): void {
    this.writing = false;
    const resolve = this.writeResolve;
    const reject = this.writeReject;
    this.writeResolve = null;
    this.writeReject = null;
    let failure: unknown;
    if (error !== undefined) {
      failure = this.expired === 'write' ? new HttpTimeoutError('write', this.server.timeouts.write) : error;
      // The connection is done for: closing also ends a parked receive.
      void this.stream.close().catch(() => {});
      this.deadline = NO_DEADLINE;
    } else if (this.waitingIdle) {
      if (this.server.closing) this.shutdownIfIdle();
      else this.arm('idle');
    } else if (this.deadlineKind === 'write') {
      // Another wait (a head or body read) may have armed its own deadline meanwhile: keep it.
      this.deadline = NO_DEADLINE;
    }
    if (resolve !== null) {
      if (failure === undefined) resolve();
      else reject!(failure);
    } else if (failure !== undefined) {
      this.writeFailure = failure;
    }
    const tail = this.tail;
    if (tail !== null) {
      this.tail = null;
      this.finishTail(tail, failure !== undefined);
    }
  }

  /** A DEFERRED response's last write is in flight: onWritten finishes its body. @internal */
  deferTail(it: AsyncIterator<Uint8Array>, body: HttpBody): void {
    this.tail = it;
    this.tailBody = body;
  }

  /** After a DEFERRED response's last write: see the body's end, then resume the request loop. */
  private finishTail(it: AsyncIterator<Uint8Array>, failed: boolean): void {
    const body = this.tailBody!;
    this.tailBody = null;
    if (failed) {
      returnIterator(it);
    } else {
      let r: IteratorResult<Uint8Array> | null;
      try {
        r = nextNow(it);
      } catch (e) {
        returnIterator(it);
        this.tailError = e;
        r = { done: true, value: undefined };
      }
      if (r === null || !r.done) {
        // The end is not at hand (or more came than announced): the waiting path takes over.
        void this.tailRest(it, r, body);
        return;
      }
    }
    void this.run(WAKE_RESUME, null, null);
  }

  private async tailRest(
    it: AsyncIterator<Uint8Array>,
    r: IteratorResult<Uint8Array> | null,
    body: HttpBody,
  ): Promise<void> {
    try {
      await writeStreamRest(this, it, r, null, body.length, body, 'length');
    } catch (e) {
      this.tailError = e;
    }
    void this.run(WAKE_RESUME, null, null);
  }

  /** A promise of the write in flight. */
  private writeSettled(): Promise<void> {
    const p = pendingPromise<void>();
    const resolve = takeResolve<void>() as () => void;
    const reject = takeReject();
    const prevResolve = this.writeResolve;
    const prevReject = this.writeReject;
    if (prevResolve === null || prevReject === null) {
      this.writeResolve = resolve;
      this.writeReject = reject;
    } else {
      // A second waiter (rare: a body read and a body write at once): both hear the outcome.
      this.writeResolve = () => {
        prevResolve();
        resolve();
      };
      this.writeReject = (e: unknown) => {
        prevReject(e);
        reject(e);
      };
    }
    return p;
  }

  /** Waits until no write is in flight; throws the failure of one nobody waited for. */
  private async afterWrite(): Promise<void> {
    if (this.writing) await this.writeSettled();
    const failure = this.writeFailure;
    if (failure !== null) {
      this.writeFailure = null;
      throw failure;
    }
  }

  /** One write of a response part under the write deadline, waited for. @internal */
  send(out: Uint8Array | Uint8Array[]): Promise<void> {
    if (this.writing || this.writeFailure !== null) return this.sendAfterWrite(out);
    this.startWrite(out);
    return this.writeSettled();
  }

  private async sendAfterWrite(out: Uint8Array | Uint8Array[]): Promise<void> {
    await this.afterWrite();
    this.startWrite(out);
    await this.writeSettled();
  }

  /** Called by the request body: 100-continue on first pull. */
  async beforeBodyRead(): Promise<void> {
    if (this.expectContinue && !this.continueSent && !this.responseStarted) {
      this.continueSent = true;
      if (this.pending.length > 0) await this.flushPending();
      await this.send(CONTINUE);
    }
  }

  /** Next body event for the request body reader. */
  nextBodyEvent(): number | Promise<number> {
    const ev = this.decoder.poll();
    if (ev !== DecodeEvent.NeedMore) return ev;
    // Kept so that the server, taking the body over, waits for this read first (drainBody).
    const wait = this.fill('body');
    this.bodyWait = wait;
    return wait;
  }

  /** The request body's read failed (its reader sees `e`). */
  bodyFailed(e: unknown): void {
    this.bodyError = e;
  }

  get bodyData(): Uint8Array {
    return this.decoder.data;
  }

  get bodyTrailers(): HttpHeaders | null {
    return this.decoder.trailers;
  }

  markBodyDone(): void {
    this.bodyDone = true;
  }

  /** Reads and discards what is left of the request body; false when the connection must close. */
  private async drainBody(): Promise<boolean> {
    // The body is the server's from here on: a late read by the handler fails instead of taking
    // bytes of this body, or of the next request. A read still in flight completes first.
    this.reqBody = null;
    const wait = this.bodyWait;
    if (wait !== null) {
      this.bodyWait = null;
      try {
        await wait;
      } catch {
        return false;
      }
      if (this.bodyDone) return true;
    }
    if (this.expectContinue && !this.continueSent) return false;
    let left = this.server.maxDrainBytes;
    for (;;) {
      let ev: number = this.decoder.poll();
      if (ev === DecodeEvent.NeedMore) ev = await this.fill('body');
      if (ev === DecodeEvent.End) {
        this.bodyDone = true;
        return true;
      }
      if (ev !== DecodeEvent.Data) return false;
      left -= this.decoder.data.byteLength;
      if (left < 0) return false;
    }
  }

  private errorResponse(e: unknown): HttpResponse {
    let status = 500;
    let code = 'ERR_HTTP_HANDLER_FAILED';
    if (this.expired === 'head' || this.expired === 'body') {
      status = 408;
      code = 'ERR_HTTP_TIMEOUT';
    } else if (e instanceof HttpError && e.status >= 400 && e.status <= 599) {
      status = e.status;
      code = e.code;
    }
    return plainResponse(status, code);
  }

  /**
   * Answers a response that failed before any byte of it was written: the request's own body
   * failure as errorResponse would, a failure that names a 5xx `status` (a TransportError, an
   * HttpError) with it (a proxy's upstream that broke before its first body byte: 502), anything
   * else with 500. The connection closes after it.
   */
  private async writeUnsentFailure(e: unknown): Promise<void> {
    let res: HttpResponse;
    if (e === this.bodyError || this.expired !== null) {
      res = this.errorResponse(e);
    } else {
      const status = (e as { status?: unknown } | null)?.status;
      const code = (e as { code?: unknown } | null)?.code;
      res = plainResponse(
        typeof status === 'number' && status >= 500 && status <= 599 ? status : 500,
        typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'ERR_HTTP_RESPONSE_FAILED',
      );
    }
    try {
      await this.writeResponse(null, res, false);
    } catch {
      // The peer may be gone already.
    }
  }

  /** A failure outside the handler: answer it when nothing of a response went out yet. */
  private async answerFailure(e: unknown): Promise<void> {
    this.failed = true;
    if (this.writeFailure !== null) {
      // An earlier answer's write failed (the loop had moved on): that is the failure to report.
      e = this.writeFailure;
      this.writeFailure = null;
      this.responseStarted = true;
    }
    if (this.responseStarted || this.stream.closed) {
      if (!(e instanceof HttpParseError) && !(e instanceof HttpTimeoutError)) this.server.onError(e);
      return;
    }
    if (e instanceof HttpParseError) {
      await this.reject(e.status, e.code, null, e);
    } else if (e instanceof HttpTimeoutError || this.expired !== null) {
      const kind = e instanceof HttpTimeoutError ? e.kind : this.expired;
      if (kind === 'head' || kind === 'body') await this.reject(408, 'ERR_HTTP_TIMEOUT', null, e);
    } else {
      const code = (e as { code?: string }).code;
      // Peer resets and cancellations are normal ends of a connection.
      if (code !== 'ECONNRESET' && code !== 'EPIPE' && code !== 'ECANCELED') this.server.onError(e);
    }
  }

  private async writeError(status: number, code: string): Promise<void> {
    const res = plainResponse(status, code);
    try {
      await this.writeResponse(null, res, false);
    } catch {
      // The peer may be gone already.
    }
  }

  /** Answers a request the handler will not see, and reports it to `onRejected`. */
  private async reject(status: number, code: string, req: HttpRequest | null, error: unknown): Promise<void> {
    await this.writeError(status, code);
    const hook = this.server.onRejected;
    if (hook === null) return;
    try {
      hook(
        {
          status,
          code,
          method: req === null ? null : req.method,
          target: req === null ? null : req.target,
          bytes: code.length + 1,
          error,
        },
        this.context,
      );
    } catch (e) {
      this.server.onError(e);
    }
  }

  /**
   * Writes a response with the framing its body implies; returns whether the connection stays
   * open. A failing response body closes the connection (its head is already out). The usual
   * answer (head and body in one buffer, or a streamed body that is complete at hand) is written
   * without waiting: the write is left in flight (see startWrite) and the result is a boolean.
   */
  private writeResponse(
    req: HttpRequest | null,
    res: HttpResponse,
    keepAlive: boolean,
  ): ResponseOutcome | Promise<ResponseOutcome> {
    if (this.writing || this.writeFailure !== null) return this.writeResponseAfterWrite(req, res, keepAlive);
    const method = req === null ? 'GET' : req.method;
    const minor = req !== null && req.version === '1.0' ? 0 : 1;
    const body: HttpBody = res.body;
    // Until the body is being iterated (for-await returns it on every abrupt exit), each path
    // that will not send it must release it: its source may hold an upstream connection.
    let bodyOwned = body instanceof FixedBody;
    try {
      const framing = responseFraming(res.status, body, method, minor);
      if (framing === 'eof' || this.server.closing) keepAlive = false;
      if (keepAlive && asksToClose(res.headers)) keepAlive = false;
      if (keepAlive && !this.bodyDone) {
        if (this.expectContinue && !this.continueSent) {
          // The client may still send the body it held back, or not: closing is the safe answer.
          keepAlive = false;
        } else {
          // What is left of the body will be drained after the answer; more than the drain
          // budget is known now (Content-Length): say `connection: close` in the answer.
          const b = this.reqBody;
          if (b !== null && b.length >= 0 && b.length - b.received > this.server.maxDrainBytes)
            keepAlive = false;
        }
      }
      // Filled and read synchronously: one object per server serves every connection.
      const o = this.server.headOptions;
      o.framing = framing;
      o.length = body.kind === 'stream' ? -1 : body.length;
      o.keepAlive = keepAlive;
      o.requestMinor = minor;
      o.requestMethod = method;
      const fixed = framing === 'none' || body instanceof FixedBody;
      if (fixed) {
        // Head and body in one buffer, one write.
        const data = framing === 'length' ? (body as FixedBody).data : null;
        const trailing = data === null ? 0 : data.byteLength;
        const out = this.server.heads.encode(res.status, res.reason, res.headers, o, trailing);
        if (data !== null) out.set(data, out.length - trailing);
        this.responseStarted = true;
        if (keepAlive && this.decoder.hasInput && this.pendingBytes + out.length <= MAX_PENDING_BYTES) {
          // The next pipelined request is already here: answer it in the same write.
          if (this.pending === NO_PENDING) this.pending = [out];
          else this.pending.push(out);
          this.pendingBytes += out.length;
        } else if (this.pending.length > 0) {
          this.pending.push(out);
          return this.finishResponse(this.flushPending(), bodyOwned ? null : body, keepAlive);
        } else {
          this.startWrite(out);
        }
        if (!bodyOwned) return this.finishResponse(null, body, keepAlive);
        return keepAlive;
      }
      // A bad status or reason fails here, before anything is out (answered with a 500).
      statusLineBytes(res.status, res.reason);
      this.responseStarted = true;
      bodyOwned = true;
      if (this.pending.length > 0) {
        // `o` is shared by every connection: keep this response's copy across the wait.
        return this.finishResponse(this.flushThenStream(res, { ...o }, body, framing), null, keepAlive);
      }
      let p: Promise<void> | null | typeof DEFERRED;
      try {
        p = writeStreamBody(this, res, o, body, framing, true);
      } catch (e) {
        // It failed before writing anything (its body's first step, a bad header): answerable.
        this.responseStarted = false;
        throw e;
      }
      if (p === null) return keepAlive;
      if (p === DEFERRED) {
        this.tailKeepAlive = keepAlive;
        return DEFERRED;
      }
      return this.finishResponse(p, null, keepAlive);
    } catch (e) {
      if (!bodyOwned) return this.finishResponse(Promise.reject(e), body, keepAlive);
      throw e;
    } finally {
      if (!this.writing) this.deadline = NO_DEADLINE;
    }
  }

  /** writeResponse once the write in flight settled. */
  private async writeResponseAfterWrite(
    req: HttpRequest | null,
    res: HttpResponse,
    keepAlive: boolean,
  ): Promise<ResponseOutcome> {
    try {
      await this.afterWrite();
    } catch (e) {
      this.responseStarted = true;
      await closeBody(res.body);
      throw e;
    }
    return this.writeResponse(req, res, keepAlive);
  }

  /**
   * The waiting tail of writeResponse: waits for `step` (when not null), then lets go of a body
   * that was not sent (when not null, also on failure). A write that timed out fails as such.
   */
  private async finishResponse(
    step: Promise<void> | null,
    unsent: HttpBody | null,
    keepAlive: boolean,
  ): Promise<boolean> {
    try {
      if (step !== null) await step;
      if (unsent !== null) await closeBody(unsent);
      return keepAlive;
    } catch (e) {
      if (unsent !== null) await closeBody(unsent);
      if (this.expired === 'write' && !(e instanceof HttpTimeoutError)) {
        throw new HttpTimeoutError('write', this.server.timeouts.write);
      }
      throw e;
    } finally {
      if (!this.writing) this.deadline = NO_DEADLINE;
    }
  }

  /** Writes the held-back answers, then a streamed response. */
  private async flushThenStream(
    res: HttpResponse,
    o: ResponseHeadOptions,
    body: HttpBody,
    framing: 'length' | 'chunked' | 'eof',
  ): Promise<void> {
    try {
      await this.flushPending();
    } catch (e) {
      await closeBody(body);
      throw e;
    }
    let p: Promise<void> | null | typeof DEFERRED;
    try {
      p = writeStreamBody(this, res, o, body, framing, false);
    } catch (e) {
      // Nothing of this answer is out (only the held-back ones before it): answerable.
      this.responseStarted = false;
      throw e;
    }
    if (p !== null && p !== DEFERRED) await p;
  }
}

/**
 * Sends a head and a streamed body. A chunk already at hand when the head is ready (the usual
 * case for a proxied answer that arrived in one read) goes out with the head in one write: up
 * to COALESCE_BYTES it is copied behind the head (one buffer, the head encoded straight into
 * it), above as a writev. When that copied chunk completes the body and the end is at hand too,
 * the one write is left in flight (startWrite) and the result is null: nothing to wait for.
 * Otherwise the rest runs in writeStreamRest. Steps the body can take without waiting skip the
 * promise of `next()`. The head is encoded before any wait (`o` is the server's shared options
 * object). Owns the body: every abrupt exit returns its iterator.
 */
function writeStreamBody<Cx>(
  conn: ServerConnection<Cx>,
  res: HttpResponse,
  o: ResponseHeadOptions,
  body: HttpBody,
  framing: 'length' | 'chunked' | 'eof',
  mayDefer: boolean,
): Promise<void> | null | typeof DEFERRED {
  const it = body[Symbol.asyncIterator]();
  let r: IteratorResult<Uint8Array> | null;
  let out: Uint8Array | Uint8Array[];
  let sent = 0;
  try {
    r = nextNow(it);
    if (r === null || r.done || r.value.byteLength === 0) {
      out = encodeResponseHeadBytes(res.status, res.reason, res.headers, o);
    } else {
      const chunk = r.value;
      sent = chunk.byteLength;
      // The step is taken: the chunk goes out with the head (or fails the length below).
      r = null;
      if (framing === 'length' && sent > body.length) {
        out = encodeResponseHeadBytes(res.status, res.reason, res.headers, o);
      } else if (sent > COALESCE_BYTES) {
        const head = encodeResponseHeadBytes(res.status, res.reason, res.headers, o);
        out = framing === 'chunked' ? [head, chunkHeader(sent), chunk, CHUNK_END] : [head, chunk];
        if (mayDefer && framing === 'length' && sent === body.length) {
          // Likely the whole body; the chunk is lent to the write, so its end is looked at only
          // once the write is done (onWritten), and the request loop resumes from there.
          conn.startWrite(out);
          conn.deferTail(it, body);
          return DEFERRED;
        }
      } else {
        if (framing === 'chunked') {
          const size = chunkHeader(sent);
          const b = encodeResponseHeadBytes(res.status, res.reason, res.headers, o, size.length + sent + 2);
          let pos = b.length - (size.length + sent + 2);
          b.set(size, pos);
          pos += size.length;
          b.set(chunk, pos);
          pos += sent;
          b[pos] = 0x0d;
          b[pos + 1] = 0x0a;
          out = b;
        } else {
          const b = encodeResponseHeadBytes(res.status, res.reason, res.headers, o, sent);
          b.set(chunk, b.length - sent);
          out = b;
        }
        // The chunk is copied: the body may move on before the write. When it is complete and
        // its end is at hand, this is the response's only write.
        if (framing === 'chunked' || (framing === 'length' && sent === body.length)) {
          try {
            r = nextNow(it);
          } catch (e) {
            // The chunk in hand was valid: it goes out, then the connection is cut.
            returnIterator(it);
            return sendThenFail(conn, out, e);
          }
          if (r?.done) {
            conn.startWrite(framing === 'chunked' ? [out, lastChunk(body.trailers)] : out);
            return null;
          }
        }
      }
    }
  } catch (e) {
    returnIterator(it);
    throw e;
  }
  return writeStreamRest(conn, it, r, out, sent, body, framing);
}

/**
 * The waiting part of writeStreamBody: `out` goes first (null: already out), `r` is a step already
 * taken (or null).
 */
async function writeStreamRest<Cx>(
  conn: ServerConnection<Cx>,
  it: AsyncIterator<Uint8Array>,
  r: IteratorResult<Uint8Array> | null,
  out: Uint8Array | Uint8Array[] | null,
  sent: number,
  body: HttpBody,
  framing: 'length' | 'chunked' | 'eof',
): Promise<void> {
  let ok = false;
  try {
    if (out !== null) await conn.send(out);
    if (framing === 'length' && sent > body.length) {
      throw new HttpBodyError(
        'ERR_HTTP_BODY_LENGTH_MISMATCH',
        `body announced ${body.length} bytes, produced ${sent}`,
      );
    }
    for (;;) {
      if (r === null) {
        r = nextNow(it);
        if (r === null) r = await it.next();
      }
      if (r.done) break;
      const chunk = r.value;
      r = null;
      if (framing === 'chunked') {
        if (chunk.byteLength === 0) continue;
        await conn.send([chunkHeader(chunk.byteLength), chunk, CHUNK_END]);
        continue;
      }
      sent += chunk.byteLength;
      if (framing === 'length' && sent > body.length) break;
      await conn.send(chunk);
    }
    ok = true;
    if (framing === 'chunked') await conn.send(lastChunk(body.trailers));
    else if (framing === 'length' && sent !== body.length) {
      throw new HttpBodyError(
        'ERR_HTTP_BODY_LENGTH_MISMATCH',
        `body announced ${body.length} bytes, produced ${sent}`,
      );
    }
  } finally {
    if (!ok) {
      // Stopped early (a failed write, too many bytes): let the source go, as for-await would.
      try {
        await it.return?.();
      } catch {
        // its own failure changes nothing
      }
    }
  }
}

/** Writes what a failed body produced before failing, then fails with `e` (the connection is cut). */
async function sendThenFail<Cx>(conn: ServerConnection<Cx>, out: Uint8Array, e: unknown): Promise<void> {
  await conn.send(out);
  throw e;
}

/** Lets an iterator's source go without waiting (an abrupt exit before any wait). */
function returnIterator(it: AsyncIterator<Uint8Array>): void {
  try {
    const p = it.return?.();
    if (p !== undefined) p.then(undefined, () => {});
  } catch {
    // its own failure changes nothing
  }
}

/** What a request body needs from its connection. @internal */
type RequestBodySource = Pick<
  ServerConnection<unknown>,
  'beforeBodyRead' | 'nextBodyEvent' | 'bodyData' | 'bodyTrailers' | 'markBodyDone' | 'bodyFailed' | 'reqBody'
>;

/** A request body read from the connection on demand. @internal */
class IncomingRequestBody implements HttpBody, AsyncIterator<Uint8Array> {
  readonly kind: 'fixed' | 'stream';
  readonly length: number;
  trailers: HttpHeaders | null = null;
  /** Bytes handed to the reader so far. */
  received = 0;
  private done = false;
  private started = false;

  constructor(
    private readonly conn: RequestBodySource,
    length: number,
  ) {
    this.kind = length >= 0 ? 'fixed' : 'stream';
    this.length = length;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.started) throw new HttpBodyError('ERR_HTTP_BODY_CONSUMED', 'request body can be iterated once');
    this.started = true;
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.done) return { done: true, value: undefined };
    const conn = this.conn;
    if (conn.reqBody !== this) throw bodyTaken();
    await conn.beforeBodyRead();
    if (conn.reqBody !== this) throw bodyTaken();
    let ev: number;
    try {
      ev = await conn.nextBodyEvent();
    } catch (e) {
      conn.bodyFailed(e);
      throw e;
    }
    if (ev === DecodeEvent.Data) {
      const data = conn.bodyData;
      this.received += data.byteLength;
      return { done: false, value: data };
    }
    this.done = true;
    conn.markBodyDone();
    if (ev === DecodeEvent.End) {
      this.trailers = conn.bodyTrailers;
      return { done: true, value: undefined };
    }
    const e = new HttpParseError('ERR_HTTP_INCOMPLETE_MESSAGE', 'connection closed inside the request body');
    conn.bodyFailed(e);
    throw e;
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    // Leaving early: the server drains or closes after the response.
    return { done: true, value: undefined };
  }
}

/**
 * The failure of a request body read after the server took the body over: its response was
 * complete (the server drains or discards the rest) or the connection ended.
 */
function bodyTaken(): HttpBodyError {
  return new HttpBodyError(
    'ERR_HTTP_BODY_TAKEN',
    'request body read after its response ended: the server discarded the rest',
  );
}

/** Lets go of a body that will not be sent (HEAD, 204, 304). */
async function closeBody(body: HttpBody): Promise<void> {
  try {
    await body[Symbol.asyncIterator]().return?.();
  } catch {
    // Already iterated, or its source failed: nothing to release.
  }
}

function plainResponse(status: number, code: string): HttpResponse {
  return {
    status,
    reason: '',
    version: '1.1',
    headers: new HttpHeaders([['content-type', 'text/plain']]),
    body: new FixedBody(`${code}\n`),
  };
}
