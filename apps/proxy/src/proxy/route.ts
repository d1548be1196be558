/**
 * The route-and-rewrite layer: finds the route for a request (host, then path, after removing
 * dot segments), rewrites the path (strip_prefix), and adds the forwarding fields
 * (X-Forwarded-For/-Proto/-Host, Via). No route is a 404, a path climbing above the root a 400.
 * The route table and one balancer per route are built once per config (per worker), never
 * per request. Not for sending (upstream.ts).
 */
import type { HttpResponse } from '@loch/http';
import { type FactoryLayer, layerFn, type MakeService, makeFn, type Service } from '@loch/service-async';
import { type Endpoint, endpoint } from '@loch/transports';
import type { RouteConfig, UpstreamAddress, UpstreamConfig } from '../config/schema.js';
import { type Balancer, createBalancer } from '../routing/balancer.js';
import { normalizePath, Router } from '../routing/router.js';
import type { RequestCx, RoutedCx } from './context.js';
import { ProxyError } from './errors.js';
import { addForwardingHeaders } from './header-hygiene.js';

/**
 * The connector key of one upstream of a compiled route, carrying the upstream it leads to
 * (the upstream layer reads its label for the access log and error messages from here, so
 * nothing per request has to remember it).
 */
export interface UpstreamEndpoint extends Endpoint {
  readonly upstream: UpstreamConfig;
}

/** A route with its balancer and its upstreams' connector keys, as the router holds it. */
export interface CompiledRoute extends RouteConfig {
  readonly balancer: Balancer;
  /** One endpoint per upstream, in the same order. */
  readonly endpoints: readonly UpstreamEndpoint[];
}

/** The connector key of an upstream address. */
export function endpointOf(address: UpstreamAddress): Endpoint {
  return address.kind === 'unix'
    ? endpoint({ unixPath: address.path, authority: address.authority })
    : endpoint({ host: address.host, port: address.port, authority: address.authority });
}

/** Compiles a server's routes (throws RoutePatternError for a pattern the router refuses). */
export function compileRoutes(routes: readonly RouteConfig[]): Router<CompiledRoute> {
  return new Router<CompiledRoute>(
    routes.map((r) => ({
      ...r,
      balancer: createBalancer(
        r.loadBalancer,
        r.upstreams.map((u) => u.weight),
      ),
      endpoints: r.upstreams.map((u): UpstreamEndpoint => ({ ...endpointOf(u.address), upstream: u })),
    })),
  );
}

/** Splits a request target into its path and its query (with the "?"), for origin and absolute forms. */
export function splitTarget(target: string): { path: string; query: string } | undefined {
  let start = 0;
  if (target.charCodeAt(0) !== 0x2f) {
    // absolute-form (a client talking to us as a forward proxy): keep only path and query
    const scheme = target.indexOf('://');
    if (scheme < 0) return undefined;
    const slash = target.indexOf('/', scheme + 3);
    if (slash < 0) return { path: '/', query: '' };
    start = slash;
  }
  const q = target.indexOf('?', start);
  return q < 0
    ? { path: start === 0 ? target : target.slice(start), query: '' }
    : { path: target.slice(start, q), query: target.slice(q) };
}

/** Removes a literal prefix; what is left always starts with "/". */
export function stripPrefix(path: string, prefix: string): string {
  if (!path.startsWith(prefix)) {
    // "/api" matched by "/api/{*rest}" with strip_prefix "/api/"
    return prefix.startsWith(path) ? '/' : path;
  }
  const rest = path.slice(prefix.length);
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
}

/** Routes and rewrites, then calls the upstream layer. */
export class RouteService implements Service<RequestCx, HttpResponse> {
  constructor(
    readonly inner: Service<RoutedCx, HttpResponse>,
    readonly router: Router<CompiledRoute>,
  ) {}

  call(cx: RequestCx): Promise<HttpResponse> {
    const req = cx.get('request');
    const target = req.target;
    let rawPath: string;
    let query: string;
    if (target.charCodeAt(0) === 0x2f) {
      // origin-form, nearly every request: split in place, no object per request
      const q = target.indexOf('?');
      rawPath = q < 0 ? target : target.slice(0, q);
      query = q < 0 ? '' : target.slice(q);
    } else {
      const split = splitTarget(target);
      if (split === undefined) return badTarget(target);
      rawPath = split.path;
      query = split.query;
    }
    const path = normalizePath(rawPath);
    if (path === undefined) return badTarget(target);
    const host = req.headers.get('host');
    const match = this.router.match(host, path);
    if (match === undefined) {
      return Promise.reject(new ProxyError('ERR_LOCH_NO_ROUTE', `no route for ${host ?? ''}${path}`));
    }
    const strip = match.route.stripPrefix;
    const upstreamPath = strip === undefined ? path : stripPrefix(path, strip);
    addForwardingHeaders(req.headers, cx.get('peerAddr'), cx.get('server').scheme, host, req.version);
    return this.inner.call(
      cx.set('route', match).set('upstreamTarget', query === '' ? upstreamPath : upstreamPath + query),
    );
  }
}

function badTarget(target: string): Promise<never> {
  return Promise.reject(new ProxyError('ERR_LOCH_BAD_PATH', `bad request target ${target}`));
}

/** Config the route layer reads. */
export interface RouteLayerConfig {
  readonly routes: readonly RouteConfig[];
}

/** The route layer: a new route table per build; the inner service is made from `old.inner`. */
export function routeLayer<C extends RouteLayerConfig>(): FactoryLayer<
  C,
  MakeService<Service<RoutedCx, HttpResponse>>,
  MakeService<RouteService>
> {
  return layerFn((config, inner) =>
    makeFn((old) => new RouteService(inner.make(old?.inner), compileRoutes(config.routes))),
  );
}
