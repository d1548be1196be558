/**
 * Is loch's extra cost at 2 workers the shared process (issue 18's scaling target)? loch's workers
 * are threads of one process (one mm, one fd table, one malloc, one V8 platform); nginx's are
 * processes. This runs, round after round in rotated order, the reference layout's peers:
 *   nginx     nginx, worker_processes 2, CPUs 0-1 (the same-run reference)
 *   nginx-1   nginx, worker_processes 1, CPU 1 (nginx's own scaling base)
 *   loch-1x2  one loch process, runtime.workers = 2, CPUs 0-1 (as shipped)
 *   loch-2x1  two loch processes of 1 worker each on the same port (SO_REUSEPORT: loch binds every
 *             TCP listener with it, worker.ts), CPUs 0-1, each with its own admin port and log
 *   loch-1x1  one loch process, 1 worker, CPU 1 (the scaling base)
 * A peer may carry environment for its loch processes: `loch-1x2+MALLOC_ARENA_MAX=1` (several
 * `+NAME=value`), so one run also answers "does this switch close the gap".
 *
 * Per peer and size, in each round: a fresh instance (all processes of it), an unmeasured start
 * warm-up, wrk's warm-up, then the measured wrk run (wrk -t1 -c64 on CPU 0, the static nginx
 * backend on CPU 0, ab/run.ts's layout and configs: metrics and access log on as shipped unless
 * told). CPU per request = utime+stime of all the peer's processes (their whole trees) over wrk's
 * requests; beside it minor page faults and context switches (all threads) per request, from
 * /proc, and for loch the requests each process counted (its /metrics), so a process that took
 * no connections shows. Writes a markdown summary to stdout and the raw points to --out.
 *
 * Usage (from bench/): tsx --conditions=@loch/source http-proxy/processes.ts --tree <built checkout>
 *   [--peers nginx,loch-1x2,loch-2x1,loch-1x1] [--sizes 128] [--rounds 5] [--seconds 6] [--warmup 2]
 *   [--start-warmup 5] [--metrics on] [--access-log on] [--out <file.json>]
 * `--from <file.json>[,...]` (with the runs' --peers and --sizes) prints the summary of saved runs again.
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { numberFlag, usageExit } from '../ab/flags.js';
import { CONNECTIONS, LOAD_CPU } from '../ab/side.js';
import { median } from '../ab/summary.js';
import { type LochTree, openTree, removeOnExit, startLoch, trimWhileRunning } from '../ab/tree.js';
import { runnerCommandLine } from '../lib/args.js';
import { formatSize, writeBodies } from '../lib/bodies.js';
import {
  cpuSplitSeconds,
  freePort,
  killLivePeers,
  markdownTable,
  type Peer,
  processTree,
  rssKiB,
  runWrk,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { PROXIES } from './peers.js';

const SCRIPT = 'http-proxy/processes.ts';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    tree: { type: 'string' },
    peers: { type: 'string', default: 'nginx,loch-1x2,loch-2x1,loch-1x1' },
    sizes: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    'start-warmup': { type: 'string', default: '5' },
    metrics: { type: 'string', default: 'on' },
    'access-log': { type: 'string', default: 'on' },
    out: { type: 'string' },
    from: { type: 'string' },
  },
});

if (args.tree === undefined)
  usageExit(SCRIPT, 'usage: http-proxy/processes.ts --tree <built checkout> [...]');
const rounds = numberFlag(SCRIPT, 'rounds', args.rounds, 1);
const sizes = args.sizes.split(',').map((s) => numberFlag(SCRIPT, 'sizes', s, 0));
const seconds = numberFlag(SCRIPT, 'seconds', args.seconds, 1);
const warmupSeconds = numberFlag(SCRIPT, 'warmup', args.warmup, 0);
const startWarmupSeconds = numberFlag(SCRIPT, 'start-warmup', args['start-warmup'], 0);
for (const [flag, v] of [
  ['metrics', args.metrics],
  ['access-log', args['access-log']],
] as const)
  if (v !== 'on' && v !== 'off') usageExit(SCRIPT, `--${flag} ${v}: want on or off`);
const metrics = args.metrics === 'on';
const accessLog = args['access-log'] === 'on';

/** One peer of the run, parsed from `--peers`. */
interface PeerSpec {
  /** As given, e.g. `loch-1x2+MALLOC_ARENA_MAX=1`: the peer's name in tables. */
  readonly label: string;
  readonly kind: 'nginx' | 'loch';
  readonly processes: number;
  readonly workers: number;
  /** taskset CPU list: CPU 1 alone for one worker in all, else CPUs 0-1 (ab/side.ts proxyCpus). */
  readonly cpu: string;
  readonly env: Record<string, string>;
}

