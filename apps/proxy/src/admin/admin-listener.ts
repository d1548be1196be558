/**
 * The admin listener (`[admin] listener = { type = "socket", value = "127.0.0.1:9901" }`), served
 * once per process by the main thread with node:http. The main thread is where the answers are:
 * it supervises the workers, drives reloads, holds every worker's metrics buffer and asks the
 * workers for their stats; and an admin request never competes with proxied requests on a
 * worker's ring, nor does a crashed worker take the admin endpoints with it.
 *
 *   GET /healthz  200 while the process runs.
 *   GET /readyz   200 once the config is loaded and every worker's listeners are bound, 503 while
 *                 starting or draining (SIGTERM).
 *   GET /config   the effective config as `loch check` prints it (secrets redacted), its version
 *                 hash in `x-loch-config-version`.
 *   GET /metrics  Prometheus text format 0.0.4: the workers' counters summed, plus what the main
 *                 thread and the workers' stats know (metrics/exposition.ts).
 *   GET /stats    JSON: per worker its state, driver, generation, connections, upstream pools and heap.
 *
 * Other methods are 405, other paths 404. A listener that is not on a loopback address is
 * logged with a warning (these endpoints expose the config and traffic). Not for the workers'
 * side of metrics (metrics/recorder.ts).
 */

import { lstatSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { WorkerPool } from '@loch/uring-runtime';
import type { AdminConfig, ListenAddress, ProxyConfig } from '../config/schema.js';
import { activeHealthStats } from '../health/active-checks.js';
import { EXPOSITION_CONTENT_TYPE, renderExposition, type WorkerGauges } from '../metrics/exposition.js';
import type { MetricsPlan } from '../metrics/layout.js';
import type { MetricsShare } from '../metrics/recorder.js';
import { MetricsRegistry, type ReloadOutcome } from '../metrics/registry.js';
import type { ProxyLog } from '../proxy/log.js';
import type { WorkerCommand, WorkerStats } from '../proxy/worker-protocol.js';
import { type ConfigView, configView } from './config-view.js';
import { adminExposureWarning, describeAddress } from './exposure.js';

/** How long a scrape waits for the workers' stats (a worker that does not answer is left out). */
const STATS_TIMEOUT_MS = 2_000;

function sameAddress(a: ListenAddress | undefined, b: ListenAddress | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind === 'unix' || b.kind === 'unix')
    return a.kind === b.kind && (a as { path: string }).path === (b as { path: string }).path;
  return a.host === b.host && a.port === b.port;
}

/**
 * The main thread's admin side: the metrics registry (always: the workers' buffers are
 * allocated at start, so a reload can turn `[admin]` on) and the listener when configured.
 */
export class AdminPlane {
  readonly metrics: MetricsRegistry;
  #config: ProxyConfig;
  #view: ConfigView;
  #generation = 0;
  #pool: WorkerPool | null = null;
  #ready = false;
  #draining = false;
  #server: Server | null = null;
  #listening: AdminConfig | undefined = undefined;

  constructor(
    config: ProxyConfig,
    workers: number,
    private readonly log: ProxyLog,
  ) {
    this.#config = config;
    this.#view = configView(config);
    this.metrics = new MetricsRegistry(config, workers);
  }

  /** The workers' start data for metrics. */
  workerShare(): MetricsShare {
    return this.metrics.share();
  }

  /** The metrics plan a reload to `next` sends its workers. */
  planFor(next: ProxyConfig): MetricsPlan {
    return this.metrics.plan(next);
  }

  /**
   * Every worker is up with its listeners bound: opens the admin listener when configured.
   * False (logged) when it cannot listen: loch then stops, as it does for a server's listener.
   */
  async started(pool: WorkerPool): Promise<boolean> {
    this.#pool = pool;
    try {
      await this.#listen(this.#config.admin);
    } catch (error) {
      this.log.error(`cannot start: admin listener: ${(error as Error).message}`);
      return false;
    }
    this.#ready = true;
    return true;
  }

