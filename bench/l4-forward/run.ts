/**
 * The L4 forwarding benchmark (runtime proof 2): wrk -> forwarder -> nginx static, HTTP/1.1
 * keep-alive, one upstream connection per client connection. Forwarders: nginx `stream`,
 * HAProxy `mode tcp`, and Loch's copy() and zeroCopy() forwarders (loch-forwarder.ts, on
 * @loch/uring-runtime's public API; left out with the printed reason when it cannot run).
 * Writes bench/results/l4-forward.md (+ .json) and SVG charts. Installs nothing.
 *
 * Usage: tsx --conditions=@loch/source l4-forward/run.ts [--quick] [--seconds N] [--warmup N]
 *   [--sizes 128,11268] [--peers "nginx stream,haproxy tcp,loch copy,loch zeroCopy"]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runnerArgs, TIMING_OPTIONS, timing } from '../lib/args.js';
import { formatSize, writeBodies } from '../lib/bodies.js';
import { barChart } from '../lib/chart.js';
import { startHaproxy } from '../lib/haproxy.js';
import {
  freePort,
  type Measurement,
  machineSummary,
  measure,
  type Peer,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
  waitForPort,
} from '../lib/measure.js';
import { startNginxStatic, startNginxStream } from '../lib/nginx.js';
import { log, metricBySizeTable, pointsTable } from '../lib/report.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    ...TIMING_OPTIONS,
    sizes: { type: 'string', default: '128,3269,11268,65536' },
    peers: { type: 'string' },
  },
});
const { quick, seconds, warmupSeconds } = timing(args);
const sizes = args.sizes.split(',').map(Number);
const wanted = args.peers?.split(',');
const CONNECTIONS = 64;
const LOAD_CPU = '0';
const FORWARDER_CPU = '1';

const here = fileURLToPath(new URL('.', import.meta.url));
/** A run that leaves out forwarders or sizes writes to results/partial/ (not committed). */
const partial = Boolean(args.peers || args.sizes !== '128,3269,11268,65536');
const resultsDir = join(here, '..', 'results', ...(partial ? ['partial'] : []));

/** A forwarder under test: starts one instance on `port` forwarding to `upstreamPort`. */
interface ForwarderSpec {
  readonly name: string;
  readonly note: string;
  start(port: number, upstreamPort: number): Promise<Peer>;
}