function parsePeer(label: string): PeerSpec {
  const [base, ...pairs] = label.split('+');
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) usageExit(SCRIPT, `--peers ${label}: want +NAME=value after the peer`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const shape = /^(nginx|loch)(?:-(\d+)(?:x(\d+))?)?$/.exec(base!);
  if (shape === null)
    usageExit(SCRIPT, `--peers ${label}: want nginx, nginx-<workers>, loch-<processes>x<workers>`);
  const kind = shape[1] as 'nginx' | 'loch';
  if (kind === 'nginx' && (shape[3] !== undefined || pairs.length > 0))
    usageExit(SCRIPT, `--peers ${label}: nginx takes nginx-<workers> only`);
  const processes = kind === 'nginx' ? 1 : Number(shape[2] ?? 1);
  const workers = kind === 'nginx' ? Number(shape[2] ?? 2) : Number(shape[3] ?? 1);
  if (!(processes >= 1 && workers >= 1))
    usageExit(SCRIPT, `--peers ${label}: at least 1 process and 1 worker`);
  return { label, kind, processes, workers, cpu: processes * workers === 1 ? '1' : '0-1', env };
}

const peers = args.peers.split(',').map(parsePeer);
const tree: LochTree | undefined = peers.some((p) => p.kind === 'loch')
  ? openTree('T', resolve(process.env.INIT_CWD ?? process.cwd(), args.tree!))
  : undefined;
const NGINX = PROXIES.find((p) => p.name === 'nginx')!;

/** A started peer: its processes (each a Peer) and their admin ports (loch with metrics on). */
interface Running {
  readonly procs: readonly Peer[];
  readonly adminPorts: readonly number[];
  readonly port: number;
}

/** What one measured run read. */
interface Point {
  readonly round: number;
  readonly position: number;
  readonly peer: string;
  readonly size: number;
  readonly requests: number;
  readonly rps: number;
  readonly errors: number;
  readonly userUs: number;
  readonly sysUs: number;
  readonly cpuUs: number;
  /** Minor page faults of the peer's processes per request. */
  readonly minflt: number;
  /** Voluntary + involuntary context switches of all the peer's threads per request. */
  readonly ctxsw: number;
  /** Resident set of all the peer's processes at the end of the run, KiB (absent in older files). */
  readonly rssKiB?: number;
  /** Requests each loch process counted during the run (its /metrics); empty without metrics. */
  readonly perProcess: readonly number[];
}

/** Sum of minor faults (/proc/<pid>/stat field 10: the whole thread group's) over the trees of `pids`. */
function minorFaults(pids: readonly number[]): number {
  let n = 0;
  for (const root of pids)
    for (const p of processTree(root)) {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        n += Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
      } catch {
        // gone
      }
    }
  return n;
}

/** Context switches of every live thread in the trees of `pids` (/proc/<pid>/task/<tid>/status). */
function contextSwitches(pids: readonly number[]): number {
  let n = 0;
  for (const root of pids)
    for (const p of processTree(root)) {
      let tasks: string[];
      try {
        tasks = readdirSync(`/proc/${p}/task`);
      } catch {
        continue;
      }
      for (const t of tasks) {
        try {
          const s = readFileSync(`/proc/${p}/task/${t}/status`, 'utf8');
          for (const m of s.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) n += Number(m[1]);
        } catch {
          // gone
        }
      }
    }
  return n;
}

/** Inodes of the sockets listening on TCP `port` (IPv4 and IPv6), from /proc/net/tcp*. */
function listenerInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (addr:port), st f[3] (0A = LISTEN), inode f[9].
      if (f.length > 9 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '0A') inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** Resolves once `peer`'s process holds a socket listening on `port` (throws after 15 s or on exit). */
