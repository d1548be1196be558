/**
 * Memory per idle keep-alive connection at 10,000-60,000 idle connections, busy and quiet, with
 * several workers (issue 18: "busy memory measured with at least 50,000 idle connections and
 * repeated samples"). busy.ts reads one worker up to 19,000: its one client process, the proxy
 * process and the one source address all stop near this VM's descriptor hard limit (20,000 per
 * process, prlimit refused) or the ~28,000 ephemeral ports of one source address toward one
 * destination. Here the N idle connections come from several client processes (../lib/idle-clients.ts,
 * at most --per-client each, every one from its own source address 127.0.0.2, .3, ...), and the
 * proxy runs --workers workers: nginx's are processes (worker_rlimit_nofile 20,000 and
 * worker_connections --nginx-worker-connections each); loch's are threads of one process, which
 * with ordinary descriptors holds 20,000 in all, and with io_uring direct descriptors one table
 * per worker ring (--loch-runtime turns them on).
 *
 * One round = one fresh proxy and one count, read at four moments:
 *   quiet 0  after a 1 s warm (wrk -c64) and `--settle` s; loch: each worker's idle trim has run
 *   busy 0   wrk -c`--busy-connections` on for `--busy-warm` s (no idle trim can run while busy)
 *   busy N   the N idle connections opened (one GET each, so each sits in the proxy's idle pool),
 *            `--settle` s, wrk still on
 *   busy late  (with --busy-late S,...) wrk still on, S s after busy N: whether what a burst grew
 *            (loch: its workers' new space) stays given back under the load (readings-2026-12-07f.md)
 *   quiet N  wrk stopped, `--settle` s; loch: again until each worker trimmed (up to 45 s)
 * With --wrk-windows, wrk's req/s and latency (p50, p99, p99.9, max) are read over three stretches
 * of the round, one wrk process each, started as the one before stops: `before` (the busy warm),
 * `burst` (while the N connections open) and `after` (the 30 s after they opened; busy N is
 * read inside it): what a burst costs the busy clients (REVIEW F229: the open-wave collection's
 * pauses land at the burst's end). A --busy-late moment before + 30 s waits for `after` to end.
 * Each moment's RSS is the median of `--samples` samples 500 ms apart, of the proxy's process tree
 * (nginx: master + workers; loch: one process). busy B/conn = (busy N - busy 0) / N; quiet B/conn
 * = (quiet N - quiet 0) / N. Also at each moment: each process's RSS (and its descriptor count at busy 0
 * and quiet N: nginx's workers, which holds how many), loch's workers' SIGUSR2 stats (connections, heap), and the
 * kernel's side (not in any RSS): /proc/meminfo's Slab, /proc/net/sockstat's TCP mem (pages of
 * socket buffers) and the /proc/slabinfo caches that grew most (both ends of every connection
 * are on this machine: the kernel figures are per connection, client + server socket).
 * Every client process reports the connections that closed while held (a keep-alive timeout
 * shorter than the round would), and the round fails if any did.
 *
 * --pause-file F: a shared machine's "held" marker (another engineer's timed reading). A round
 * waits while F exists, and if F appears mid-round it is abandoned (wrk, clients, proxy stopped)
 * and run again once F is gone: the load and the 50,000 connects would disturb the timing.
 *
 * Usage (from bench/):
 *   pnpm exec tsx idle-memory/many-idle.ts --peer nginx|loch [--loch-cli ../apps/proxy/dist/bin.js]
 *     [--counts 10000,50000] [--rounds 3] [--workers 3] [--samples 5] [--settle 5] [--busy-warm 10]
 *     [--busy-connections 16] [--per-client 15000] [--nginx-worker-connections 19000]
 *     [--loch-runtime 'key = value; ...'] [--loch-env KEY=VALUE ...] [--pause-file /tmp/s50/hold] [--json out.json]
 * Loch must be built (--loch-cli, default ../apps/proxy/dist/bin.js): the sources under tsx move
 * the main thread's RSS by tens of MiB.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from '../ab/summary.js';
import { writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  type Peer,
  parseWrk,
  processTree,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxProxy, startNginxStatic } from '../lib/nginx.js';

const here = fileURLToPath(new URL('.', import.meta.url));

const { values: args } = parseArgs({
  options: {
    peer: { type: 'string', default: 'nginx' },
    counts: { type: 'string', default: '10000,50000' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '3' },
    samples: { type: 'string', default: '5' },
    settle: { type: 'string', default: '5' },
    'busy-warm': { type: 'string', default: '10' },
    'busy-connections': { type: 'string', default: '16' },
    /** Idle connections per client process (each process stays under the 20,000 fd limit). */
    'per-client': { type: 'string', default: '15000' },
    /**
     * CPUs of the idle client processes. Both by default: on CPU 0 beside wrk and the backend,
     * 50,000 connects took ~2 minutes a round (the proxy's memory does not depend on where its
     * clients run).
     */
    'client-cpus': { type: 'string', default: '0,1' },
    /** nginx's worker_connections (client + upstream connections a worker may hold). */
    'nginx-worker-connections': { type: 'string', default: '19000' },
    'loch-cli': { type: 'string', default: '../apps/proxy/dist/bin.js' },
    /** Extra `[runtime]` keys of loch's config, `;`-separated TOML lines. */
    'loch-runtime': { type: 'string', default: '' },
    /** Environment for loch, KEY=VALUE, repeatable (e.g. LOCH_URING_DIRECT_FILES=20000). */
    'loch-env': { type: 'string', multiple: true, default: [] },
    /** Seconds between a proxy's start and its warm (a node main thread's memory reducer runs ~8 s in). */
    'startup-wait': { type: 'string', default: '10' },
    'pause-file': { type: 'string' },
    /**
     * No round starts after this many seconds from the start (0: no bound): a run under a
     * machine-wide hold stays within the hold's share. The rounds go round-major (every count
     * once, then again), so a cut run still has each count.
     */
    'max-seconds': { type: 'string', default: '0' },
    /** Seconds after busy N (comma-separated, increasing) at which to read again, wrk still on. */
    'busy-late': { type: 'string', default: '' },
    /** wrk's numbers over the busy warm, the burst and the 30 s after (see the file's comment). */
    'wrk-windows': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const peerName = args.peer as 'nginx' | 'loch';
