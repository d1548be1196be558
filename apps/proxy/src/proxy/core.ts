/**
 * The two outer layers of a server's chain, and the server's per-request hooks. The context
 * layer turns the HttpServer's call `(request, connection context)` into one certain-map context
 * per request (a fork of the connection's, plus the request and its start time), which the
 * request carries from then on (`request.context`). The HTTP core layer below it answers every
 * failure of the inner layers with a small plain-text response (ProxyError's status and fields:
 * 404, 400, 405, 502, 504; 500 for anything unexpected; a gRPC call gets a trailers-only
 * grpc-status answer instead), logs failures, and writes the access-log line when the response
 * body has been passed on. The HttpServer's hooks (RequestHooks) record the metrics of every
 * answer (onAnswered) and cancel the upstream exchange of a request whose client went away
 * (onAbandoned); in a chain built with `serverHooks` they also answer its failures (onFailed)
 * and tell the core layer's access log the answer, so the layer adds no promise reaction.
 * Not for header hygiene (reuse.ts) or routing.
 */
import {
  createResponse,
  FixedBody,
  type HttpBody,
  HttpError,
  type HttpExchangeCancel,
  type HttpHandler,
  type HttpRequest,
  type HttpResponse,
  type HttpServerRequest,
} from '@loch/http';
import {
  type Answer,
  type FactoryLayer,
  layerFn,
  type MakeService,
  makeFn,
  type Service,
} from '@loch/service-async';
import { workerMetrics } from '../metrics/recorder.js';
import { turnNow } from '../metrics/turn-clock.js';
import type { AnswerLog, ConnectionCx, RequestCx } from './context.js';
import { ProxyError } from './errors.js';
import { ForwardedBody } from './forwarded-body.js';
import { grpcErrorResponse, isGrpcRequest } from './grpc-status.js';
import type { ProxyLog } from './log.js';
import type { ServerLifecycle } from './reuse.js';

/** Config the core layer reads. */
export interface CoreLayerConfig {
  readonly log: ProxyLog;
  readonly server: { readonly key: string; readonly accessLog: boolean };
  /**
   * The HttpServer serving this chain has RequestHooks (with the worker's log and the server's
   * lifecycle) as its onAnswered, onAbandoned and onFailed: it answers a request's rejected answer
   * (either protocol) with RequestHooks.failed and tells every answer to onAnswered, so the core
   * layer hands the inner promise on as it is (no reaction of its own per request), and its
   * access log hears of the answer from those hooks (the context's `accessLog`).
   */
  readonly serverHooks?: boolean;
}

/**
 * A forwarded body that writes the access-log line when it ends (the line's byte count is what
 * was passed on). A class rather than an `onEnd` closure per request. Only for a server that does
 * not tell the body's end: a chain without `serverHooks` (the core layer's own `then`, e.g. a
 * library user's stack) or RequestHooks without `bodyEnds`. loch's worker and the benches
 * (apps/proxy/bench) wire onBodyEnd, so their lines come from bodyEnded instead.
 */
class AccessLoggedBody extends ForwardedBody {
  constructor(
    source: HttpBody,
    private readonly core: CoreService,
    private readonly cx: RequestCx,
    private readonly status: number,
    private readonly upstreamMs: number | undefined,
  ) {
    super(source, null);
  }

  protected override ended(bytes: number): void {
    this.core.logLine(this.cx, this.status, bytes, this.upstreamMs);
  }
}

/** Most idle access-log waiters a core service keeps (one is busy per request waiting upstream). */
const MAX_SPARE_WAITERS = 256;

/**
 * The access log's wait for one request's answer: `then(waiter.resolve, waiter.reject)` with
 * handlers made once per waiter, pooled per core service, so a logged request costs the promise
 * reaction and `then`'s promise, not two closures and their context each.
 */
class AccessLogWaiter {
  cx: RequestCx | null = null;
  constructor(private readonly core: CoreService) {}
  readonly resolve = (res: HttpResponse): HttpResponse => this.core.settled(this, true, res);
  readonly reject = (error: unknown): HttpResponse => this.core.settled(this, false, error);
}