async function listening(peer: Peer, port: number): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    if (peer.child.exitCode !== null || peer.child.signalCode !== null)
      throw new Error(`${peer.name} exited before it listened:\n${peer.output()}`);
    const inodes = listenerInodes(port);
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${peer.pid}/fd`);
    } catch {
      // not there yet
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${peer.pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return;
      } catch {
        // closed meanwhile
      }
    }
    if (Date.now() > until)
      throw new Error(`${peer.name}: no listener on ${port} after 15 s:\n${peer.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** loch_http_requests_total summed, from the admin listener on `port`. */
async function countedRequests(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^loch_http_requests_total\{[^}]*\} (\S+)$/gm)) total += Number(m[1]);
  return total;
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  process.on('exit', killLivePeers);
  const started = new Date();
  const loadBefore = loadavg();
  const root = writeBodies(sizes);
  const probes = sizes.map((bytes) => ({ path: `/${bytes}`, bytes }));
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, `/${sizes[0]}`);
  log(
    `backend nginx on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}); peers ${peers.map((p) => p.label).join(', ')}`,
  );

  const start = async (spec: PeerSpec): Promise<Running> => {
    const port = await freePort();
    if (spec.kind === 'nginx') {
      const peer = await NGINX.start({
        port,
        upstreamPort: backendPort,
        workers: spec.workers,
        cpu: spec.cpu,
        probePath: probes[0]!.path,
        accessLog,
      });
      if (peer.accessLogFile !== undefined) {
        trimWhileRunning(peer, peer.accessLogFile);
        removeOnExit(peer, dirname(peer.accessLogFile));
      }
      return { procs: [peer], adminPorts: [], port };
    }
    const procs: Peer[] = [];
    const adminPorts: number[] = [];
    try {
      for (let i = 0; i < spec.processes; i++) {
        // Every process gets its own admin port (a fixed port binds once), config dir and log.
        const adminPort = metrics ? await freePort() : undefined;
        procs.push(
          await startLoch(tree!, {
            port,
            upstreamPort: backendPort,
            cpu: spec.cpu,
            probes,
            workers: spec.workers,
            adminPort,
            accessLog,
            env: spec.env,
          }),
        );
        if (adminPort !== undefined) adminPorts.push(adminPort);
        // startLoch's readiness probe is answered by the first process already: wait for this
        // one's own listener, so no process misses the warm-up.
        await listening(procs[i]!, port);
      }
    } catch (err) {
      for (const p of procs) await p.stop();
      throw err;
    }
    return { procs, adminPorts, port };
  };

  const points: Point[] = [];
  const pids = (r: Running) => r.procs.map((p) => p.pid);
  try {
    for (let round = 0; round < rounds; round++) {
      // Rotated: round r starts with peer r (mod n), so every peer runs in every position.
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!);
      log(`round ${round + 1}/${rounds}: ${order.map((p) => p.label).join(' -> ')}`);
      for (const size of sizes) {
        for (const [position, spec] of order.entries()) {
          const running = await start(spec);
          try {
            const url = `http://127.0.0.1:${running.port}/${size}`;
            const load = { connections: CONNECTIONS, cpu: LOAD_CPU };
            if (startWarmupSeconds > 0) await runWrk(url, { ...load, seconds: startWarmupSeconds });
            if (warmupSeconds > 0) await runWrk(url, { ...load, seconds: warmupSeconds });
            for (const p of running.procs)
              if (p.child.exitCode !== null || p.child.signalCode !== null)
                throw new Error(`${spec.label}: ${p.name} exited:\n${p.output()}`);
            const counted0 = await Promise.all(running.adminPorts.map(countedRequests));
            const cpu0 = pids(running).map(cpuSplitSeconds);
            const flt0 = minorFaults(pids(running));
            const cs0 = contextSwitches(pids(running));
            const w = await runWrk(url, { ...load, seconds });
            const cpu1 = pids(running).map(cpuSplitSeconds);
            const flt1 = minorFaults(pids(running));
            const cs1 = contextSwitches(pids(running));
            const counted1 = await Promise.all(running.adminPorts.map(countedRequests));
            const rss = pids(running).reduce((sum, pid) => sum + rssKiB(pid), 0);
            const user = cpu1.reduce((s, c, i) => s + c[0] - cpu0[i]![0], 0);
            const sys = cpu1.reduce((s, c, i) => s + c[1] - cpu0[i]![1], 0);
            const per = (v: number) => (w.requests > 0 ? v / w.requests : Number.NaN);
            const point: Point = {
              round: round + 1,
              position: position + 1,
              peer: spec.label,
              size,
              requests: w.requests,
              rps: w.requestsPerSecond,
              errors: w.errors,
              userUs: per(user * 1e6),
              sysUs: per(sys * 1e6),
              cpuUs: per((user + sys) * 1e6),
              minflt: per(flt1 - flt0),
              ctxsw: per(cs1 - cs0),
              rssKiB: rss,
              perProcess: counted1.map((c, i) => c - counted0[i]!),
            };
            if (w.errors > w.requests * 0.01) throw new Error(`${spec.label} ${size}: ${w.errors} errors`);
            points.push(point);
            log(
              `  ${spec.label} ${formatSize(size)}: ${Math.round(point.rps)} req/s, ${point.cpuUs.toFixed(2)} us/req ` +
                `(user ${point.userUs.toFixed(2)}, sys ${point.sysUs.toFixed(2)}), minflt ${point.minflt.toFixed(4)}, ` +
                `ctxsw ${point.ctxsw.toFixed(4)}, RSS ${Math.round(rss / 1024)} MiB` +
                (point.perProcess.length > 1 ? `, per process ${point.perProcess.join(' / ')}` : ''),
            );
          } finally {
            for (const p of running.procs) await p.stop();
          }
        }
      }
      if (args.out !== undefined)
        writeFileSync(args.out, `${JSON.stringify({ started, points }, null, 2)}\n`);
    }
  } finally {
    await backend.stop();
  }
  process.stdout.write(`\n${summary(started, loadBefore, points)}\n`);
}

