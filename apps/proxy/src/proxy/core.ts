/**
 * The two outer layers of a server's chain, and the server's per-request hooks. The context
 * layer turns the HttpServer's call `(request, connection context)` into one certain-map context
 * per request (a fork of the connection's, plus the request and its start time), which the
 * request carries from then on (`request.context`). The HTTP core layer below it answers every
 * failure of the inner layers with a small plain-text response (ProxyError's status and fields:
 * 404, 400, 405, 502, 504; 500 for anything unexpected; a gRPC call gets a trailers-only
 * grpc-status answer instead), logs failures, and is the request's access log (the context's
 * `accessLog`). The HttpServer's hooks (RequestHooks, wired with `hooks.serverOptions()`) record
 * the metrics of every answer (onAnswered), tell the access log the answer and a streamed body's
 * end (onBodyEnd: the line's bytes) and cancel the upstream exchange of a request whose client
 * went away (onAbandoned); in a chain built with `serverHooks` they also answer its failures
 * (onFailed), so the layer adds no promise reaction. Not for header hygiene (reuse.ts) or routing.
 */
import {
  createResponse,
  FixedBody,
  HttpError,
  type HttpExchangeCancel,
  type HttpHandler,
  type HttpRequest,
  type HttpResponse,
  type HttpServerOptions,
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
import {
  type AnswerLog,
  type ConnectionCx,
  CxAbandoned,
  CxAccessLog,
  CxClientTarget,
  CxFailure,
  CxPeerAddr,
  CxRequest,
  CxSetAbandoned,
  CxSetAccessLog,
  CxSetClientTarget,
  CxSetFailure,
  CxSetRequest,
  CxSetStartedAt,
  CxSetUpstreamExchange,
  CxSetUpstreamHeaderMs,
  CxStartedAt,
  CxUpstream,
  CxUpstreamExchange,
  CxUpstreamHeaderMs,
  type RequestCx,
} from './context.js';
import { ProxyError } from './errors.js';
import { grpcErrorResponse, isGrpcRequest } from './grpc-status.js';
import type { ProxyLog } from './log.js';
import type { ServerLifecycle } from './reuse.js';

/** Config the core layer reads. */
export interface CoreLayerConfig {
  readonly log: ProxyLog;
  readonly server: { readonly key: string; readonly accessLog: boolean };
  /**
   * The HttpServer serving this chain answers failures with RequestHooks.failed (its hooks have
   * the worker's log and the server's lifecycle): it answers a request's rejected answer (either
   * protocol) itself, so the core layer hands the inner promise on as it is (no reaction of its
   * own per request). With or without it, the server must have the chain's RequestHooks
   * (serverOptions()) when the access log is on: the access log hears of every answer from them.
   */
  readonly serverHooks?: boolean;
}

/**
 * Maps failures to responses, and is the access log the server's hooks tell of each answer
 * (RequestHooks: the context's `accessLog`).
 */
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
   * Not async: a synchronous answer (or throw) is handled at once; for a later one, a failure
   * handler (one `then` on the inner promise) is this layer's whole cost per request. A request
   * whose server answers failures itself (CoreLayerConfig.serverHooks: RequestHooks.failed maps
   * them as #fail does) costs this layer no reaction: the inner promise is the answer. The access
   * log is one context key: the server's hooks tell it the answer (RequestHooks.answered,
   * .bodyEnded, .abandoned). Metrics add nothing here: the server's onAnswered records them.
   */
  call(cx: RequestCx): Answer<HttpResponse> {
    if (this.accessLog) CxSetAccessLog.set(cx, this);
    let out: Answer<HttpResponse>;
    try {
      out = this.inner.call(cx);
    } catch (error) {
      // A layer that throws instead of rejecting is answered the same way.
      return this.#fail(cx, error);
    }
    if (this.serverAnswersFailures || !(out instanceof Promise)) return out;
    return out.then(undefined, (error: unknown) => this.#fail(cx, error));
  }

  /**
   * AnswerLog, for RequestHooks.answered: `response` goes to the client (never after
   * abandoned()); `own` when loch made it (failureResponse marked the context's `failure`). A
   * streamed body's line waits for its end (bodyEnded), anything else is logged now.
   */
  answered(cx: RequestCx, response: HttpResponse, own: boolean): void {
    // The upstream's time to its response head (nginx's $upstream_header_time, from the request's head).
    const upstreamMs =
      !own && CxUpstream.maybeGet(cx) !== undefined ? turnNow() - CxStartedAt.get(cx) : undefined;
    const body = response.body;
    if (body.kind !== 'empty' && !(body instanceof FixedBody)) {
      if (upstreamMs !== undefined) CxSetUpstreamHeaderMs.set(cx, upstreamMs);
    } else {
      this.#logLine(cx, response.status, Math.max(body.length, 0), upstreamMs);
    }
  }

  /** AnswerLog, for RequestHooks.bodyEnded: a streamed answer's line, at its body's end. */
  bodyEnded(cx: RequestCx, response: HttpResponse, bytes: number): void {
    this.#logLine(cx, response.status, bytes, CxUpstreamHeaderMs.maybeGet(cx));
  }

  /** AnswerLog, for RequestHooks.abandoned: the client went away first (499, no bytes). */
  abandoned(cx: RequestCx): void {
    this.#logLine(cx, CLIENT_CLOSED_REQUEST, 0);
  }

  /** One access-log line for `cx`'s request; `upstreamMs` set when an upstream answered. */
  #logLine(cx: RequestCx, status: number, bytes: number, upstreamMs: number | undefined = undefined): void {
    const req = CxRequest.get(cx);
    const upstream = CxUpstream.maybeGet(cx);
    this.log.accessRequest(
      this.serverKey,
      CxPeerAddr.get(cx),
      req.headers,
      req.method,
      CxClientTarget.get(cx),
      status,
      bytes,
      upstream?.label,
      turnNow() - CxStartedAt.get(cx),
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
  const req = CxRequest.get(cx);
  let status = 500;
  let code = 'ERR_LOCH_INTERNAL';
  let extra: readonly (readonly [string, string])[] | undefined;
  if (CxAbandoned.maybeGet(cx) === true) {
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
        .warn(`${serverKey}: ${req.method} ${CxClientTarget.get(cx)} -> ${status}: ${error.message}`);
    else log.debug(`${serverKey}: ${req.method} ${CxClientTarget.get(cx)} -> ${status}: ${error.message}`);
  } else if (error instanceof HttpError && error.status >= 400 && error.status <= 599) {
    status = error.status;
    code = error.code;
    log.debug(`${serverKey}: ${req.method} ${CxClientTarget.get(cx)} -> ${status}: ${error.message}`);
  } else {
    log.error(
      `${serverKey}: ${req.method} ${CxClientTarget.get(cx)}: ${(error as Error)?.stack ?? String(error)}`,
    );
  }
  // Metrics tell loch's own answers from the upstream's (RequestHooks.answered).
  CxSetFailure.set(cx, code);
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
    const forked = request.context.fork();
    const withTarget = CxSetClientTarget.set(CxSetRequest.set(forked, request), request.target);
    const cx = CxSetStartedAt.set(withTarget, this.timed || workerMetrics.enabled ? turnNow() : 0);
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
  return cx !== undefined && CxRequest.maybeGet(cx) === request ? cx : undefined;
}

/**
 * The HttpServer hooks of a server's requests, one object per server, wired all together
 * (serverOptions()): the metrics and the access log of every answer (onAnswered, onBodyEnd),
 * without a promise reaction per request in the core layer, and the cancellation of the
 * upstream exchange of a request whose client went away (onAbandoned).
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
  ) {}

  /**
   * The HttpServer's options for these hooks, all four: the access log writes a streamed
   * answer's line only when the server tells its body's end (onBodyEnd), so a server that serves
   * a chain with the core layer takes them together.
   */
  serverOptions(): Required<
    Pick<HttpServerOptions<ConnectionCx>, 'onAnswered' | 'onAbandoned' | 'onBodyEnd' | 'onFailed'>
  > {
    return {
      onAnswered: this.answered,
      onAbandoned: this.abandoned,
      onBodyEnd: this.bodyEnded,
      onFailed: this.failed,
    };
  }

  /**
   * onAnswered: the request's answer goes to its client (the upstream's, or one loch made:
   * `failure` set by the core layer). Reads the context the context layer put on the request.
   * A server removed by a reload (its listener gone) adds `connection: close`, checked at the
   * answer (the reuse layer's rule; here it costs no promise reaction per request). The core
   * layer's access log (the context's `accessLog`) takes the answer here too.
   */
  readonly answered = (request: HttpServerRequest<ConnectionCx>, response: HttpResponse): void => {
    if (this.server?.lifecycle.retired === true) response.headers.set('connection', 'close');
    const cx = contextOf(request);
    if (cx === undefined) return;
    const own = CxFailure.maybeGet(cx) !== undefined;
    // The core layer's access log, with the answer as it goes out.
    CxAccessLog.maybeGet(cx)?.answered(cx, response, own);
    if (workerMetrics.enabled) workerMetrics.answered(this.serverKey, cx, response.status, !own);
  };

  /**
   * onBodyEnd: the server is done with an answered request's
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
    CxAccessLog.maybeGet(cx)?.bodyEnded(cx, response, bytes);
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
   * logged (the context's `accessLog`) as 499, as nginx logs it; the server tells
   * onAnswered nothing of it after this.
   */
  readonly abandoned = (request: HttpServerRequest<ConnectionCx>): void => {
    const cx = contextOf(request);
    if (cx === undefined) return;
    CxSetAbandoned.set(cx, true);
    CxUpstreamExchange.maybeGet(cx)?.cancelExchange(request);
    CxAccessLog.maybeGet(cx)?.abandoned(cx);
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
  if (CxAbandoned.maybeGet(cx) === true) exchange.cancelExchange(request);
  else CxSetUpstreamExchange.set(cx, exchange);
}
