/**
 * The worker side of the metrics: one `WorkerMetrics` per worker thread (`workerMetrics`), which
 * the request path calls to count. Each call finds its slots in the plan (Map lookups keyed by
 * strings and numbers the request already holds) and adds to a Float64Array over the worker's
 * SharedArrayBuffer: no allocation, no lock, no message. Durations are read from the turn clock
 * (turn-clock.ts: one clock read per event-loop turn, not per request). A worker is the only writer of its
 * buffer; the admin side reads it (an aligned 8-byte store is not torn on the platforms loch
 * runs on, and a read that misses the latest add sees it on the next scrape).
 *
 * A replacement worker attaches to the buffer of the worker it replaces, so counters carry on
 * from the dead worker's counts: they stay monotonic with nothing to fold. Gauges are zeroed on
 * attach. With recording off (no `[admin]`), every call returns at its first test.
 * Not for the admin side (registry.ts) or the text format (exposition.ts).
 */

import type { GatewayRefusalReason } from '@loch/gateway';
import { CxRoute, CxStartedAt, CxUpstream, type RequestCx } from '../proxy/context.js';
import {
  DURATION_BUCKETS,
  GATEWAY_REFUSAL_REASONS,
  GATEWAY_REFUSALS,
  type MetricsPlan,
  type ServerPlan,
  STATUS_CLASSES,
  THRIFT_PSEUDONYM_REPLIES,
  THRIFT_PSEUDONYM_REQUESTS,
  TLS_FAILURES,
  TLS_HANDSHAKES,
  TUNNELS_ACTIVE,
  TUNNELS_TOTAL,
  UPSTREAM_CONNECT_FAILURES,
  UPSTREAM_TIMEOUTS,
} from './layout.js';
import { turnNow } from './turn-clock.js';

/** What the main thread hands a worker: one buffer per worker index and the plan. */
export interface MetricsShare {
  readonly buffers: readonly SharedArrayBuffer[];
  readonly plan: MetricsPlan;
}

const NO_SERVERS: Map<string, ServerPlan> = new Map();
/** A refusal reason's slot after GATEWAY_REFUSALS. */
const REFUSAL_SLOT = Object.fromEntries(GATEWAY_REFUSAL_REASONS.map((r, i) => [r, i])) as Record<
  GatewayRefusalReason,
  number
>;
const NO_THRIFT: Map<string, number> = new Map();
const BUCKETS = DURATION_BUCKETS.length;
/** The bucket bounds in microseconds. */
const BOUNDS_US = Int32Array.from(DURATION_BUCKETS, (s) => Math.round(s * 1e6));
/** The longest duration a histogram tells apart (35 minutes: the largest small integer). */
const MAX_US = 2 ** 31 - 1;

/**
 * Adds one observation of `us` microseconds to the histogram at `at`. Durations travel as small
 * integers, not doubles: a double passed to a function V8 does not inline is boxed (a 16-byte
 * heap number per call), a small integer never is.
 */
function observe(counts: Float64Array<ArrayBufferLike>, at: number, us: number): void {
  let i = 0;
  while (i < BUCKETS && us > BOUNDS_US[i]!) i++;
  counts[at + i]! += 1;
  counts[at + BUCKETS + 1]! += us / 1e6;
}

/** A worker's recorder. */
export class WorkerMetrics {
  #enabled = false;
  #counts: Float64Array<ArrayBufferLike> = new Float64Array(0);
  #servers = NO_SERVERS;
  #thrift = NO_THRIFT;
  /** A reload's plan, between precommit and commit. */
  #staged: MetricsPlan | undefined = undefined;
  /**
   * answered()'s last lookups, one entry each: the plan maps are keyed by config strings (each
   * Map.get hashes and compares a string, ~70 instructions), and a worker answers request after
   * request on the same server, route and upstream. The keys are the server key and the config's
   * own route and upstream objects (compared by identity, with the plan they were read from);
   * cleared whenever a plan applies.
   */
  #lastServer: string | undefined = undefined;
  #lastPlan: ServerPlan | undefined = undefined;
  #lastRoute: object | undefined = undefined;
  #lastRoutePlan: ServerPlan | undefined = undefined;
  #lastRouteAt = 0;
  #lastUpstream: object | undefined = undefined;
  #lastUpstreamPlan: ServerPlan | undefined = undefined;
  #lastUpstreamAt: number | undefined = undefined;

