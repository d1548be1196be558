/**
 * What a second worker costs per request (issues 13 and 18), counted rather than timed: for each
 * peer and worker count a fresh instance in bench:https's layout (wrk -t1 -c64 and the nginx
 * backend on CPU 0; the proxy on CPU 1 with 1 worker, CPUs 0-1 with 2), then per protocol
 * (HTTPS, and plain HTTP on the same instance's second port) a warm-up and a measured wrk window,
 * over which it reads per thread role (threads.ts: Loch's `main`, `worker N`, `platform` for V8's
 * background threads, `other` for libuv's pool; nginx's processes) the CPU, the context switches
 * and, with --perf, `perf stat --per-thread` events (software events and tracepoints: this VM has
 * no hardware counters), each divided by the requests wrk completed; and, for Loch, each worker's
 * connections from admin /stats in the middle of the window (the SO_REUSEPORT spread of the 64).
 * For diagnosis, not for the page: it writes its log and, with --json, the points.
 *
 * Usage: tsx --conditions=@loch/source https/request-threads.ts [--peers loch,nginx]
 *   [--workers 1,2] [--sizes 3269] [--protocols https,http] [--seconds 5] [--warmup 2]
 *   [--windows 1] [--perf EVENTS] [--loch-env NAME=VALUE]... [--loch-cli dist/bin.js]
 *   [--peer-log FILE] [--json file]
 * --perf, e.g. 'context-switches,cpu-migrations,raw_syscalls:sys_enter,syscalls:sys_enter_futex,
 * syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_pwait,io_uring:io_uring_complete'.
 * --loch-env: environment of Loch's process (a candidate setting); --loch-cli: another built
 * `bin.js` (e.g. a checkout under test), run from its apps/proxy/../.. root.
 * --peer-log: the peers' output appended to FILE, `=== ...` lines around each measured window
 * (`=== end N requests` after it), e.g. with LOCH_BENCH_V8_FLAGS='--trace-gc'.
 * LOCH_BENCH_V8_FLAGS reaches Loch through thread-roles.cjs (preloaded here): V8 flags set in
 * its main thread before any worker starts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LOCH_CLI } from '../http-proxy/peers.js';
import { runnerArgs } from '../lib/args.js';
import { writeBodies } from '../lib/bodies.js';
import { freePort, machineSummary, runWrk, stopPeersOnSignal, waitForHttp } from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { tlsPolicy, writeTlsCertificates } from '../lib/tls-certs.js';
import { HTTPS_PROXIES, type HttpsProxy, lochSpec } from './peers.js';
import { formatRoleCosts, roleCosts, threadSnapshot, withThreadRoles } from './threads.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    peers: { type: 'string', default: 'loch,nginx' },
    workers: { type: 'string', default: '1,2' },
    sizes: { type: 'string', default: '3269' },
    protocols: { type: 'string', default: 'https,http' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    windows: { type: 'string', default: '1' },
    perf: { type: 'string' },
    'loch-env': { type: 'string', multiple: true, default: [] },
    'loch-cli': { type: 'string' },
    'peer-log': { type: 'string' },
    json: { type: 'string' },
  },
});

const fail = (message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(2);
};
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const windows = Number(args.windows);
if (!(seconds > 0)) fail(`--seconds: a positive number, not ${args.seconds}`);
if (!(warmup >= 0)) fail(`--warmup: seconds, not ${args.warmup}`);
if (!Number.isInteger(windows) || windows < 1) fail(`--windows: a positive integer, not ${args.windows}`);
const workerCounts = args.workers.split(',').map(Number);
const sizes = args.sizes.split(',').map(Number);
const protocols = args.protocols
  .split(',')
  .map((p) => (p === 'https' || p === 'http' ? p : fail(`--protocols: https,http, not ${p}`)));
const lochEnv: Record<string, string> = {};
for (const pair of args['loch-env']) {
  const eq = pair.indexOf('=');
  if (eq <= 0) fail(`--loch-env: NAME=VALUE, not ${pair}`);
  lochEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
}
const cli = args['loch-cli'] === undefined ? LOCH_CLI : resolve(args['loch-cli']);
const lochBuild = { name: 'loch', cli, cwd: resolve(dirname(cli), '..', '..', '..'), env: lochEnv };
const specs = args.peers.split(',').map((name) => {
  if (name === 'loch') return lochSpec('loch', lochBuild); // --loch-env LOCH_TLS_RECORDS=openssl: OpenSSL's
  return HTTPS_PROXIES.find((s) => s.name === name) ?? fail(`--peers: unknown peer ${name}`);
});
const policy = tlsPolicy('TLSv1.3');
const CLIENT_CPU = '0';

/** Every process below `root` (nginx's workers), `root` first. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** perf stat --per-thread over a window on every process of a tree; counts() by tid and event. */
function perfWindow(pids: readonly number[], events: string) {
  let child: ChildProcess | undefined;
  let err = '';
  let exited: Promise<void> = Promise.resolve();
  return {
    start() {
      child = spawn('perf', ['stat', '--per-thread', '-x', ',', '-e', events, '-p', pids.join(',')], {
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

interface Point {
  readonly proxy: string;
  readonly workers: number;
  readonly size: number;
  readonly protocol: string;
  readonly window: number;
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly cpuUs: number;
  readonly roles: ReturnType<typeof roleCosts>;
  readonly perf: Record<string, Record<string, number>>;
  readonly connections: number[];
}

async function workerConnections(proxy: HttpsProxy): Promise<number[]> {
  if (proxy.stats === undefined) return [];
  try {
    const stats = JSON.parse(await proxy.stats()) as { workers: { connections?: number }[] };
    return stats.workers.map((w) => w.connections ?? -1);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  log(`machine: ${JSON.stringify(machineSummary())}; loch ${cli} env ${JSON.stringify(lochEnv)}`);
  const certificate = writeTlsCertificates().ecdsa;
  const root = writeBodies(sizes);
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: CLIENT_CPU });
  await waitForHttp(backendPort, `/${sizes[0]}`);
  const points: Point[] = [];
  try {
    for (const workers of workerCounts) {
      for (const spec of specs) {
        const cpu = workers === 1 ? '1' : '0-1';
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
            probePath: `/${sizes[0]}`,
          });
        let rolesDir: string | undefined;
        let proxy: HttpsProxy;
        if (spec.name.startsWith('loch')) {
          const started = await withThreadRoles(begin);
          proxy = started.value;
          rolesDir = started.rolesDir;
        } else proxy = await begin();
        const peerLog = args['peer-log'];
        if (peerLog !== undefined) {
          const write = (d: Buffer) => appendFileSync(peerLog, d);
          proxy.peer.child.stdout?.on('data', write);
          proxy.peer.child.stderr?.on('data', write);
        }
        try {
          for (const size of sizes) {
            for (const protocol of protocols) {
              const url = `${protocol}://127.0.0.1:${protocol === 'https' ? port : plainPort}/${size}`;
              if (warmup > 0) await runWrk(url, { connections: 64, seconds: warmup, cpu: CLIENT_CPU });
              for (let window = 1; window <= windows; window++) {
                if (peerLog !== undefined)
                  appendFileSync(
                    peerLog,
                    `\n=== ${spec.name} ${workers}w ${protocol} ${size} window ${window}\n`,
                  );
                const pids = processTree(proxy.peer.pid);
                const perf = args.perf === undefined ? undefined : perfWindow(pids, args.perf);
                perf?.start();
                await new Promise((r) => setTimeout(r, 300)); // perf attached
                const before = threadSnapshot(proxy.peer.pid, rolesDir);
                const running = runWrk(url, { connections: 64, seconds, cpu: CLIENT_CPU });
                await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
                const connections = await workerConnections(proxy);
                const wrk = await running;
                const after = threadSnapshot(proxy.peer.pid, rolesDir);
                perf?.done();
                if (peerLog !== undefined) appendFileSync(peerLog, `\n=== end ${wrk.requests} requests\n`);
                const roles = roleCosts(before, after, wrk.requests);
                const perfByRole: Record<string, Record<string, number>> = {};
                if (perf !== undefined) {
                  const roleOfTid = new Map([...after].map(([key, t]) => [key.split('/')[1]!, t.role]));
                  for (const [tid, events] of await perf.counts()) {
                    const role = roleOfTid.get(tid) ?? 'gone';
                    const r = (perfByRole[role] ??= {});
                    for (const [event, n] of events)
                      r[event] = (r[event] ?? 0) + n / Math.max(1, wrk.requests);
                  }
                }
                const cpuUs = roles.reduce((s, r) => s + r.cpuUs, 0);
                points.push({
                  proxy: spec.name,
                  workers,
                  size,
                  protocol,
                  window,
                  requests: wrk.requests,
                  requestsPerSecond: wrk.requestsPerSecond,
                  cpuUs,
                  roles,
                  perf: perfByRole,
                  connections,
                });
                log(
                  `${spec.name} ${workers}w ${protocol} ${size} B window ${window}: ${wrk.requests} requests ` +
                    `(${Math.round(wrk.requestsPerSecond)}/s, errors ${wrk.errors}), cpu ${cpuUs.toFixed(1)} us/req, ` +
                    `connections per worker ${JSON.stringify(connections)}\n${formatRoleCosts(roles)}` +
                    Object.entries(perfByRole)
                      .map(
                        ([role, events]) =>
                          `\n  perf ${role}: ${Object.entries(events)
                            .map(
                              ([e, n]) =>
                                `${e.replace(/^syscalls:sys_enter_|^raw_syscalls:|^io_uring:io_uring_/, '')} ${n.toFixed(3)}`,
                            )
                            .join(', ')}`,
                      )
                      .join(''),
                );
              }
            }
          }
        } finally {
          await proxy.peer.stop();
        }
      }
    }
  } finally {
    await backend.stop();
    if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(points, null, 2)}\n`);
  }
}

await main();
