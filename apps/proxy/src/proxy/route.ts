/**
 * The route-and-rewrite layer: finds the route for a request (host, then path, after
 * normalizing it: path-normalizer.ts), rewrites the path (strip_prefix), and adds the forwarding
 * fields (X-Forwarded-For/-Proto/-Host, Via). The request's authority is the absolute-form
 * target's when there is one (RFC 9112 §3.2.2: the Host field is then ignored, and replaced with
 * it), else the Host field; routing and the forwarded Host use that same authority. No route is
 * a 404; a target this proxy will not forward is a 400 (a path refused by the normalizer, an
 * absolute-form target with userinfo, a bad authority or a scheme other than http(s), an empty
 * Host, a fragment, the asterisk form), CONNECT a 405 (a reverse proxy runs no tunnels). The route table
 * and one balancer per route are built once per config (per worker), never per request.
 * Not for sending (upstream.ts).
 */
import { HeaderName, type HttpResponse } from '@loch/http';
import {
  type Answer,
  type FactoryLayer,
  layerFn,
  type MakeService,
  makeFn,
  type Service,
} from '@loch/service-async';
import { type Endpoint, endpoint, type UpstreamLimit } from '@loch/transports';
import type { RouteConfig, UpstreamAddress, UpstreamConfig } from '../config/schema.js';
import { callWithGrpcPseudonyms, loadGrpcSchemaSide } from '../gateway/grpc-pseudonym.js';
import { GatewayRefusals } from '../gateway/refusals.js';
import { routeGroup } from '../health/route-group.js';
import type { UpstreamGroup } from '../health/upstream-group.js';
import { lazyModule } from '../lazy-module.js';
import { type Balancer, createBalancer } from '../routing/balancer.js';
import { normalizePath, PathRejection } from '../routing/path-normalizer.js';
import { Router } from '../routing/router.js';
import { limitRequestBody } from './body-limit.js';
import {
  CxClientCert,
  CxPeerAddr,
  CxRequest,
  CxServer,
  CxSetRoute,
  CxSetUpstreamTarget,
  type RequestCx,
  type RoutedCx,
} from './context.js';
import { gatewayUnavailable, ProxyError } from './errors.js';
import { addForwardingHeaders } from './header-hygiene.js';
import type { ProxyLog } from './log.js';

/**
 * The gateway's dispatch (and with it @loch/thrift, the Thrift upstreams and the gateway's
 * runtime: ~1 MiB of heap per isolate), imported when the route layer builds a table with a
 * gateway route: a worker whose routes only forward HTTP never loads it.
 */
const gatewayDispatch = lazyModule(() => import('../gateway/dispatch.js'));

/**
 * Closes the gateway's upstream connections if this worker loaded its dispatch (the worker is
 * stopping); a worker that never had a gateway route, or whose import failed, made none.
 */
export function closeGatewayUpstreams(): void {
  gatewayDispatch.loaded?.closeGatewayUpstreams();
}

/**
 * The connector key of one upstream of a compiled route, carrying the upstream it leads to
 * (the upstream layer reads its label for the access log and error messages from here, so
 * nothing per request has to remember it).
 */
export interface UpstreamEndpoint extends Endpoint {
  readonly upstream: UpstreamConfig;
  /** The route's upstream group (health, retry budget) and this upstream's index in it. */
  readonly group: UpstreamGroup;
  readonly index: number;
  /** max_connections / max_pending of this upstream (HttpConnector holds requests to it). */
  readonly limit: UpstreamLimit | undefined;
  /**
   * The upstream's SNI name follows the client's Host (`tls = { server_name_from = "host" }`):
   * only then does the upstream layer read Host again for endpointForHost (upstream-sni.ts).
   */
  readonly sniFromHost: boolean;
}

/** A route with its balancer and its upstreams' connector keys, as the router holds it. */
export interface CompiledRoute extends RouteConfig {
  readonly balancer: Balancer;
  /** Health of the upstreams and the retry budget (kept across reloads: health/route-group.ts). */
  readonly group: UpstreamGroup;
  /** One endpoint per upstream, in the same order. */
  readonly endpoints: readonly UpstreamEndpoint[];
}

/**
 * The connector key of an upstream address; to https upstreams, `http2` offers only h2 by ALPN,
 * `auto` h2 then http/1.1.
 */
