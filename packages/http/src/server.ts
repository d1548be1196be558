/**
 * HttpServer: the protocol-neutral server. Accepts connections from a runtime listener (or is
 * handed streams), makes each connection's context, runs the protocol's connection on it
 * (HTTP/2, h2/server-session.ts, when TLS agreed on `h2` by ALPN or a plain connection starts
 * with the HTTP/2 client preface, sniffed by the h1 connection on its first read: imported with
 * the first such connection, so HTTP/1.1-only clients never load it; else HTTP/1.1,
 * h1/server-connection.ts; `Upgrade: h2c` is answered as plain HTTP/1.1), and owns what every protocol shares: the handler (a Service: request, carrying its
 * connection's context, -> response, at once or later), the deadlines, checked by one coarse
 * sweep so arming one costs two field writes, and the graceful close (stop accepting, close idle
 * connections, let active requests finish).
 *
 * A request the decoder rejects is answered with its status (400, 414, 431, 501, 505) and the
 * connection closed; a handler that throws costs its request a 500 (or the status of the
 * HttpError it threw) and never the worker. Not a router, not TLS (a TLS stream is a stream).
 */
import { METHODS } from 'node:http';
import type { Service } from '@loch/service-async';
import { acceptLoop, RuntimeStream } from '@loch/uring-runtime';
import { FixedBody } from './body.js';
import { connectionContext, type HttpConnectionContext } from './context.js';
import type { RequestDecoderOptions } from './h1/decoder.js';
import { httpDate } from './h1/encoder.js';
import { H1ServerConnection } from './h1/server-connection.js';
import { H1ServerShared } from './h1/server-shared.js';
import { type Http2ServerLimits, type ResolvedHttp2Limits, resolveHttp2Limits } from './h2/limits.js';
import type { H2ServerSession } from './h2/server-session.js';
import type { H2ServerShared } from './h2/server-shared.js';
import { deadlines } from './internal/deadlines.js';
import { LiveConnections } from './live-connections.js';
import type { HttpResponse, HttpServerRequest } from './message.js';
import type { HttpListener, HttpStream } from './transport.js';

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
  /** Decoder limits and method policy (HTTP/2 derives its header list size from them). */
  readonly limits?: RequestDecoderOptions;
  /**
   * HTTP/2 (default on): by ALPN `h2` on TLS streams, and by prior knowledge (the client
   * preface) on plain ones; `false` serves HTTP/1.1 only; an object sets the HTTP/2 limits
   * (SETTINGS, flood budgets: Http2ServerLimits).
   */
  readonly http2?: boolean | Http2ServerLimits;
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
  /**
   * HTTP/1.1 connections call `context` for each request (and for each rejection told to
   * onRejected) instead of once, and keep none: an idle keep-alive connection then holds no
   * context object (the proxy's: 56 B per idle connection). For a handler that makes a
   * per-request context of its own from `request.context` anyway (forks it), and whose context
   * holds nothing a request may set for the next one. HTTP/2 sessions keep one per connection.
   * Default false.
   */
  readonly contextPerRequest?: boolean;
  /** Called with errors that do not reach a client: handler failures, connection failures. */
  readonly onError?: (error: unknown) => void;
  /**
   * Called after the server answered a request itself (see HttpRejection), with the
   * connection's context. Not called for requests the handler answered. Must not throw.
   */
  readonly onRejected?: (rejection: HttpRejection, context: Cx) => void;
  /**
   * Called once per request its handler answered, when the answer (or the 500 the server makes
   * of a handler failure) is handed to the connection, before it is written: what metrics
   * record, without a promise reaction of their own per request. `request` is as the handler
   * left it (see onAbandoned on `request.context`). Not called for requests the server
   * answered itself (onRejected) nor for abandoned ones (onAbandoned). Must not throw.
   */
  readonly onAnswered?: (request: HttpServerRequest<Cx>, response: HttpResponse) => void;
  /**
   * Called (HTTP/1.1 and HTTP/2) when the handler's answer is a promise that rejects, with the request and
   * the rejection; what it returns is the answer (instead of the server's 500, and without
   * onError), written and told to onAnswered like any other. A handler chain whose outer layer
   * only maps failures to answers can leave that to this hook and return its inner promise as it
   * is: no promise reaction of its own per request. A throw is answered as before (onError, 500).
   * Not called for a handler that throws synchronously or answers something that is not a
   * response.
   */
  readonly onFailed?: (request: HttpServerRequest<Cx>, error: unknown) => HttpResponse;
  /**
   * Called once when a request's client went away while its handler was still working on the
   * answer, so work done for it can stop (a proxy cancels its upstream exchange): an HTTP/2
   * stream reset by the client (RST_STREAM) or ended with its connection; an HTTP/1.1
   * connection closed or half-closed (end of stream, as nginx takes it: its 499) while a
   * request waits for its answer with its body read (none, or read to its end; before that a
   * client that leaves fails the body read). The answer is not sent (HTTP/1.1 closes the
   * connection instead). `request` is as the handler left it: a handler may replace
   * `request.context` with a per-request context (a fork of the connection's). Costs nothing per request beyond what the
   * server does anyway: an HTTP/2 reset is seen as it arrives, and an HTTP/1.1 connection arms
   * the receive it would arm for the next request while the handler waits (a pipelined request
   * arriving meanwhile is kept, and ends the watch). Must not throw.
   */
  readonly onAbandoned?: (request: HttpServerRequest<Cx>) => void;
  /**
   * Called once (HTTP/1.1 and HTTP/2) for each answer told to onAnswered whose body is streamed
   * (neither a FixedBody, whose bytes are known at the answer, nor empty), when the server is
   * done with that body: its end seen and its last byte handed to a write (`error` null), or the
   * body, a write or the stream failed first (`error` says why), or the answer carries no body
   * (HEAD, 204, 304: `bytes` 0). `bytes`: the body's bytes the server took from it (without
   * framing). What an access log needs of a streamed answer (nginx's $body_bytes_sent at the
   * request's end), without wrapping the body per request. Must not throw.
   */
  readonly onBodyEnd?: (
    request: HttpServerRequest<Cx>,
    response: HttpResponse,
    bytes: number,
    error: unknown,
  ) => void;
}

