/**
 * The HTTP/2 reverse proxy benchmark (issue 14, "Benchmark"), the HTTP/2 companion of
 * http-proxy and https: h2load -> proxy (h2c by prior knowledge, and h2 over TLS 1.3 by ALPN)
 * -> the plain nginx static backend over HTTP/1.1 keep-alive, for nginx (http2), HAProxy and
 * Loch with 1 worker, at every body size of bench/results/http1.md, under two loads: 16 clients
 * of 16 streams (multiplexed) and 64 clients of 1 stream. Reports requests/s, p50/p99 (from
 * h2load's per-request log) and CPU microseconds per request of the proxy's process tree, as
 * ratios to nginx. Then gRPC unary calls/s directly and through Loch (grpc.ts). Writes
 * bench/results/http2.md (+ .json) and SVG charts; a run that leaves anything out or shortens
 * it writes to results/partial/ instead. Never installs or builds.
 * --upstream h2: the same downstream loads, but every proxy speaks h2c (prior knowledge) to an
 * nginx backend serving HTTP/2 (issue 14: "compare h2 -> h2 with haproxy only": Debian's nginx
 * 1.22 cannot proxy to HTTP/2 upstreams), so HAProxy is the reference; no gRPC part (the page's
 * gRPC rows are h2 -> h2 already). Writes bench/results/http2-upstream-h2.md (+ .json, charts).
 *
 * Usage: tsx --conditions=@loch/source http2/run.ts [--sizes 0,128,...,165854 (default: all ten)]
 *   [--peers nginx,haproxy,loch] [--modes h2c,h2] [--loads 16x16,64x1] [--workers 1]
 *   [--upstream h1|h2] [--no-grpc] [--seconds N] [--warmup N] [--quick]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openTree } from '../ab/tree.js';
import { runnerArgs, TIMING_OPTIONS, timing } from '../lib/args.js';
import { ALL_SIZES, formatSize, writeBodies } from '../lib/bodies.js';
import { lineChart } from '../lib/chart.js';
import {
  freePort,
  killLivePeers,
  type Measurement,
  machineSummary,
  markdownTable,
  type Peer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { type NginxPeer, startNginxStatic } from '../lib/nginx.js';
import { log, pointsTable, ratio } from '../lib/report.js';
import { writeTlsCertificates } from '../lib/tls-certs.js';
import { GRPC_PATH, type GrpcPoint, measureGrpc, startGrpcUpstream, startLochGrpc } from './grpc.js';
import { type H2Load, measureH2, waitForH2 } from './h2load.js';
import { H2_PROXIES, type H2ProxySpec } from './peers.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    ...TIMING_OPTIONS,
    sizes: { type: 'string' },
    peers: { type: 'string' },
    modes: { type: 'string', default: 'h2c,h2' },
    loads: { type: 'string', default: '16x16,64x1' },
    workers: { type: 'string', default: '1' },
    upstream: { type: 'string', default: 'h1' },
    'no-grpc': { type: 'boolean', default: false },
  },
});
if (args.upstream !== 'h1' && args.upstream !== 'h2') {
  process.stderr.write(`--upstream: h1 or h2, not ${args.upstream}\n`);
  process.exit(2);
}
/** What the proxies speak to the backend: HTTP/1.1 keep-alive, or h2c. */
const upstream: 'h1' | 'h2' = args.upstream;
/** The peer the ratios are to: nginx, which cannot proxy to an HTTP/2 backend, or else HAProxy. */
const reference = upstream === 'h1' ? 'nginx' : 'haproxy';
/** The page's name (charts are prefixed with it). */
const pageName = upstream === 'h1' ? 'http2' : 'http2-upstream-h2';

type Mode = 'h2c' | 'h2';
const { quick, seconds, warmupSeconds } = timing(args);
const sizes = args.sizes ? args.sizes.split(',').map(Number) : ALL_SIZES;
const wanted = args.peers?.split(',');
const modes = args.modes.split(',') as Mode[];
const loads: H2Load[] = args.loads.split(',').map((l) => {
  const [c, m] = l.split('x').map(Number);
  return { clients: c!, streams: m! };
});
const workers = Number(args.workers);
/** h2load and the backend share CPU 0; the 1-worker proxy has CPU 1. */
const LOAD_CPU = '0';
const PROXY_CPU = workers === 1 ? '1' : '0-1';
/** A point with more failed requests than this share is a failure, not a result. */
const MAX_FAILED_SHARE = 0.01;