/** Starts loch-forwarder.ts and resolves once it listens, or throws with what it printed. */
async function startLoch(mode: 'copy' | 'zeroCopy', port: number, upstreamPort: number): Promise<Peer> {
  const peer = startPeer(
    `loch ${mode}`,
    process.execPath,
    [
      '--conditions=@loch/source',
      '--import',
      'tsx',
      'loch-forwarder.ts',
      mode,
      String(port),
      String(upstreamPort),
    ],
    { cpu: FORWARDER_CPU, cwd: here },
  );
  const outcome = await Promise.race([
    waitForPort(port, '127.0.0.1', 20_000).then(() => 'listening' as const),
    peer.exited.then((code) => `exited with ${code}`),
  ]).catch((err: Error) => err.message);
  if (outcome !== 'listening') {
    await peer.stop();
    const said = peer.output().trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${outcome}${said ? `: ${said}` : ''}`);
  }
  return peer;
}

const FORWARDERS: readonly ForwarderSpec[] = [
  {
    name: 'nginx stream',
    note: 'nginx `stream { proxy_pass }`, 1 worker process',
    start: (port, upstreamPort) => startNginxStream({ port, upstreamPort, workers: 1, cpu: FORWARDER_CPU }),
  },
  {
    name: 'haproxy tcp',
    note: 'HAProxy `mode tcp`, nbthread 1',
    start: (port, upstreamPort) =>
      startHaproxy({ mode: 'tcp', port, upstreamPort, workers: 1, cpu: FORWARDER_CPU }),
  },
  {
    name: 'loch copy',
    note: 'loch-forwarder.ts: TcpListener/TcpStream + copy() (pooled recv chunks through JS), one thread',
    start: (port, upstreamPort) => startLoch('copy', port, upstreamPort),
  },
  {
    name: 'loch zeroCopy',
    note: 'loch-forwarder.ts: TcpListener/TcpStream + zeroCopy() (splice through a pipe), one thread',
    start: (port, upstreamPort) => startLoch('zeroCopy', port, upstreamPort),
  },
];

interface Point {
  readonly forwarder: string;
  readonly size: number;
  readonly m: Measurement;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const root = writeBodies(sizes);
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, `/${sizes[0]}`);
  const specs = FORWARDERS.filter((f) => !wanted || wanted.includes(f.name));
  const points: Point[] = [];
  const skipped = new Map<string, string>();
  const drivers = new Map<string, string>();
  const stalled = new Set<string>();
  const failures: string[] = [];
  try {
    for (const spec of specs) {
      let port = await freePort();
      let peer: Peer | undefined;
      try {
        peer = await spec.start(port, backendPort);
        await waitForHttp(port, `/${sizes[0]}`);
      } catch (err) {
        await peer?.stop();
        skipped.set(spec.name, (err as Error).message);
        log(`${spec.name}: not available (${(err as Error).message})`);
        continue;
      }
      const driver = /driver (\w+ \(.*\))/.exec(peer.output())?.[1];
      if (driver) drivers.set(spec.name, driver);
      try {
        for (const size of sizes) {
          if (peer === undefined) {
            // The previous point stalled: a fresh instance on a fresh port (a wedged process
            // can keep its listening socket for a while after SIGKILL).
            port = await freePort();
            peer = await spec.start(port, backendPort);
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
            failures.push(
              `${spec.name} ${formatSize(size)}: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`,
            );
            log(`${spec.name} ${formatSize(size)}: FAILED (${(err as Error).message})`);
            await peer.stop();
            peer = undefined;
            continue;
          }
          points.push({ forwarder: spec.name, size, m });
          log(
            `${spec.name} ${formatSize(size)}: ${Math.round(m.requestsPerSecond)} req/s, p50 ${m.p50Ms} ms, ` +
              `p99 ${m.p99Ms} ms, ${m.cpuUsPerRequest.toFixed(1)} us/req${m.errors ? `, ${m.errors} errors` : ''}${m.requests === 0 ? ' STALLED' : ''}`,
          );
          if (m.requests === 0) {
            // A stalled instance stays wedged: the next size gets a fresh one.
            stalled.add(spec.name);
            await peer.stop();
            peer = undefined;
          }
        }
      } catch (err) {
        failures.push(`${spec.name}: ${(err as Error).message}`);
        log(`${spec.name}: FAILED (${(err as Error).message})`);
      } finally {
        await peer?.stop();
      }
    }
  } finally {
    await backend.stop();
  }

  const names = specs.map((s) => s.name).filter((n) => !skipped.has(n));
  const find = (name: string, size: number) => points.find((p) => p.forwarder === name && p.size === size)?.m;
  mkdirSync(resultsDir, { recursive: true });
  const categories = sizes.map(formatSize);
  const series = (value: (m: Measurement) => number) =>
    names.map((name) => ({
      name,
      values: sizes.map((size) => {
        const m = find(name, size);
        return m === undefined ? null : value(m);
      }),
    }));
  writeFileSync(
    join(resultsDir, 'l4-forward-cpu.svg'),
    barChart({
      title: 'L4 forwarding: forwarder CPU microseconds per request (lower is better)',
      xLabel: 'response body',
      yLabel: 'forwarder CPU us per request',
      categories,
      series: series((m) => m.cpuUsPerRequest),
    }),
  );
  writeFileSync(
    join(resultsDir, 'l4-forward-rps.svg'),
    barChart({
      title: 'L4 forwarding: requests/s',
      xLabel: 'response body',
      yLabel: 'requests/s',
      categories,
      series: series((m) => m.requestsPerSecond),
    }),
  );

  const out: string[] = [];
  const argv = runnerArgs();
  out.push(
    '# L4 forwarding benchmark',
    '',
    `Generated by \`pnpm --filter @loch/bench bench:l4-forward${argv.length ? ` -- ${argv.join(' ')}` : ''}\` on ` +
      `${started.toISOString()} (${quick ? '**quick smoke run**, ' : ''}${seconds} s per point after a ${warmupSeconds} s warm-up).`,
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')} (other work on the machine makes numbers noisy; compare forwarders within one run).`,
    '',
    'Method: wrk -t1 -c64 (HTTP/1.1 keep-alive) -> forwarder -> nginx static. Each client connection gets ' +
      'its own upstream connection; the forwarder does not parse HTTP. wrk and the backend are pinned to CPU 0, ' +
      'the forwarder (one worker / thread) to CPU 1. CPU us/req = utime+stime of the forwarder process tree during ' +
      'the measured run / requests. Ratios are to nginx stream at the same size.',
    '',
    'Forwarders:',
    '',
    ...specs.map(
      (s) => `- ${s.name}: ${s.note}${drivers.has(s.name) ? `; driver ${drivers.get(s.name)}` : ''}`,
    ),
    '',
  );
  if (skipped.size) {
    out.push('Not measured:', '', ...[...skipped].map(([n, why]) => `- ${n}: not available (${why})`), '');
  }
  if (failures.length) {
    out.push('Failed points (left out of the tables):', '', ...failures.map((f) => `- ${f}`), '');
  }
  if (stalled.size) {
    out.push(
      `Stalled (served 0 requests in a measured run; the instance was restarted for the next size): ${[...stalled].join(', ')}.`,
      '',
    );
  }
  out.push(
    'CPU microseconds per request (lower is better):',
    '',
    metricBySizeTable(sizes, names, (n, size) => find(n, size)?.cpuUsPerRequest),
    '',
    'Every point:',
    '',
    pointsTable({ sizes, names, reference: 'nginx stream', label: 'forwarder', find }),
    '',
    '![CPU per request](l4-forward-cpu.svg)',
    '',
    '![requests/s](l4-forward-rps.svg)',
    '',
  );
  writeFileSync(join(resultsDir, 'l4-forward.md'), `${out.join('\n')}\n`);
  writeFileSync(
    join(resultsDir, 'l4-forward.json'),
    `${JSON.stringify({ started, machine: machineSummary(), seconds, points, skipped: [...skipped], stalled: [...stalled], failures, drivers: [...drivers] }, null, 2)}\n`,
  );
  log(`wrote ${join(resultsDir, 'l4-forward.md')}`);
}

stopPeersOnSignal();
await main();
