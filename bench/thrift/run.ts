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
 * One pass does not settle a ratio on this machine: loch's CPU per 10 KiB call read 42-56 us
 * across passes within one hour (session 51), so a single pass said loch 1.36x nginx stream while
 * rotated rounds of the same point said 1.10x. So the table comes from --rounds N (default 5; 1
 * with --quick) rounds: each round starts every target afresh and, for each size, measures them
 * back to back in the round's order, rotated by one target a round (as bench/thrift/held-rounds.sh
 * does for two trees and nginx), so the machine's drift lands on every target. Unlike
 * held-rounds.sh (one proxy running at a time), the targets not being measured sit idle beside the
 * measured one on CPU 1 (loch's 500 ms timer, npm's event loop): small, and the same for every
 * target; it keeps a round's readings of one size back to back. The table gives per target
 * the median over the rounds; "vs nginx" and "npm / this" are the medians of the per-round ratios
 * (each pairs two readings of one round), with how many rounds were within 1.2x of nginx stream.
 * The page is rewritten after every round. --continue <thrift.json> adds --rounds N more rounds
 * to an earlier run's JSON (same sizes, targets and run lengths), the rotation going on where it
 * stopped: a long run split across several short holds of the machine.
 *
 * With --events, each measured run is also counted with `perf stat` tracepoints on the proxy's
 * processes (needs root): io_uring submissions, completions, poll arms (a receive armed with no
 * data waiting), io_uring_enter calls, all syscalls and context switches per call. Counts per
 * call do not depend on how loaded the machine is, so they show where a proxy's kernel work
 * differs from nginx's (say a receive re-armed per call) when CPU figures are noisy. perf's own
 * overhead lands in the CPU columns of such a run: read its counts, not its CPU.
 *
 * Usage: tsx --conditions=@loch/source thrift/run.ts [--quick] [--seconds N] [--warmup N]
 *   [--rounds 5] [--continue <thrift.json>]
 *   [--sizes 32,10240] [--peers "direct,loch,loch mux,nginx stream,npm thrift"]
 *   [--connections 64] [--dist] [--events]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { numberFlag, usageExit } from '../ab/flags.js';
import { median } from '../ab/summary.js';
import { runnerArgs, runnerCommandLine, TIMING_OPTIONS, timing } from '../lib/args.js';
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
    rounds: { type: 'string' },
    continue: { type: 'string' },
  },
});
const SCRIPT = 'thrift/run.ts';
const { quick, seconds, warmupSeconds } = timing(args);
/** --rounds, else 5, or 1 for a --quick smoke run (it shows the code works, not a ratio). */
const rounds = numberFlag(SCRIPT, 'rounds', args.rounds ?? (quick ? '1' : '5'), 1);
/** "vs nginx" at or under this is within issue 15's target. */
const NGINX_TARGET = 1.2;
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
  /** The round (1-based) and where in its order the target ran (1 = first). */
  readonly round: number;
  readonly position: number;
  readonly target: string;
  readonly size: number;
  readonly callsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly errors: number;
  /** CPU us per call of the proxy's process tree (NaN when direct; null in the JSON). */
  readonly proxyCpuUs: number;
  /** The part of proxyCpuUs spent in the kernel. */
  readonly proxySysUs: number;
  /** CPU us per call of the server. */
  readonly serverCpuUs: number;
  /** --events: EVENTS per call of the proxy's processes, in EVENTS' order. */
  readonly eventsPerCall?: readonly number[];
}

