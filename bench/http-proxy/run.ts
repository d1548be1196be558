/**
 * The reference proxy benchmark (DESIGN.md "Measuring"): wrk -> proxy -> nginx static backend
 * over HTTP/1.1 keep-alive, for every proxy in peers.ts with 1 and 2 workers and every body
 * size; then memory per idle keep-alive connection and RSS across a sustained run. Writes
 * bench/results/http1.md (+ .json) and SVG charts. Never installs anything; it needs nginx,
 * haproxy and wrk on PATH (the setup script installs them).
 *
 * Usage: tsx --conditions=@loch/source http-proxy/run.ts [--quick] [--seconds N]
 *   [--warmup N] [--soak-seconds N] [--soak-peers loch] [--peer-soak-seconds N]
 *   [--idle-connections N] [--workers 1,2]
 *   [--sizes 128,3269] [--peers nginx,haproxy,node:http,loch] [--no-memory]
 *   [--access-log on|off] [--metrics on|off]
 *
 * `--access-log on` (the default; issue 18 measures "with metrics and the access log on, as
 * shipped") gives every peer its access log as it ships (peers.ts `accessLogNote`), `off` none
 * (the committed page of 2026-12-03 ran so). `--metrics on` (the default) gives loch an
 * `[admin]` listener, so it records its metrics.
 */
import { mkdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runnerArgs, TIMING_OPTIONS, timing } from '../lib/args.js';
import { ALL_SIZES, formatSize, writeBodies } from '../lib/bodies.js';
import { barChart, lineChart } from '../lib/chart.js';
import {
  freePort,
  type Measurement,
  machineSummary,
  markdownTable,
  measure,
  type Peer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { type IdleMemory, idleConnectionMemory, type SoakMemory, soakMemory } from '../lib/memory.js';
import { type NginxPeer, startNginxStatic } from '../lib/nginx.js';
import { log, metricBySizeTable, pointsTable, ratio } from '../lib/report.js';
import { PROXIES, type ProxyPeer, type ProxySpec } from './peers.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    ...TIMING_OPTIONS,
    'soak-seconds': { type: 'string' },
    /** Peers that soak for --soak-seconds (default all); the others soak for --peer-soak-seconds. */
    'soak-peers': { type: 'string' },
    'peer-soak-seconds': { type: 'string', default: '60' },
    'idle-connections': { type: 'string', default: '10000' },
    workers: { type: 'string', default: '1,2' },
    sizes: { type: 'string' },
    peers: { type: 'string' },
    'no-memory': { type: 'boolean' },
    'access-log': { type: 'string', default: 'on' },
    metrics: { type: 'string', default: 'on' },
  },
});

/** `on` or `off` of flag `name`, or exit with usage. */
function onOff(name: 'access-log' | 'metrics'): boolean {
  const v = args[name];
  if (v !== 'on' && v !== 'off') {
    process.stderr.write(`http-proxy/run.ts: --${name} ${v}: want on or off\n`);
    process.exit(2);
  }
  return v === 'on';
}
const accessLog = onOff('access-log');
const metrics = onOff('metrics');

const { quick, seconds, warmupSeconds } = timing(args);
const soakSeconds = Number(args['soak-seconds'] ?? (quick ? 20 : 600));
const soakPeers = args['soak-peers']?.split(',');
/** How long `peer` soaks: the full --soak-seconds unless --soak-peers names others. */
const soakSecondsOf = (peer: string) =>
  soakPeers === undefined || soakPeers.includes(peer)
    ? soakSeconds
    : Math.min(soakSeconds, Number(args['peer-soak-seconds']));
const idleCount = Number(args['idle-connections']);
const workerCounts = args.workers.split(',').map(Number);
const sizes = args.sizes ? args.sizes.split(',').map(Number) : ALL_SIZES;
const wanted = args.peers?.split(',');
const CONNECTIONS = 64;
/** wrk and the backend share CPU 0; a 1-worker proxy has CPU 1 to itself. */
const LOAD_CPU = '0';
const cpuFor = (workers: number) => (workers === 1 ? '1' : '0-1');
/** The body used for the memory runs. */
const MEMORY_PATH = '/128';
const SOAK_SIZE = 3269;
/**
 * Quiet time before each idle-memory reading: steady state, not the tail of the connection storm
 * (V8 hands freed heap pages back to the OS a few seconds after Loch's idle trim runs).
 */
