/**
 * The handshake part of the HTTPS benchmark alone, with the server CPU per handshake broken
 * down by thread (threads.ts): for each worker count, certificate and peer a fresh instance
 * (as run.ts --handshakes: same certificates, policy, CPUs, client, warm-up), then each mode's
 * window(s). Loch runs with thread-roles.cjs preloaded so its main thread, each worker thread
 * and V8's platform threads are told apart (Node 20 names them all `node`). For diagnosis
 * (issue 13: the 2-worker ECDSA excess), not for the page: it writes nothing but its log and,
 * with --json, the points.
 *
 * Usage: tsx --conditions=@loch/source https/handshake-threads.ts [--peers loch,nginx]
 *   [--workers 1,2] [--certs ecdsa,rsa] [--modes full,resumed] [--seconds 6]
 *   [--handshake-warmup 10] [--windows 1] [--client-cpu 0] [--proxy-cpus 1w=1,2w=0-1]
 *   [--json file] [--perf EVENTS] [--record DIR]
 * --windows N: N measured windows per mode back to back on the same instance (the first after
 * the warm-up, the others right after it): how the cost moves as the instance warms.
 * --client-cpu: the client's taskset list ('' = not pinned); --proxy-cpus: the proxy's per
 * worker count (run.ts: 1 worker on CPU 1, 2 workers on 0-1, the client on 0).
 * --perf EVENTS: `perf stat --per-thread -e EVENTS` over each measured window, on the proxy and its
 * child processes (nginx's workers) (software events and tracepoints: this VM has no hardware
 * counters), summed per thread role, per handshake; e.g.
 * 'context-switches,cpu-migrations,page-faults,syscalls:sys_enter_futex,syscalls:sys_enter_io_uring_enter'.
 * --concurrency N,N...: the client's connections at a time (run.ts: 8), one window each in turn per
 * mode (e.g. 8,2,8,2: fewer at a time leaves a worker idle between handshakes, so each costs its
 * wake-ups).
 * --peer-log FILE: every line the peer writes, appended to FILE with a `=== window` line before each window.
 * --record DIR: `perf record -e cpu-clock -F 4999` of the proxy (and its child processes) over each measured window (no call
 * graphs: node's OpenSSL has no frame pointers), into DIR/<peer>-<workers>w-<cert>-<mode>-<window>.data,
 * and the log gives the symbols with most samples as us per handshake (samples / 4999 / handshakes):
 * where the proxy's CPU per handshake went, e.g. OpenSSL's locks (CRYPTO_THREAD_*, pthread_rwlock_*)
 * with 1 and 2 workers.
 * --count-lines RE,RE...: counts the peer's output lines matching each regular expression during
 * each window (window 1 includes its warm-up), e.g. with LOCH_BENCH_NODE_ARGS='--trace-gc
 * --trace-opt' for 'Scavenge,Mark-Compact,completed optimizing'.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runnerArgs } from '../lib/args.js';
import { writeBodies } from '../lib/bodies.js';
import { freePort, machineSummary, stopPeersOnSignal, waitForHttp } from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { tlsPolicy, writeTlsCertificates } from '../lib/tls-certs.js';
import { type HandshakeCost, handshakeCost } from './clients.js';
import { HTTPS_PROXIES, type HttpsProxy } from './peers.js';
import { formatRoleCosts, threadSnapshot, withThreadRoles } from './threads.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    peers: { type: 'string', default: 'loch,nginx' },
    workers: { type: 'string', default: '1,2' },
    certs: { type: 'string', default: 'ecdsa,rsa' },
    modes: { type: 'string', default: 'full,resumed' },
    seconds: { type: 'string', default: '6' },
    'handshake-warmup': { type: 'string', default: '10' },
    windows: { type: 'string', default: '1' },
    'client-cpu': { type: 'string', default: '0' },
    'proxy-cpus': { type: 'string', default: '1w=1,2w=0-1' },
    json: { type: 'string' },
    'count-lines': { type: 'string' },
    perf: { type: 'string' },
    'peer-log': { type: 'string' },
    record: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
  },
});

const fail = (message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(2);
};
const seconds = Number(args.seconds);
const warmup = Number(args['handshake-warmup']);
const windows = Number(args.windows);
if (!(seconds > 0)) fail(`--seconds: a positive number, not ${args.seconds}`);
if (!(warmup >= 0)) fail(`--handshake-warmup: seconds, not ${args['handshake-warmup']}`);
if (!Number.isInteger(windows) || windows < 1) fail(`--windows: a positive integer, not ${args.windows}`);
const workerCounts = args.workers.split(',').map(Number);
const proxyCpus = new Map(
  args['proxy-cpus'].split(',').map((pair) => {
    const m = /^(\d+)w=([\d,-]+)$/.exec(pair) ?? fail(`--proxy-cpus: 1w=CPUS,2w=CPUS, not ${pair}`);
    return [Number(m[1]), m[2]!] as const;
  }),
);
const clientCpu = args['client-cpu'] === '' ? undefined : args['client-cpu'];
const modes = args.modes
  .split(',')
  .map((m) => (m === 'full' || m === 'resumed' ? m : fail(`--modes: ${m}?`)));
const lanes = args.concurrency.split(',').map((n) => {
  const c = Number(n);
  return Number.isInteger(c) && c > 0 ? c : fail(`--concurrency: positive integers, not ${n}`);
});
const specs = args.peers
  .split(',')
  .map((name) => HTTPS_PROXIES.find((s) => s.name === name) ?? fail(`--peers: unknown peer ${name}`));
const policy = tlsPolicy('TLSv1.3');

interface Point {
  readonly proxy: string;
  readonly workers: number;
  readonly kind: string;
  readonly mode: string;
  readonly window: number;
  readonly concurrency: number;
  readonly h: HandshakeCost;
  readonly lines: Record<string, number>;
  /** perf stat counts per role and event, per handshake. */
  readonly perf: Record<string, Record<string, number>>;
}