if (peerName !== 'nginx' && peerName !== 'loch') throw new Error('--peer nginx or loch');
const counts = args.counts.split(',').map(Number);
const rounds = Number(args.rounds);
const workers = Number(args.workers);
const samples = Number(args.samples);
const settleMs = Number(args.settle) * 1000;
const busyWarmMs = Number(args['busy-warm']) * 1000;
const busyConnections = Number(args['busy-connections']);
const perClient = Number(args['per-client']);
const startupWaitMs = Number(args['startup-wait']) * 1000;
const pauseFile = args['pause-file'];
const lochRuntime = args['loch-runtime']
  .split(';')
  .map((line) => line.trim())
  .filter((line) => line !== '')
  .map((line) => `${line}\n`)
  .join('');
const busyLateMs = args['busy-late']
  .split(',')
  .filter((x) => x.trim() !== '')
  .map((x) => Number(x) * 1000);
const wrkWindows = args['wrk-windows'];
const PATH = '/128';
/** The `after` stretch of --wrk-windows, in seconds. */
const AFTER_WINDOW_S = 30;
/** The proxy on CPU 1; wrk, the idle clients and the backend on CPU 0 (as busy.ts). */
const PROXY_CPU = '1';
const LOAD_CPU = '0';
const SAMPLE_INTERVAL_MS = 500;
/** loch's trims back off up to 32 s: how long a quiet moment waits for every worker's. */
const TRIM_WAIT_MS = 45_000;
/** Keep-alive timeouts both proxies get here (nginx's comes from bench/lib/nginx.ts: 300 s). */
const LOCH_KEEPALIVE = '600s';

/** The shared machine's hold began: the round is abandoned and run again. */
class Paused extends Error {}