/** Maps failures to responses and writes the access log. */
export class CoreService<S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>>
  implements Service<RequestCx, HttpResponse>, AnswerLog
{
  constructor(
    readonly inner: S,
    readonly log: ProxyLog,
    readonly serverKey: string,
    readonly accessLog: boolean,
    /** The server answers failures itself (CoreLayerConfig.serverHooks). */
    readonly serverAnswersFailures = false,
  ) {}

  /**
   * Not async: a synchronous answer (or throw) is handled at once; for a later one, one `then`
   * on the inner promise (a failure handler, plus the access-log hook when the access log is
   * on) is this layer's whole cost per request. A request whose server answers failures and
   * tells answers itself (CoreLayerConfig.serverHooks: RequestHooks.failed maps them as #fail
   * does, RequestHooks.answered and .abandoned tell the access log) costs this layer no
   * reaction: the inner promise is the answer, and the access log is one context key. Metrics
   * add nothing here: the server's onAnswered records them (RequestHooks).
   */
  call(cx: RequestCx): Answer<HttpResponse> {
    if (this.serverAnswersFailures) {
      if (this.accessLog) cx.set('accessLog', this);
      try {
        return this.inner.call(cx);
      } catch (error) {
        // A layer that throws instead of rejecting is answered the same way (logged by the hooks).
        return this.#fail(cx, error);
      }
    }
    let out: Answer<HttpResponse>;
    try {
      out = this.inner.call(cx);
    } catch (error) {
      // A layer that throws instead of rejecting is answered the same way.
      return this.#answer(cx, this.#fail(cx, error), false);
    }
    if (!(out instanceof Promise)) return this.#answer(cx, out, true);
    if (this.accessLog) {
      // A pooled pair of handlers (AccessLogWaiter) instead of two closures per request.
      const w = this.#waiters.pop() ?? new AccessLogWaiter(this);
      w.cx = cx;
      return out.then(w.resolve, w.reject);
    }
    return out.then(undefined, (error: unknown) => this.#fail(cx, error));
  }

  /**
   * AnswerLog, for RequestHooks.answered (serverHooks): `response` goes to the client (never
   * after abandoned()); `own` when loch made it (failureResponse marked the context's `failure`).
   */
  answered(cx: RequestCx, response: HttpResponse, own: boolean, bodyEndTold: boolean): void {
    this.#logAnswer(cx, response, !own, bodyEndTold);
  }

  /** AnswerLog, for RequestHooks.bodyEnded: a streamed answer's line, at its body's end. */
  bodyEnded(cx: RequestCx, response: HttpResponse, bytes: number): void {
    this.logLine(cx, response.status, bytes, cx.maybeGet('upstreamHeaderMs'));
  }

  /** AnswerLog, for RequestHooks.abandoned (serverHooks): the client went away first (499, no bytes). */
  abandoned(cx: RequestCx): void {
    this.logLine(cx, CLIENT_CLOSED_REQUEST, 0);
  }

  /** Access-log waiters not in use (see AccessLogWaiter). */
  readonly #waiters: AccessLogWaiter[] = [];

  /** @internal an AccessLogWaiter's outcome for `cx`'s request: its answer (`ok`), or its failure. */
  settled(w: AccessLogWaiter, ok: boolean, outcome: unknown): HttpResponse {
    const cx = w.cx!;
    w.cx = null;
    if (this.#waiters.length < MAX_SPARE_WAITERS) this.#waiters.push(w);
    return ok
      ? this.#answer(cx, outcome as HttpResponse, true)
      : this.#answer(cx, this.#fail(cx, outcome), false);
  }

  /**
   * The access-log hook (`fromUpstream`: not an answer of #fail): a streamed body logs when it
   * ends, anything else now. A request whose client went away logs 499 (as nginx), no bytes.
   */
  #answer(cx: RequestCx, res: HttpResponse, fromUpstream: boolean): HttpResponse {
    if (!this.accessLog) return res;
    if (cx.maybeGet('abandoned') === true) {
      this.logLine(cx, CLIENT_CLOSED_REQUEST, 0);
      return res;
    }
    this.#logAnswer(cx, res, fromUpstream, false);
    return res;
  }

  /**
   * The access-log hook of an answer that goes out: a streamed body logs when it ends (told by
   * the server: `bodyEndTold`, else seen by a wrapper of the body), anything else now.
   */
  #logAnswer(cx: RequestCx, res: HttpResponse, fromUpstream: boolean, bodyEndTold: boolean): void {
    // The upstream's time to its response head (nginx's $upstream_header_time, from the request's head).
    const upstreamMs =
      fromUpstream && cx.maybeGet('upstream') !== undefined ? turnNow() - cx.get('startedAt') : undefined;
    const body = res.body;
    if (body.kind !== 'empty' && !(body instanceof FixedBody)) {
      if (!bodyEndTold) res.body = new AccessLoggedBody(body, this, cx, res.status, upstreamMs);
      else if (upstreamMs !== undefined) cx.set('upstreamHeaderMs', upstreamMs);
    } else {
      this.logLine(cx, res.status, Math.max(body.length, 0), upstreamMs);
    }
  }

  /** @internal one access-log line for `cx`'s request; `upstreamMs` set when an upstream answered */
  logLine(cx: RequestCx, status: number, bytes: number, upstreamMs: number | undefined = undefined): void {
    const req = cx.get('request');
    const upstream = cx.maybeGet('upstream');
    this.log.accessRequest(
      this.serverKey,
      cx.get('peerAddr'),
      req.headers,
      req.method,
      cx.get('clientTarget'),
      status,
      bytes,
      upstream?.label,
      turnNow() - cx.get('startedAt'),
      upstreamMs === undefined ? undefined : status,
      upstreamMs,
    );
  }

  #fail(cx: RequestCx, error: unknown): HttpResponse {
    return failureResponse(this.log, this.serverKey, cx, error);
  }
}

