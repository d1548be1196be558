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
 * (onAbandoned). Not for header hygiene (reuse.ts) or routing.
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
import type { ConnectionCx, RequestCx } from './context.js';
import { ProxyError } from './errors.js';
import { ForwardedBody } from './forwarded-body.js';
import { grpcErrorResponse, isGrpcRequest } from './grpc-status.js';
import type { ProxyLog } from './log.js';

/** Config the core layer reads. */
export interface CoreLayerConfig {
  readonly log: ProxyLog;
  readonly server: { readonly key: string; readonly accessLog: boolean };
}

/**
 * A forwarded body that writes the access-log line when it ends (the line's byte count is what
 * was passed on). A class rather than an `onEnd` closure per request.
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

/** Maps failures to responses and writes the access log. */
export class CoreService<S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>>
  implements Service<RequestCx, HttpResponse>
{
  constructor(
    readonly inner: S,
    readonly log: ProxyLog,
    readonly serverKey: string,
    readonly accessLog: boolean,
  ) {}

  /**
   * Not async: a synchronous answer (or throw) is handled at once; for a later one, one `then`
   * on the inner promise (a failure handler, plus the access-log hook when the access log is
   * on: one closure more per request) is this layer's whole cost per request. Metrics add
   * nothing here: the server's onAnswered records them (RequestHooks), so metrics without an
   * access log cost no closure per request.
   */
  call(cx: RequestCx): Answer<HttpResponse> {
    let out: Answer<HttpResponse>;
    try {
      out = this.inner.call(cx);
    } catch (error) {
      // A layer that throws instead of rejecting is answered the same way.
      return this.#answer(cx, this.#fail(cx, error), false);
    }
    if (!(out instanceof Promise)) return this.#answer(cx, out, true);
    return this.accessLog
      ? out.then(
          (res) => this.#answer(cx, res, true),
          (error: unknown) => this.#answer(cx, this.#fail(cx, error), false),
        )
      : out.then(undefined, (error: unknown) => this.#fail(cx, error));
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
    // The upstream's time to its response head (nginx's $upstream_header_time, from the request's head).
    const upstreamMs =
      fromUpstream && cx.maybeGet('upstream') !== undefined
        ? performance.now() - cx.get('startedAt')
        : undefined;
    const body = res.body;
    if (body.kind !== 'empty' && !(body instanceof FixedBody)) {
      res.body = new AccessLoggedBody(body, this, cx, res.status, upstreamMs);
    } else {
      this.logLine(cx, res.status, Math.max(body.length, 0), upstreamMs);
    }
    return res;
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
      performance.now() - cx.get('startedAt'),
      upstreamMs === undefined ? undefined : status,
      upstreamMs,
    );
  }

  #fail(cx: RequestCx, error: unknown): HttpResponse {
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
      workerMetrics.upstreamFailed(this.serverKey, cx, code);
      if (status >= 500)
        this.log
          .at('upstream')
          .warn(`${this.serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`);
      else
        this.log.debug(
          `${this.serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`,
        );
    } else if (error instanceof HttpError && error.status >= 400 && error.status <= 599) {
      status = error.status;
      code = error.code;
      this.log.debug(
        `${this.serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`,
      );
    } else {
      this.log.error(
        `${this.serverKey}: ${req.method} ${cx.get('clientTarget')}: ${(error as Error)?.stack ?? String(error)}`,
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
}

/** The HTTP core layer. */
export function coreLayer<
  C extends CoreLayerConfig,
  S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>,
>(): FactoryLayer<C, MakeService<S>, MakeService<CoreService<S>>> {
  return layerFn((config, inner) =>
    makeFn(
      (old) =>
        new CoreService(inner.make(old?.inner), config.log, config.server.key, config.server.accessLog),
    ),
  );
}

/**
 * The context layer, outermost: the HttpServer's handler as it is (an HttpHandler is a
 * Service). Forks the request's connection context and stamps it with the request and its
 * start time. Only the access log and metrics read the start time, so without them no
 * clock is read and `startedAt` is 0.
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
      .set('startedAt', this.timed ? performance.now() : workerMetrics.enabled ? turnNow() : 0);
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
  constructor(private readonly serverKey: string) {}

  /**
   * onAnswered: the request's answer goes to its client (the upstream's, or one loch made:
   * `failure` set by the core layer). Reads the context the context layer put on the request.
   */
  readonly answered = (request: HttpServerRequest<ConnectionCx>, response: HttpResponse): void => {
    if (!workerMetrics.enabled) return;
    const cx = contextOf(request);
    if (cx !== undefined)
      workerMetrics.answered(this.serverKey, cx, response.status, cx.maybeGet('failure') === undefined);
  };

  /**
   * onAbandoned: the client reset its HTTP/2 stream or closed its connection while loch waited
   * for the answer. The upstream exchange waiting for its head is cancelled (HTTP/1.1: the
   * connection closed and never pooled; HTTP/2: RST_STREAM(CANCEL), the session lives on); one
   * still connecting is cancelled as soon as it starts (noteUpstreamExchange). Counted as 499,
   * as nginx logs it.
   */
  readonly abandoned = (request: HttpServerRequest<ConnectionCx>): void => {
    const cx = contextOf(request);
    if (cx === undefined) return;
    cx.set('abandoned', true);
    cx.maybeGet('upstreamExchange')?.cancelExchange(request);
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