  /** A reload ended with `outcome` (`ok` after every worker committed `config`). */
  async reloaded(outcome: ReloadOutcome, config?: ProxyConfig, generation?: number): Promise<void> {
    this.metrics.reloads[outcome]++;
    // An aborted reload's plan was made: what replacement workers start with is the running one.
    if (outcome === 'aborted') this.metrics.plan(this.#config);
    if (outcome !== 'ok' || config === undefined) return;
    this.#config = config;
    this.#view = configView(config);
    this.#generation = generation ?? this.#generation;
    try {
      await this.#listen(config.admin);
    } catch (error) {
      this.log.error(`admin listener: ${(error as Error).message}`);
    }
  }

  /** A worker was replaced after a crash. */
  restarted(): void {
    this.metrics.restarts++;
  }

  /** Stopping: /readyz answers 503 from now on. */
  draining(): void {
    this.#draining = true;
  }

  /** Closes the admin listener. */
  async close(): Promise<void> {
    await this.#listen(undefined);
  }

  /**
   * Binds `admin`'s address, then closes the listener bound before when it differs (a new
   * address that cannot be bound leaves the old listener serving, and throws).
   */
  async #listen(admin: AdminConfig | undefined): Promise<void> {
    if (
      sameAddress(admin?.listen, this.#listening?.listen) &&
      (admin === undefined) === (this.#server === null)
    )
      return;
    const old = this.#server;
    if (admin !== undefined) {
      const server = await bindAdmin(admin.listen, (req, res) => this.#handle(req, res));
      server.on('error', (error) => this.log.error(`admin listener: ${error.message}`));
      this.#server = server;
      this.#listening = admin;
      const exposed = adminExposureWarning(admin);
      if (exposed !== undefined) this.log.warn(exposed);
      else this.log.info(`admin listener on ${describeAddress(admin.listen)}`);
    } else {
      this.#server = null;
      this.#listening = undefined;
    }
    if (old !== null) {
      old.closeAllConnections();
      await new Promise<void>((resolve) => old.close(() => resolve()));
    }
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', [['allow', 'GET, HEAD']]);
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        return;
      case '/readyz': {
        const ready = this.#ready && !this.#draining;
        send(
          res,
          ready ? 200 : 503,
          'text/plain; charset=utf-8',
          ready ? 'ready\n' : this.#draining ? 'draining\n' : 'starting\n',
        );
        return;
      }
      case '/config':
        send(res, 200, 'application/json; charset=utf-8', `${this.#view.text}\n`, [
          ['x-loch-config-version', this.#view.version],
        ]);
        return;
      case '/metrics':
      case '/stats':
        this.#workerStats().then(
          (stats) =>
            path === '/metrics'
              ? send(res, 200, EXPOSITION_CONTENT_TYPE, this.#exposition(stats))
              : send(
                  res,
                  200,
                  'application/json; charset=utf-8',
                  `${JSON.stringify(this.#stats(stats), null, 2)}\n`,
                ),
          (error: unknown) => send(res, 500, 'text/plain; charset=utf-8', `${(error as Error).message}\n`),
        );
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found: /healthz /readyz /config /metrics /stats\n');
    }
  }

  /** Every running worker's stats (a worker that does not answer in time is left out). */
  async #workerStats(): Promise<WorkerStats[]> {
    const pool = this.#pool;
    if (pool === null) return [];
    const replies = await pool.broadcast({ t: 'stats' } satisfies WorkerCommand, {
      timeout: STATS_TIMEOUT_MS,
    });
    return replies.flatMap((r) => (r.ok ? [r.value as WorkerStats] : []));
  }

  #exposition(stats: readonly WorkerStats[]): string {
    const m = this.metrics;
    const workers: WorkerGauges[] = stats.map((s) => {
      const pools: Record<string, { idle: number; active: number; hits: number; misses: number }> = {};
      for (const [server, p] of Object.entries(s.upstream))
        pools[server] = {
          idle: p.idle,
          active: p.active,
          hits: m.monotonic(s.worker, `${server}\u0000hits`, p.reused),
          misses: m.monotonic(s.worker, `${server}\u0000misses`, p.created),
        };
      const b = s.runtime?.buffers;
      const w = s.runtime?.waves;
      const g = s.runtime?.gc;
      const tlsRecords: Record<string, { loch: number; declined: number }> = {};
      for (const [server, r] of Object.entries(s.tlsRecords ?? {}))
        tlsRecords[server] = {
          loch: m.monotonic(s.worker, `${server}\u0000tls-loch`, r.loch),
          declined: m.monotonic(s.worker, `${server}\u0000tls-declined`, r.declined),
        };
      const groups = (s.health ?? []).map((g) => ({
        upstreams: g.upstreams,
        ejected: g.ejected,
        retries: m.monotonic(s.worker, `${g.upstreams}\u0000retries`, g.retries),
        retriesOverBudget: m.monotonic(s.worker, `${g.upstreams}\u0000over-budget`, g.retriesOverBudget),
        noHealthyUpstream: m.monotonic(s.worker, `${g.upstreams}\u0000no-healthy`, g.noHealthyUpstream),
        ejections: m.monotonic(s.worker, `${g.upstreams}\u0000ejections`, g.ejections),
      }));
      return {
        connections: s.connections,
        idleConnections: s.idleConnections,
        pools,
        groups,
        tlsRecords,
        buffers:
          b === undefined || b === null
            ? undefined
            : {
                held: b.held,
                buffersInUse: b.buffersInUse,
                stops: m.monotonic(s.worker, 'recv-stops', b.stops),
              },
        waves:
          w === undefined
            ? undefined
            : {
                collections: m.monotonic(s.worker, 'wave-collections', w.collections),
                openCollections: m.monotonic(s.worker, 'wave-open-collections', w.openCollections),
                freedBytes: m.monotonic(s.worker, 'wave-freed-bytes', w.freedBytes),
                lastCallMs: w.lastCallMs,
                lastPauseMs: w.lastPauseMs,
                retries: m.monotonic(s.worker, 'wave-retries', w.retries),
                misses: m.monotonic(s.worker, 'wave-misses', w.misses),
              },
        gc:
          g === undefined || g === null
            ? undefined
            : {
                markCompacts: m.monotonic(s.worker, 'gc-mark-compacts', g.markCompacts),
                pauseMs: m.monotonic(s.worker, 'gc-pause-ms', g.pauseMs),
                lastPauseMs: g.lastPauseMs,
              },
      };
    });
    let running = 0;
    const pool = this.#pool;
    if (pool !== null) for (let i = 0; i < pool.size; i++) if (pool.status(i) === 'running') running++;
    return renderExposition({
      config: this.#config,
      configVersion: this.#view.version,
      generation: this.#generation,
      counts: m.sum(),
      series: m.layout.series,
      reloads: m.reloads,
      restarts: m.restarts,
      workers,
      workersRunning: running,
      overflow: m.layout.overflow,
      checks: activeHealthStats(),
    });
  }

  #stats(stats: readonly WorkerStats[]): unknown {
    const pool = this.#pool;
    return {
      generation: this.#generation,
      configVersion: this.#view.version,
      ready: this.#ready && !this.#draining,
      draining: this.#draining,
      metrics: {
        slots: this.metrics.layout.size,
        capacity: this.metrics.layout.capacity,
        seriesDropped: this.metrics.layout.overflow,
      },
      workers: (pool?.workers ?? []).map((w, i) => ({
        worker: i,
        status: pool?.status(i),
        driver: w.driver,
        ...(stats.find((s) => s.worker === i) ?? {}),
      })),
    };
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: readonly (readonly [string, string])[] = [],
): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  for (const [k, v] of headers) res.setHeader(k, v);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * A node:http server listening on `address`. A Unix socket path left by a process that is gone
 * (nothing accepts on it) is removed first, as loch's Unix listeners do; one in use is EADDRINUSE.
 */
async function bindAdmin(
  address: ListenAddress,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Server> {
  if (address.kind === 'unix' && isSocket(address.path) && !(await accepting(address.path)))
    rmSync(address.path, { force: true });
  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (address.kind === 'unix') server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  server.removeAllListeners('error');
  return server;
}

/** Whether `path` is a Unix socket (never removes anything else). */
function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Whether something accepts connections on the Unix socket `path`. */
function accepting(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