/**
 * The answer to a failure of a request's chain (the core layer's, and RequestHooks.failed's):
 * a ProxyError's or HttpError's status, else 500 (logged), or a gRPC call's trailers-only
 * grpc-status; a request whose client went away gets 499 (nobody reads it). Marks the
 * context's `failure` for metrics.
 */
export function failureResponse(
  log: ProxyLog,
  serverKey: string,
  cx: RequestCx,
  error: unknown,
): HttpResponse {
  const req = cx.get('request');
  let status = 500;
  let code = 'ERR_LOCH_INTERNAL';
  let extra: readonly (readonly [string, string])[] | undefined;
  if (cx.maybeGet('abandoned') === true) {
    // The client went away and its upstream exchange was cancelled: nothing failed upstream,
    // and nobody reads this answer (the server does not send it).
    return createResponse(CLIENT_CLOSED_REQUEST, { body: new FixedBody('') });
  }
  if (error instanceof ProxyError) {
    status = error.status;
    code = error.code;
    extra = error.headers;
    workerMetrics.upstreamFailed(serverKey, cx, code);
    if (status >= 500)
      log
        .at('upstream')
        .warn(`${serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`);
    else log.debug(`${serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`);
  } else if (error instanceof HttpError && error.status >= 400 && error.status <= 599) {
    status = error.status;
    code = error.code;
    log.debug(`${serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`);
  } else {
    log.error(
      `${serverKey}: ${req.method} ${cx.get('clientTarget')}: ${(error as Error)?.stack ?? String(error)}`,
    );
  }
  // Metrics tell loch's own answers from the upstream's (RequestHooks.answered).
  cx.set('failure', code);
  // A gRPC client reads grpc-status, not the HTTP status (grpc-status.ts).
  if (isGrpcRequest(req)) return grpcErrorResponse(status, code, `${status} ${code}`);
  return createResponse(status, {
    headers:
      extra === undefined
        ? [['content-type', 'text/plain; charset=utf-8']]
        : [['content-type', 'text/plain; charset=utf-8'], ...extra],
    body: new FixedBody(`${status} ${code}\n`),
  });
}

/** The HTTP core layer. */
export function coreLayer<
  C extends CoreLayerConfig,
  S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>,
>(): FactoryLayer<C, MakeService<S>, MakeService<CoreService<S>>> {
  return layerFn((config, inner) =>
    makeFn(
      (old) =>
        new CoreService(
          inner.make(old?.inner),
          config.log,
          config.server.key,
          config.server.accessLog,
          config.serverHooks === true,
        ),
    ),
  );
}

/**
 * The context layer, outermost: the HttpServer's handler as it is (an HttpHandler is a
 * Service). Forks the request's connection context and stamps it with the request and its
 * start time. Only the access log and metrics read the start time, so without them no
 * clock is read and `startedAt` is 0. Both read the turn clock (metrics/turn-clock.ts: one
 * performance.now() per event-loop turn, shared by the requests of that turn), as nginx
 * stamps $request_time and $upstream_header_time from its time cached per loop iteration.
 */
export class ContextHandler<S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>>
  implements HttpHandler<ConnectionCx>
{
  constructor(
    readonly inner: S,
    readonly timed = true,
  ) {}

  call(request: HttpServerRequest<ConnectionCx>): Answer<HttpResponse> {
    const cx = request.context
      .fork()
      .set('request', request)
      .set('clientTarget', request.target)
      .set('startedAt', this.timed || workerMetrics.enabled ? turnNow() : 0);
    // The request carries its own context from here on: the server's hooks (RequestHooks) and
    // the upstream exchange's (upstream.ts) find it there, with nothing allocated to link them.
    request.context = cx;
    return this.inner.call(cx);
  }
}

/** nginx's status for a request whose client closed the connection before the answer. */
export const CLIENT_CLOSED_REQUEST = 499;

/** The per-request context of a request the context layer saw (it set `request.context`). */
export function contextOf(request: { readonly context?: unknown }): RequestCx | undefined {
  const cx = request.context as RequestCx | undefined;
  return cx?.maybeGet('request') === request ? cx : undefined;
}