const DEFAULT_TIMEOUTS: Required<HttpServerTimeouts> = {
  idle: 60_000,
  head: 30_000,
  body: 60_000,
  write: 60_000,
};
/** The methods HTTP/2 requests may use by default: those of the HTTP/1.1 decoder (Node's). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);
/**
 * Connections expired per pass of the deadline sweep before I/O gets a turn. Each expiry's work
 * (a 408, its write's completion, the close: on io_uring a turn each) lands in the turns after
 * its pass, so every turn carries about a batch of it, and a normal request waits behind that
 * in each turn it needs (five on io_uring: accept, read, upstream write and read, answer). With
 * 256 a 10,000-connection slowloris burst delayed a normal request 0.3-0.9 s on io_uring (0.2
 * on legacy, which needs fewer turns); 32 is ~2 ms of such work per turn, and the burst still
 * expires within about a second.
 */
const EXPIRE_BATCH = 32;
/** Thrown inside attach() when the server is closing (not reported to onError). */
const CLOSING = Symbol('closing');

/**
 * The first ALPN-h2 connection of the isolate while the h2 side is imported (importH2Protocol):
 * one of the server's open connections meanwhile, so close() waits for it and closeAll() closes
 * its stream; its session takes its place. No deadline of its own; not idle (the session, once
 * it runs, is told of a close that came meanwhile).
 */
class H2Pending implements ServedConnection {
  liveSlot = -1;
  readonly deadline = Number.POSITIVE_INFINITY;
  readonly idle = false;
  constructor(private readonly stream: HttpStream) {}
  expire(): void {}
  shutdownIfIdle(): void {}
  close(): Promise<void> {
    return this.stream.close().catch(() => {});
  }
}