/** Medians per peer, and per round the ratios the page reads (loch / nginx, 2x1 / 1x2, 2 workers / 1). */
function summary(started: Date, loadBefore: number[], points: readonly Point[]): string {
  const out: string[] = [
    `Generated by \`tsx --conditions=@loch/source ${SCRIPT} ${runnerCommandLine()}\` at ${started.toISOString()}; ` +
      `load before/after ${loadBefore.map((v) => v.toFixed(2)).join(' ')} / ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}; tree ${tree?.root ?? '-'} (${tree?.revision ?? '-'}).`,
    '',
  ];
  const value = (peer: string, size: number, round: number, f: (p: Point) => number) => {
    const p = points.find((q) => q.peer === peer && q.size === size && q.round === round);
    return p === undefined ? Number.NaN : f(p);
  };
  const roundsDone = Math.max(0, ...points.map((p) => p.round));
  const fmt = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  for (const size of sizes) {
    out.push(`### ${formatSize(size)}`, '');
    const col = (label: string, f: (p: Point) => number) =>
      points.filter((p) => p.peer === label && p.size === size).map(f);
    const cell = (vs: number[], d = 2) =>
      vs.length === 0
        ? 'n/a'
        : `${fmt(median(vs), d)} [${fmt(Math.min(...vs), d)}, ${fmt(Math.max(...vs), d)}]`;
    out.push(
      markdownTable(
        [
          'peer',
          'CPU us/req',
          'user',
          'system',
          'req/s',
          'minor faults/req',
          'ctx switches/req',
          'RSS MiB (end of run)',
          'per-process share',
        ],
        peers.map((p) => [
          p.label,
          cell(col(p.label, (q) => q.cpuUs)),
          cell(col(p.label, (q) => q.userUs)),
          cell(col(p.label, (q) => q.sysUs)),
          cell(
            col(p.label, (q) => q.rps),
            0,
          ),
          cell(
            col(p.label, (q) => q.minflt),
            4,
          ),
          cell(
            col(p.label, (q) => q.ctxsw),
            4,
          ),
          cell(col(p.label, (q) => (q.rssKiB ?? Number.NaN) / 1024).filter(Number.isFinite), 1),
          p.kind === 'loch' && p.processes > 1
            ? cell(
                col(
                  p.label,
                  (q) =>
                    Math.min(...q.perProcess) /
                    Math.max(
                      1,
                      q.perProcess.reduce((s, c) => s + c, 0),
                    ),
                ),
                3,
              )
            : '',
        ]),
      ),
      '',
    );
    // Paired per-round ratios of CPU per request: every pair of peers that share an interpretation.
    const pairs: [string, string][] = [];
    const nginx2 = peers.find((p) => p.kind === 'nginx' && p.workers > 1)?.label;
    const nginx1 = peers.find((p) => p.kind === 'nginx' && p.workers === 1)?.label;
    for (const p of peers) if (p.kind === 'loch' && nginx2 !== undefined) pairs.push([p.label, nginx2]);
    // Between loch peers: more workers in all over fewer (the scaling step), else later over earlier.
    const total = (p: PeerSpec) => p.processes * p.workers;
    const lochs = peers.filter((p) => p.kind === 'loch');
    for (const [i, p] of lochs.entries())
      for (const q of lochs.slice(i + 1))
        pairs.push(total(q) < total(p) ? [p.label, q.label] : [q.label, p.label]);
    if (nginx1 !== undefined && nginx2 !== undefined) pairs.push([nginx2, nginx1]);
    const ratios = (b: string, a: string, f: (p: Point) => number) =>
      Array.from(
        { length: roundsDone },
        (_, i) => value(b, size, i + 1, f) / value(a, size, i + 1, f),
      ).filter(Number.isFinite);
    const rows = pairs.map(([b, a]) => {
      const rs = ratios(b, a, (p) => p.cpuUs);
      return [
        `${b} / ${a}`,
        rs.map((r) => r.toFixed(3)).join(', '),
        `${fmt(median(rs), 3)}x`,
        `${rs.filter((r) => r < 1).length} of ${rs.length}`,
        `${fmt(median(ratios(b, a, (p) => p.userUs)), 3)}x`,
        `${fmt(median(ratios(b, a, (p) => p.sysUs)), 3)}x`,
      ];
    });
    // Issue 18's scaling figure: loch's 1 -> 2 worker step over nginx's in the same round.
    const base = lochs.find((p) => total(p) === 1)?.label;
    if (base !== undefined && nginx1 !== undefined && nginx2 !== undefined)
      for (const p of lochs.filter((q) => total(q) === 2)) {
        const step = (b: string, a: string) =>
          Array.from({ length: roundsDone }, (_, i) => {
            const c = (peer: string) => value(peer, size, i + 1, (q) => q.cpuUs);
            return c(b) / c(a);
          });
        const l = step(p.label, base);
        const n = step(nginx2, nginx1);
        const rs = l.map((v, i) => v / n[i]!).filter(Number.isFinite);
        rows.push([
          `(${p.label} / ${base}) / (${nginx2} / ${nginx1})`,
          rs.map((r) => r.toFixed(3)).join(', '),
          `${fmt(median(rs), 3)}x`,
          `${rs.filter((r) => r < 1).length} of ${rs.length}`,
          '',
          '',
        ]);
      }
    out.push(
      markdownTable(
        ['CPU/req ratio', 'per round', 'median', 'rounds under 1.0', 'user, median', 'system, median'],
        rows,
      ),
      '',
    );
  }
  out.push(
    '#### Raw',
    '',
    markdownTable(
      [
        'round',
        'body',
        'peer',
        'pos',
        'req/s',
        'CPU us',
        'user',
        'sys',
        'minflt',
        'ctxsw',
        'RSS MiB',
        'per process',
      ],
      points.map((p) => [
        String(p.round),
        formatSize(p.size),
        p.peer,
        String(p.position),
        Math.round(p.rps).toLocaleString('en-US'),
        p.cpuUs.toFixed(2),
        p.userUs.toFixed(2),
        p.sysUs.toFixed(2),
        p.minflt.toFixed(4),
        p.ctxsw.toFixed(4),
        p.rssKiB === undefined ? '' : (p.rssKiB / 1024).toFixed(1),
        p.perProcess.join(' / '),
      ]),
    ),
  );
  return out.join('\n');
}

/**
 * `--from <json>[,<json>...]`: the summary of saved runs (their --out files, with the runs' --peers
 * and --sizes), the later files' rounds numbered after the earlier ones'; nothing measured.
 */
async function summarizeFiles(files: string): Promise<void> {
  const points: Point[] = [];
  let started: Date | undefined;
  for (const file of files.split(',')) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { started: string; points: Point[] };
    started ??= new Date(saved.started);
    const offset = Math.max(0, ...points.map((p) => p.round));
    points.push(...saved.points.map((p) => ({ ...p, round: p.round + offset })));
  }
  process.stdout.write(`${summary(started ?? new Date(), loadavg(), points)}\n`);
}

(args.from === undefined ? main() : summarizeFiles(args.from)).catch((err: Error) => {
  process.stderr.write(`${SCRIPT}: FAILED: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