/**
 * The HttpServer hooks of a server's requests, one object per server: the metrics of every
 * answer (onAnswered), without a promise reaction per request in the core layer, and the
 * cancellation of the upstream exchange of a request whose client went away (onAbandoned).
 */
export class RequestHooks {
  constructor(
    private readonly serverKey: string,
    /** What answers a failure for onFailed (the worker's log; the core layer's format). */
    private readonly log: ProxyLog | null = null,
    /**
     * The server's current lifecycle (the worker replaces it at each reload): a retired server's
     * answers tell their clients to reconnect.
     */
    private readonly server: { readonly lifecycle: ServerLifecycle } | null = null,
    /**
     * The server has `bodyEnded` as its onBodyEnd: the access log writes a streamed answer's line
     * when told its body's end, instead of wrapping the body (an object and a delegation per chunk).
     */
    private readonly bodyEnds = false,
  ) {}

  /**
   * onAnswered: the request's answer goes to its client (the upstream's, or one loch made:
   * `failure` set by the core layer). Reads the context the context layer put on the request.
   * A server removed by a reload (its listener gone) adds `connection: close`, checked at the
   * answer (the reuse layer's rule; here it costs no promise reaction per request). The core
   * layer's access log (serverHooks: the context's `accessLog`) takes the answer here too.
   */
  readonly answered = (request: HttpServerRequest<ConnectionCx>, response: HttpResponse): void => {
    if (this.server?.lifecycle.retired === true) response.headers.set('connection', 'close');
    const cx = contextOf(request);
    if (cx === undefined) return;
    const own = cx.maybeGet('failure') !== undefined;
    // The core layer's access log (serverHooks), with the answer as it goes out.
    cx.maybeGet('accessLog')?.answered(cx, response, own, this.bodyEnds);
    if (workerMetrics.enabled) workerMetrics.answered(this.serverKey, cx, response.status, !own);
  };

  /**
   * onBodyEnd (when constructed with `bodyEnds`): the server is done with an answered request's
   * streamed body (every byte handed to a write, or it failed, or it was not sent): the access
   * log's line for it, with the bytes taken from it (as nginx's $body_bytes_sent).
   */
  readonly bodyEnded = (
    request: HttpServerRequest<ConnectionCx>,
    response: HttpResponse,
    bytes: number,
    _error: unknown,
  ): void => {
    // Only a request's own context holds `accessLog` (the core layer sets it in the context the
    // context layer made for it), and a connection's context answers undefined for it: no
    // contextOf check (one lookup fewer per streamed answer).
    const cx = request.context as unknown as RequestCx;
    cx.maybeGet('accessLog')?.bodyEnded(cx, response, bytes);
  };

  /**
   * onFailed: the answer to a request (HTTP/1.1 or HTTP/2) whose chain rejected, as the core layer makes it
   * (failureResponse), for a chain built with `serverHooks` (its core layer hands the
   * inner promise on as it is). A request the context layer never saw is answered by the
   * server (rethrown: its 500).
   */
  readonly failed = (request: HttpServerRequest<ConnectionCx>, error: unknown): HttpResponse => {
    const cx = contextOf(request);
    if (cx === undefined || this.log === null) throw error;
    return failureResponse(this.log, this.serverKey, cx, error);
  };

  /**
   * onAbandoned: the client reset its HTTP/2 stream or closed its connection while loch waited
   * for the answer. The upstream exchange waiting for its head is cancelled (HTTP/1.1: the
   * connection closed and never pooled; HTTP/2: RST_STREAM(CANCEL), the session lives on); one
   * still connecting is cancelled as soon as it starts (noteUpstreamExchange). Counted and
   * logged (serverHooks: the context's `accessLog`) as 499, as nginx logs it; the server tells
   * onAnswered nothing of it after this.
   */
  readonly abandoned = (request: HttpServerRequest<ConnectionCx>): void => {
    const cx = contextOf(request);
    if (cx === undefined) return;
    cx.set('abandoned', true);
    cx.maybeGet('upstreamExchange')?.cancelExchange(request);
    cx.maybeGet('accessLog')?.abandoned(cx);
    workerMetrics.answered(this.serverKey, cx, CLIENT_CLOSED_REQUEST, false);
  };
}

/**
 * transports' onExchange for the proxy's upstream requests: the exchange's cancel handle goes
 * into the request's context (a client that goes away cancels it); a request whose client is
 * already gone (it went while loch connected) is cancelled at once.
 */
export function noteUpstreamExchange(request: HttpRequest, exchange: HttpExchangeCancel): void {
  const cx = contextOf(request as { readonly context?: unknown });
  if (cx === undefined) return;
  if (cx.maybeGet('abandoned') === true) exchange.cancelExchange(request);
  else cx.set('upstreamExchange', exchange);
}