  /** Recording is on: the request path measures durations only then (and for the access log). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** At worker start: this worker's buffer (shared with the workers it replaces) and the plan. */
  attach(index: number, share: MetricsShare | undefined): void {
    const buffer = share?.buffers[index];
    if (share === undefined || buffer === undefined) return;
    this.#counts = new Float64Array(buffer);
    this.#counts[TUNNELS_ACTIVE] = 0;
    this.#apply(share.plan);
  }

  /**
   * A reload's plan, at precommit (absent: the reload keeps the current one); it applies at
   * commit, so an aborted reload changes nothing. A plan only adds series: the running chains'
   * slots stay where they were.
   */
  adopt(plan: MetricsPlan | undefined): void {
    this.#staged = plan;
  }

  /** The reload committed: its plan applies (recording turns on or off with `[admin]`). */
  commit(): void {
    const plan = this.#staged;
    this.#staged = undefined;
    if (plan !== undefined) this.#apply(plan);
  }

  #apply(plan: MetricsPlan): void {
    const fits = plan.size <= this.#counts.length;
    this.#servers = fits ? plan.servers : NO_SERVERS;
    this.#thrift = fits ? plan.thrift : NO_THRIFT;
    this.#enabled = plan.enabled && fits;
    this.#lastServer = this.#lastPlan = undefined;
    this.#lastRoute = this.#lastRoutePlan = undefined;
    this.#lastUpstream = this.#lastUpstreamPlan = undefined;
  }

  /** The server's plan, as `#servers.get(server)`. */
  #planOf(server: string): ServerPlan | undefined {
    if (server === this.#lastServer) return this.#lastPlan;
    const plan = this.#servers.get(server);
    this.#lastServer = server;
    this.#lastPlan = plan;
    return plan;
  }

  /**
   * A response head for `cx`'s request: its status class on the route's series (the unrouted
   * one when no route took it) and its duration since the request head; `fromUpstream` when the
   * upstream answered (not loch on its behalf), which also observes the upstream's duration.
   */
  answered(server: string, cx: RequestCx, status: number, fromUpstream: boolean): void {
    if (!this.#enabled) return;
    const plan = this.#planOf(server);
    if (plan === undefined) return;
    const counts = this.#counts;
    const match = CxRoute.maybeGet(cx);
    let at = plan.unrouted;
    if (match !== undefined) {
      const route = match.route;
      if (route === this.#lastRoute && plan === this.#lastRoutePlan) at = this.#lastRouteAt;
      else {
        at = plan.routes.get(route.host ?? '')?.get(route.path) ?? plan.unrouted;
        this.#lastRoute = route;
        this.#lastRoutePlan = plan;
        this.#lastRouteAt = at;
      }
    }
    const cls = (status / 100) | 0;
    counts[at + (cls < 1 ? 0 : cls > STATUS_CLASSES ? STATUS_CLASSES - 1 : cls - 1)]! += 1;
    // Clamped at 0 and at MAX_US (the start and this read are both the turn clock's, so it is
    // never negative unless a caller set `startedAt` itself).
    const us = Math.max(0, Math.min((turnNow() - CxStartedAt.get(cx)) * 1000, MAX_US)) | 0;
    observe(counts, at + STATUS_CLASSES, us);
    if (!fromUpstream) return;
    const upstream = CxUpstream.maybeGet(cx);
    if (upstream === undefined) return;
    let up: number | undefined;
    if (upstream === this.#lastUpstream && plan === this.#lastUpstreamPlan) up = this.#lastUpstreamAt;
    else {
      up = plan.upstreams.get(upstream.label);
      this.#lastUpstream = upstream;
      this.#lastUpstreamPlan = plan;
      this.#lastUpstreamAt = up;
    }
    if (up !== undefined) observe(counts, up, us);
  }

  /**
   * A request loch answered for a failed upstream exchange, by the ProxyError's code: connects
   * refused or timed out count as connect failures, connect and response timeouts as timeouts.
   */
  upstreamFailed(server: string, cx: RequestCx, code: string): void {
    if (!this.#enabled) return;
    const upstream = CxUpstream.maybeGet(cx);
    if (upstream === undefined) return;
    const up = this.#servers.get(server)?.upstreams.get(upstream.label);
    if (up === undefined) return;
    const counts = this.#counts;
    if (code === 'ERR_LOCH_UPSTREAM_REFUSED' || code === 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT')
      counts[up + UPSTREAM_CONNECT_FAILURES]! += 1;
    if (code === 'ERR_LOCH_UPSTREAM_TIMEOUT' || code === 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT')
      counts[up + UPSTREAM_TIMEOUTS]! += 1;
  }

  /** A request the HTTP codec refused or timed out (400, 408, 431...): unrouted, no duration. */
  rejected(server: string, status: number): void {
    if (!this.#enabled) return;
    const plan = this.#servers.get(server);
    if (plan === undefined) return;
    const cls = (status / 100) | 0;
    this.#counts[plan.unrouted + (cls < 1 ? 0 : cls > STATUS_CLASSES ? STATUS_CLASSES - 1 : cls - 1)]! += 1;
  }

  /** A TLS handshake on `server`'s listener ended, `ok` or not. */
  tlsHandshake(server: string, ok: boolean): void {
    if (!this.#enabled) return;
    const plan = this.#servers.get(server);
    if (plan === undefined) return;
    this.#counts[plan.base + (ok ? TLS_HANDSHAKES : TLS_FAILURES)]! += 1;
  }

  /** A gateway layer of `server` refused a request or reply (bad JSON, an unknown field, a token...). */
  gatewayRefused(server: string, reason: GatewayRefusalReason): void {
    if (!this.#enabled) return;
    const plan = this.#servers.get(server);
    const slot = REFUSAL_SLOT[reason];
    if (plan === undefined || slot === undefined) return;
    this.#counts[plan.base + GATEWAY_REFUSALS + slot]! += 1;
  }

  /** Pseudonymization of thrift server `server` refused a call or (`reply`) a reply. */
  thriftPseudonymRefused(server: string, reply: boolean): void {
    if (!this.#enabled) return;
    const at = this.#thrift.get(server);
    if (at === undefined) return;
    this.#counts[at + (reply ? THRIFT_PSEUDONYM_REPLIES : THRIFT_PSEUDONYM_REQUESTS)]! += 1;
  }

  /**
   * A call of thrift server `server` ended with `status` (HTTP-like, as its access log: 200, 404
   * no route, 400, 502, 504), `start` its performance.now() when it arrived.
   */
  thriftCall(server: string, status: number, start: number): void {
    if (!this.#enabled) return;
    const at = this.#thrift.get(server);
    if (at === undefined) return;
    const cls = (status / 100) | 0;
    this.#counts[at + (cls < 1 ? 0 : cls > STATUS_CLASSES ? STATUS_CLASSES - 1 : cls - 1)]! += 1;
    const us = Math.max(0, Math.min((turnNow() - start) * 1000, MAX_US)) | 0;
    observe(this.#counts, at + STATUS_CLASSES, us);
  }

  /** A tunnel (WebSocket or another allowed upgrade) opened. */
  tunnelOpened(): void {
    if (!this.#enabled) return;
    this.#counts[TUNNELS_TOTAL]! += 1;
    this.#counts[TUNNELS_ACTIVE]! += 1;
  }

  /** A tunnel ended (called once per opened tunnel). */
  tunnelClosed(): void {
    if (!this.#enabled) return;
    if (this.#counts[TUNNELS_ACTIVE]! > 0) this.#counts[TUNNELS_ACTIVE]! -= 1;
  }
}

/** This thread's recorder (each worker thread has its own module instance). */
export const workerMetrics = new WorkerMetrics();