/** What thrift.json holds: enough to check and extend a run with --continue. */
interface RunFile {
  readonly started: string;
  readonly machine: string;
  readonly commands: readonly string[];
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly sizes: readonly number[];
  readonly targets: readonly string[];
  readonly events: boolean;
  readonly rounds: number;
  readonly points: readonly Point[];
  readonly failures: readonly string[];
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

/** `list` rotated left by `by` places: round r's order starts with the r-th target. */
function rotated<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/**
 * The earlier run --continue extends, checked to be the same experiment (a ratio pairs readings
 * of one round, so rounds of different run lengths or targets must not mix); its JSON numbers
 * back as numbers (JSON.stringify wrote NaN as null).
 */
function earlierRun(path: string, targetNames: readonly string[]): RunFile {
  if (!existsSync(path)) usageExit(SCRIPT, `--continue ${path}: no such file`);
  const run = JSON.parse(readFileSync(path, 'utf8')) as RunFile;
  const same = (what: string, was: unknown, now: unknown) => {
    if (JSON.stringify(was) !== JSON.stringify(now))
      usageExit(
        SCRIPT,
        `--continue ${path}: it ran ${what} ${JSON.stringify(was)}, this run ${JSON.stringify(now)}`,
      );
  };
  if (!Array.isArray(run.points) || !Array.isArray(run.commands))
    usageExit(SCRIPT, `--continue ${path}: not a thrift.json of a --rounds run`);
  same('--seconds', run.seconds, seconds);
  same('--warmup', run.warmupSeconds, warmupSeconds);
  same('--connections', run.connections, CONNECTIONS);
  same('--sizes', run.sizes, sizes);
  same('targets', run.targets, targetNames);
  same('--events', run.events, Boolean(args.events));
  const num = (v: number | null) => (v === null ? Number.NaN : v);
  return {
    ...run,
    points: run.points.map((p) => ({
      ...p,
      proxyCpuUs: num(p.proxyCpuUs),
      proxySysUs: num(p.proxySysUs),
      serverCpuUs: num(p.serverCpuUs),
      ...(p.eventsPerCall ? { eventsPerCall: p.eventsPerCall.map(num) } : {}),
    })),
  };
}

/** One measured point: `size`'s warm-up, then the measured load, with the proxy's CPU (and events). */
async function measurePoint(
  go: string,
  backend: Peer,
  target: string,
  peer: Peer | undefined,
  callPort: number,
  size: number,
  round: number,
  position: number,
): Promise<Point> {
  if (warmupSeconds > 0) runLoad(go, callPort, size, warmupSeconds);
  const [user0, sys0] = peer === undefined ? [0, 0] : cpuSplitSeconds(peer.pid);
  const server0 = cpuSeconds(backend.pid);
  const counting = args.events && peer !== undefined ? startCounting(withChildren(peer.pid)) : undefined;
  // perf needs a moment to attach before the load starts.
  if (counting) await new Promise((resolve) => setTimeout(resolve, 300));
  const r = runLoad(go, callPort, size, seconds);
  const counts = await counting?.stop();
  const [user1, sys1] = peer === undefined ? [Number.NaN, Number.NaN] : cpuSplitSeconds(peer.pid);
  const proxyCpu = user1 - user0 + (sys1 - sys0);
  const serverCpu = cpuSeconds(backend.pid) - server0;
  const per = (s: number) => (r.calls > 0 ? (s * 1e6) / r.calls : Number.NaN);
  return {
    round,
    position,
    target,
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
}

async function main(): Promise<void> {
  const targets = TARGETS.filter((t) => !wanted || wanted.includes(t.name));
  const targetNames = targets.map((t) => t.name);
  // pnpm runs the script in bench/; a relative --continue path means where the user ran pnpm (INIT_CWD).
  const earlier =
    args.continue === undefined
      ? undefined
      : earlierRun(resolve(process.env.INIT_CWD ?? process.cwd(), args.continue), targetNames);
  const started = earlier ? new Date(earlier.started) : new Date();
  const commands = [...(earlier?.commands ?? []), commandLine()];
  const loadBefore = loadavg();
  const points: Point[] = [...(earlier?.points ?? [])];
  const failures: string[] = [...(earlier?.failures ?? [])];
  const firstRound = (earlier?.rounds ?? 0) + 1;
  const lastRound = firstRound + rounds - 1;
  const perRound = targets.length * (sizes.length * (warmupSeconds + seconds + 0.5) + 2);
  log(
    `rounds ${firstRound}-${lastRound} of ${targetNames.join(', ')} at ${sizes.map(formatSize).join(', ')}: ` +
      `about ${Math.ceil((rounds * perRound) / 60)} min`,
  );
  const write = (roundsDone: number) => {
    mkdirSync(resultsDir, { recursive: true });
    const run: RunFile = {
      started: started.toISOString(),
      machine: machineSummary(),
      commands,
      seconds,
      warmupSeconds,
      connections: CONNECTIONS,
      sizes,
      targets: targetNames,
      events: Boolean(args.events),
      rounds: roundsDone,
      points,
      failures,
    };
    writeFileSync(join(resultsDir, 'thrift.json'), `${JSON.stringify(run, null, 2)}\n`);
    writeFileSync(join(resultsDir, 'thrift-cpu.svg'), chart(run));
    writeFileSync(join(resultsDir, 'thrift.md'), renderPage(run, targets, loadBefore, lastRound));
  };

  const go = buildGoPeer();
  const backend = startPeer('go server', go, ['server', 'framed', 'binary', 'G'], { cpu: LOAD_CPU });
  // The server listens on port 0 and prints the port it got.
  const until = Date.now() + 10_000;
  while (!/^\d+\n/.test(backend.output()) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const serverPort = Number.parseInt(backend.output(), 10);
  await waitForPort(serverPort);
  try {
    for (let round = firstRound; round <= lastRound; round++) {
      const order = rotated(targets, round - 1);
      log(`round ${round}/${lastRound}: ${order.map((t) => t.name).join(', ')}`);
      // Every target of the round runs fresh from the start; the ones not measured sit idle.
      const running = new Map<Target, { peer: Peer | undefined; callPort: number }>();
      try {
        for (const target of order) {
          const port = await freePort();
          try {
            const peer = await target.start(port, serverPort);
            running.set(target, { peer, callPort: peer === undefined ? serverPort : port });
          } catch (err) {
            failures.push(`round ${round} ${target.name}: did not start (${(err as Error).message})`);
            log(`${target.name}: not available (${(err as Error).message})`);
          }
        }
        for (const size of sizes) {
          for (const [position, target] of order.entries()) {
            const run = running.get(target);
            if (run === undefined) continue;
            try {
              const point = await measurePoint(
                go,
                backend,
                target.name,
                run.peer,
                run.callPort,
                size,
                round,
                position + 1,
              );
              points.push(point);
              log(
                `  ${target.name} ${formatSize(size)}: ${Math.round(point.callsPerSecond)} calls/s, p50 ${point.p50Us} us, ` +
                  `p99 ${point.p99Us} us, proxy ${point.proxyCpuUs.toFixed(1)} us/call, server ${point.serverCpuUs.toFixed(1)} us/call` +
                  `${point.errors ? `, ${point.errors} errors` : ''}`,
              );
            } catch (err) {
              failures.push(
                `round ${round} ${target.name} ${formatSize(size)}: ${(err as Error).message.split('\n')[0]}`,
              );
              log(`${target.name} ${formatSize(size)}: FAILED (${(err as Error).message})`);
            }
          }
        }
      } finally {
        for (const { peer } of running.values()) await peer?.stop();
      }
      write(round);
    }
  } finally {
    await backend.stop();
  }
  log(`wrote ${join(resultsDir, 'thrift.md')} (+ .json, thrift-cpu.svg)`);
}

/** This run's command line, for the page. */
function commandLine(): string {
  const line = runnerCommandLine();
  return `pnpm --filter @loch/bench bench:thrift${line ? ` -- ${line}` : ''}`;
}

/** Per target and size, its points in round order. */
function pointsOf(run: RunFile, target: string, size: number): Point[] {
  return run.points.filter((p) => p.target === target && p.size === size).sort((a, b) => a.round - b.round);
}

/** Per round where both ran, `num`'s CPU per call over `den`'s at `size`. */
function roundRatios(run: RunFile, num: string, den: string, size: number): number[] {
  const out: number[] = [];
  for (const p of pointsOf(run, num, size)) {
    const q = run.points.find((x) => x.target === den && x.size === size && x.round === p.round);
    if (q !== undefined && q.proxyCpuUs > 0 && Number.isFinite(p.proxyCpuUs))
      out.push(p.proxyCpuUs / q.proxyCpuUs);
  }
  return out;
}

/** A table cell: the median of `values` with `digits` decimals (thousands separated), or '-'. */
function med(values: readonly number[], digits = 1): string {
  const v = median(values.filter(Number.isFinite));
  if (!Number.isFinite(v)) return '-';
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits);
}

/** Ratios as "median [min, max]" ("1.00x" alone for nginx against itself), or '-'. */
function ratioCell(ratios: readonly number[]): string {
  if (ratios.length === 0) return '-';
  const m = median(ratios);
  if (ratios.length === 1) return `${m.toFixed(2)}x`;
  return `${m.toFixed(2)}x [${Math.min(...ratios).toFixed(2)}, ${Math.max(...ratios).toFixed(2)}]`;
}

function chart(run: RunFile): string {
  return barChart({
    title: 'Thrift proxying: proxy CPU microseconds per call, median of rounds (lower is better)',
    xLabel: 'string field per call and reply',
    yLabel: 'proxy CPU us per call',
    categories: run.sizes.map(formatSize),
    series: run.targets
      .filter((n) => n !== 'direct')
      .map((name) => ({
        name,
        values: run.sizes.map((size) => {
          const v = median(pointsOf(run, name, size).map((p) => p.proxyCpuUs));
          return Number.isFinite(v) ? v : null;
        }),
      })),
  });
}

function renderPage(
  run: RunFile,
  targets: readonly Target[],
  loadBefore: number[],
  lastRound: number,
): string {
  const rows: (string | number)[][] = [];
  for (const size of run.sizes) {
    for (const t of targets) {
      const ps = pointsOf(run, t.name, size);
      if (ps.length === 0) continue;
      const proxied = t.name !== 'direct';
      const vsNginx = roundRatios(run, t.name, 'nginx stream', size);
      const within = vsNginx.filter((r) => r <= NGINX_TARGET).length;
      rows.push([
        formatSize(size),
        t.name,
        med(ps.map((p) => p.callsPerSecond)),
        med(ps.map((p) => p.p50Us)),
        med(ps.map((p) => p.p99Us)),
        proxied ? med(ps.map((p) => p.proxyCpuUs)) : '-',
        proxied ? med(ps.map((p) => p.proxySysUs)) : '-',
        med(ps.map((p) => p.serverCpuUs)),
        proxied ? (t.name === 'nginx stream' ? '1.00x' : ratioCell(vsNginx)) : '-',
        proxied && t.name !== 'nginx stream' && vsNginx.length ? `${within} of ${vsNginx.length}` : '-',
        proxied
          ? t.name === 'npm thrift'
            ? '1.00x'
            : ratioCell(roundRatios(run, 'npm thrift', t.name, size))
          : '-',
        // Counts as strings: markdownTable would print a number below 10 with two decimals.
        String(ps.reduce((n, p) => n + p.errors, 0)),
        String(ps.length),
      ]);
    }
  }
  const proxies = run.targets.filter((n) => n !== 'direct');
  const perRound: (string | number)[][] = [];
  for (const size of run.sizes) {
    for (let round = 1; round <= run.rounds; round++) {
      const here = run.points.filter((p) => p.size === size && p.round === round);
      if (here.length === 0) continue;
      const cpu = (name: string) => here.find((p) => p.target === name)?.proxyCpuUs;
      const nginx = cpu('nginx stream');
      perRound.push([
        formatSize(size),
        String(round),
        [...here]
          .sort((a, b) => a.position - b.position)
          .map((p) => p.target)
          .join(', '),
        ...proxies.map((n) => {
          const v = cpu(n);
          return v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(1);
        }),
        ...proxies.filter((n) => n !== 'nginx stream').map((n) => ratio(cpu(n), nginx)),
      ]);
    }
  }
  const withEvents = run.points.some((p) => p.eventsPerCall !== undefined);
  const done = run.rounds === lastRound;
  const lines = [
    '# Thrift proxy benchmark',
    '',
    `Generated by \`${run.commands.join('` then `')}\` from ${run.started} to ${new Date().toISOString()}` +
      `${done ? '' : ' (**incomplete: run still going or interrupted**)'}: ${run.rounds} round${run.rounds === 1 ? '' : 's'}, ` +
      `${quick ? '**quick smoke run**, ' : ''}${run.seconds} s per point after a ${run.warmupSeconds} s warm-up.`,
    '',
    `Machine: ${run.machine}. Load average before/after (this command): ${loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')} (other work on the machine makes numbers noisy).`,
    '',
    `Method: the Go peer's \`load\` mode (Apache Thrift 0.17's Go library, TStandardClient) opens ${run.connections} ` +
      'connections, each calling `string bench(1: string text)` as fast as it is answered (closed loop), framed binary; ' +
      'the Go server (TSimpleServer, TMultiplexedProcessor) answers the text as sent. Load generator and server are ' +
      'pinned to CPU 0, the proxy to CPU 1. Proxy CPU us/call = utime+stime of its process tree during the measured ' +
      "run / calls; p50/p99 are the load generator's. " +
      `Rounds: each round starts every target afresh and, for each size, measures them back to back in the round's ` +
      'order, rotated by one target a round (round 1 starts with the first target, round 2 with the second, ...), so ' +
      'drift of the machine lands on every target (the targets not being measured sit idle beside the one that is, ' +
      "on CPU 1: loch's 500 ms timer, npm's event loop); " +
      'one pass is not enough here (loch read 42-56 us a 10 KiB call ' +
      'across passes within one hour in session 51). Every figure is the median over the rounds. "vs nginx" is the ' +
      "median [min, max] of the per-round ratios of the proxy's CPU per call to nginx stream's at the same size (each " +
      `ratio pairs two readings of one round; target: loch within ${NGINX_TARGET}x), "within ${NGINX_TARGET}x" counts ` +
      'the rounds at or under it; "npm / this" is the median [min, max] of the per-round ratios of the npm thrift ' +
      `proxy's CPU per call to this one's (target: at least 5x). loch ran as ${lochCommand().note}.`,
    '',
    'Targets:',
    '',
    ...targets.map((t) => `- ${t.name}: ${t.note}`),
    '',
    ...(run.failures.length ? ['Failed:', '', ...run.failures.map((f) => `- ${f}`), ''] : []),
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
        `within ${NGINX_TARGET}x`,
        'npm / this',
        'errors',
        'rounds',
      ],
      rows,
    ),
    '',
    '![proxy CPU per call](thrift-cpu.svg)',
    '',
    '## Proxy CPU us a call, round by round',
    '',
    'Order: the order the targets ran in at that size in that round. The ratios are to nginx stream in the same round.',
    '',
    markdownTable(
      [
        'string',
        'round',
        'order',
        ...proxies,
        ...proxies.filter((n) => n !== 'nginx stream').map((n) => `${n} / nginx`),
      ],
      perRound,
    ),
    '',
    ...(withEvents
      ? [
          '## Kernel events per call (--events)',
          '',
          `perf stat tracepoints on the proxy's processes during each measured run, divided by its calls (${EVENTS.join(', ')}), median of rounds. ` +
            'A proxied call needs at least 2 sends (the call upstream, the reply downstream); receives that stay armed ' +
            "(multishot) add no submission per call. The CPU columns above include perf's overhead in this mode.",
          '',
          markdownTable(
            ['string', 'target', ...EVENT_LABELS],
            run.sizes.flatMap((size) =>
              proxies
                .map((name) => pointsOf(run, name, size).filter((p) => p.eventsPerCall !== undefined))
                .filter((ps) => ps.length > 0)
                .map((ps) => [
                  formatSize(size),
                  ps[0]!.target,
                  ...EVENT_LABELS.map((_, i) =>
                    med(
                      ps.map((p) => p.eventsPerCall![i]!),
                      2,
                    ),
                  ),
                ]),
            ),
          ),
          '',
        ]
      : []),
  ];
  return `${lines.join('\n')}\n`;
}

stopPeersOnSignal();
await main();