const DEFAULT_LOADS = '16x16,64x1';
/** The committed page needs all peers, sizes, modes and loads at default timing, 1 worker. */
const partial = Boolean(
  args.peers ||
    args.sizes ||
    args.seconds ||
    args.warmup ||
    quick ||
    args.modes !== 'h2c,h2' ||
    args.loads !== DEFAULT_LOADS ||
    (upstream === 'h1' && args['no-grpc']) ||
    workers !== 1,
);
const here = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = join(here, '..', 'results', ...(partial ? ['partial'] : []));

/** One measured point. */
interface Point {
  readonly proxy: string;
  readonly mode: Mode;
  readonly load: H2Load;
  readonly size: number;
  readonly m: Measurement;
}

/** Thrown when a peer cannot be measured at all: the run stops (exit 1) instead of leaving it out. */
class PeerNotServingError extends Error {
  readonly code = 'ERR_BENCH_PEER_NOT_SERVING';
}

const loadName = (l: H2Load) => `-c${l.clients} -m${l.streams}`;
const loadSlug = (l: H2Load) => `c${l.clients}m${l.streams}`;

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const specs: H2ProxySpec[] = [];
  const defaultPeers = H2_PROXIES.filter((s) => s.unavailable(upstream) === null || s.name === 'loch');
  for (const name of wanted ?? defaultPeers.map((s) => s.name)) {
    const spec = H2_PROXIES.find((s) => s.name === name);
    if (spec === undefined)
      throw new PeerNotServingError(
        `--peers: unknown peer ${name} (${H2_PROXIES.map((s) => s.name).join(', ')})`,
      );
    const reason = spec.unavailable(upstream);
    if (reason !== null) throw new PeerNotServingError(`${spec.name}: not available (${reason})`);
    specs.push(spec);
  }
  const warnings: string[] = [];
  if (specs.some((s) => s.name === 'loch')) {
    const stale = openTree('loch', join(here, '..', '..')).staleBuilds;
    if (stale.length) {
      warnings.push(
        `sources newer than the build in ${stale.join(', ')}: loch runs the build (\`pnpm build\`).`,
      );
      log(`WARNING: ${warnings.at(-1)}`);
    }
  }
  const certificate = writeTlsCertificates().ecdsa;
  const root = writeBodies([...new Set([...sizes, 128])]);
  const backendPort = await freePort();
  const backend: NginxPeer = await startNginxStatic({
    root,
    port: backendPort,
    cpu: LOAD_CPU,
    http2: upstream === 'h2',
  });
  if (upstream === 'h2') await waitForH2(`http://127.0.0.1:${backendPort}/128`);
  else await waitForHttp(backendPort, '/128');
  log(
    `backend nginx (${upstream === 'h2' ? 'h2c' : 'HTTP/1.1'}) on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}), bodies in ${root}`,
  );

  const points: Point[] = [];
  const grpcPoints: GrpcPoint[] = [];
  const failures: string[] = [];
  const names = specs.map((s) => s.name);

  const start = async (spec: H2ProxySpec) => {
    const port = await freePort();
    const tlsPort = await freePort();
    try {
      const peer = await spec.start({
        port,
        tlsPort,
        upstreamPort: backendPort,
        upstream,
        workers,
        cpu: PROXY_CPU,
        certificate,
        probePath: '/128',
      });
      return { peer, port, tlsPort };
    } catch (err) {
      throw new PeerNotServingError(`${spec.name} does not serve HTTP/2: ${(err as Error).message}`);
    }
  };

  const writeResults = () => {
    mkdirSync(resultsDir, { recursive: true });
    const charts = writeCharts(points, names);
    writeFileSync(
      join(resultsDir, `${pageName}.md`),
      renderPage({ started, loadBefore, specs, points, grpcPoints, failures, warnings, charts }),
    );
    writeFileSync(
      join(resultsDir, `${pageName}.json`),
      `${JSON.stringify({ started, machine: machineSummary(), seconds, warmupSeconds, workers, upstream, points, grpcPoints, failures }, null, 2)}\n`,
    );
    log(`wrote ${join(resultsDir, `${pageName}.md`)}`);
  };

  try {
    for (const spec of specs) {
      let proxy = await start(spec);
      try {
        for (const mode of modes) {
          for (const load of loads) {
            for (const size of sizes) {
              const what = `${spec.name} ${mode} ${loadName(load)} ${formatSize(size)}`;
              const url =
                mode === 'h2c'
                  ? `http://127.0.0.1:${proxy.port}/${size}`
                  : `https://127.0.0.1:${proxy.tlsPort}/${size}`;
              const m = await point(what, proxy.peer, url, load);
              if (m === undefined) {
                // A fresh instance for the next point, as http-proxy does after a failed one.
                await proxy.peer.stop();
                proxy = await start(spec);
                continue;
              }
              points.push({ proxy: spec.name, mode, load, size, m });
              log(
                `${what}: ${Math.round(m.requestsPerSecond)} req/s, p50 ${m.p50Ms.toFixed(2)} ms, ` +
                  `p99 ${m.p99Ms.toFixed(2)} ms, ${m.cpuUsPerRequest.toFixed(1)} us/req`,
              );
            }
          }
        }
      } finally {
        await proxy.peer.stop();
      }
      writeResults();
    }
    if (upstream === 'h1' && !args['no-grpc']) {
      await grpcRun();
      writeResults();
    }
  } finally {
    await backend.stop();
  }
  writeResults();
  if (failures.length) {
    log(`${failures.length} point(s) failed (listed on the page)`);
    process.exitCode = 1;
  }

  /** gRPC unary calls straight to the gRPC-shaped upstream, then through Loch (when measured). */
  async function grpcRun(): Promise<void> {
    const upstreamPort = await freePort();
    const upstream = await startGrpcUpstream(upstreamPort, LOAD_CPU);
    try {
      for (const load of loads) {
        const m = await grpcPoint(`grpc direct ${loadName(load)}`, upstream, upstreamPort, load);
        if (m !== undefined) grpcPoints.push({ path: 'direct', load, m });
      }
      if (!specs.some((s) => s.name === 'loch')) return;
      const port = await freePort();
      let loch: Peer;
      try {
        loch = await startLochGrpc({ port, upstreamPort, workers, cpu: PROXY_CPU });
      } catch (err) {
        throw new PeerNotServingError(`loch does not proxy gRPC: ${(err as Error).message}`);
      }
      try {
        for (const load of loads) {
          const m = await grpcPoint(`grpc through loch ${loadName(load)}`, loch, port, load);
          if (m !== undefined) grpcPoints.push({ path: 'loch', load, m });
        }
      } finally {
        await loch.stop();
      }
    } finally {
      await upstream.stop();
    }
  }

  async function grpcPoint(
    what: string,
    peer: Peer,
    port: number,
    load: H2Load,
  ): Promise<Measurement | undefined> {
    try {
      const m = await measureGrpc(peer, `http://127.0.0.1:${port}${GRPC_PATH}`, {
        ...load,
        seconds,
        warmupSeconds,
        cpu: LOAD_CPU,
      });
      if (m.requests === 0 || m.errors > m.requests * MAX_FAILED_SHARE)
        throw new Error(`${m.requests} calls, ${m.errors} errors`);
      log(
        `${what}: ${Math.round(m.requestsPerSecond)} calls/s, p50 ${m.p50Ms.toFixed(2)} ms, ` +
          `p99 ${m.p99Ms.toFixed(2)} ms, ${m.cpuUsPerRequest.toFixed(1)} us/call (${peer.name})`,
      );
      return m;
    } catch (err) {
      const reason = (err as Error).message.split('\n').slice(0, 2).join(' ');
      failures.push(`${what}: ${reason}`);
      log(`${what}: FAILED (${reason})`);
      return undefined;
    }
  }

  /** One h2load point, or undefined after recording why it failed. */
  async function point(
    what: string,
    peer: Peer,
    url: string,
    load: H2Load,
  ): Promise<Measurement | undefined> {
    try {
      const m = await measureH2(peer, url, { ...load, seconds, warmupSeconds, cpu: LOAD_CPU });
      if (m.requests === 0 || m.errors > m.requests * MAX_FAILED_SHARE)
        throw new Error(`${m.requests} requests, ${m.errors} errors`);
      return m;
    } catch (err) {
      const reason = (err as Error).message.split('\n').slice(0, 2).join(' ');
      failures.push(`${what}: ${reason}`);
      log(`${what}: FAILED (${reason})`);
      return undefined;
    }
  }
}