/** The HTTP/2 side of the server (h2/server-protocol.ts). */
type H2Protocol = typeof import('./h2/server-protocol.js');
/** The HTTP/2 side once imported (one per isolate, whatever the number of servers). */
let h2Protocol: H2Protocol | undefined;
/** Its import while in flight; forgotten when it fails, so the next h2 connection tries again. */
let h2Importing: Promise<H2Protocol> | undefined;

/**
 * Imports the HTTP/2 side, at the first connection that speaks HTTP/2 (issue 18: a server whose
 * clients all speak HTTP/1.1 never loads it). Until it has loaded, that connection waits; an
 * import that fails ends that connection only (onError is told). The rule is apps/proxy's
 * lazy-module.ts's (one import in flight or done; a failure forgotten, so the next use imports
 * again), restated here because dependencies point from the proxy to this package.
 */
function importH2Protocol(): Promise<H2Protocol> {
  h2Importing ??= import('./h2/server-protocol.js').then(
    (m) => {
      h2Protocol = m;
      return m;
    },
    (error: unknown) => {
      h2Importing = undefined;
      throw error;
    },
  );
  return h2Importing;
}

/**
 * What the server keeps of each connection, whatever its protocol: its deadline for the sweep
 * and the shutdown hook.
 */
export interface ServedConnection {
  /** Its index in the server's open connections (live-connections.ts); -1 while in none. @internal */
  liveSlot?: number;
  /** When its current wait expires (the server's coarse clock, ms); +Infinity when none is armed. */
  readonly deadline: number;
  /** Its deadline passed: end the wait (answer 408, or close). */
  expire(): void;
  /** Server shutdown: close now when between requests; else the current one ends with the close. */
  shutdownIfIdle(): void;
  /**
   * The end of a shutdown grace: close the stream now, whatever is in flight (the connection then
   * ends as if the peer had gone: its end runs and the server releases it). Settles when the
   * stream is closed; never rejects.
   */
  close(): Promise<void>;
  /** Between requests: no request in flight, no answer being written (HTTP/2: no stream open). */
  readonly idle: boolean;
}