export function endpointOf(address: UpstreamAddress, version?: 'http2' | 'auto'): Endpoint {
  return address.kind === 'unix'
    ? endpoint({ unixPath: address.path, authority: address.authority })
    : address.scheme === 'https' && address.tls !== undefined
      ? endpoint({
          scheme: 'https',
          host: address.host,
          port: address.port,
          authority: address.authority,
          serverName: address.tls.serverName,
          verify: address.tls.verify,
          ca: address.tls.ca,
          ...(version === 'http2'
            ? { alpn: ['h2'] }
            : version === 'auto'
              ? { alpn: ['h2', 'http/1.1'] }
              : {}),
        })
      : endpoint({ host: address.host, port: address.port, authority: address.authority });
}

/** Read on every request: resolved once (HeaderName). */
const HOST = new HeaderName('host');

/** The balancer of a route that has no HTTP upstreams (a gateway route): never asked. */
const NO_BALANCER: Balancer = {
  pick: () => {
    throw new RangeError('a gateway route has no HTTP upstreams');
  },
};

/** Compiles a server's routes (throws RoutePatternError for a pattern the router refuses). */
export function compileRoutes(routes: readonly RouteConfig[]): Router<CompiledRoute> {
  return new Router<CompiledRoute>(
    routes.map((r) => {
      const group = routeGroup(r);
      return {
        ...r,
        // A gateway route (issue 19) has no HTTP upstreams: its Thrift ones are balanced in gateway/dispatch.ts.
        balancer:
          r.gateway === undefined
            ? createBalancer(
                r.loadBalancer,
                r.upstreams.map((u) => u.weight),
              )
            : NO_BALANCER,
        group,
        endpoints: r.upstreams.map(
          (u, index): UpstreamEndpoint => ({
            ...endpointOf(u.address, r.upstreamHttpVersion),
            upstream: u,
            group,
            index,
            limit: group.limits[index],
            sniFromHost: u.address.kind === 'tcp' && u.address.tls?.serverNameFrom === 'host',
          }),
        ),
      };
    }),
  );
}

/** An absolute-form target taken apart: what the route layer uses of it. */
export interface AbsoluteTarget {
  /** The authority as written (`host[:port]`), which becomes the forwarded Host. */
  readonly authority: string;
  /** The path, "/" when the target has none. */
  readonly path: string;
  /** The query with its "?", or "". */
  readonly query: string;
}

/** Why an absolute-form target is refused. */
export type AbsoluteTargetError = 'scheme' | 'userinfo' | 'authority';

/**
 * `host [":" port]` (RFC 3986 §3.2.2-3.2.3): an IP literal in brackets or a reg-name / IPv4
 * address (unreserved, pct-encoded, sub-delims), never empty, then an optional port.
 */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::[0-9]*)?$/;

/**
 * Takes an absolute-form target (`http://host:port/path?query`, as the decoder admitted it)
 * apart. Only the http and https schemes (any case) are forwarded; userinfo (`user:pw@host`) is
 * refused (RFC 9110 §4.2.4: deprecated, and a way to disguise the host), and so is an authority
 * that is empty or not `host[:port]`.
 */
export function parseAbsoluteTarget(target: string): AbsoluteTarget | AbsoluteTargetError {
  const sep = target.indexOf('://');
  if (sep < 0) return 'authority';
  const scheme = target.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return 'scheme';
  const start = sep + 3;
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x2f || c === 0x3f || c === 0x23) break;
    end++;
  }
  const authority = target.slice(start, end);
  if (authority.includes('@')) return 'userinfo';
  if (!AUTHORITY.test(authority)) return 'authority';
  if (end === target.length) return { authority, path: '/', query: '' };
  const rest = target.slice(end);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  return {
    authority,
    // "http://h?x" has an empty path: it is "/" (RFC 9112 §3.2.1)
    path: path === '' ? '/' : path,
    query: q < 0 ? '' : rest.slice(q),
  };
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

/** The methods a 405 for CONNECT names (any other token is forwarded too). */
const ALLOW: readonly (readonly [string, string])[] = [
  ['allow', 'GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH'],
];