/** Writes the CPU-per-request and requests/s charts per mode and load; returns their file names. */
function writeCharts(points: readonly Point[], names: readonly string[]): string[] {
  const files: string[] = [];
  for (const mode of modes) {
    for (const load of loads) {
      const find = (name: string, size: number) =>
        points.find(
          (p) =>
            p.proxy === name &&
            p.mode === mode &&
            p.size === size &&
            p.load.clients === load.clients &&
            p.load.streams === load.streams,
        )?.m;
      for (const [metric, yLabel, value] of [
        ['cpu', 'proxy CPU us per request', (m: Measurement) => m.cpuUsPerRequest],
        ['rps', 'requests/s', (m: Measurement) => m.requestsPerSecond],
      ] as const) {
        const file = `${pageName}-${mode}-${loadSlug(load)}-${metric}.svg`;
        writeFileSync(
          join(resultsDir, file),
          lineChart({
            title: `HTTP/2 proxy, ${mode}${upstream === 'h2' ? ' -> h2c' : ''}, h2load ${loadName(load)}, ${workers} worker: ${yLabel}`,
            xLabel: 'response body',
            yLabel,
            categories: sizes.map(formatSize),
            series: names.map((name) => ({
              name,
              values: sizes.map((size) => {
                const m = find(name, size);
                return m === undefined ? null : value(m);
              }),
            })),
          }),
        );
        files.push(file);
      }
    }
  }
  return files;
}

