/**
 * Where each metric lives in a worker's shared counters: the layout of the Float64Array that a
 * worker writes and the admin side reads. Built on the main thread from the config and extended
 * (never rearranged) on reload: a series keeps its slots for the life of the process, so a server
 * or route that a reload keeps counts on where it was, and one that comes back finds its old
 * counts. The worker receives the layout as a `MetricsPlan` (structured-cloned: Maps travel) and
 * looks slots up without building a string. Not for recording (recorder.ts) or rendering
 * (exposition.ts).
 */
import type { GatewayRefusalReason } from '@loch/gateway';
import type { ProxyConfig, RouteConfig } from '../config/schema.js';

/**
 * Upper bounds (seconds) of the latency histograms' buckets: 0.5 ms to 10 s, roughly 2-2.5x
 * apart, Prometheus client libraries' default range extended down to a proxy's sub-millisecond
 * answers.
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Slots of one histogram: a count per bucket (not cumulative), the +Inf bucket, then the sum. */
export const HISTOGRAM_SLOTS = DURATION_BUCKETS.length + 2;

/** Status classes counted per route: 1xx..5xx at offsets 0..4. */
export const STATUS_CLASSES = 5;

/** Per route: the status classes, then the request duration histogram. */
export const ROUTE_SLOTS = STATUS_CLASSES + HISTOGRAM_SLOTS;

/**
 * Per upstream: the upstream duration histogram, then connect failures, timeouts and retries
 * (the retries slot is reserved: nothing writes it yet).
 */
export const UPSTREAM_SLOTS = HISTOGRAM_SLOTS + 3;
export const UPSTREAM_CONNECT_FAILURES = HISTOGRAM_SLOTS;
export const UPSTREAM_TIMEOUTS = HISTOGRAM_SLOTS + 1;
export const UPSTREAM_RETRIES = HISTOGRAM_SLOTS + 2;

/**
 * Why a gateway layer (HTTP/JSON -> Thrift routes, gRPC pseudonymization) refused a request or
 * reply, in slot order (@loch/gateway's GatewayRefusalReason).
 */
export const GATEWAY_REFUSAL_REASONS = [
  'bad_json',
  'unknown_field',
  'bad_value',
  'body_too_large',
  'pseudonym_request',
  'pseudonym_reply',
] as const satisfies readonly GatewayRefusalReason[];

/**
 * Per thrift server: the status classes and the call duration histogram (as a route), then calls
 * and replies its pseudonymization refused.
 */
export const THRIFT_SLOTS = ROUTE_SLOTS + 2;
export const THRIFT_PSEUDONYM_REQUESTS = ROUTE_SLOTS;
export const THRIFT_PSEUDONYM_REPLIES = ROUTE_SLOTS + 1;

/** Per server: TLS handshakes completed and failed, then gateway refusals by reason. */
export const SERVER_SLOTS = 2 + GATEWAY_REFUSAL_REASONS.length;
export const TLS_HANDSHAKES = 0;
export const TLS_FAILURES = 1;
export const GATEWAY_REFUSALS = 2;

/**
 * Worker-wide slots at the start of every buffer. Gauges (tunnels active) are zeroed by a
 * worker when it attaches, so a replaced worker's open tunnels do not stay counted.
 */
export const TUNNELS_TOTAL = 0;
export const TUNNELS_ACTIVE = 1;
const GLOBAL_SLOTS = 4;

/** The slots of one server in a plan. */
export interface ServerPlan {
  /** TLS handshake counters and gateway refusals (SERVER_SLOTS). */
  readonly base: number;
  /** Requests no route took (404, 400, requests the codec refused): a route series of its own. */
  readonly unrouted: number;
  /** Route series by host ('' for none), then path. */
  readonly routes: Map<string, Map<string, number>>;
  /** Upstream series by the upstream's label. */
  readonly upstreams: Map<string, number>;
}

/** What a worker needs to record: whether to, and where. */
export interface MetricsPlan {
  /** Recording is on (an `[admin]` listener is configured): off, every record call returns at once. */
  readonly enabled: boolean;
  /** Slots in use; a buffer holds at least this many doubles. */
  readonly size: number;
  /** Every server the process has run (kept after a reload removes one, so it can come back). */
  readonly servers: Map<string, ServerPlan>;
  /** Thrift servers' call series (THRIFT_SLOTS each: status classes, the duration histogram, pseudonym refusals). */
  readonly thrift: Map<string, number>;
}