function checkPause(): void {
  if (pauseFile !== undefined && existsSync(pauseFile)) throw new Paused(`${pauseFile} exists`);
}

/** Sleeps `ms`, checking the pause file every 500 ms. */
async function wait(ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    checkPause();
    const left = end - Date.now();
    if (left <= 0) return;
    await delay(Math.min(500, left));
  }
}

async function untilUnpaused(): Promise<void> {
  if (pauseFile === undefined) return;
  let said = false;
  while (existsSync(pauseFile)) {
    if (!said) console.error(`waiting: ${pauseFile} exists (${new Date().toISOString()})`);
    said = true;
    await delay(5000);
  }
}

/** One process's resident KiB and open descriptors. */
interface Proc {
  pid: number;
  comm: string;
  rssKiB: number;
  fds: number;
}

/** A loch worker's SIGUSR2 stats (the parts read here). */
interface WorkerParts {
  worker: number;
  connections: number;
  idleConnections: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  newSpace: number;
  oldSpace: number;
}

/** Everything read at one moment. */
interface Moment {
  rssKiB: number;
  rssSamplesKiB: number[];
  procs: Proc[];
  /** /proc/meminfo Slab (KiB) and /proc/net/sockstat TCP inuse and mem (pages). */
  slabKiB: number;
  tcpInuse: number;
  tcpMemPages: number;
  /** /proc/slabinfo: bytes (active objects x size) by cache. */
  slabs: Record<string, number>;
  workers?: WorkerParts[];
  loadavg: string;
}

/** wrk over one stretch of a round (--wrk-windows). */
interface WrkWindow {
  name: 'before' | 'burst' | 'after';
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
}

interface Round {
  peer: string;
  count: number;
  round: number;
  connections: number;
  failed: number;
  closedWhileHeld: number;
  clients: number;
  quiet0: Moment;
  busy0: Moment;
  busyN: Moment;
  /** --busy-late: seconds after busy N, and the moment read then. */
  busyLate: { afterSeconds: number; moment: Moment }[];
  quietN: Moment;
  busyBytesPerConnection: number;
  quietBytesPerConnection: number;
  wrkRequestsPerSecond: number;
  /** --wrk-windows: before, burst, after. */
  wrkWindows?: WrkWindow[];
  /** Seconds the N connections took to open, and the whole round. */
  openSeconds: number;
  roundSeconds: number;
  /** Loch: its wave-collect log lines from the opening on, seconds after the opening began. */
  waves?: string[];
  /** Loch: idle trims seen before quiet 0 and quiet N (per worker expected). */
  trims?: [number, number];
}

/**
 * `withFds`: count each process's descriptors too. Listing /proc/PID/fd makes a proc inode and a
 * dentry for every descriptor (~2.4 KiB of slab each, proc_inode_cache + dentry), so it runs only
 * where the kernel figures were already read or do not matter (busy 0, with few descriptors, and
 * quiet N, after its kernel reading).
 */
function procs(root: number, withFds: boolean): Proc[] {
  const out: Proc[] = [];
  for (const pid of processTree(root))
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = /VmRSS:\s+(\d+) kB/.exec(status);
      const comm = /Name:\s+(\S+)/.exec(status)?.[1] ?? '?';
      // taskset / prlimit exec the command: the tree's root is the proxy itself.
      out.push({
        pid,
        comm,
        rssKiB: Number(rss?.[1] ?? 0),
        fds: withFds ? readdirSync(`/proc/${pid}/fd`).length : -1,
      });
    } catch {
      // the process ended while we looked
    }
  return out;
}

function slabInfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n').slice(2)) {
    const f = line.split(/\s+/);
    if (f.length < 4) continue;
    out[f[0]!] = Number(f[1]) * Number(f[3]);
  }
  return out;
}

