/**
 * The two outer layers of a server's chain. The context layer turns the HttpServer's call
 * `(request, connection context)` into one certain-map context per request (a fork of the
 * connection's, plus the request and its start time). The HTTP core layer below it answers
 * every failure of the inner layers with a small plain-text response (ProxyError's status:
 * 404, 400, 502, 504; 500 for anything unexpected), logs failures, and writes the access-log
 * line when the response body has been passed on. Not for header hygiene (reuse.ts) or routing.
 */
import {
  createResponse,
  FixedBody,
  HttpError,
  type HttpHandler,
  type HttpRequest,
  type HttpResponse,
} from '@loch/http';
import { type FactoryLayer, layerFn, type MakeService, makeFn, type Service } from '@loch/service-async';
import type { ConnectionCx, RequestCx } from './context.js';
import { ProxyError } from './errors.js';
import { ForwardedBody } from './forwarded-body.js';
import type { ProxyLog } from './log.js';

/** Config the core layer reads. */
export interface CoreLayerConfig {
  readonly log: ProxyLog;
  readonly server: { readonly key: string; readonly accessLog: boolean };
}

/** Maps failures to responses and writes the access log. */
export class CoreService implements Service<RequestCx, HttpResponse> {
  constructor(
    readonly inner: Service<RequestCx, HttpResponse>,
    readonly log: ProxyLog,
    readonly serverKey: string,
    readonly accessLog: boolean,
  ) {}

  async call(cx: RequestCx): Promise<HttpResponse> {
    let res: HttpResponse;
    try {
      res = await this.inner.call(cx);
    } catch (error) {
      res = this.#fail(cx, error);
    }
    if (this.accessLog) {
      const body = res.body;
      if (body instanceof ForwardedBody) {
        const status = res.status;
        body.onEnd = (bytes) => this.#logLine(cx, status, bytes);
      } else {
        this.#logLine(cx, res.status, Math.max(body.length, 0));
      }
    }
    return res;
  }

  #logLine(cx: RequestCx, status: number, bytes: number): void {
    const req = cx.get('request');
    const upstream = cx.maybeGet('upstream');
    this.log.access(
      this.serverKey,
      cx.get('peerAddr'),
      req.method,
      cx.get('clientTarget'),
      status,
      bytes,
      upstream?.label,
      performance.now() - cx.get('startedAt'),
    );
  }

  #fail(cx: RequestCx, error: unknown): HttpResponse {
    const req = cx.get('request');
    let status = 500;
    let code = 'ERR_LOCH_INTERNAL';
    if (error instanceof ProxyError) {
      status = error.status;
      code = error.code;
      if (status >= 500)
        this.log.warn(
          `${this.serverKey}: ${req.method} ${cx.get('clientTarget')} -> ${status}: ${error.message}`,
        );
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
    return createResponse(status, {
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: new FixedBody(`${status} ${code}\n`),
    });
  }
}

/** The HTTP core layer. */
export function coreLayer<C extends CoreLayerConfig>(): FactoryLayer<
  C,
  MakeService<Service<RequestCx, HttpResponse>>,
  MakeService<CoreService>
> {
  return layerFn((config, inner) =>
    makeFn(
      (old) =>
        new CoreService(inner.make(old?.inner), config.log, config.server.key, config.server.accessLog),
    ),
  );
}

/**
 * The context layer, outermost: what the HttpServer calls. Forks the connection context for
 * each request and stamps it with the request and its start time.
 */
export class ContextHandler implements HttpHandler<ConnectionCx> {
  constructor(readonly inner: Service<RequestCx, HttpResponse>) {}

  call(request: HttpRequest, connection: ConnectionCx): Promise<HttpResponse> {
    return this.inner.call(
      connection
        .fork()
        .set('request', request)
        .set('clientTarget', request.target)
        .set('startedAt', performance.now()),
    );
  }
}