const IDLE_SETTLE_MS = 5000;

/**
 * The access logs of the running peers. A full run would write gigabytes (60,000 lines a
 * second), so each is emptied after every measured point and whenever it passes
 * LOG_TRIM_BYTES (the soak), and deleted when its peer stops. Every peer appends (O_APPEND),
 * so a truncated file just grows again from 0.
 */
const liveLogs = new Set<string>();
const LOG_TRIM_BYTES = 256 * 1024 * 1024;
function trimLogs(always: boolean): void {
  for (const file of liveLogs) {
    try {
      if (always || statSync(file).size > LOG_TRIM_BYTES) truncateSync(file, 0);
    } catch {
      // Not written yet: nothing to trim.
    }
  }
}

/** Starts `spec` with this run's access log and metrics; its log is trimmed until it stops. */
async function startProxy(
  spec: ProxySpec,
  o: { port: number; upstreamPort: number; workers: number; cpu: string; probePath: string },
): Promise<ProxyPeer> {
  const peer = await spec.start({ ...o, accessLog, metrics });
  const file = peer.accessLogFile;
  if (file === undefined) return peer;
  liveLogs.add(file);
  return {
    ...peer,
    async stop() {
      await peer.stop();
      liveLogs.delete(file);
      rmSync(file, { force: true });
    },
  };
}

/**
 * A run that leaves out peers, sizes, worker counts or memory is partial: it writes to
 * results/partial/ (not committed), so it never replaces the reference tables.
 */
const partial = Boolean(args.peers || args.sizes || args['no-memory'] || args.workers !== '1,2');
const resultsDir = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  'results',
  ...(partial ? ['partial'] : []),
);

interface Point {
  readonly proxy: string;
  readonly workers: number;
  readonly size: number;
  readonly m: Measurement;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const skipped = new Map<string, string>();
  const specs: ProxySpec[] = [];
  for (const spec of PROXIES) {
    if (wanted && !wanted.includes(spec.name)) continue;
    const reason = spec.unavailable();
    if (reason === null) specs.push(spec);
    else {
      skipped.set(spec.name, reason);
      log(`${spec.name}: not available (${reason})`);
    }
  }

  const root = writeBodies([...new Set([...sizes, 128, SOAK_SIZE])]);
  const backendPort = await freePort();
  const backend: NginxPeer = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  const logTrim = setInterval(() => trimLogs(false), 5000);
  logTrim.unref();
  await waitForHttp(backendPort, '/128');
  log(`backend nginx on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}), bodies in ${root}`);