function kernel(): Pick<Moment, 'slabKiB' | 'tcpInuse' | 'tcpMemPages' | 'slabs' | 'loadavg'> {
  const slab = /Slab:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  const tcp = /TCP: inuse (\d+) .* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return {
    slabKiB: Number(slab?.[1] ?? 0),
    tcpInuse: Number(tcp?.[1] ?? 0),
    tcpMemPages: Number(tcp?.[2] ?? 0),
    slabs: slabInfo(),
    loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

/** A started proxy; loch's can report its workers' parts and count idle trims. */
interface Proxy {
  peer: Peer;
  port: number;
  workerParts?: () => Promise<WorkerParts[]>;
  trims?: () => number;
  /** Loch: its workers' wave-collect log lines (NODE_DEBUG=loch), with when each came (Date.now()). */
  waveLines?: { at: number; line: string }[];
}

async function startLoch(upstreamPort: number, count: number): Promise<Proxy> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'loch-many-idle-'));
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]\nworkers = ${workers}\ncpu_affinity = false\nmax_connections_per_worker = ${count + 1_000}\n${lochRuntime}\n` +
      `[log]\nlevel = "info"\n\n[servers.bench]\nproxy_type = "http"\n` +
      `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n` +
      `timeouts = { server_keepalive = "${LOCH_KEEPALIVE}" }\n\n[[servers.bench.routes]]\npath = "/"\n` +
      `upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]\n`,
  );
  const peer = startPeer(
    `loch (${workers}w)`,
    process.execPath,
    [resolve(args['loch-cli']), 'run', '-c', config],
    {
      cpu: PROXY_CPU,
      cwd: here,
      // The runtime logs each idle trim under NODE_DEBUG=loch; quiet moments wait for them.
      env: {
        ...process.env,
        ...Object.fromEntries(
          args['loch-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        ),
        NODE_DEBUG: [process.env.NODE_DEBUG, 'loch'].filter((x) => x).join(','),
      },
    },
  );
  let trims = 0;
  const waveLines: { at: number; line: string }[] = [];
  let collecting: WorkerParts[] | undefined;
  for (const out of [peer.child.stdout!, peer.child.stderr!])
    createInterface({ input: out }).on('line', (line) => {
      if (/ idle trim \d+:/.test(line)) trims++;
      if (/ wave collect /.test(line)) waveLines.push({ at: Date.now(), line: line.trim() });
      const m = /stats (\{.*\})/.exec(line);
      if (m === null || collecting === undefined) return;
      const s = JSON.parse(m[1]!) as WorkerParts & { heapSpaces?: Record<string, number> };
      collecting.push({
        worker: s.worker,
        connections: s.connections,
        idleConnections: s.idleConnections,
        heapUsed: s.heapUsed,
        heapTotal: s.heapTotal,
        external: s.external,
        newSpace: s.heapSpaces?.new_space ?? 0,
        oldSpace: s.heapSpaces?.old_space ?? 0,
      });
    });
  try {
    await waitForHttp(port, PATH, '127.0.0.1', 30_000);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  const workerParts = async () => {
    collecting = [];
    peer.child.kill('SIGUSR2');
    const end = Date.now() + 5000;
    while (collecting.length < workers && Date.now() < end) await delay(50);
    const got = collecting.sort((a, b) => a.worker - b.worker);
    collecting = undefined;
    return got;
  };
  return { peer, port, workerParts, trims: () => trims, waveLines };
}

async function startProxy(upstreamPort: number, count: number): Promise<Proxy> {
  if (peerName === 'loch') return startLoch(upstreamPort, count);
  const port = await freePort();
  const peer = await startNginxProxy({
    port,
    upstreamPort,
    workers,
    cpu: PROXY_CPU,
    connections: Number(args['nginx-worker-connections']),
  });
  await waitForHttp(port, PATH);
  return { peer, port };
}

async function moment(proxy: Proxy, withFds: boolean): Promise<Moment> {
  const rss: number[] = [];
  let last: Proc[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await wait(SAMPLE_INTERVAL_MS);
    last = procs(proxy.peer.pid, false);
    rss.push(last.reduce((t, p) => t + p.rssKiB, 0));
  }
  const k = kernel();
  if (withFds)
    last = procs(proxy.peer.pid, true).map((p) => ({
      ...p,
      rssKiB: last.find((x) => x.pid === p.pid)?.rssKiB ?? p.rssKiB,
    }));
  const parts = await proxy.workerParts?.();
  return { rssKiB: median(rss), rssSamplesKiB: rss, procs: last, ...k, ...(parts ? { workers: parts } : {}) };
}

/** Loch: waits until `workers` more idle trims than `since` were logged (each worker's, as a rule). */
async function untilTrimmed(proxy: Proxy, since: number): Promise<void> {
  if (proxy.trims === undefined) return;
  const end = Date.now() + TRIM_WAIT_MS;
  while (proxy.trims() < since + workers) {
    if (Date.now() > end) {
      console.error(`loch: ${proxy.trims() - since} idle trims of ${workers} within ${TRIM_WAIT_MS} ms`);
      return;
    }
    await wait(200);
  }
}

/** The N idle connections, in client processes of at most --per-client, each from its own address. */
interface Clients {
  connections: number;
  failed: number;
  processes: number;
  /** Closes every connection; resolves with how many had closed while held. */
  release(): Promise<number>;
}

async function openClients(port: number, count: number): Promise<Clients> {
  const n = Math.ceil(count / perClient);
  const shares = Array.from({ length: n }, (_, i) => Math.floor(count / n) + (i < count % n ? 1 : 0));
  const children = shares.map((share, i) => {
    const argv = [
      'taskset',
      '-c',
      args['client-cpus'],
      process.execPath,
      '--import',
      'tsx',
      '../lib/idle-clients.ts',
    ];
    argv.push(String(port), String(share), PATH, '200', `127.0.0.${i + 2}`);
    const child = spawn(argv[0]!, argv.slice(1), { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const line = (re: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = () => {
          const m = re.exec(text);
          if (m !== null) resolve(m);
        };
        check();
        child.stdout.on('data', check);
        child.once('exit', (code) => {
          const m = re.exec(text);
          if (m !== null) resolve(m);
          else reject(new Error(`idle client exited with ${code}: ${text}`));
        });
      });
    return { child, line };
  });
  const killAll = () => {
    for (const c of children) c.child.kill('SIGTERM');
  };
  process.once('exit', killAll);
  const release = async () => {
    process.off('exit', killAll);
    const closed = children.map((c) =>
      c.line(/closed (\d+)/).then(
        (m) => Number(m[1]),
        () => 0,
      ),
    );
    killAll();
    return (await Promise.all(closed)).reduce((a, b) => a + b, 0);
  };
  try {
    // Opening tens of thousands of connections takes a while: the pause file is checked meanwhile.
    const ready = Promise.all(children.map((c) => c.line(/ready (\d+) failed (\d+)/)));
    let done = false;
    void ready.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    while (!done) await wait(200);
    const ms = await ready;
    return {
      connections: ms.reduce((t, m) => t + Number(m[1]), 0),
      failed: ms.reduce((t, m) => t + Number(m[2]), 0),
      processes: n,
      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}

/** The busy load: wrk -c--busy-connections for `seconds`; with --wrk-windows, its latency too. */
function startWrk(url: string, seconds = 3600): Peer {
  const extra = wrkWindows ? ['--latency', '-s', join(here, 'wrk-window.lua')] : [];
  return startPeer('wrk (busy)', 'wrk', ['-t1', `-c${busyConnections}`, `-d${seconds}s`, ...extra, url], {
    cpu: LOAD_CPU,
  });
}

/** Stops `wrk` (if still running) and reads its stretch. */
async function endWindow(wrk: Peer, name: WrkWindow['name']): Promise<WrkWindow> {
  if (wrk.child.exitCode === null && wrk.child.signalCode === null) wrk.child.kill('SIGINT');
  await wrk.exited;
  const text = wrk.output();
  const load = parseWrk(text);
  const tail = /window p999_us (\d+) max_us (\d+)/.exec(text);
  return {
    name,
    seconds: load.seconds,
    requestsPerSecond: load.requestsPerSecond,
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    p999Ms: tail ? Number(tail[1]) / 1000 : Number.NaN,
    maxMs: tail ? Number(tail[2]) / 1000 : Number.NaN,
    errors: load.errors,
  };
}

async function round(count: number, r: number, upstreamPort: number): Promise<Round> {
  const started = Date.now();
  const proxy = await startProxy(upstreamPort, count);
  let wrk: Peer | undefined;
  let clients: Clients | undefined;
  try {
    const url = `http://127.0.0.1:${proxy.port}${PATH}`;
    await wait(startupWaitMs);
    const warm = startPeer('wrk (warm)', 'wrk', ['-t1', '-c64', '-d1s', url], { cpu: LOAD_CPU });
    await warm.exited;
    const trims0 = proxy.trims?.() ?? 0;
    await wait(settleMs);
    await untilTrimmed(proxy, trims0);
    const quiet0 = await moment(proxy, false);
    wrk = startWrk(url);
    await wait(busyWarmMs);
    const busy0 = await moment(proxy, true);
    const windows: WrkWindow[] = [];
    if (wrkWindows) {
      windows.push(await endWindow(wrk, 'before'));
      wrk = startWrk(url);
    }
    const opening = Date.now();
    clients = await openClients(proxy.port, count);
    const openSeconds = (Date.now() - opening) / 1000;
    let after: Peer | undefined;
    if (wrkWindows) {
      windows.push(await endWindow(wrk, 'burst'));
      after = startWrk(url, AFTER_WINDOW_S);
      wrk = after;
    }
    await wait(settleMs);
    const busyN = await moment(proxy, false);
    const busyNAt = Date.now();
    if (after !== undefined) {
      await after.exited;
      windows.push(await endWindow(after, 'after'));
      wrk = startWrk(url);
    }
    const busyLate: Round['busyLate'] = [];
    for (const ms of busyLateMs) {
      await wait(busyNAt + ms - Date.now());
      busyLate.push({ afterSeconds: ms / 1000, moment: await moment(proxy, false) });
    }
    if (wrk.child.exitCode !== null || wrk.child.signalCode !== null)
      throw new Error(`wrk ended before the busy reading:\n${wrk.output()}`);
    wrk.child.kill('SIGINT');
    await wrk.exited;
    const load = parseWrk(wrk.output());
    wrk = undefined;
    const trimsN = proxy.trims?.() ?? 0;
    await wait(settleMs);
    await untilTrimmed(proxy, trimsN);
    const quietN = await moment(proxy, true);
    const closedWhileHeld = await clients.release();
    const { connections, failed, processes } = clients;
    clients = undefined;
    if (closedWhileHeld > 0)
      throw new Error(`${closedWhileHeld} idle connections closed while held (a keep-alive timeout?)`);
    return {
      peer: peerName,
      count,
      round: r,
      connections,
      failed,
      closedWhileHeld,
      clients: processes,
      quiet0,
      busy0,
      busyN,
      busyLate,
      quietN,
      busyBytesPerConnection: ((busyN.rssKiB - busy0.rssKiB) * 1024) / connections,
      quietBytesPerConnection: ((quietN.rssKiB - quiet0.rssKiB) * 1024) / connections,
      wrkRequestsPerSecond: load.requestsPerSecond,
      ...(wrkWindows ? { wrkWindows: windows } : {}),
      openSeconds,
      roundSeconds: (Date.now() - started) / 1000,
      ...(proxy.trims === undefined ? {} : { trims: [trims0, trimsN] as [number, number] }),
      ...(proxy.waveLines === undefined
        ? {}
        : {
            waves: proxy.waveLines
              .filter((w) => w.at >= opening)
              .map(
                (w) =>
                  `+${((w.at - opening) / 1000).toFixed(1)} s ${w.line.replace(/^.*wave collect/, 'wave collect')}`,
              ),
          }),
    };
  } finally {
    await clients?.release();
    if (wrk !== undefined) {
      wrk.child.kill('SIGINT');
      await wrk.exited;
    }
    await proxy.peer.stop();
  }
}

