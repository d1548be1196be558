/**
 * The Thrift proxy benchmark (issue 15): a Go thrift load generator (Apache Thrift 0.17 from
 * Debian, apps/proxy/test/thrift/go/thrift_peer.go `load`: 64 connections, each calling as
 * fast as it is answered) -> proxy -> a Go thrift server (`server framed binary`), framed
 * binary throughout, for a small struct (32-byte string) and a 10 KiB one. Targets: direct to
 * the server, loch (`proxy_type = "thrift"`, exclusive pooled upstream connections), loch with
 * `multiplex = true`, nginx `stream` (L4: the floor a protocol-aware proxy must approach) and
 * the npm thrift proxy a Node user would write (npm-proxy.ts). Calls/s, p50/p99 (from the load
 * generator), CPU microseconds per call of the proxy's process tree (and of the server).
 * Writes bench/results/thrift.md (+ .json, SVG chart). Installs nothing.
 *
 * With --events, each measured run is also counted with `perf stat` tracepoints on the proxy's
 * processes (needs root): io_uring submissions, completions, poll arms (a receive armed with no
 * data waiting), io_uring_enter calls, all syscalls and context switches per call. Counts per
 * call do not depend on how loaded the machine is, so they show where a proxy's kernel work
 * differs from nginx's (say a receive re-armed per call) when CPU figures are noisy. perf's own
 * overhead lands in the CPU columns of such a run: read its counts, not its CPU.
 *
 * Usage: tsx --conditions=@loch/source thrift/run.ts [--quick] [--seconds N] [--warmup N]
 *   [--sizes 32,10240] [--peers "direct,loch,loch mux,nginx stream,npm thrift"]
 *   [--connections 64] [--dist] [--events]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runnerArgs, TIMING_OPTIONS, timing } from '../lib/args.js';
import { formatSize } from '../lib/bodies.js';
import { barChart } from '../lib/chart.js';
import {
  cpuSeconds,
  cpuSplitSeconds,
  freePort,
  machineSummary,
  markdownTable,
  type Peer,
  startPeer,
  stopPeersOnSignal,
  waitForPort,
} from '../lib/measure.js';
import { startNginxStream } from '../lib/nginx.js';
import { log, ratio } from '../lib/report.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    ...TIMING_OPTIONS,
    sizes: { type: 'string', default: '32,10240' },
    peers: { type: 'string' },
    connections: { type: 'string', default: '64' },
    dist: { type: 'boolean', default: false },
    events: { type: 'boolean', default: false },
  },
});
const { quick, seconds, warmupSeconds } = timing(args);
const sizes = args.sizes.split(',').map(Number);
const wanted = args.peers?.split(',');
const CONNECTIONS = Number(args.connections);
const LOAD_CPU = '0';
const PROXY_CPU = '1';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..');
const proxyDir = join(repoRoot, 'apps', 'proxy');
const GO_SOURCE = join(proxyDir, 'test', 'thrift', 'go', 'thrift_peer.go');
const partial = Boolean(args.peers || args.sizes !== '32,10240' || args.connections !== '64' || args.events);
const resultsDir = join(here, '..', 'results', ...(partial ? ['partial'] : []));

/** What --events counts; the short name (after the colon) labels the column. */
const EVENTS = [
  'io_uring:io_uring_submit_req',
  'io_uring:io_uring_complete',
  'io_uring:io_uring_poll_arm',
  'syscalls:sys_enter_io_uring_enter',
  'raw_syscalls:sys_enter',
  'context-switches',
] as const;
const EVENT_LABELS = ['submits', 'completions', 'poll arms', 'enters', 'syscalls', 'ctx switches'];

/** `pid` and its direct children (nginx's workers under its master). */
function withChildren(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return [pid, ...(kids === '' ? [] : kids.split(/\s+/).map(Number))];
  } catch {
    return [pid];
  }
}