  const points: Point[] = [];
  const idle: IdleMemory[] = [];
  const soaks: SoakMemory[] = [];
  const failures: string[] = [];
  /** Writes the page, JSON and charts from what is measured so far (again after each phase). */
  const writeResults = () => {
    const names = specs.filter((s) => !skipped.has(s.name)).map((s) => s.name);
    mkdirSync(resultsDir, { recursive: true });
    writeCharts(points, names);
    const page = renderPage({ started, loadBefore, points, idle, soaks, skipped, failures, names, specs });
    writeFileSync(join(resultsDir, 'http1.md'), page);
    writeFileSync(
      join(resultsDir, 'http1.json'),
      `${JSON.stringify({ started, machine: machineSummary(), seconds, accessLog, metrics, points, idle, soaks, skipped: [...skipped], failures }, null, 2)}\n`,
    );
    log(`wrote ${join(resultsDir, 'http1.md')}`);
  };
  try {
    for (const workers of workerCounts) {
      for (const spec of specs) {
        if (skipped.has(spec.name)) continue;
        let port = await freePort();
        const startOne = () =>
          startProxy(spec, {
            port,
            upstreamPort: backendPort,
            workers,
            cpu: cpuFor(workers),
            probePath: '/128',
          });
        let peer: Peer | undefined;
        try {
          peer = await startOne();
        } catch (err) {
          const reason = `does not serve: ${(err as Error).message}`;
          skipped.set(spec.name, reason);
          log(`${spec.name}: not available (${reason})`);
          continue;
        }
        try {
          for (const size of sizes) {
            if (peer === undefined) {
              // The previous point failed: a fresh instance on a fresh port for this one.
              port = await freePort();
              peer = await startOne();
            }
            let m: Measurement;
            try {
              m = await measure(peer, `http://127.0.0.1:${port}/${size}`, {
                connections: CONNECTIONS,
                seconds,
                warmupSeconds,
                cpu: LOAD_CPU,
              });
            } catch (err) {
              const what = (err as Error).message.split('\n').slice(0, 2).join(' ');
              failures.push(`${spec.name} ${workers}w ${formatSize(size)}: ${what}`);
              log(`${spec.name} ${workers}w ${formatSize(size)}: FAILED (${what})`);
              await peer.stop();
              peer = undefined;
              continue;
            }
            trimLogs(true);
            points.push({ proxy: spec.name, workers, size, m });
            log(
              `${spec.name} ${workers}w ${formatSize(size)}: ${Math.round(m.requestsPerSecond)} req/s, ` +
                `p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, ${m.cpuUsPerRequest.toFixed(1)} us/req (sys ${m.sysUsPerRequest.toFixed(1)})` +
                (m.errors ? `, ${m.errors} errors` : '') +
                (m.requests === 0 ? ' STALLED' : ''),
            );
          }
        } catch (err) {
          failures.push(`${spec.name} ${workers}w: ${(err as Error).message}`);
          log(`${spec.name} ${workers}w: FAILED (${(err as Error).message})`);
        } finally {
          await peer?.stop();
        }
      }
    }

    writeResults();
    if (!args['no-memory']) {
      for (const spec of specs) {
        if (skipped.has(spec.name)) continue;
        const port = await freePort();
        let peer: Peer | undefined;
        try {
          peer = await startProxy(spec, {
            port,
            upstreamPort: backendPort,
            workers: 1,
            cpu: cpuFor(1),
            probePath: '/128',
          });
          const url = `http://127.0.0.1:${port}`;
          // One short load first, so the idle baseline includes pools and JIT warmed by traffic.
          await measure(peer, `${url}${MEMORY_PATH}`, {
            connections: CONNECTIONS,
            seconds: 1,
            cpu: LOAD_CPU,
          });
          const i = await idleConnectionMemory(peer, port, {
            count: idleCount,
            path: MEMORY_PATH,
            clientCpu: LOAD_CPU,
            settleMs: IDLE_SETTLE_MS,
          });
          idle.push({ ...i, peer: spec.name });
          log(
            `${spec.name} idle: ${i.connections} conns (${i.failed} failed), RSS ${i.baselineKiB} -> ${i.idleKiB} KiB, ` +
              `${Math.round(i.bytesPerConnection)} B/conn`,
          );
          const seconds = soakSecondsOf(spec.name);
          const s = await soakMemory(peer, `${url}/${SOAK_SIZE}`, {
            seconds,
            warmupSeconds: Math.max(warmupSeconds, 3),
            connections: CONNECTIONS,
            cpu: LOAD_CPU,
            sampleSeconds: Math.max(1, Math.round(seconds / 20)),
          });
          soaks.push({ ...s, peer: spec.name });
          log(`${spec.name} soak ${seconds} s: RSS ${s.beforeKiB} -> ${s.afterKiB} KiB (max ${s.maxKiB})`);
        } catch (err) {
          failures.push(`${spec.name} memory: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`);
          log(`${spec.name} memory: FAILED (${(err as Error).message})`);
        } finally {
          await peer?.stop();
        }
        writeResults();
      }
    }
  } finally {
    clearInterval(logTrim);
    await backend.stop();
  }

  writeResults();
}

function findPoint(
  points: readonly Point[],
  proxy: string,
  workers: number,
  size: number,
): Measurement | undefined {
  return points.find((p) => p.proxy === proxy && p.workers === workers && p.size === size)?.m;
}