/** The results page. */
function renderPage(o: {
  started: Date;
  loadBefore: number[];
  specs: readonly H2ProxySpec[];
  points: readonly Point[];
  grpcPoints: readonly GrpcPoint[];
  failures: readonly string[];
  warnings: readonly string[];
  charts: readonly string[];
}): string {
  const names = o.specs.map((s) => s.name);
  const command = `pnpm --filter @loch/bench bench:http2${runnerArgs().length ? ` -- ${runnerArgs().join(' ')}` : ''}`;
  const backendText =
    upstream === 'h1'
      ? 'nginx static backend over HTTP/1.1 keep-alive'
      : 'nginx static backend over h2c (prior knowledge; nginx `listen ... http2`)';
  const upstreamText =
    upstream === 'h1'
      ? "Debian's nginx 1.22 cannot proxy to HTTP/2 upstreams, so every peer speaks HTTP/1.1 upstream."
      : "Every proxy speaks HTTP/2 to the backend, so nginx is left out (Debian's nginx 1.22 cannot proxy to " +
        'HTTP/2 upstreams) and HAProxy is the reference; the HTTP/1.1-upstream comparison with nginx is bench/results/http2.md.';
  const lines: string[] = [
    upstream === 'h1'
      ? '# HTTP/2 reverse proxy benchmark'
      : '# HTTP/2 reverse proxy benchmark, HTTP/2 upstream (h2 -> h2)',
    '',
    partial
      ? '**Partial run** (a subset of peers, sizes, modes or loads, or shortened timing): not the reference page.\n'
      : '',
    `Run \`${command}\` on ${o.started.toISOString()} (load average before: ${o.loadBefore.map((l) => l.toFixed(2)).join(', ')}).`,
    `Machine: ${machineSummary()}.`,
    '',
    `h2load (nghttp2) -> proxy -> ${backendText}. Each point: ${warmupSeconds} s warm-up, ` +
      `then ${seconds} s measured (\`h2load -D ${seconds} -t1\`). The proxy runs ${workers} worker pinned to CPU ${PROXY_CPU}; ` +
      `h2load and the backend share CPU ${LOAD_CPU}. CPU per request is the utime+stime of the proxy's process tree over ` +
      "the measured run divided by the requests that succeeded; p50/p99 come from h2load's per-request log. " +
      `h2c is HTTP/2 by prior knowledge on a plain port; h2 is TLS 1.3 (ECDSA P-256) with ALPN h2. ${upstreamText}`,
    '',
    '| proxy | configuration |',
    '|---|---|',
    ...o.specs.map((s) => `| ${s.name} | ${s.note} |`),
    '',
  ];
  if (o.warnings.length) lines.push('Warnings:', '', ...o.warnings.map((w) => `- ${w}`), '');
  for (const mode of modes) {
    for (const load of loads) {
      const find = (name: string, size: number) =>
        o.points.find(
          (p) =>
            p.proxy === name &&
            p.mode === mode &&
            p.size === size &&
            p.load.clients === load.clients &&
            p.load.streams === load.streams,
        )?.m;
      lines.push(`## ${mode}, h2load ${loadName(load)}`, '');
      lines.push(
        pointsTable({ sizes, names, reference, label: 'proxy', find }),
        '',
        upstream === 'h1'
          ? "Loch's CPU per request against nginx's (the issue's aim: 1.3x at every size; the gate: 1.5x):"
          : "Loch's CPU per request against HAProxy's, both speaking HTTP/2 to the backend:",
        '',
        markdownTable(
          ['body', ...(upstream === 'h1' ? ['loch / nginx'] : []), 'loch / haproxy'],
          sizes.map((size) => [
            formatSize(size),
            ...(upstream === 'h1'
              ? [ratio(find('loch', size)?.cpuUsPerRequest, find('nginx', size)?.cpuUsPerRequest)]
              : []),
            ratio(find('loch', size)?.cpuUsPerRequest, find('haproxy', size)?.cpuUsPerRequest),
          ]),
        ),
        '',
        `![CPU per request](${`${pageName}-${mode}-${loadSlug(load)}-cpu.svg`}) ![requests/s](${`${pageName}-${mode}-${loadSlug(load)}-rps.svg`})`,
        '',
      );
    }
  }
  if (o.grpcPoints.length) {
    lines.push(
      '## gRPC unary calls',
      '',
      "h2load sends unary calls in gRPC's wire shape (POST, `content-type: application/grpc`, `te: trailers`, one " +
        'length-prefixed message) to a node:http2 upstream that answers as a gRPC server does (200, one message, ' +
        '`grpc-status: 0` trailers; bench/http2/grpc-upstream.ts, pinned to CPU ' +
        `${LOAD_CPU} with h2load): directly, and through Loch (h2c in, \`upstream_http_version = "http2"\` out, ` +
        `${workers} worker on CPU ${PROXY_CPU}). CPU per call is the upstream's for the direct rows and Loch's for ` +
        'the others. The upstream shares its CPU with h2load in both, so the direct rows are not a ceiling.',
      '',
      markdownTable(
        ['path', 'load', 'calls/s', 'p50 ms', 'p99 ms', 'CPU us/call', 'calls/s vs direct'],
        o.grpcPoints.map((p) => {
          const direct = o.grpcPoints.find(
            (d) =>
              d.path === 'direct' && d.load.clients === p.load.clients && d.load.streams === p.load.streams,
          );
          return [
            p.path === 'direct' ? 'direct (upstream CPU)' : 'through loch (loch CPU)',
            loadName(p.load),
            p.m.requestsPerSecond,
            p.m.p50Ms,
            p.m.p99Ms,
            p.m.cpuUsPerRequest,
            ratio(p.m.requestsPerSecond, direct?.m.requestsPerSecond),
          ];
        }),
      ),
      '',
    );
  }
  if (o.failures.length) lines.push('## Failed points', '', ...o.failures.map((f) => `- ${f}`), '');
  // The findings written by hand (counts per request, what stands between Loch and 1.0x).
  const notes = join(here, 'notes.md');
  if (upstream === 'h1' && existsSync(notes)) lines.push(readFileSync(notes, 'utf8').trim(), '');
  return `${lines.filter((l, i) => !(l === '' && lines[i - 1] === '')).join('\n')}\n`;
}

stopPeersOnSignal();
process.once('exit', killLivePeers);
try {
  await main();
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
}