/** The HTTP server. One instance serves any number of listeners and connections. */
export class HttpServer<Cx = HttpConnectionContext> {
  /** @internal */ readonly handler: HttpHandler<Cx>;
  /** @internal */ readonly timeouts: Required<HttpServerTimeouts>;
  /** @internal */ readonly maxDrainBytes: number;
  /** @internal */ readonly maxRequests: number;
  /** @internal */ readonly makeContext: (stream: HttpStream) => Cx;
  /** HTTP/1.1 connections make their context per request (contextPerRequest). @internal */
  readonly contextPerRequest: boolean;
  /** @internal */ readonly onError: (error: unknown) => void;
  /** @internal */ readonly onRejected: ((rejection: HttpRejection, context: Cx) => void) | null;
  /** @internal */ readonly onAnswered:
    | ((request: HttpServerRequest<Cx>, response: HttpResponse) => void)
    | null;
  /** @internal */ readonly onAbandoned: ((request: HttpServerRequest<Cx>) => void) | null;
  /** @internal */ readonly onFailed:
    | ((request: HttpServerRequest<Cx>, error: unknown) => HttpResponse)
    | null;
  /** @internal */ readonly onBodyEnd:
    | ((request: HttpServerRequest<Cx>, response: HttpResponse, bytes: number, error: unknown) => void)
    | null;
  /**
   * The coarse clock for deadlines, refreshed by the sweep timer: whole ms, so the deadlines the
   * connections arm from it are Smis (a field V8 keeps in the object; a fractional time boxes it
   * as a HeapNumber per connection). @internal
   */
  now = Math.floor(performance.now());
  /** @internal */ closing = false;
  /** What the HTTP/1.1 connections of this server share. @internal */
  readonly h1: H1ServerShared;
  /** The HTTP/2 limits, resolved and checked when the server is made; null when HTTP/2 is off. */
  private readonly h2Limits: ResolvedHttp2Limits | null;
  /** What the HTTP/2 sessions share: made with the first one (see importH2Protocol). */
  private h2: H2ServerShared | null = null;
  /** The `date` and method choices of the HTTP/2 sessions (H2ServerShared's). */
  private readonly h2Date: (() => string) | null;
  private readonly h2Methods: ReadonlySet<string> | 'any';
  private readonly h2MaxHeaderCount: number;
  private readonly live = new LiveConnections<ServedConnection>();
  private readonly listeners = new Set<HttpListener>();
  /** The shortest deadline armed (ms), which sets the sweep's tick; 0 when none is. */
  private readonly shortestDeadline: number;
  /** In the package's deadline sweep (while connections are open). */
  private swept = false;
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
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.maxDrainBytes = options.maxDrainBytes ?? 64 * 1024;
    const limits = options.limits ?? {};
    this.h1 = new H1ServerShared(limits, options.date ?? true);
    const http2 = options.http2 ?? true;
    this.h2Limits =
      http2 === false
        ? null
        : resolveHttp2Limits(
            http2 === true ? {} : http2,
            limits.maxHeadSize ?? 16 * 1024,
            limits.maxHeaderCount ?? 100,
          );
    this.h2Date = (options.date ?? true) ? httpDate : null;
    this.h2Methods = limits.methods ?? KNOWN_METHODS;
    this.h2MaxHeaderCount = limits.maxHeaderCount ?? 100;
    this.maxRequests = options.maxRequestsPerConnection ?? 0;
    this.makeContext = options.context ?? (connectionContext as unknown as (stream: HttpStream) => Cx);
    this.contextPerRequest = options.contextPerRequest ?? false;
    this.onError = options.onError ?? (() => {});
    this.onRejected = options.onRejected ?? null;
    this.onAnswered = options.onAnswered ?? null;
    this.onAbandoned = options.onAbandoned ?? null;
    this.onFailed = options.onFailed ?? null;
    this.onBodyEnd = options.onBodyEnd ?? null;
    const active = Object.values(this.timeouts).filter((t) => t > 0);
    this.shortestDeadline = active.length === 0 ? 0 : Math.min(...active, 4000);
  }

  /** Number of open connections. */
  get connections(): number {
    return this.live.size;
  }

  /**
   * Number of open connections between requests (nginx's "waiting"): HTTP/1.1 ones waiting for a
   * request head with no answer being written, HTTP/2 ones with no stream open. Counted when
   * asked (one pass over the connections), so serving requests pays nothing for it.
   */
  get idleConnections(): number {
    let n = 0;
    for (const c of this.live) if (c.idle) n++;
    return n;
  }

  /**
   * Accepts connections from `listener` until it is closed (or the server is), serving each on
   * its own task. Resolves when accepting stops.
   */
  async serve(listener: HttpListener): Promise<void> {
    this.listeners.add(listener);
    try {
      await acceptLoop(listener, this.onAccepted, { stopping: this.isClosing, onError: this.onError });
    } finally {
      this.listeners.delete(listener);
    }
  }

  private readonly onAccepted = (stream: HttpStream): void => this.attach(stream, null);
  private readonly isClosing = (): boolean => this.closing;

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
    let conn: H1ServerConnection<Cx> | H2ServerSession<Cx>;
    try {
      if (this.closing) throw CLOSING;
      if (
        this.h2Limits !== null &&
        !RuntimeStream.hasPlainFacts(stream) &&
        stream.facts.alpnProtocol === 'h2'
      ) {
        const h2 = h2Protocol;
        if (h2 === undefined) {
          // The first h2 connection of the isolate waits for the h2 side, among the open
          // connections (close() waits for it, closeAll() closes it).
          const pending = new H2Pending(stream);
          this.live.add(pending);
          if (!this.swept) this.joinSweep();
          this.startH2WhenLoaded(pending, stream, null, onClosed, null);
          return;
        }
        conn = new h2.H2ServerSession(this, this.h2Shared(h2), stream, this.makeContext(stream), onClosed);
      } else {
        conn = new H1ServerConnection(
          this,
          stream,
          this.contextPerRequest ? null : this.makeContext(stream),
          onClosed,
        );
      }
    } catch (e) {
      if (e !== CLOSING) this.onError(e);
      void stream
        .close()
        .catch(() => {})
        .then(() => onClosed?.(stream));
      return;
    }
    this.live.add(conn);
    if (!this.swept) this.joinSweep();
    if (conn instanceof H1ServerConnection) conn.start();
    else conn.start(null);
  }

  /** Closes a stream the server could not serve (`error` goes to onError) and tells `onClosed`. */
  private dropUnserved(
    stream: HttpStream,
    onClosed: ((stream: HttpStream) => void) | null,
    error: unknown,
  ): void {
    this.onError(error);
    void stream
      .close()
      .catch(() => {})
      .then(() => onClosed?.(stream));
  }

  /** What this server's h2 sessions share, made with the first. */
  private h2Shared(h2: H2Protocol): H2ServerShared {
    this.h2 ??= new h2.H2ServerShared(this.h2Limits!, this.h2Date, this.h2Methods, this.h2MaxHeaderCount);
    return this.h2;
  }

  /**
   * Whether an h1 connection on `stream` looks for the HTTP/2 client preface in its first
   * bytes: HTTP/2 is on and the stream is plain (on TLS, ALPN decides). @internal
   */
  sniffsPreface(stream: HttpStream): boolean {
    return this.h2Limits !== null && (RuntimeStream.hasPlainFacts(stream) || !stream.facts.secure);
  }

  /**
   * An h1 connection's first bytes were the HTTP/2 client preface: an h2 session takes the
   * stream over, starting with `received` (those bytes, copied). The first such connection of
   * the isolate waits for the h2 side's import; `from` (closed to HTTP/1.1, no deadline, not
   * idle) keeps its place among the open connections meanwhile, so close() waits for it and
   * closeAll() closes its stream. @internal
   */
  switchToH2(
    from: ServedConnection,
    stream: HttpStream,
    context: Cx,
    onClosed: ((stream: HttpStream) => void) | null,
    received: Uint8Array,
  ): void {
    const h2 = h2Protocol;
    if (h2 === undefined) this.startH2WhenLoaded(from, stream, context, onClosed, received);
    else this.startH2(from, h2, stream, context, onClosed, received);
  }

  /**
   * startH2 once the process's HTTP/2 side is imported (the first h2 connection); a failed import
   * gives `from`'s place up and drops the stream unserved (the next h2 connection imports again).
   */
  private startH2WhenLoaded(
    from: ServedConnection,
    stream: HttpStream,
    context: Cx | null,
    onClosed: ((stream: HttpStream) => void) | null,
    received: Uint8Array | null,
  ): void {
    importH2Protocol().then(
      (loaded) => this.startH2(from, loaded, stream, context, onClosed, received),
      (e: unknown) => {
        this.release(from);
        this.dropUnserved(stream, onClosed, e);
      },
    );
  }

  /**
   * Runs an h2 session on `stream` in the place of `from` among the open connections (the h1
   * connection that sniffed the preface, or an H2Pending); `context` null: made now.
   */
  private startH2(
    from: ServedConnection,
    h2: H2Protocol,
    stream: HttpStream,
    context: Cx | null,
    onClosed: ((stream: HttpStream) => void) | null,
    received: Uint8Array | null,
  ): void {
    let session: H2ServerSession<Cx>;
    try {
      session = new h2.H2ServerSession(
        this,
        this.h2Shared(h2),
        stream,
        context ?? this.makeContext(stream),
        onClosed,
      );
    } catch (e) {
      this.release(from);
      this.dropUnserved(stream, onClosed, e);
      return;
    }
    this.live.replace(from, session);
    session.start(received);
    if (this.closing) session.shutdownIfIdle();
  }

  /** Tells onAnswered (a throw is reported to onError). @internal */
  answered(request: HttpServerRequest<Cx>, response: HttpResponse): void {
    try {
      this.onAnswered!(request, response);
    } catch (e) {
      this.onError(e);
    }
  }

  /**
   * Tells onBodyEnd of an answered request's streamed body (a throw is reported to onError); a
   * FixedBody or empty one is not told (see HttpServerOptions.onBodyEnd). @internal
   */
  bodyEnded(request: HttpServerRequest<Cx>, response: HttpResponse, bytes: number, error: unknown): void {
    const body = response.body;
    if (body.kind === 'empty' || body instanceof FixedBody) return;
    try {
      this.onBodyEnd!(request, response, bytes, error);
    } catch (e) {
      this.onError(e);
    }
  }

  /** Tells onAbandoned (a throw is reported to onError). @internal */
  abandoned(request: HttpServerRequest<Cx>): void {
    try {
      this.onAbandoned!(request);
    } catch (e) {
      this.onError(e);
    }
  }

  /** A connection is gone (the end of its run). @internal */
  release(conn: ServedConnection): void {
    this.live.delete(conn);
    if (this.live.size === 0) {
      this.leaveSweep();
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

  /**
   * Closes every connection now, in flight or not: what a shutdown does when its grace is over
   * (call close() first, so that no new ones come). Settles when their streams are closed; each connection
   * then ends as if its peer had gone and is released (close() resolves once all are). The
   * server's own count of its connections is all a caller needs to keep: no set of streams of
   * its own per connection.
   */
  async closeAll(): Promise<void> {
    await Promise.all(Array.from(this.live, (c) => c.close()));
  }

  /**
   * Joins the package's one deadline sweep: the server is one member, whose tick expires every
   * connection whose deadline passed (a connection arms a deadline with two field writes).
   */
  private joinSweep(): void {
    this.swept = true;
    if (this.shortestDeadline > 0) deadlines.deadline(this, this.shortestDeadline);
    this.now = Math.floor(deadlines.now);
  }

  private leaveSweep(): void {
    this.swept = false;
    deadlines.remove(this);
  }

  /** The sweep's tick (SweepMember). @internal */
  onSweep(now: number): boolean {
    this.now = Math.floor(now);
    // A pass already scheduled goes on with this clock; what it went past is seen next tick.
    if (!this.expiring) this.expireDue();
    return this.swept;
  }

  /** A later pass of expireDue is scheduled (setImmediate). */
  private expiring = false;
  /** Where that pass goes on: the next slot of `live` it reads (0: a new pass). */
  private expireFrom = 0;

  /**
   * Expires the connections whose deadline passed, at most EXPIRE_BATCH per pass: when more are
   * due (thousands of slowloris connections armed within one tick expire together), the rest
   * wait for a next pass after I/O had its turn, so the other connections' requests are served
   * in between instead of after every 408 and close. A next pass goes on from the slot where the
   * last stopped (slots stay put between passes: a removed connection leaves a free slot, an
   * added one takes a free slot or the end), so a tick reads each connection's deadline about
   * once however many passes it takes; starting over, each pass read again every connection
   * before its place (the idle ones, the ones expired and not closed yet), which grows with the
   * square of the passes. A tick's first pass compacts the slots first (the only place that
   * moves them).
   */
  private readonly expireDue = (): void => {
    this.expiring = false;
    const now = this.now;
    const live = this.live;
    let i = this.expireFrom;
    if (i === 0) live.compact();
    let n = 0;
    for (; i < live.length; i++) {
      const c = live.at(i);
      if (c === null || c.deadline > now) continue;
      c.expire();
      if (++n === EXPIRE_BATCH) {
        this.expireFrom = i + 1;
        this.expiring = true;
        setImmediate(this.expireDue);
        return;
      }
    }
    this.expireFrom = 0;
  };
}