function range(xs: readonly number[]): string {
  return `${Math.round(median(xs))} [${Math.round(Math.min(...xs))}, ${Math.round(Math.max(...xs))}]`;
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

/** Loch: each worker's new space (MiB), slash-separated. */
function newSpaces(m: Moment): string {
  return (m.workers ?? []).map((w) => (w.newSpace / 1048576).toFixed(0)).join('/');
}

/** The slab caches that grew most between two moments (bytes per connection). */
function slabGrowth(a: Moment, b: Moment, connections: number, top = 6): string {
  return Object.keys(b.slabs)
    .map((name) => [name, (b.slabs[name]! - (a.slabs[name] ?? 0)) / connections] as const)
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([name, per]) => `${name} ${Math.round(per)}`)
    .join(', ');
}

/** Per process (nginx) or per worker (loch): what the N idle cost between busy 0 and busy N. */
function perProcess(r: Round): string {
  if (r.busyN.workers !== undefined && r.busy0.workers !== undefined)
    return r.busyN.workers
      .map((w) => {
        const b = r.busy0.workers!.find((x) => x.worker === w.worker);
        const conns = w.idleConnections - (b?.idleConnections ?? 0);
        const heap = (w.heapTotal - (b?.heapTotal ?? 0)) / Math.max(1, conns);
        const ext = (w.external - (b?.external ?? 0)) / Math.max(1, conns);
        return `w${w.worker}: ${w.connections} conns (${w.idleConnections} idle), heap total ${Math.round(heap)} external ${Math.round(ext)} B/idle`;
      })
      .join('; ');
  // Descriptors from busy 0 to quiet N (wrk's 16 gone by then; see procs()), RSS from busy 0 to busy N.
  return r.busyN.procs
    .map((p) => {
      const b = r.busy0.procs.find((x) => x.pid === p.pid);
      const q = r.quietN.procs.find((x) => x.pid === p.pid);
      const fds = (q?.fds ?? 0) - (b?.fds ?? 0);
      const kib = p.rssKiB - (b?.rssKiB ?? 0);
      return `${p.comm} ${p.pid}: +${fds} fds, +${mib(kib)} MiB${fds > 0 ? ` (${Math.round((kib * 1024) / fds)} B/fd)` : ''}`;
    })
    .join('; ');
}