/** Routes and rewrites, then calls the upstream layer. */
export class RouteService<S extends Service<RoutedCx, HttpResponse> = Service<RoutedCx, HttpResponse>>
  implements Service<RequestCx, HttpResponse>
{
  constructor(
    readonly inner: S,
    readonly router: Router<CompiledRoute>,
    /** Keep `%2F` in paths (encoded) instead of answering 400. */
    readonly encodedSlashes = false,
    /** Counts and logs what gateway and gRPC pseudonymization routes refuse. */
    readonly refusals?: GatewayRefusals,
  ) {}

  call(cx: RequestCx): Answer<HttpResponse> {
    const req = CxRequest.get(cx);
    const target = req.target;
    let path: string;
    let query: string;
    // The Host field as received, and the authority the request is for.
    const received = req.headers.get(HOST);
    let host = received;
    // origin-form, nearly every request: one scan, then split in place, no object per request
    const end = target.charCodeAt(0) === 0x2f ? cleanPathEnd(target) : -1;
    if (end >= 0) {
      path = end === target.length ? target : target.slice(0, end);
      query = end === target.length ? '' : target.slice(end);
    } else {
      // A fragment is never part of a request target (RFC 9112 §3.2); an upstream that cut the
      // path there would see another path than the one routed.
      if (target.indexOf('#') >= 0) return reject('ERR_LOCH_BAD_TARGET', `fragment in ${target}`);
      let rawPath: string;
      if (target.charCodeAt(0) === 0x2f) {
        const q = target.indexOf('?');
        rawPath = q < 0 ? target : target.slice(0, q);
        query = q < 0 ? '' : target.slice(q);
      } else if (req.method === 'CONNECT') {
        return reject('ERR_LOCH_METHOD_NOT_ALLOWED', 'CONNECT: this proxy runs no tunnels', ALLOW);
      } else if (req.targetForm !== 'absolute') {
        return reject('ERR_LOCH_BAD_TARGET', `bad request target ${target}`);
      } else {
        const abs = parseAbsoluteTarget(target);
        if (typeof abs === 'string') return badAbsolute(abs, target);
        rawPath = abs.path;
        query = abs.query;
        host = abs.authority;
      }
      const normalized = normalizePath(rawPath, this.encodedSlashes);
      if (typeof normalized === 'number') return badPath(normalized, rawPath);
      path = normalized;
    }
    // An http(s) URI with an empty host is invalid (RFC 9110 §4.2.1), absolute-form or not.
    if (received === '') return reject('ERR_LOCH_BAD_HOST', 'empty Host');
    // RFC 9112 §3.2.2: the target's authority replaces the received Host.
    if (host !== received) req.headers.set(HOST, host!);
    const match = this.router.match(host, path);
    if (match === undefined) {
      return Promise.reject(new ProxyError('ERR_LOCH_NO_ROUTE', `no route for ${host ?? ''}${path}`));
    }
    // max_body_size: 413 before reading a body announced larger; a body of unknown length is
    // cut where it crosses the limit (body-limit.ts).
    const tooLarge = limitRequestBody(req, match.route.maxBodySize ?? 0);
    if (tooLarge !== null) return Promise.reject(tooLarge);
    // HTTP/JSON -> Thrift (issue 19): answered by the gateway, not forwarded. The match is kept
    // on the context so that the answer counts on its route's metrics series.
    const gateway = match.route.gateway;
    if (gateway !== undefined) {
      CxSetRoute.set(cx, match);
      const refusals = this.refusals;
      const dispatch = gatewayDispatch.loaded;
      // Still loading (a request right after the table was built), or the last import failed:
      // wait for it (tried again), a failure answered as the gateway being unavailable (503).
      if (dispatch === undefined)
        return gatewayDispatch.load().then(
          (d) => d.callGateway(gateway, req, path, query, refusals),
          (e: unknown) => {
            throw gatewayUnavailable('the gateway cannot load its dispatch', e);
          },
        );
      return dispatch.callGateway(gateway, req, path, query, refusals);
    }
    const strip = match.route.stripPrefix;
    const upstreamPath = strip === undefined ? path : stripPrefix(path, strip);
    addForwardingHeaders(
      req.headers,
      CxPeerAddr.get(cx),
      CxServer.get(cx).scheme,
      host,
      req.version,
      CxClientCert.maybeGet(cx),
    );
    const next = CxSetUpstreamTarget.set(
      CxSetRoute.set(cx, match),
      query === '' ? upstreamPath : upstreamPath + query,
    );
    // gRPC pseudonymization (issue 19): the route's messages rewritten around the forwarding.
    const pseudonyms = match.route.grpcPseudonymize;
    if (pseudonyms !== undefined)
      return callWithGrpcPseudonyms(pseudonyms, req, () => this.inner.call(next), this.refusals);
    return this.inner.call(next);
  }
}

/** From this length on, cleanPathEnd searches instead of walking the target a char at a time. */
const SEARCH_FROM = 24;