/** A `perf stat` counting EVENTS on `pids` until stop() resolves the counts by short name. */
function startCounting(pids: number[]): { stop(): Promise<Map<string, number>> } {
  const perf: ChildProcess = spawn(
    'perf',
    ['stat', '-x', ',', '-e', EVENTS.join(','), '-p', pids.join(',')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let out = '';
  perf.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => perf.on('exit', () => resolve()));
  return {
    async stop() {
      perf.kill('SIGINT');
      await exited;
      const counts = new Map<string, number>();
      // CSV lines: value,unit,event,... ("<not supported>" as value when absent).
      for (const line of out.trim().split('\n')) {
        const fields = line.split(',');
        const value = Number(fields[0]);
        if (fields.length >= 3 && Number.isFinite(value)) counts.set(fields[2]!, value);
      }
      if (counts.size === 0) throw new Error(`perf stat counted nothing (tracepoints need root):\n${out}`);
      return counts;
    },
  };
}

/** Builds the Go peer offline (GO111MODULE=off against Debian's /usr/share/gocode). */
function buildGoPeer(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'loch-bench-go-')), 'thrift_peer');
  execFileSync('/usr/bin/go', ['build', '-o', out, GO_SOURCE], {
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOPROXY: 'off' },
    stdio: 'inherit',
  });
  return out;
}

/**
 * loch's own command: its TypeScript source through tsx (the working tree as it is), or with
 * --dist the built apps/proxy/dist/cli.js (build it first: a stale build measures old code).
 */
function lochCommand(): { args: string[]; note: string } {
  if (args.dist) return { args: [join(proxyDir, 'dist', 'cli.js')], note: 'apps/proxy/dist/cli.js (--dist)' };
  return {
    args: ['--conditions=@loch/source', '--import', 'tsx', join(proxyDir, 'src', 'bin.ts')],
    note: 'apps/proxy/src/bin.ts through tsx',
  };
}

async function startLoch(port: number, upstreamPort: number, multiplex: boolean): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-thrift-'));
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]
workers = 1
cpu_affinity = false

[log]
level = "warn"