/**
 * `pid` and its descendants (nginx's worker processes are children of its master), as perf's
 * comma-separated -p list.
 */
function processTree(pid: number): string {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    const p = all[i]!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' '))
          if (c.trim() !== '') all.push(Number(c));
      } catch {
        // the task ended
      }
    }
  }
  return all.join(',');
}

/**
 * perf stat over a window: start() spawns it on `pid` and its child processes (nginx's workers),
 * done() stops it; counts() parses per tid.
 */
function perfWindow(pid: number, events: string) {
  let child: ChildProcess | undefined;
  let err = '';
  let exited: Promise<void> = Promise.resolve();
  return {
    start() {
      child = spawn('perf', ['stat', '--per-thread', '-x', ',', '-e', events, '-p', processTree(pid)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      exited = new Promise((r) => child?.once('exit', () => r()));
    },
    done() {
      child?.kill('SIGINT');
    },
    /** Counts by tid and event. */
    async counts(): Promise<Map<string, Map<string, number>>> {
      await exited;
      const out = new Map<string, Map<string, number>>();
      for (const line of err.split('\n')) {
        const f = line.split(',');
        const tid = /-(\d+)$/.exec(f[0] ?? '')?.[1];
        const n = Number(f[1]);
        if (tid === undefined || !Number.isFinite(n) || f[3] === undefined) continue;
        const m = out.get(tid) ?? new Map<string, number>();
        m.set(f[3], (m.get(f[3]) ?? 0) + n);
        out.set(tid, m);
      }
      return out;
    },
  };
}

/** Samples per second of --record. */
const RECORD_HZ = 4999;

/** perf record over a window: start() spawns it on `pid`, done() stops it. */
function recordWindow(pid: number, file: string) {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  return {
    start() {
      child = spawn(
        'perf',
        ['record', '-q', '-e', 'cpu-clock', '-F', String(RECORD_HZ), '-o', file, '-p', processTree(pid)],
        {
          stdio: 'ignore',
        },
      );
      exited = new Promise((r) => child?.once('exit', () => r()));
    },
    done() {
      child?.kill('SIGINT');
    },
    /** The symbols with the most samples: [symbol (dso), us per handshake], most first. */
    async top(handshakes: number, n = 25): Promise<[string, number][]> {
      await exited;
      const report = spawnSync(
        'perf',
        ['report', '-i', file, '--stdio', '-q', '-F', 'sample,dso,sym', '--sort', 'dso,sym'],
        {
          encoding: 'utf8',
          maxBuffer: 64 * 1024 * 1024,
        },
      );
      const rows: [string, number][] = [];
      for (const line of report.stdout.split('\n')) {
        const m = /^\s*(\d+)\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$/.exec(line);
        if (m === null) continue;
        rows.push([`${m[3]} (${m[2]})`, (Number(m[1]) / RECORD_HZ / Math.max(1, handshakes)) * 1e6]);
      }
      return rows.sort((a, b) => b[1] - a[1]).slice(0, n);
    },
  };
}

const patterns = (args['count-lines'] ?? '')
  .split(',')
  .filter((p) => p !== '')
  .map((p) => ({ name: p, re: new RegExp(p) }));

async function main(): Promise<void> {
  stopPeersOnSignal();
  log(`machine: ${JSON.stringify(machineSummary())}`);
  const certs = writeTlsCertificates();
  const chosen = args.certs
    .split(',')
    .map((c) => (c === 'ecdsa' ? certs.ecdsa : c === 'rsa' ? certs.rsa : fail(`--certs: ${c}?`)));
  const root = writeBodies([128]);
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: '0' });
  await waitForHttp(backendPort, '/128');
  const points: Point[] = [];
  try {
    for (const workers of workerCounts) {
      for (const certificate of chosen) {
        for (const spec of specs) {
          const cpu = proxyCpus.get(workers) ?? (workers === 1 ? '1' : '0-1');
          const port = await freePort();
          const plainPort = await freePort();
          const begin = () =>
            spec.start({
              port,
              plainPort,
              upstreamPort: backendPort,
              workers,
              cpu,
              certificate,
              policy,
              probePath: '/128',
            });
          // Loch: its threads name their roles (thread-roles.cjs) into a fresh directory.
          let rolesDir: string | undefined;
          let proxy: HttpsProxy;
          if (spec.name.startsWith('loch')) {
            const started = await withThreadRoles(begin);
            proxy = started.value;
            rolesDir = started.rolesDir;
          } else proxy = await begin();
          // Output lines of interest, counted as they come (the peer keeps only its last 4 KB).
          const counts = new Map(patterns.map((p) => [p.name, 0]));
          let partial = '';
          const onData = (d: Buffer) => {
            if (args['peer-log'] !== undefined) appendFileSync(args['peer-log'], d);
            const text = partial + d.toString();
            const all = text.split('\n');
            partial = all.pop() ?? '';
            for (const line of all)
              for (const p of patterns)
                if (p.re.test(line)) counts.set(p.name, (counts.get(p.name) ?? 0) + 1);
          };
          if (patterns.length || args['peer-log'] !== undefined) {
            proxy.peer.child.stdout?.on('data', onData);
            proxy.peer.child.stderr?.on('data', onData);
          }
          try {
            for (const mode of modes) {
              for (let window = 1; window <= windows * lanes.length; window++) {
                const concurrency = lanes[(window - 1) % lanes.length]!;
                const linesBefore = new Map(counts);
                if (args['peer-log'] !== undefined)
                  appendFileSync(
                    args['peer-log'],
                    `\n=== ${spec.name} ${workers}w ${certificate.kind} ${mode} window ${window}\n`,
                  );
                const perf = args.perf === undefined ? undefined : perfWindow(proxy.peer.pid, args.perf);
                const record =
                  args.record === undefined
                    ? undefined
                    : recordWindow(
                        proxy.peer.pid,
                        join(
                          args.record,
                          `${spec.name}-${workers}w-${certificate.kind}-${mode}-${window}.data`,
                        ),
                      );
                const both =
                  perf === undefined || record === undefined
                    ? (perf ?? record)
                    : {
                        start() {
                          perf.start();
                          record.start();
                        },
                        done() {
                          perf.done();
                          record.done();
                        },
                      };
                const h = await handshakeCost(proxy.peer, port, {
                  mode,
                  seconds,
                  warmupSeconds: window === 1 ? warmup : 0,
                  concurrency,
                  ...(clientCpu === undefined ? {} : { clientCpu }),
                  ...(rolesDir === undefined ? {} : { rolesDir }),
                  ...(both === undefined ? {} : { window: both }),
                });
                const perfByRole: Record<string, Record<string, number>> = {};
                if (perf !== undefined) {
                  const roles = threadSnapshot(proxy.peer.pid, rolesDir);
                  const roleOfTid = new Map([...roles].map(([key, t]) => [key.split('/')[1]!, t.role]));
                  for (const [tid, events] of await perf.counts()) {
                    const role = roleOfTid.get(tid) ?? 'gone';
                    const r = (perfByRole[role] ??= {});
                    for (const [event, n] of events)
                      r[event] = (r[event] ?? 0) + n / Math.max(1, h.handshakes);
                  }
                }
                const top = record === undefined ? [] : await record.top(h.handshakes);
                const lines = Object.fromEntries(
                  [...counts].map(([name, n]) => [name, n - (linesBefore.get(name) ?? 0)]),
                );
                points.push({
                  proxy: spec.name,
                  workers,
                  kind: certificate.kind,
                  mode,
                  window,
                  concurrency,
                  h,
                  lines,
                  perf: perfByRole,
                });
                log(
                  `${spec.name} ${workers}w (CPUs ${cpu}, client ${clientCpu ?? 'any'}, ${concurrency} at a time) ${certificate.kind} ${mode} window ${window}: ` +
                    `${h.handshakes} handshakes (${Math.round(h.handshakesPerSecond)}/s), server ${h.cpuUsPerHandshake.toFixed(1)} us/handshake, ` +
                    `resumed ${h.resumed}, failed ${h.failed}` +
                    (patterns.length ? `; lines ${JSON.stringify(lines)}` : '') +
                    `\n${formatRoleCosts(h.threads)}\n  client:\n${formatRoleCosts(h.client)}` +
                    Object.entries(perfByRole)
                      .map(
                        ([role, events]) =>
                          `\n  perf ${role}: ${Object.entries(events)
                            .map(([e, n]) => `${e.replace('syscalls:sys_enter_', '')} ${n.toFixed(2)}`)
                            .join(', ')}`,
                      )
                      .join('') +
                    (top.length
                      ? `\n  perf record, us per handshake: ${top.map(([sym, us]) => `${sym} ${us.toFixed(1)}`).join('; ')}`
                      : ''),
                );
              }
            }
          } finally {
            await proxy.peer.stop();
          }
        }
      }
    }
  } finally {
    await backend.stop();
    if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(points, null, 2)}\n`);
  }
}

await main();