/**
 * The index where an origin-form target's path ends (its "?", or its length) when the path is
 * already normal (no "%", no "/.") and the target has no "#"; -1 when the target needs the slow
 * path (normalizing, or a 400). A short target (wrk's "/b128") in one loop, cheaper there than
 * the searches; a long one by one-char searches (String indexOf, memchr over a one-byte
 * string), "/." by its '.' (a path has few; a two-char search is V8's generic one): the loop
 * costs ~33 instructions a char up to the "?" (callgrind, bench/http-proxy/per-request-2026-12-07e.md).
 * Both forms in this one function: a function that only calls the searches runs too few
 * bytecodes a call to be optimized early (its tier-up budget).
 */
export function cleanPathEnd(target: string): number {
  const n = target.length;
  if (n >= SEARCH_FROM) {
    if (target.indexOf('#') >= 0) return -1;
    const q = target.indexOf('?');
    const end = q < 0 ? n : q;
    const percent = target.indexOf('%');
    if (percent >= 0 && percent < end) return -1;
    for (let dot = target.indexOf('.'); dot >= 0 && dot < end; dot = target.indexOf('.', dot + 1))
      if (target.charCodeAt(dot - 1) === 0x2f) return -1;
    return end;
  }
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f) return target.indexOf('#', i + 1) < 0 ? i : -1;
    if (c === 0x25 || c === 0x23 || (c === 0x2e && prev === 0x2f)) return -1;
    prev = c;
  }
  return n;
}

function reject(
  code: 'ERR_LOCH_METHOD_NOT_ALLOWED' | 'ERR_LOCH_BAD_TARGET' | 'ERR_LOCH_BAD_HOST',
  message: string,
  headers?: readonly (readonly [string, string])[],
): Promise<never> {
  return Promise.reject(new ProxyError(code, message, headers === undefined ? undefined : { headers }));
}

function badAbsolute(error: AbsoluteTargetError, target: string): Promise<never> {
  return error === 'scheme'
    ? reject('ERR_LOCH_BAD_TARGET', `scheme of ${target} is not http or https`)
    : reject('ERR_LOCH_BAD_HOST', `${error === 'userinfo' ? 'userinfo' : 'bad authority'} in ${target}`);
}

function badPath(why: PathRejection, path: string): Promise<never> {
  return Promise.reject(
    why === PathRejection.EncodedSlash
      ? new ProxyError('ERR_LOCH_ENCODED_SLASH', `encoded "/" in ${path} (see allow_encoded_slashes)`)
      : new ProxyError(
          'ERR_LOCH_BAD_PATH',
          `${why === PathRejection.AboveRoot ? 'path above the root' : why === PathRejection.EncodedNul ? 'encoded NUL' : 'malformed escape'} in ${path}`,
        ),
  );
}

/** Config the route layer reads. */
export interface RouteLayerConfig {
  readonly routes: readonly RouteConfig[];
  readonly server: { readonly allowEncodedSlashes: boolean; readonly key?: string };
  /** Where gateway refusals are logged (with `server.key`: also counted). */
  readonly log?: ProxyLog;
}

/** The route layer: a new route table per build; the inner service is made from `old.inner`. */
export function routeLayer<
  C extends RouteLayerConfig,
  S extends Service<RoutedCx, HttpResponse> = Service<RoutedCx, HttpResponse>,
>(): FactoryLayer<C, MakeService<S>, MakeService<RouteService<S>>> {
  return layerFn((config, inner) => {
    // The gateway's dispatch loads only in workers whose routes have a gateway; a failed import
    // is logged here and retried by the route's next call, which fails meanwhile.
    if (config.routes.some((r) => r.gateway !== undefined))
      gatewayDispatch
        .load()
        .catch((e: unknown) =>
          config.log
            ?.at('gateway')
            .error(`the gateway cannot load its dispatch: ${e instanceof Error ? e.message : String(e)}`),
        );
    // The gRPC schema side (and its parsers) loads only in workers whose routes need it; a
    // failed import is logged here and retried by the route's next call, which fails meanwhile.
    if (config.routes.some((r) => r.grpcPseudonymize !== undefined))
      loadGrpcSchemaSide().catch((e: unknown) =>
        config.log
          ?.at('gateway')
          .error(
            `gRPC pseudonymization cannot load its schema support: ${e instanceof Error ? e.message : String(e)}`,
          ),
      );
    return makeFn(
      (old) =>
        new RouteService(
          inner.make(old?.inner),
          compileRoutes(config.routes),
          config.server.allowEncodedSlashes,
          config.server.key === undefined
            ? undefined
            : new GatewayRefusals(config.server.key, config.log?.at('gateway')),
        ),
    );
  });
}