/** What one series of the layout is, for the admin side's rendering. */
export type SeriesEntry =
  | { readonly kind: 'route'; readonly server: string; readonly route: string; readonly at: number }
  | { readonly kind: 'upstream'; readonly server: string; readonly upstream: string; readonly at: number }
  | { readonly kind: 'server'; readonly server: string; readonly at: number }
  | { readonly kind: 'thrift'; readonly server: string; readonly at: number };

/** The `route` label of a route: its path, after its host when it has one. */
export function routeLabel(route: Pick<RouteConfig, 'host' | 'path'>): string {
  return route.host === undefined ? route.path : `${route.host}${route.path}`;
}

/**
 * The layout: append-only, owned by the main thread. `capacity` is fixed when the buffers are
 * allocated; series a reload would add past it are not laid out (reported by `overflow`).
 */
export class MetricsLayout {
  readonly #servers = new Map<string, ServerPlan>();
  readonly #thrift = new Map<string, number>();
  readonly #series: SeriesEntry[] = [];
  #size = GLOBAL_SLOTS;
  /** Series that did not fit, by identity (each counted once however many reloads ask). */
  readonly #dropped = new Set<string>();

  constructor(readonly capacity: number = Number.POSITIVE_INFINITY) {}

  /** Slots in use. */
  get size(): number {
    return this.#size;
  }

  /** Every series laid out so far, in slot order. */
  get series(): readonly SeriesEntry[] {
    return this.#series;
  }

  /** Series that did not fit, since the start. */
  get overflow(): number {
    return this.#dropped.size;
  }

  #take(n: number, id: string): number | undefined {
    if (this.#size + n > this.capacity) {
      this.#dropped.add(id);
      return undefined;
    }
    const at = this.#size;
    this.#size += n;
    return at;
  }

  /** Lays out what `config` adds (HTTP servers, their routes and upstreams) and returns the plan. */
  extend(config: ProxyConfig, enabled: boolean): MetricsPlan {
    for (const server of config.servers) {
      let plan = this.#servers.get(server.key);
      if (plan === undefined) {
        const base = this.#take(SERVER_SLOTS + ROUTE_SLOTS, server.key);
        if (base === undefined) continue;
        const unrouted = base + SERVER_SLOTS;
        plan = { base, unrouted, routes: new Map(), upstreams: new Map() };
        this.#servers.set(server.key, plan);
        this.#series.push({ kind: 'server', server: server.key, at: base });
        this.#series.push({ kind: 'route', server: server.key, route: '', at: unrouted });
      }
      for (const route of server.routes) {
        const host = route.host ?? '';
        let byPath = plan.routes.get(host);
        if (byPath === undefined) {
          byPath = new Map();
          plan.routes.set(host, byPath);
        }
        if (!byPath.has(route.path)) {
          const at = this.#take(ROUTE_SLOTS, `${server.key} route ${routeLabel(route)}`);
          if (at !== undefined) {
            byPath.set(route.path, at);
            this.#series.push({ kind: 'route', server: server.key, route: routeLabel(route), at });
          }
        }
        for (const upstream of route.upstreams) {
          if (plan.upstreams.has(upstream.label)) continue;
          const at = this.#take(UPSTREAM_SLOTS, `${server.key} upstream ${upstream.label}`);
          if (at === undefined) continue;
          plan.upstreams.set(upstream.label, at);
          this.#series.push({ kind: 'upstream', server: server.key, upstream: upstream.label, at });
        }
      }
    }
    for (const server of config.thriftServers) {
      if (this.#thrift.has(server.key)) continue;
      const at = this.#take(THRIFT_SLOTS, `thrift ${server.key}`);
      if (at === undefined) continue;
      this.#thrift.set(server.key, at);
      this.#series.push({ kind: 'thrift', server: server.key, at });
    }
    return { enabled, size: this.#size, servers: this.#servers, thrift: this.#thrift };
  }
}
