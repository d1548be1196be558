/**
 * The gateway as a Service of @loch/service-async over @loch/http's request and response:
 * routes are tried in order on the request's path; the first whose template matches answers
 * (405 with Allow when only the method differs). `ThriftGateway` answers 404 itself when no
 * route matches; `thriftGatewayLayer` passes such requests to the inner service instead, so a
 * gateway stacks in front of anything else a server does. Not for compiling routes
 * (gateway-route.ts) or holding connections (the routes' upstreams do).
 */
import { type HttpRequest, type HttpResponse, pathOf } from '@loch/http';
import { type FactoryLayer, type MakeService, makeFn, type Service } from '@loch/service-async';
import { GatewayRoute, type GatewayRouteOptions, jsonResponse } from './gateway-route.js';

/** What a gateway finds for a request. */
export type GatewayMatch =
  | {
      readonly kind: 'route';
      readonly route: GatewayRoute;
      readonly params: ReadonlyMap<string, string>;
      readonly query: URLSearchParams | undefined;
    }
  | { readonly kind: 'method'; readonly allow: string }
  | { readonly kind: 'none' };

const NONE: GatewayMatch = { kind: 'none' };

/** Routes tried in order. */
export class GatewayRoutes {
  readonly routes: readonly GatewayRoute[];

  constructor(routes: readonly (GatewayRoute | GatewayRouteOptions)[]) {
    this.routes = routes.map((r) => (r instanceof GatewayRoute ? r : new GatewayRoute(r)));
  }

  /** The route for a method and request target (`/path?query`). */
  match(method: string, target: string): GatewayMatch {
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    let allow: string[] | undefined;
    for (const route of this.routes) {
      const params = route.template.match(path);
      if (params === undefined) continue;
      // HEAD is answered as GET is (RFC 9110 §9.3.2); the server sends no body for it.
      if (
        route.httpMethod !== undefined &&
        route.httpMethod !== method &&
        !(method === 'HEAD' && route.httpMethod === 'GET')
      ) {
        (allow ??= []).push(route.httpMethod);
        continue;
      }
      return {
        kind: 'route',
        route,
        params,
        query: q < 0 ? undefined : new URLSearchParams(target.slice(q + 1)),
      };
    }
    return allow === undefined ? NONE : { kind: 'method', allow: [...new Set(allow)].join(', ') };
  }
}

function methodNotAllowed(allow: string): HttpResponse {
  return jsonResponse(405, JSON.stringify({ error: 'ERR_GATEWAY_METHOD', message: `use ${allow}` }), [
    ['allow', allow],
  ]);
}

/** An HTTP service that answers every request from its routes (404 when none matches). */
export class ThriftGateway<Req extends HttpRequest = HttpRequest> implements Service<Req, HttpResponse> {
  readonly routes: GatewayRoutes;

  constructor(routes: GatewayRoutes | readonly (GatewayRoute | GatewayRouteOptions)[]) {
    this.routes = routes instanceof GatewayRoutes ? routes : new GatewayRoutes(routes);
  }

  readonly call = (request: Req): Promise<HttpResponse> | HttpResponse => {
    const m = this.routes.match(request.method, pathOf(request));
    if (m.kind === 'route') return m.route.call(request, m.params, m.query);
    if (m.kind === 'method') return methodNotAllowed(m.allow);
    return jsonResponse(404, JSON.stringify({ error: 'ERR_GATEWAY_NO_ROUTE', message: 'no route' }));
  };
}

/** A service that answers matching requests from its routes and passes the rest to `inner`. */
export class ThriftGatewayService<Req extends HttpRequest> implements Service<Req, HttpResponse> {
  constructor(
    readonly routes: GatewayRoutes,
    readonly inner: Service<Req, HttpResponse>,
  ) {}

  readonly call = (request: Req): Promise<HttpResponse> | HttpResponse => {
    const m = this.routes.match(request.method, pathOf(request));
    if (m.kind === 'route') return m.route.call(request, m.params, m.query);
    if (m.kind === 'method') return methodNotAllowed(m.allow);
    return this.inner.call(request);
  };
}

/**
 * A FactoryLayer: the config's routes in front of the inner service (requests no route
 * matches go on to it). `routes(config)` builds them when the stack is built and on reload.
 */
export function thriftGatewayLayer<C, Req extends HttpRequest>(
  routes: (config: C) => GatewayRoutes,
): FactoryLayer<C, MakeService<Service<Req, HttpResponse>>, MakeService<ThriftGatewayService<Req>>> {
  return {
    layer: (config, inner) => {
      const compiled = routes(config);
      return makeFn(
        (old?: ThriftGatewayService<Req>) => new ThriftGatewayService(compiled, inner.make(old?.inner)),
      );
    },
  };
}