stopPeersOnSignal();
process.once('exit', killLivePeers);
const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
await waitForHttp(backendPort, PATH);
const results: Round[] = [];
try {
  const maxMs = Number(args['max-seconds']) * 1000;
  const startedAt = Date.now();
  allRounds: for (let r = 0; r < rounds; r++)
    for (const count of counts)
      for (let attempt = 1; ; attempt++) {
        if (maxMs > 0 && Date.now() - startedAt > maxMs) {
          console.error(`--max-seconds ${maxMs / 1000} reached: no more rounds`);
          break allRounds;
        }
        await untilUnpaused();
        try {
          const x = await round(count, r, backendPort);
          results.push(x);
          const k = (a: Moment, b: Moment) =>
            `slab ${Math.round(((b.slabKiB - a.slabKiB) * 1024) / x.connections)} B/conn, tcp mem ` +
            `${Math.round(((b.tcpMemPages - a.tcpMemPages) * 4096) / x.connections)} B/conn`;
          console.log(
            `${count} ${peerName} round ${r + 1}: ${x.connections} idle (${x.failed} failed, ${x.clients} client processes), ` +
              `RSS quiet ${mib(x.quiet0.rssKiB)} -> ${mib(x.quietN.rssKiB)} MiB (${Math.round(x.quietBytesPerConnection)} B/conn), ` +
              `busy ${mib(x.busy0.rssKiB)} -> ${mib(x.busyN.rssKiB)} MiB (${Math.round(x.busyBytesPerConnection)} B/conn), ` +
              `wrk ${Math.round(x.wrkRequestsPerSecond)} req/s, load ${x.busyN.loadavg}, ` +
              `open ${x.openSeconds.toFixed(0)} s of ${x.roundSeconds.toFixed(0)} s\n` +
              `  kernel busy 0 -> N: ${k(x.busy0, x.busyN)}, TCP inuse ${x.busy0.tcpInuse} -> ${x.busyN.tcpInuse}; ` +
              `slab caches (B/conn): ${slabGrowth(x.busy0, x.busyN, x.connections)}\n` +
              `  per process: ${perProcess(x)}\n` +
              `  busy N samples (KiB): ${x.busyN.rssSamplesKiB.join(' ')}; quiet N: ${x.quietN.rssSamplesKiB.join(' ')}` +
              (x.busy0.workers === undefined
                ? ''
                : `\n  new space MiB by worker: busy 0 ${newSpaces(x.busy0)}, busy N ${newSpaces(x.busyN)}, ` +
                  `quiet N ${newSpaces(x.quietN)}`) +
              x.busyLate
                .map(
                  (l) =>
                    `\n  busy N + ${l.afterSeconds} s: RSS ${mib(l.moment.rssKiB)} MiB ` +
                    `(${Math.round(((l.moment.rssKiB - x.busy0.rssKiB) * 1024) / x.connections)} B/conn over busy 0)` +
                    (l.moment.workers === undefined ? '' : `, new space MiB ${newSpaces(l.moment)}`),
                )
                .join('') +
              (x.waves === undefined ? '' : `\n  open ${x.openSeconds.toFixed(1)} s; ${x.waves.join('; ')}`) +
              (x.wrkWindows === undefined
                ? ''
                : `\n  wrk windows: ${x.wrkWindows
                    .map(
                      (w) =>
                        `${w.name} ${w.seconds.toFixed(1)} s ${Math.round(w.requestsPerSecond)} req/s, p50 ` +
                        `${w.p50Ms.toFixed(2)} p99 ${w.p99Ms.toFixed(2)} p99.9 ${w.p999Ms.toFixed(2)} max ` +
                        `${w.maxMs.toFixed(1)} ms${w.errors > 0 ? `, ${w.errors} errors` : ''}`,
                    )
                    .join('; ')}`),
          );
          break;
        } catch (err) {
          if (!(err instanceof Paused) || attempt >= 20) throw err;
          console.error(`${count} round ${r + 1}: abandoned (${err.message}), again once the hold ends`);
        }
      }
} finally {
  await backend.stop();
}

