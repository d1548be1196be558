/**
 * The Prometheus text exposition format (version 0.0.4) of loch's metrics: families with HELP
 * and TYPE, label values escaped, histograms as cumulative `_bucket{le}` series with `_sum` and
 * `_count`. Pure: takes the summed counters and what the main thread knows, returns the text.
 * Not for collecting (registry.ts) or serving (admin/).
 */
import type { ProxyConfig } from '../config/schema.js';
import type { HealthTargetStats } from '../health/active-checks.js';
import {
  DURATION_BUCKETS,
  GATEWAY_REFUSAL_REASONS,
  GATEWAY_REFUSALS,
  routeLabel,
  type SeriesEntry,
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
import type { WorkerRuntimeStats } from './runtime-stats.js';

/** The content type of this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One worker's contribution read from its `stats` reply (already made monotonic). */
export interface WorkerGauges {
  readonly connections: number;
  /** HTTP client connections between requests (absent: 0). */
  readonly idleConnections?: number;
  /** Per server key: upstream pool connections idle and in use, hits (reuses) and misses (connects). */
  readonly pools: Readonly<Record<string, { idle: number; active: number; hits: number; misses: number }>>;
  /** Upstream groups (already monotonic): retries, budget refusals, 503s, ejections, who is ejected. */
  readonly groups?: readonly {
    readonly upstreams: string;
    readonly retries: number;
    readonly retriesOverBudget: number;
    readonly noHealthyUpstream: number;
    readonly ejections: number;
    readonly ejected: Readonly<Record<string, boolean>>;
  }[];
  /**
   * Per TLS server (already monotonic): connections moved to Loch's own TLS 1.3 record layer, and
   * TLS 1.3 ones left on OpenSSL because the take-over point was not clean (both 0 when
   * tls.records = "openssl", or LOCH_TLS_RECORDS=openssl sets it; Loch's record layer is the default).
   */
  readonly tlsRecords?: Readonly<Record<string, { readonly loch: number; readonly declined: number }>>;
  /** The receive budgets: bytes held, provided buffers in use, stops (monotonic); absent without a runtime. */
  readonly buffers?:
    | { readonly held: number; readonly buffersInUse: number; readonly stops: number }
    | undefined;
  /**
   * The worker's wave collections (@loch/uring-runtime's wave-collect policy): how many ran, the
   * old-generation bytes they freed, the calls made again and the collections that never
   * started (all already monotonic), the last call's time and V8's final pause of the last one
   * in milliseconds; absent when the worker's stats do not carry them (no families then).
   */
  readonly waves?: Omit<WorkerRuntimeStats['waves'], 'highWater'> | undefined;
  /**
   * The worker thread's mark-compacts and V8's pauses for them (count and total ms already
   * monotonic; the last pause in ms); absent when the worker has no GC hook (no families then).
   */
  readonly gc?: NonNullable<WorkerRuntimeStats['gc']> | undefined;
}

/** Everything a scrape renders. */
export interface ExpositionInput {
  readonly config: ProxyConfig;
  readonly configVersion: string;
  readonly generation: number;
  readonly counts: Float64Array;
  readonly series: readonly SeriesEntry[];
  readonly reloads: Readonly<Record<string, number>>;
  readonly restarts: number;
  readonly workers: readonly WorkerGauges[];
  readonly workersRunning: number;
  readonly overflow: number;
  /** The active health checks' targets (main thread). */
  readonly checks?: readonly HealthTargetStats[];
}

/** Escapes a label value (backslash, double quote, line feed). */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labels(pairs: readonly (readonly [string, string])[]): string {
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

/** Formats a sample value (integers without exponent, +Inf/NaN as the format spells them). */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

class Text {
  readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, pairs: readonly (readonly [string, string])[], value: number): void {
    this.lines.push(`${name}${labels(pairs)} ${num(value)}`);
  }

  histogram(
    name: string,
    pairs: readonly (readonly [string, string])[],
    counts: Float64Array,
    at: number,
  ): void {
    let cumulative = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      cumulative += counts[at + i]!;
      this.sample(`${name}_bucket`, [...pairs, ['le', String(le)]], cumulative);
    });
    cumulative += counts[at + DURATION_BUCKETS.length]!;
    this.sample(`${name}_bucket`, [...pairs, ['le', '+Inf']], cumulative);
    this.sample(`${name}_sum`, pairs, counts[at + DURATION_BUCKETS.length + 1]!);
    this.sample(`${name}_count`, pairs, cumulative);
  }
}

