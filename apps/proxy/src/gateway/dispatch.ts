/**
 * Serving gateway routes in a worker: the route layer (proxy/route.ts) hands a request whose
 * route has `gateway` entries here. Each entry is compiled once per config (a reload brings new
 * entries, so a reloaded IDL takes effect) into @loch/gateway routes whose upstream is loch's
 * Thrift upstream pool (thrift/upstream.ts: exclusive or multiplexed connections, the same
 * failure classes as the Thrift proxy), picked by the route's balancer. The pool is one per
 * worker, shared by every gateway route and kept across reloads. Not for config (config.ts).
 */
import { GatewayRoutes, jsonResponse, PseudonymError, type ThriftExchange } from '@loch/gateway/runtime';
import type { HttpRequest, HttpResponse } from '@loch/http';
import { EMPTY_HEADERS, EMPTY_INT_HEADERS, MessageType, rewriteSeqId, type ThriftFrame } from '@loch/thrift';
import { createBalancer } from '../routing/balancer.js';
import { ReplyLease, ThriftUpstreamEndpoint, ThriftUpstreams } from '../thrift/upstream.js';
import type { GatewayRouteConfig } from './config.js';
import { pseudonymRewriterOf } from './pseudonym-config.js';
import type { GatewayRefusals } from './refusals.js';

/** The worker's pool of gateway upstream connections (idle ones closed after a minute). */
let pool: ThriftUpstreams | undefined;
function upstreams(): ThriftUpstreams {
  pool ??= new ThriftUpstreams({ idleTimeout: 60_000 });
  return pool;
}

/** Calls one gateway route's upstreams through the worker's pool. */
class PooledExchange implements ThriftExchange {
  readonly #endpoints: readonly ThriftUpstreamEndpoint[];
  readonly #balancer;
  /** Replies still read by the gateway, and their hold on their connection's reader. */
  readonly #leases = new WeakMap<ThriftFrame, ReplyLease>();
  #seqId = 0;

  constructor(readonly config: GatewayRouteConfig) {
    this.#endpoints = config.upstreams.map((u) => new ThriftUpstreamEndpoint(u));
    this.#balancer = createBalancer(
      config.loadBalancer,
      config.upstreams.map((u) => u.weight),
    );
  }

  send(
    message: Uint8Array,
    options: { readonly oneway?: boolean; readonly headers?: ReadonlyMap<string, string> },
  ): Promise<ThriftFrame | undefined> {
    const c = this.config;
    const endpoint = this.#endpoints[this.#balancer.pick()] as ThriftUpstreamEndpoint;
    const seqId = (this.#seqId = this.#seqId >= 0x7fffffff ? 1 : this.#seqId + 1);
    const payload = rewriteSeqId(c.protocol, message, seqId);
    const frame: ThriftFrame = {
      framing: c.framing,
      protocol: c.protocol,
      seqId,
      flags: 0,
      headers: options.headers ?? EMPTY_HEADERS,
      intHeaders: EMPTY_INT_HEADERS,
      persistentHeaders: EMPTY_HEADERS,
      aclToken: undefined,
      transforms: [],
      payload,
      wireLength: payload.byteLength,
    };
    const lease = new ReplyLease();
    return upstreams()
      .call(
        endpoint.key(c.framing),
        frame,
        { type: options.oneway ? MessageType.ONEWAY : MessageType.CALL, seqId },
        { connect: c.connectTimeout, call: c.callTimeout, maxFrameSize: c.maxFrameSize },
        lease,
      )
      .then((reply) => {
        if (reply !== undefined) this.#leases.set(reply, lease);
        return reply;
      });
  }

  /**
   * The gateway answered from `reply`: its connection's reader may reuse the memory (without
   * this, an exclusive connection allocates a new buffer per reply, which V8 answers with GC).
   */
  release(reply: ThriftFrame): void {
    this.#leases.get(reply)?.release();
    this.#leases.delete(reply);
  }
}

const compiled = new WeakMap<readonly GatewayRouteConfig[], GatewayRoutes>();

function routesOf(
  configs: readonly GatewayRouteConfig[],
  refusals: GatewayRefusals | undefined,
): GatewayRoutes {
  let routes = compiled.get(configs);
  if (routes === undefined) {
    // A route's configs belong to one server, so its refusal listeners are made once here.
    routes = new GatewayRoutes(
      configs.map((c) => ({
        idl: c.idl,
        service: c.service,
        function: c.function,
        path: c.path,
        ...(c.httpMethod === undefined ? {} : { httpMethod: c.httpMethod }),
        upstream: new PooledExchange(c),
        protocol: c.protocol,
        exceptionStatus: c.exceptionStatus,
        i64AsNumber: c.i64AsNumber,
        forwardHeaders: c.forwardHeaders,
        maxBodySize: c.maxBodySize,
        ...(c.pseudonymize === undefined ? {} : { pseudonyms: pseudonymRewriterOf(c.pseudonymize) }),
        ...(refusals === undefined ? {} : { onRefused: refusals.listener(`${c.service}.${c.function}`) }),
      })),
    );
    compiled.set(configs, routes);
  }
  return routes;
}

/**
 * Answers `request` from the gateway routes of its matched route: `path` is the normalized
 * path the router matched, `query` the query with its "?" (or ""); `refusals` counts and logs
 * what the routes refuse.
 */
export function callGateway(
  configs: readonly GatewayRouteConfig[],
  request: HttpRequest,
  path: string,
  query: string,
  refusals?: GatewayRefusals,
): Promise<HttpResponse> | HttpResponse {
  let routes: GatewayRoutes;
  try {
    routes = routesOf(configs, refusals);
  } catch (error) {
    // A pseudonym key checked when the config loaded can no longer be read: fail closed.
    if (!(error instanceof PseudonymError)) throw error;
    return jsonResponse(
      503,
      JSON.stringify({
        error: 'ERR_GATEWAY_PSEUDONYM_KEYS',
        message: `pseudonymization unavailable: ${error.message}`,
      }),
    );
  }
  const m = routes.match(request.method, query === '' ? path : path + query);
  if (m.kind === 'route') return m.route.call(request, m.params, m.query);
  const allow = m.kind === 'method' ? m.allow : '';
  return errorAnswer(m.kind === 'method' ? 405 : 404, allow);
}

function errorAnswer(status: number, allow: string): HttpResponse {
  return status === 405
    ? jsonResponse(405, JSON.stringify({ error: 'ERR_GATEWAY_METHOD', message: `use ${allow}` }), [
        ['allow', allow],
      ])
    : jsonResponse(404, JSON.stringify({ error: 'ERR_GATEWAY_NO_ROUTE', message: 'no route' }));
}

/** Closes the worker's gateway upstream connections (the worker is stopping). */
export function closeGatewayUpstreams(): void {
  pool?.closeAll();
  pool = undefined;
}
