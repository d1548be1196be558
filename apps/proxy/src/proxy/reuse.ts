/**
 * The connection-reuse layer: the downstream hop's connection management. It removes the
 * request's hop-by-hop fields (the client's Connection, Keep-Alive, TE, Upgrade, ... and what
 * Connection names: RFC 9110 §7.6.1) before the request is routed on, and asks the server to
 * close the client connection after the response when the server this service belongs to has
 * been removed by a reload (its listener is gone; the client should reconnect). Whether a
 * connection stays open otherwise (HTTP/1.0, Connection: close, shutdown) is the HttpServer's
 * decision, made from the request as received. Not for response hygiene (upstream.ts).
 */
import type { HttpResponse } from '@loch/http';
import {
  type Answer,
  type FactoryLayer,
  layerFn,
  type MakeService,
  makeFn,
  type Service,
} from '@loch/service-async';
import type { RequestCx } from './context.js';
import { removeHopByHop } from './header-hygiene.js';

/** Per-build state a worker flips when the server is removed by a reload. */
export interface ServerLifecycle {
  retired: boolean;
}

/** Config the reuse layer reads. */
export interface ReuseLayerConfig {
  readonly lifecycle: ServerLifecycle;
}

/** Request hop-by-hop hygiene and close-after-retire. */
export class ConnectionReuseService<
  S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>,
> implements Service<RequestCx, HttpResponse>
{
  constructor(
    readonly inner: S,
    readonly lifecycle: ServerLifecycle,
  ) {}

  /**
   * Not async: a synchronous answer is finished at once, a later one with one `then` whose
   * handler is made once per service, not per request.
   */
  call(cx: RequestCx): Answer<HttpResponse> {
    removeHopByHop(cx.get('request').headers);
    const out = this.inner.call(cx);
    return out instanceof Promise ? out.then(this.#afterResponse) : this.#afterResponse(out);
  }

  /** A retired server's responses tell the client to reconnect (the check is made at the response, not the request). */
  readonly #afterResponse = (res: HttpResponse): HttpResponse => {
    if (this.lifecycle.retired) res.headers.set('connection', 'close');
    return res;
  };
}

/** The connection-reuse layer. */
export function reuseLayer<
  C extends ReuseLayerConfig,
  S extends Service<RequestCx, HttpResponse> = Service<RequestCx, HttpResponse>,
>(): FactoryLayer<C, MakeService<S>, MakeService<ConnectionReuseService<S>>> {
  return layerFn((config, inner) =>
    makeFn((old) => new ConnectionReuseService(inner.make(old?.inner), config.lifecycle)),
  );
}