/** The series of the running config (a server or route a reload removed is not shown). */
function liveSeries(config: ProxyConfig, series: readonly SeriesEntry[]): SeriesEntry[] {
  const routes = new Set<string>();
  const upstreams = new Set<string>();
  const servers = new Set<string>();
  for (const s of config.servers) {
    servers.add(s.key);
    routes.add(`${s.key}\u0000`);
    for (const r of s.routes) {
      routes.add(`${s.key}\u0000${routeLabel(r)}`);
      for (const u of r.upstreams) upstreams.add(`${s.key}\u0000${u.label}`);
    }
  }
  return series.filter((e) => {
    switch (e.kind) {
      case 'server':
        return servers.has(e.server);
      case 'route':
        return routes.has(`${e.server}\u0000${e.route}`);
      case 'upstream':
        return upstreams.has(`${e.server}\u0000${e.upstream}`);
      default:
        return config.thriftServers.some((s) => s.key === e.server);
    }
  });
}

const CODES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Renders every family. */
export function renderExposition(input: ExpositionInput): string {
  const t = new Text();
  const c = input.counts;
  const live = liveSeries(input.config, input.series);
  const routes = live.filter((e): e is Extract<SeriesEntry, { kind: 'route' }> => e.kind === 'route');
  const upstreams = live.filter(
    (e): e is Extract<SeriesEntry, { kind: 'upstream' }> => e.kind === 'upstream',
  );
  const servers = live.filter((e): e is Extract<SeriesEntry, { kind: 'server' }> => e.kind === 'server');

  t.family(
    'loch_http_requests_total',
    'counter',
    'HTTP requests answered, by server, route (empty: no route took the request) and status class.',
  );
  for (const r of routes)
    for (let k = 0; k < STATUS_CLASSES; k++)
      t.sample(
        'loch_http_requests_total',
        [
          ['server', r.server],
          ['route', r.route],
          ['code', CODES[k]!],
        ],
        c[r.at + k]!,
      );
  t.family(
    'loch_http_request_duration_seconds',
    'histogram',
    'Time from the request head to the response head, by server and route.',
  );
  for (const r of routes)
    t.histogram(
      'loch_http_request_duration_seconds',
      [
        ['server', r.server],
        ['route', r.route],
      ],
      c,
      r.at + STATUS_CLASSES,
    );
  t.family(
    'loch_upstream_duration_seconds',
    'histogram',
    "Time from the request head to the upstream's response head, by server and upstream.",
  );
  for (const u of upstreams)
    t.histogram(
      'loch_upstream_duration_seconds',
      [
        ['server', u.server],
        ['upstream', u.upstream],
      ],
      c,
      u.at,
    );
  const upstreamCounter = (name: string, help: string, offset: number) => {
    t.family(name, 'counter', help);
    for (const u of upstreams)
      t.sample(
        name,
        [
          ['server', u.server],
          ['upstream', u.upstream],
        ],
        c[u.at + offset]!,
      );
  };
  upstreamCounter(
    'loch_upstream_connect_failures_total',
    'Requests answered 502/504 because the connection to the upstream was refused or timed out.',
    UPSTREAM_CONNECT_FAILURES,
  );
  upstreamCounter(
    'loch_upstream_timeouts_total',
    'Requests answered 504 because the upstream did not connect or answer in time.',
    UPSTREAM_TIMEOUTS,
  );

  const thrift = live.filter((e): e is Extract<SeriesEntry, { kind: 'thrift' }> => e.kind === 'thrift');
  t.family(
    'loch_thrift_calls_total',
    'counter',
    'Thrift calls by server and outcome class (2xx answered, 4xx no route or a bad call, 5xx upstream failure).',
  );
  for (const s of thrift)
    for (let k = 0; k < STATUS_CLASSES; k++)
      t.sample(
        'loch_thrift_calls_total',
        [
          ['server', s.server],
          ['code', CODES[k]!],
        ],
        c[s.at + k]!,
      );
  t.family(
    'loch_thrift_call_duration_seconds',
    'histogram',
    'Time from a call to its reply (or failure), by server.',
  );
  for (const s of thrift)
    t.histogram('loch_thrift_call_duration_seconds', [['server', s.server]], c, s.at + STATUS_CLASSES);

  t.family('loch_tls_handshakes_total', 'counter', 'TLS handshakes completed on a server listener.');
  for (const s of servers)
    t.sample('loch_tls_handshakes_total', [['server', s.server]], c[s.at + TLS_HANDSHAKES]!);
  t.family(
    'loch_tls_handshake_failures_total',
    'counter',
    'TLS handshakes that failed on a server listener.',
  );
  for (const s of servers)
    t.sample('loch_tls_handshake_failures_total', [['server', s.server]], c[s.at + TLS_FAILURES]!);

  const takeovers = new Map<string, { loch: number; declined: number }>();
  for (const w of input.workers)
    for (const [server, r] of Object.entries(w.tlsRecords ?? {})) {
      const sum = takeovers.get(server) ?? { loch: 0, declined: 0 };
      sum.loch += r.loch;
      sum.declined += r.declined;
      takeovers.set(server, sum);
    }
  t.family(
    'loch_tls_record_takeovers_total',
    'counter',
    "TLS connections whose records Loch's own TLS 1.3 record layer took over from OpenSSL after the handshake (outcome loch), and TLS 1.3 ones left on OpenSSL (declined), by server; both 0 when the server's tls.records is openssl (or LOCH_TLS_RECORDS=openssl sets it; Loch's record layer is the default).",
  );
  for (const [server, r] of takeovers) {
    t.sample(
      'loch_tls_record_takeovers_total',
      [
        ['server', server],
        ['outcome', 'loch'],
      ],
      r.loch,
    );
    t.sample(
      'loch_tls_record_takeovers_total',
      [
        ['server', server],
        ['outcome', 'declined'],
      ],
      r.declined,
    );
  }

  t.family(
    'loch_gateway_refusals_total',
    'counter',
    'Requests (4xx) and replies (502) refused by a gateway layer (HTTP/JSON -> Thrift routes, gRPC pseudonymization), by server and reason.',
  );
  const gateways = new Set(
    input.config.servers
      .filter((s) => s.routes.some((r) => r.gateway !== undefined || r.grpcPseudonymize !== undefined))
      .map((s) => s.key),
  );
  for (const s of servers) {
    if (!gateways.has(s.server)) continue;
    GATEWAY_REFUSAL_REASONS.forEach((reason, i) => {
      t.sample(
        'loch_gateway_refusals_total',
        [
          ['server', s.server],
          ['reason', reason],
        ],
        c[s.at + GATEWAY_REFUSALS + i]!,
      );
    });
  }
  // Thrift servers: the calls and replies their pseudonymization refused.
  for (const s of live) {
    if (s.kind !== 'thrift' || !input.config.thriftServers.some((t) => t.key === s.server && t.pseudonymize))
      continue;
    for (const [reason, at] of [
      ['pseudonym_request', THRIFT_PSEUDONYM_REQUESTS],
      ['pseudonym_reply', THRIFT_PSEUDONYM_REPLIES],
    ] as const) {
      t.sample(
        'loch_gateway_refusals_total',
        [
          ['server', s.server],
          ['reason', reason],
        ],
        c[s.at + at]!,
      );
    }
  }

  t.family('loch_tunnels_total', 'counter', 'Tunnels (WebSocket and other allowed upgrades) opened.');
  t.sample('loch_tunnels_total', [], c[TUNNELS_TOTAL]!);
  t.family('loch_tunnels_active', 'gauge', 'Tunnels open now.');
  t.sample('loch_tunnels_active', [], c[TUNNELS_ACTIVE]!);

  t.family(
    'loch_connections_active',
    'gauge',
    'Client connections open, summed over the workers that answered.',
  );
  t.sample(
    'loch_connections_active',
    [],
    input.workers.reduce((n, w) => n + w.connections, 0),
  );
  t.family(
    'loch_connections_idle',
    'gauge',
    'HTTP client connections between requests (keep-alive waits; HTTP/2 with no stream open), summed over the workers that answered.',
  );
  t.sample(
    'loch_connections_idle',
    [],
    input.workers.reduce((n, w) => n + (w.idleConnections ?? 0), 0),
  );
  const pools = new Map<string, { idle: number; active: number; hits: number; misses: number }>();
  for (const w of input.workers)
    for (const [server, p] of Object.entries(w.pools)) {
      const sum = pools.get(server) ?? { idle: 0, active: 0, hits: 0, misses: 0 };
      sum.idle += p.idle;
      sum.active += p.active;
      sum.hits += p.hits;
      sum.misses += p.misses;
      pools.set(server, sum);
    }
  const poolFamily = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    pick: (p: { idle: number; active: number; hits: number; misses: number }) => number,
  ) => {
    t.family(name, type, help);
    for (const [server, p] of pools) t.sample(name, [['server', server]], pick(p));
  };
  poolFamily(
    'loch_upstream_connections_active',
    'gauge',
    'Upstream connections in use, by server.',
    (p) => p.active,
  );
  poolFamily(
    'loch_upstream_connections_idle',
    'gauge',
    'Idle upstream connections in the pools, by server.',
    (p) => p.idle,
  );
  poolFamily(
    'loch_pool_hits_total',
    'counter',
    'Upstream requests that reused a pooled connection.',
    (p) => p.hits,
  );
  poolFamily(
    'loch_pool_misses_total',
    'counter',
    'Upstream requests that opened a new connection.',
    (p) => p.misses,
  );

  const buffers = input.workers.flatMap((w) => (w.buffers === undefined ? [] : [w.buffers]));
  t.family(
    'loch_recv_buffer_held_bytes',
    'gauge',
    'Received bytes held by streams (not read yet), summed over the workers.',
  );
  t.sample(
    'loch_recv_buffer_held_bytes',
    [],
    buffers.reduce((n, b) => n + b.held, 0),
  );
  t.family('loch_provided_buffers_in_use', 'gauge', "io_uring provided buffers out of the kernel's rings.");
  t.sample(
    'loch_provided_buffers_in_use',
    [],
    buffers.reduce((n, b) => n + b.buffersInUse, 0),
  );
  t.family(
    'loch_recv_budget_stops_total',
    'counter',
    "Times a stream stopped reading at its or its worker's receive budget.",
  );
  t.sample(
    'loch_recv_budget_stops_total',
    [],
    buffers.reduce((n, b) => n + b.stops, 0),
  );

  // Only from workers whose stats carry the runtime's wave collections: a family that reads 0
  // because nothing reports it would be a count an operator could trust and alert on.
  const waves = input.workers.flatMap((w) => (w.waves === undefined ? [] : [w.waves]));
  if (waves.length > 0) {
    t.family(
      'loch_wave_collections_total',
      'counter',
      "Collections run because a worker's open connections fell to half of their high-water mark, by 1,000 or more (one a wave; those that never started are also in loch_wave_collect_misses_total).",
    );
    t.sample(
      'loch_wave_collections_total',
      [],
      waves.reduce((n, w) => n + w.collections, 0),
    );
    t.family(
      'loch_wave_open_collections_total',
      'counter',
      "Collections run after a worker's open connections rose by 1,000 or more and settled: they give back the young generation the burst grew (not in loch_wave_collections_total).",
    );
    t.sample(
      'loch_wave_open_collections_total',
      [],
      waves.reduce((n, w) => n + w.openCollections, 0),
    );
    t.family(
      'loch_wave_collect_freed_bytes_total',
      'counter',
      'Old-generation heap bytes the wave collections freed (read 500 ms after each).',
    );
    t.sample(
      'loch_wave_collect_freed_bytes_total',
      [],
      waves.reduce((n, w) => n + w.freedBytes, 0),
    );
    t.family(
      'loch_wave_collect_last_call_seconds',
      'gauge',
      "The longest of the workers' last wave-collection calls (0 before the first); V8 may finish the collection incrementally after the call.",
    );
    t.sample(
      'loch_wave_collect_last_call_seconds',
      [],
      waves.reduce((n, w) => Math.max(n, w.lastCallMs / 1000), 0),
    );
    t.family(
      'loch_wave_collect_last_pause_seconds',
      'gauge',
      "The longest of V8's final pauses of the workers' last wave collections (0 before one finished).",
    );
    t.sample(
      'loch_wave_collect_last_pause_seconds',
      [],
      waves.reduce((n, w) => Math.max(n, w.lastPauseMs / 1000), 0),
    );
    t.family(
      'loch_wave_collect_retries_total',
      'counter',
      'Wave-collection calls made again because the one before did not start (a marking V8 began on its own still ran).',
    );
    t.sample(
      'loch_wave_collect_retries_total',
      [],
      waves.reduce((n, w) => n + w.retries, 0),
    );
    t.family(
      'loch_wave_collect_misses_total',
      'counter',
      'Wave collections that never started (their retries did not either): the wave went with markings that do not compact.',
    );
    t.sample(
      'loch_wave_collect_misses_total',
      [],
      waves.reduce((n, w) => n + w.misses, 0),
    );
  }

  // V8's mark-compacts on the worker threads, timed by @loch/native's GC hook; only from workers
  // that have it (as the wave families).
  const gcs = input.workers.flatMap((w) => (w.gc === undefined ? [] : [w.gc]));
  if (gcs.length > 0) {
    t.family('loch_gc_mark_compacts_total', 'counter', "Mark-compact collections on the workers' threads.");
    t.sample(
      'loch_gc_mark_compacts_total',
      [],
      gcs.reduce((n, g) => n + g.markCompacts, 0),
    );
    t.family(
      'loch_gc_mark_compact_pause_seconds_total',
      'counter',
      "V8's atomic pauses for those mark-compacts (not the incremental marking steps before them).",
    );
    t.sample(
      'loch_gc_mark_compact_pause_seconds_total',
      [],
      gcs.reduce((n, g) => n + g.pauseMs / 1000, 0),
    );
    t.family(
      'loch_gc_mark_compact_last_pause_seconds',
      'gauge',
      "The longest of the workers' last mark-compact pauses (0 before the first).",
    );
    t.sample(
      'loch_gc_mark_compact_last_pause_seconds',
      [],
      gcs.reduce((n, g) => Math.max(n, g.lastPauseMs / 1000), 0),
    );
  }

  const groups = new Map<
    string,
    { retries: number; overBudget: number; noHealthy: number; ejections: number }
  >();
  const ejected = new Map<string, number>();
  for (const w of input.workers)
    for (const g of w.groups ?? []) {
      const sum = groups.get(g.upstreams) ?? { retries: 0, overBudget: 0, noHealthy: 0, ejections: 0 };
      sum.retries += g.retries;
      sum.overBudget += g.retriesOverBudget;
      sum.noHealthy += g.noHealthyUpstream;
      sum.ejections += g.ejections;
      groups.set(g.upstreams, sum);
      // Ejection state is shared by the workers (health/outlier-state.ts): 1 when ejected.
      for (const [upstream, out] of Object.entries(g.ejected))
        ejected.set(upstream, Math.max(ejected.get(upstream) ?? 0, out ? 1 : 0));
    }
  const groupFamily = (
    name: string,
    help: string,
    pick: (g: { retries: number; overBudget: number; noHealthy: number; ejections: number }) => number,
  ) => {
    t.family(name, 'counter', help);
    for (const [upstreams, g] of groups) t.sample(name, [['upstreams', upstreams]], pick(g));
  };
  groupFamily(
    'loch_upstream_retries_total',
    "Requests sent again after a failure, by upstream group (a route's upstreams).",
    (g) => g.retries,
  );
  groupFamily(
    'loch_upstream_retries_over_budget_total',
    'Retries refused because the retry budget was spent.',
    (g) => g.overBudget,
  );
  groupFamily(
    'loch_upstream_no_healthy_total',
    'Requests answered 503 because no upstream of the route was up.',
    (g) => g.noHealthy,
  );
  groupFamily('loch_upstream_ejections_total', 'Upstreams ejected by outlier detection.', (g) => g.ejections);
  t.family(
    'loch_upstream_ejected',
    'gauge',
    '1 while outlier detection ejects the upstream (shared by the workers), else 0.',
  );
  for (const [upstream, n] of ejected) t.sample('loch_upstream_ejected', [['upstream', upstream]], n);
  // One series per upstream and path (targets of several routes with other settings are summed;
  // healthy only if every check of it says so).
  const checks = new Map<
    string,
    { upstream: string; path: string; healthy: boolean; checks: number; failures: number }
  >();
  for (const c of input.checks ?? []) {
    const key = `${c.upstream}\u0000${c.path}`;
    const sum = checks.get(key) ?? {
      upstream: c.upstream,
      path: c.path,
      healthy: true,
      checks: 0,
      failures: 0,
    };
    sum.healthy &&= c.healthy;
    sum.checks += c.checks;
    sum.failures += c.failures;
    checks.set(key, sum);
  }
  const checkFamily = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    pick: (c: { healthy: boolean; checks: number; failures: number }) => number,
  ) => {
    t.family(name, type, help);
    for (const c of checks.values())
      t.sample(
        name,
        [
          ['upstream', c.upstream],
          ['path', c.path],
        ],
        pick(c),
      );
  };
  checkFamily(
    'loch_upstream_healthy',
    'gauge',
    'The active health check says the upstream is up (1) or down (0).',
    (c) => (c.healthy ? 1 : 0),
  );
  checkFamily('loch_health_checks_total', 'counter', 'Active health checks run.', (c) => c.checks);
  checkFamily(
    'loch_health_check_failures_total',
    'counter',
    'Active health checks that failed.',
    (c) => c.failures,
  );
  t.family('loch_reloads_total', 'counter', 'Config reloads by outcome (ok, failed, refused, aborted).');
  for (const [outcome, n] of Object.entries(input.reloads))
    t.sample('loch_reloads_total', [['outcome', outcome]], n);
  t.family('loch_worker_restarts_total', 'counter', 'Workers replaced after a crash.');
  t.sample('loch_worker_restarts_total', [], input.restarts);
  t.family('loch_workers_running', 'gauge', 'Workers running now.');
  t.sample('loch_workers_running', [], input.workersRunning);
  t.family('loch_config_info', 'gauge', 'The running config: its version hash and generation (always 1).');
  t.sample(
    'loch_config_info',
    [
      ['version', input.configVersion],
      ['generation', String(input.generation)],
    ],
    1,
  );
  t.family(
    'loch_metrics_series_dropped',
    'gauge',
    'Series a reload added past the metrics buffers (restart to count them).',
  );
  t.sample('loch_metrics_series_dropped', [], input.overflow);
  return `${t.lines.join('\n')}\n`;
}