[servers.bench]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:${upstreamPort}"${multiplex ? ', multiplex = true' : ''} }] }
`,
  );
  // LOCH_BENCH_NODE_ARGS: extra node flags for profiling runs (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
  const nodeArgs = (process.env.LOCH_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const peer = startPeer(
    multiplex ? 'loch mux' : 'loch',
    process.execPath,
    [...nodeArgs, ...lochCommand().args, 'run', '-c', config],
    { cpu: PROXY_CPU },
  );
  await waitForPort(port, '127.0.0.1', 20_000);
  return peer;
}

/** A target: how calls reach the server. `start` returns the proxy (none when direct). */
interface Target {
  readonly name: string;
  readonly note: string;
  start(port: number, upstreamPort: number): Promise<Peer | undefined>;
}

const TARGETS: readonly Target[] = [
  { name: 'direct', note: 'the load generator connects to the server itself', start: async () => undefined },
  {
    name: 'loch',
    note: 'loch `proxy_type = "thrift"`, 1 worker, exclusive pooled upstream connections (one call per connection at a time)',
    start: (port, up) => startLoch(port, up, false),
  },
  {
    name: 'loch mux',
    note: 'the same with `multiplex = true` (up to 128 calls per upstream connection, seq ids remapped)',
    start: (port, up) => startLoch(port, up, true),
  },
  {
    name: 'nginx stream',
    note: 'nginx `stream { proxy_pass }` (L4), 1 worker process',
    start: async (port, up) => {
      const peer = await startNginxStream({ port, upstreamPort: up, workers: 1, cpu: PROXY_CPU });
      await waitForPort(port);
      return peer;
    },
  },
  {
    name: 'npm thrift',
    note: 'npm-proxy.ts: npm thrift 0.22, framed binary, one npm thrift client connection per downstream connection, args and results decoded and encoded as generated code does',
    start: async (port, up) => {
      const peer = startPeer(
        'npm thrift',
        process.execPath,
        ['--import', 'tsx', join(here, 'npm-proxy.ts'), String(port), String(up)],
        { cpu: PROXY_CPU, cwd: here },
      );
      await waitForPort(port, '127.0.0.1', 20_000);
      return peer;
    },
  },
];

interface LoadResult {
  calls: number;
  errors: number;
  seconds: number;
  p50_us: number;
  p99_us: number;
}

interface Point {
  readonly target: string;
  readonly size: number;
  readonly callsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly errors: number;
  /** CPU us per call of the proxy's process tree (NaN when direct). */
  readonly proxyCpuUs: number;
  /** The part of proxyCpuUs spent in the kernel. */
  readonly proxySysUs: number;
  /** CPU us per call of the server. */
  readonly serverCpuUs: number;
  /** --events: EVENTS per call of the proxy's processes, in EVENTS' order. */
  readonly eventsPerCall?: readonly number[];
}

function runLoad(go: string, port: number, size: number, secs: number): LoadResult {
  const out = execFileSync(
    'taskset',
    [
      '-c',
      LOAD_CPU,
      go,
      'load',
      String(port),
      'framed',
      'binary',
      String(CONNECTIONS),
      String(secs),
      String(size),
    ],
    { encoding: 'utf8', timeout: (secs + 60) * 1000 },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as LoadResult;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const go = buildGoPeer();
  const backend = startPeer('go server', go, ['server', 'framed', 'binary', 'G'], { cpu: LOAD_CPU });
  // The server listens on port 0 and prints the port it got.
  const until = Date.now() + 10_000;
  while (!/^\d+\n/.test(backend.output()) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const serverPort = Number.parseInt(backend.output(), 10);
  await waitForPort(serverPort);
  const points: Point[] = [];
  const failures: string[] = [];
  const targets = TARGETS.filter((t) => !wanted || wanted.includes(t.name));
  try {
    for (const target of targets) {
      const port = await freePort();
      let peer: Peer | undefined;
      try {
        peer = await target.start(port, serverPort);
      } catch (err) {
        failures.push(`${target.name}: did not start (${(err as Error).message})`);
        log(`${target.name}: not available (${(err as Error).message})`);
        continue;
      }
      const callPort = peer === undefined ? serverPort : port;
      try {
        for (const size of sizes) {
          if (warmupSeconds > 0) runLoad(go, callPort, size, warmupSeconds);
          const [user0, sys0] = peer === undefined ? [0, 0] : cpuSplitSeconds(peer.pid);
          const server0 = cpuSeconds(backend.pid);
          const counting =
            args.events && peer !== undefined ? startCounting(withChildren(peer.pid)) : undefined;
          // perf needs a moment to attach before the load starts.
          if (counting) await new Promise((resolve) => setTimeout(resolve, 300));
          const r = runLoad(go, callPort, size, seconds);
          const counts = await counting?.stop();
          const [user1, sys1] = peer === undefined ? [Number.NaN, Number.NaN] : cpuSplitSeconds(peer.pid);
          const proxyCpu = user1 - user0 + (sys1 - sys0);
          const serverCpu = cpuSeconds(backend.pid) - server0;
          const per = (s: number) => (r.calls > 0 ? (s * 1e6) / r.calls : Number.NaN);
          const point: Point = {
            target: target.name,
            size,
            callsPerSecond: r.calls / r.seconds,
            p50Us: r.p50_us,
            p99Us: r.p99_us,
            errors: r.errors,
            proxyCpuUs: per(proxyCpu),
            proxySysUs: per(sys1 - sys0),
            serverCpuUs: per(serverCpu),
            ...(counts === undefined
              ? {}
              : { eventsPerCall: EVENTS.map((e) => (counts.get(e) ?? Number.NaN) / Math.max(1, r.calls)) }),
          };
          points.push(point);
          log(
            `${target.name} ${formatSize(size)}: ${Math.round(point.callsPerSecond)} calls/s, p50 ${point.p50Us} us, ` +
              `p99 ${point.p99Us} us, proxy ${point.proxyCpuUs.toFixed(1)} us/call, server ${point.serverCpuUs.toFixed(1)} us/call` +
              `${r.errors ? `, ${r.errors} errors` : ''}`,
          );
        }
      } catch (err) {
        failures.push(`${target.name}: ${(err as Error).message.split('\n')[0]}`);
        log(`${target.name}: FAILED (${(err as Error).message})`);
      } finally {
        await peer?.stop();
      }
    }
  } finally {
    await backend.stop();
  }

  mkdirSync(resultsDir, { recursive: true });
  const find = (name: string, size: number) => points.find((p) => p.target === name && p.size === size);
  const proxies = targets.map((t) => t.name).filter((n) => n !== 'direct');
  writeFileSync(
    join(resultsDir, 'thrift-cpu.svg'),
    barChart({
      title: 'Thrift proxying: proxy CPU microseconds per call (lower is better)',
      xLabel: 'string field per call and reply',
      yLabel: 'proxy CPU us per call',
      categories: sizes.map(formatSize),
      series: proxies.map((name) => ({
        name,
        values: sizes.map((size) => find(name, size)?.proxyCpuUs ?? null),
      })),
    }),
  );
  const rows: (string | number)[][] = [];
  for (const size of sizes) {
    const nginx = find('nginx stream', size);
    const npm = find('npm thrift', size);
    for (const t of targets) {
      const p = find(t.name, size);
      if (!p) continue;
      rows.push([
        formatSize(size),
        t.name,
        Math.round(p.callsPerSecond),
        p.p50Us,
        p.p99Us,
        Number.isNaN(p.proxyCpuUs) ? '-' : p.proxyCpuUs.toFixed(1),
        Number.isNaN(p.proxySysUs) ? '-' : p.proxySysUs.toFixed(1),
        p.serverCpuUs.toFixed(1),
        Number.isNaN(p.proxyCpuUs) ? '-' : ratio(p.proxyCpuUs, nginx?.proxyCpuUs),
        Number.isNaN(p.proxyCpuUs) ? '-' : ratio(npm?.proxyCpuUs, p.proxyCpuUs),
        p.errors,
      ]);
    }
  }
  const argv = runnerArgs();
  const lines = [
    '# Thrift proxy benchmark',
    '',
    `Generated by \`pnpm --filter @loch/bench bench:thrift${argv.length ? ` -- ${argv.join(' ')}` : ''}\` on ` +
      `${started.toISOString()} (${quick ? '**quick smoke run**, ' : ''}${seconds} s per point after a ${warmupSeconds} s warm-up).`,
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')} (other work on the machine makes numbers noisy; compare targets within one run).`,
    '',
    `Method: the Go peer's \`load\` mode (Apache Thrift 0.17's Go library, TStandardClient) opens ${CONNECTIONS} ` +
      'connections, each calling `string bench(1: string text)` as fast as it is answered (closed loop), framed binary; ' +
      'the Go server (TSimpleServer, TMultiplexedProcessor) answers the text as sent. Load generator and server are ' +
      'pinned to CPU 0, the proxy to CPU 1. Proxy CPU us/call = utime+stime of its process tree during the measured ' +
      'run / calls; p50/p99 are the load generator\'s. "vs nginx" divides by nginx stream\'s CPU per call at the same ' +
      'size (target: loch within 1.2x); "npm / this" is how many times more CPU the npm thrift proxy spends (target: ' +
      `at least 5x). loch ran as ${lochCommand().note}.`,
    '',
    'Targets:',
    '',
    ...targets.map((t) => `- ${t.name}: ${t.note}`),
    '',
    ...(failures.length ? ['Failed:', '', ...failures.map((f) => `- ${f}`), ''] : []),
    markdownTable(
      [
        'string',
        'target',
        'calls/s',
        'p50 us',
        'p99 us',
        'proxy CPU us/call',
        'of which kernel',
        'server CPU us/call',
        'proxy CPU vs nginx',
        'npm / this',
        'errors',
      ],
      rows,
    ),
    '',
    '![proxy CPU per call](thrift-cpu.svg)',
    '',
    ...(args.events
      ? [
          '## Kernel events per call (--events)',
          '',
          `perf stat tracepoints on the proxy's processes during each measured run, divided by its calls (${EVENTS.join(', ')}). ` +
            'A proxied call needs at least 2 sends (the call upstream, the reply downstream); receives that stay armed ' +
            "(multishot) add no submission per call. The CPU columns above include perf's overhead in this mode.",
          '',
          markdownTable(
            ['string', 'target', ...EVENT_LABELS],
            points
              .filter((p) => p.eventsPerCall !== undefined)
              .map((p) => [formatSize(p.size), p.target, ...p.eventsPerCall!.map((v) => v.toFixed(2))]),
          ),
          '',
        ]
      : []),
  ];
  writeFileSync(join(resultsDir, 'thrift.md'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(resultsDir, 'thrift.json'),
    `${JSON.stringify({ started, machine: machineSummary(), seconds, connections: CONNECTIONS, points, failures }, null, 2)}\n`,
  );
  log(`wrote ${join(resultsDir, 'thrift.md')}`);
}

stopPeersOnSignal();
await main();