function writeCharts(points: readonly Point[], names: readonly string[]): void {
  const categories = sizes.map(formatSize);
  for (const workers of workerCounts) {
    const series = (value: (m: Measurement) => number) =>
      names.map((name) => ({
        name,
        values: sizes.map((size) => {
          const m = findPoint(points, name, workers, size);
          return m === undefined ? null : value(m);
        }),
      }));
    const where = workers === 1 ? 'proxy on CPU 1' : 'proxy on CPUs 0-1, shared with wrk and backend';
    writeFileSync(
      join(resultsDir, `http1-rps-by-size-${workers}w.svg`),
      lineChart({
        title: `HTTP/1.1 proxy: requests/s by body size (${workers} worker${workers > 1 ? 's' : ''}, ${where})`,
        xLabel: 'response body',
        yLabel: 'requests/s',
        categories,
        series: series((m) => m.requestsPerSecond),
      }),
    );
    writeFileSync(
      join(resultsDir, `http1-cpu-by-size-${workers}w.svg`),
      lineChart({
        title: `HTTP/1.1 proxy: CPU microseconds per request (${workers} worker${workers > 1 ? 's' : ''}, lower is better)`,
        xLabel: 'response body',
        yLabel: 'proxy CPU us per request',
        categories,
        series: series((m) => m.cpuUsPerRequest),
      }),
    );
  }
  const chartSizes = [128, 11268].filter((s) => sizes.includes(s));
  const cats: { size: number; workers: number }[] = [];
  for (const size of chartSizes) for (const workers of workerCounts) cats.push({ size, workers });
  writeFileSync(
    join(resultsDir, 'http1-rps-by-workers.svg'),
    barChart({
      title: 'HTTP/1.1 proxy: requests/s by workers',
      xLabel: 'body size, workers',
      yLabel: 'requests/s',
      categories: cats.map((c) => `${formatSize(c.size)}, ${c.workers}w`),
      series: names.map((name) => ({
        name,
        values: cats.map((c) => findPoint(points, name, c.workers, c.size)?.requestsPerSecond ?? null),
      })),
    }),
  );
}

function kib(v: number): string {
  return `${(v / 1024).toFixed(1)} MiB`;
}