console.log(
  `\n${peerName}, ${workers} workers: bytes per idle connection, median [range] of ${rounds} rounds (RSS of the process tree):`,
);
console.log(
  '| idle | busy B/conn | quiet B/conn | RSS busy 0 -> N (MiB) | RSS quiet 0 -> N (MiB) | slab B/conn (busy, both ends) | tcp mem B/conn | load (1 min) |',
);
console.log('|---:|---:|---:|---|---|---:|---:|---|');
for (const count of counts) {
  const rs = results.filter((x) => x.count === count);
  if (rs.length === 0) continue;
  console.log(
    `| ${rs.map((x) => x.connections).join(', ')} | ${range(rs.map((x) => x.busyBytesPerConnection))} | ` +
      `${range(rs.map((x) => x.quietBytesPerConnection))} | ` +
      `${rs.map((x) => `${mib(x.busy0.rssKiB)} -> ${mib(x.busyN.rssKiB)}`).join('; ')} | ` +
      `${rs.map((x) => `${mib(x.quiet0.rssKiB)} -> ${mib(x.quietN.rssKiB)}`).join('; ')} | ` +
      `${range(rs.map((x) => ((x.busyN.slabKiB - x.busy0.slabKiB) * 1024) / x.connections))} | ` +
      `${range(rs.map((x) => ((x.busyN.tcpMemPages - x.busy0.tcpMemPages) * 4096) / x.connections))} | ` +
      `${rs.map((x) => x.busyN.loadavg.split(' ')[0]).join(', ')} |`,
  );
}
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