function renderPage(r: {
  started: Date;
  loadBefore: number[];
  points: readonly Point[];
  idle: readonly IdleMemory[];
  soaks: readonly SoakMemory[];
  skipped: ReadonlyMap<string, string>;
  failures: readonly string[];
  names: readonly string[];
  specs: readonly ProxySpec[];
}): string {
  const out: string[] = [];
  const loadAfter = loadavg();
  out.push('# HTTP/1.1 reverse proxy benchmark', '');
  out.push(
    `Generated by \`pnpm --filter @loch/bench bench:http-proxy${runnerArgs().length ? ` -- ${runnerArgs().join(' ')}` : ''}\` ` +
      `on ${r.started.toISOString()} (${quick ? '**quick smoke run**, ' : ''}${seconds} s per point after a ${warmupSeconds} s warm-up).`,
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${r.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadAfter.map((v) => v.toFixed(2)).join(' ')} (other work on the machine makes numbers noisy; compare peers within one run).`,
    '',
    'Method: wrk -t1 -c64 (HTTP/1.1 keep-alive) -> proxy -> nginx serving static files. wrk and the backend are ' +
      'pinned to CPU 0. **1 worker: the proxy is pinned to CPU 1. 2 workers: the proxy is pinned to CPUs 0-1 and ' +
      'shares CPU 0 with wrk and the backend**, so 2-worker numbers show scaling under contention, not on an idle ' +
      'second core. CPU us/req = utime+stime of the proxy process tree during the measured run / requests served. ' +
      'Ratios are to nginx at the same size and workers: req/s above 1x is faster, CPU below 1x is cheaper.',
    '',
    accessLog
      ? '**Access logs on** (`--access-log on`, as each proxy ships; issue 18 measures so); the files are in the ' +
          "run's temp dir, emptied after each point:"
      : '**Access logs off** on every proxy (`--access-log off`).',
    '',
  );
  if (accessLog) {
    for (const s of r.specs) out.push(`- ${s.name}: ${s.accessLogNote}`);
    out.push('');
  }
  out.push(
    metrics
      ? "Loch's metrics on (`--metrics on`: an `[admin]` listener, so every request is recorded in its counters and histograms)."
      : "Loch's metrics off (`--metrics off`: no `[admin]` listener).",
    '',
  );
  out.push('Workers per proxy:', '');
  for (const s of r.specs) out.push(`- ${s.name}: ${s.workersNote}`);
  out.push('');
  if (r.skipped.size) {
    out.push('Not measured:', '');
    for (const [name, reason] of r.skipped) out.push(`- ${name}: not available (${reason})`);
    out.push('');
  }
  if (r.failures.length) {
    out.push('Failed points (left out of the tables; the proxy was restarted for the next one):', '');
    for (const f of r.failures) out.push(`- ${f}`);
    out.push('');
  }

  for (const workers of workerCounts) {
    out.push(`## ${workers} worker${workers > 1 ? 's' : ''} (proxy on CPU ${cpuFor(workers)})`, '');
    const find = (name: string, size: number) => findPoint(r.points, name, workers, size);
    out.push('CPU microseconds per request (lower is better):', '');
    out.push(
      metricBySizeTable(sizes, r.names, (n, size) => find(n, size)?.cpuUsPerRequest),
      '',
      'Requests/s:',
      '',
      metricBySizeTable(sizes, r.names, (n, size) => find(n, size)?.requestsPerSecond),
      '',
      'Every point:',
      '',
    );
    out.push(
      pointsTable({ sizes, names: r.names, reference: 'nginx', label: 'proxy', find }),
      '',
      `![requests/s by body size, ${workers} worker(s)](http1-rps-by-size-${workers}w.svg)`,
      '',
      `![CPU per request by body size, ${workers} worker(s)](http1-cpu-by-size-${workers}w.svg)`,
      '',
    );
  }
  out.push('## Requests/s by workers', '', '![requests/s by workers](http1-rps-by-workers.svg)', '');

  if (r.idle.length) {
    const ref = r.idle.find((i) => i.peer === 'nginx');
    out.push(
      '## Memory: idle keep-alive connections',
      '',
      `1 worker. A separate client process (pinned to CPU 0) opens ${idleCount.toLocaleString('en-US')} connections, ` +
        `sends one \`GET ${MEMORY_PATH}\` on each, reads the response and leaves the connection idle. RSS is the proxy ` +
        `process tree before the connections (${IDLE_SETTLE_MS / 1000} s after a 1 s warm-up load) and with all of them open (${IDLE_SETTLE_MS / 1000} s after the ` +
        'last one is ready): both readings after the same quiet period, so a proxy that gives memory back when idle ' +
        "(Loch's `runtime.idle_memory_trim`, default 1 s) is read in the same state both times.",
      '',
      markdownTable(
        ['proxy', 'idle conns', 'RSS before', 'RSS with idle conns', 'bytes per idle conn', 'vs nginx'],
        r.idle.map((i) => [
          i.peer,
          `${i.connections.toLocaleString('en-US')}${i.failed ? ` (${i.failed} failed)` : ''}`,
          kib(i.baselineKiB),
          kib(i.idleKiB),
          Math.round(i.bytesPerConnection).toLocaleString('en-US'),
          ratio(i.bytesPerConnection, ref?.bytesPerConnection),
        ]),
      ),
      '',
    );
  }
  if (r.soaks.length) {
    out.push(
      '## Memory: sustained run',
      '',
      `1 worker, wrk -c${CONNECTIONS} on ${formatSize(SOAK_SIZE)} for the seconds shown after a warm-up. "before" is read ` +
        'after the warm-up, "after" when the run ends; growth above 10% (and above 2 MiB) is flagged.',
      '',
      markdownTable(
        ['proxy', 'seconds', 'requests', 'RSS before', 'RSS after', 'RSS max', 'growth', 'verdict'],
        r.soaks.map((s) => {
          const growth = s.afterKiB - s.beforeKiB;
          const grows = growth > s.beforeKiB * 0.1 && growth > 2048;
          return [
            s.peer,
            String(s.seconds),
            s.load.requests,
            kib(s.beforeKiB),
            kib(s.afterKiB),
            kib(s.maxKiB),
            `${growth >= 0 ? '+' : ''}${(growth / 1024).toFixed(1)} MiB`,
            grows ? '**grows**' : 'flat',
          ];
        }),
      ),
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

stopPeersOnSignal();
await main();
