/**
 * Memory per idle keep-alive connection, loch against nginx in one run (issue 18): 1 worker
 * each, N idle connections (bench/lib/idle-clients.ts, one GET each) held open while the proxy
 * is busy (wrk on other connections the whole time, so Loch's idle trim never runs) and while it
 * is quiet (the trim has run before both readings: after `--settle`, it waits for the worker's
 * next idle trim, logged under NODE_DEBUG=loch, since the trim backs off up to 32 s). Each reading is RSS of the proxy's process
 * tree from outside, the median of several samples, before and with the connections; every
 * (count, mode, peer) is repeated `--rounds` times on a fresh proxy, interleaved, and reported
 * as the median and range of the rounds. For loch it also reports the worker's own parts
 * (SIGUSR2 stats: V8 heap used and committed, external, ArrayBuffers, receive-budget bytes) at
 * the same moments, so the RSS difference can be attributed. With two or more counts the slope
 * between the smallest and the largest ((RSS(N2) - RSS(N1)) / (N2 - N1)) is printed too: it
 * leaves out what does not grow with the connections (per-request garbage of the busy ones).
 * Loch runs from source (apps/proxy/src/bin.ts with tsx), so no build is needed for A/B work,
 * or a built one with --loch-cli (steadier RSS: the tsx main thread moves it by tens of MiB).
 * Not bench/http-proxy's one-sample table, and not a heap profile (run.ts, analyze.ts).
 *
 * Busy mode reads its baseline after `--busy-warm` seconds of load. A loch worker's young
 * generation grows under load alone (readings-2026-12-05.md section 1: surviving bytes summed over
 * scavenges double a semi-space) and is never shrunk while busy, so on a machine where that short
 * warm does not get it to its cap, the connections' burst does, and the cap (16 MiB with the
 * default "24m") is charged to them. `--warm-young S` (busy only) keeps the load on after that
 * baseline until the peer's memory stops growing: loch's worker new space (committed, from its
 * SIGUSR2 stats every WARM_POLL_MS) reaches its cap (2/3 of the worker's
 * maxYoungGenerationSizeMb: two semi-spaces of three young-generation parts) and has been there
 * `--warm-after-cap` seconds (its grown pages resident), or has not grown for `--warm-still` seconds; nginx's RSS has not grown for `--warm-still` seconds; at most S seconds.
 * It then reads a second ("warmed") baseline, and both are reported against the one reading with
 * the connections: from the first baseline (which then charges everything the warm grew, not only
 * the young generation, to the connections: the as-today reading is a run without --warm-young)
 * and from the warmed one. With --gc each poll runs a full GC in loch's worker.
 *
 * Usage (from bench/):
 *   pnpm exec tsx --conditions=@loch/source idle-memory/busy.ts [--counts 10000,50000]
 *     [--rounds 3] [--samples 5] [--busy-connections 16] [--settle 3] [--modes busy,quiet]
 *     [--peers nginx,loch] [--startup-wait 10] [--busy-warm 5] [--loch-node-args=FLAGS]
 *     [--loch-cli ../apps/proxy/dist/bin.js] [--loch-runtime 'key = value; ...']
 *     [--json out.json] [--gc] [--snapshot-dir DIR] [--smaps-dir DIR] [--warm-young 180] [--warm-still 30]
 *     [--warm-after-cap 10] [--warm-connections 64]
 *     [--warm-full] [--pregrow] [--spaces-dir DIR]
 * --gc runs a full GC in loch's worker before each parts reading (so heap used is live bytes;
 * it runs after that reading's RSS samples, but the baseline's GC comes before the connections'
 * RSS); --snapshot-dir writes a heap snapshot there at each parts reading (analyze.ts with the
 * baseline one attributes the connections' live objects by constructor).
 * N idle connections need a descriptor limit of about N + 1,000 for the proxy (checked first).
 *
 * --slope (two counts N1 < N2): each round takes both counts in one proxy: N1 connections, a
 * reading, then N2 - N1 more, a second reading. The slope (RSS(N2) - RSS(N1)) / (N2 - N1) is the
 * bytes per connection with every fixed cost cancelled: the young generation's growth to its cap
 * (busy, when it is at its cap at both readings: the summary says) and whatever else the first
 * burst grows once. The as-is figure (RSS(N2) less the baseline before the connections, over N2)
 * comes from the same round and is printed beside it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
  rssKiB,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { openIdleClients } from '../lib/memory.js';
import { startNginxProxy, startNginxStatic } from '../lib/nginx.js';
import { type ArenaReading, arenaReading } from './arenas.js';
import { MAP_PART_KEYS, type MapParts, mapParts } from './map-parts.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * The descriptor limit this process's children start with (hard, from /proc). A proxy holding
 * N idle connections needs about N + 1,000; above the hard limit only a process with
 * CAP_SYS_RESOURCE can raise it (prlimit below), so a run that cannot is stopped up front.
 */
function hardNofile(): number {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}
const { values: args } = parseArgs({
  options: {
    counts: { type: 'string', default: '10000,50000' },
    rounds: { type: 'string', default: '3' },
    samples: { type: 'string', default: '5' },
    'busy-connections': { type: 'string', default: '16' },
    settle: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'busy,quiet' },
    peers: { type: 'string', default: 'nginx,loch' },
    json: { type: 'string' },
    /**
     * Seconds between a proxy's start and its warm-up: a node main thread's memory reducer
     * shrinks its heap about 8 s after start, which would land inside a reading otherwise.
     */
    'startup-wait': { type: 'string', default: '10' },
    /** Seconds wrk runs before the busy baseline is read. */
    'busy-warm': { type: 'string', default: '5' },
    /**
     * Busy: at most this many more seconds of load after the baseline until the peer's memory
     * stops growing, then a second (warmed) baseline; 0: no warmed reading.
     */
    'warm-young': { type: 'string', default: '0' },
    /** Seconds without growth that end the warm (--warm-young). */
    'warm-still': { type: 'string', default: '30' },
    /**
     * Seconds the warm goes on after loch's new space reached its cap. V8 commits the grown
     * semi-spaces at once but their pages become resident only as allocation first walks them
     * (a scavenge or two later): a warmed baseline read the moment the cap is reached charges
     * those pages (2.5-3.4 MiB, readings-2026-12-07.md section 1) to the first idle connections.
     */
    'warm-after-cap': { type: 'string', default: '10' },
    /**
     * Connections of the load during --warm-young until loch's new space reaches its cap (nginx:
     * until its RSS is still), then back to --busy-connections for --warm-after-cap: a steady busy
     * worker holds the cap (readings-2026-12-06e.md section 2), and 16 connections on a shared
     * machine may take minutes to get there (readings-2026-12-07.md section 1). Default: the
     * busy connections (one load throughout).
     */
    'warm-connections': { type: 'string' },
    /**
     * Warm the whole --warm-young, whatever the memory does (a timeline of loch's new space under
     * the load alone: when it reaches its cap, and whether V8's memory reducer shrinks it again).
     */
    'warm-full': { type: 'boolean', default: false },
    /**
     * A built loch (apps/proxy/dist/bin.js of some checkout) instead of the sources under tsx,
     * whose main thread (compiling under the loader) moves RSS by tens of MiB during a reading.
     */
    'loch-cli': { type: 'string' },
    /** Extra node flags for loch (A/B of V8 heap flags), space-separated. */
    'loch-node-args': { type: 'string', default: '' },
    /**
     * Extra `[runtime]` keys of loch's config, `;`-separated TOML lines, e.g.
     * `worker_young_generation_bytes = "0"` (an A/B of the young generation's cap).
     */
    'loch-runtime': { type: 'string', default: '' },
    /** LOCH_DEBUG_GC=1: a full GC before each parts reading (live bytes; after the RSS samples). */
    gc: { type: 'boolean', default: false },
    /** LOCH_DEBUG_HEAPSNAPSHOT: a heap snapshot at each parts reading, for analyze.ts. */
    'snapshot-dir': { type: 'string' },
    /**
     * A copy of the proxy's /proc/PID/smaps (each process of its tree) at each reading, as
     * DIR/<peer>-<mode>-r<round>-<moment>-<pid>.smaps: which mapping grew, for a diff by address.
     */
    'smaps-dir': { type: 'string' },
    /**
     * loch only: every V8 heap space's committed, used and resident bytes at each reading, from
     * inside the worker (space-stats-preload.cjs, appended to DIR/spaces.jsonl; space-diff.py
     * prints them by moment): which space the first connections grow once and which per connection.
     */
    'spaces-dir': { type: 'string' },
    /**
     * Open the count's idle connections once and close them before the baseline (busy: with the
     * load already on, so no idle trim runs after): the proxy's arrays by connection (loch's op
     * slots and descriptor registry) have grown when the reading's connections come, so the
     * reading leaves out that one-time growth and the replaced arrays it leaves for the GC.
     */
    pregrow: { type: 'boolean', default: false },
    /** Both counts in one proxy per round, a reading at each: the slope between them (header). */
    slope: { type: 'boolean', default: false },
  },
});
const counts = args.counts.split(',').map(Number);
if (args.slope && (counts.length !== 2 || counts[0]! >= counts[1]!))
  throw new Error('--slope takes two counts, the smaller first (e.g. --counts 5000,19000)');
/** --slope: the first count, read on the way to the second in the same proxy. */
const slopeFrom = args.slope ? counts[0]! : undefined;
const rounds = Number(args.rounds);
const samples = Number(args.samples);
const busyConnections = Number(args['busy-connections']);
const settleMs = Number(args.settle) * 1000;
const startupWaitMs = Number(args['startup-wait']) * 1000;
const busyWarmMs = Number(args['busy-warm']) * 1000;
const warmYoungMs = Number(args['warm-young']) * 1000;
const warmStillMs = Number(args['warm-still']) * 1000;
const warmAfterCapMs = Number(args['warm-after-cap']) * 1000;
const warmConnections = Number(args['warm-connections'] ?? args['busy-connections']);
const spacesDir = args['spaces-dir'] === undefined ? undefined : resolve(args['spaces-dir']);
const lochNodeArgs = [
  ...args['loch-node-args'].split(' ').filter((a) => a !== ''),
  ...(spacesDir === undefined ? [] : [`--require=${join(here, 'space-stats-preload.cjs')}`]),
];
const lochRuntime = args['loch-runtime']
  .split(';')
  .map((line) => line.trim())
  .filter((line) => line !== '')
  .map((line) => `${line}\n`)
  .join('');
const modes = args.modes.split(',') as ('busy' | 'quiet')[];
const peers = args.peers.split(',') as ('nginx' | 'loch')[];
const PATH = '/128';
/** The proxy on CPU 1; wrk, the idle clients and the backend on CPU 0. */
const PROXY_CPU = '1';
const LOAD_CPU = '0';
const SAMPLE_INTERVAL_MS = 200;
/** How often --warm-young reads the peer's memory. */
const WARM_POLL_MS = 2000;

/** A loch worker's parts at one moment (worker.ts WorkerStats). */
interface Parts {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Receive-budget bytes held by streams (uring-runtime bufferStats().held), when known. */
  held: number;
  /**
   * Heap receive buffers (bufferStats()): heapPooled, bytes on the thread's free list (kept after
   * a burst that ran the provided-buffer ring out, up to 4 MiB: external memory that is not per
   * idle connection, readings-2026-12-05d.md section 4); heapLent, buffers lent to streams now.
   */
  heapPooled: number;
  heapLent: number;
  /** Committed bytes of V8's new (young) and old space. */
  newSpace: number;
  oldSpace: number;
  /** The worker's new space cap (bytes): 2/3 of its young generation (resourceLimits), 0 if unknown. */
  newSpaceCap: number;
}

/** The second baseline of a busy reading, after --warm-young (see the header). */
interface Warmed {
  /** Seconds of load between the first baseline and this one. */
  seconds: number;
  /** loch: its new space reached its cap (else it stopped growing, or the warm hit its bound). */
  reachedCap: boolean;
  baselineKiB: number;
  bytesPerConnection: number;
  parts?: Parts;
  arenas?: ArenaReading;
  maps?: MapParts;
  /** Each poll of the warm: seconds since the first baseline, loch's new space (bytes), RSS KiB. */
  trace: { seconds: number; newSpace?: number; rssKiB: number }[];
}

interface Reading {
  count: number;
  mode: 'busy' | 'quiet';
  peer: string;
  round: number;
  connections: number;
  failed: number;
  baselineKiB: number;
  withKiB: number;
  bytesPerConnection: number;
  requestsPerSecond?: number;
  parts?: { before: Parts; with: Parts };
  /** loch: its glibc arenas' resident KiB at the two moments (arenas.ts; thread arenas hold the worker's). */
  arenas?: { before: ArenaReading; with: ArenaReading };
  /** Resident KiB by mapping kind (map-parts.ts) at the baseline and with the connections. */
  maps: { before: MapParts; with: MapParts };
  /** Busy with --warm-young: the warmed baseline and what the connections cost over it. */
  warmed?: Warmed;
  /** --slope: the reading at the first count, taken in the same proxy on the way to `count`. */
  first?: { connections: number; withKiB: number; parts?: Parts; arenas?: ArenaReading; maps: MapParts };
}

/** A started proxy and, for loch, a way to read its worker's parts. */
interface Proxy {
  peer: Peer;
  parts?: () => Promise<Parts>;
  /** Idle trims the worker logged so far (NODE_DEBUG=loch: "idle trim N: ..."). */
  trims?: () => number;
}

/** How long quiet mode waits for loch's idle trim (its back-off goes up to 32 s). */
const TRIM_WAIT_MS = 40_000;

/**
 * Quiet mode: waits until loch's worker has trimmed after `since` trims (the trim's period backs
 * off up to 32 s when traffic came back soon after the last trim, so a fixed settle is not
 * enough). Returns false when none came within TRIM_WAIT_MS.
 */
async function untilTrimmed(proxy: Proxy, since: number): Promise<boolean> {
  const trims = proxy.trims;
  if (trims === undefined) return true;
  const end = Date.now() + TRIM_WAIT_MS;
  while (trims() <= since) {
    if (Date.now() > end) return false;
    await delay(100);
  }
  return true;
}

async function startLoch(port: number, upstreamPort: number, count: number): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-busy-memory-'));
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]\nworkers = 1\ncpu_affinity = false\nmax_connections_per_worker = ${count + 1_000}\n${lochRuntime}\n` +
      `[log]\nlevel = "info"\n\n[servers.bench]\nproxy_type = "http"\n` +
      `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n` +
      `timeouts = { server_keepalive = "600s" }\n\n[[servers.bench.routes]]\npath = "/"\n` +
      `upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]\n`,
  );
  const peer = startPeer(
    'loch (1w)',
    process.execPath,
    args['loch-cli'] !== undefined
      ? [...lochNodeArgs, resolve(args['loch-cli']), 'run', '-c', config]
      : [
          ...lochNodeArgs,
          '--import',
          'tsx',
          '--conditions=@loch/source',
          '../../apps/proxy/src/bin.ts',
          'run',
          '-c',
          config,
        ],
    {
      cpu: PROXY_CPU,
      cwd: here,
      env: {
        ...process.env,
        // The runtime logs each idle trim under NODE_DEBUG=loch; quiet mode waits for it.
        NODE_DEBUG: [process.env.NODE_DEBUG, 'loch'].filter((x) => x).join(','),
        LOCH_DEBUG_GC: args.gc ? '1' : '',
        LOCH_DEBUG_HEAPSNAPSHOT: args['snapshot-dir'] ?? '',
        LOCH_SPACES_DIR: spacesDir ?? '',
      },
      ...(count + 1_000 > hardNofile() ? { nofile: count + 1_000 } : {}),
    },
  );
  const waiters: ((p: Parts) => void)[] = [];
  let trims = 0;
  for (const out of [peer.child.stdout!, peer.child.stderr!]) {
    createInterface({ input: out }).on('line', (line) => {
      if (/ idle trim \d+:/.test(line)) trims++;
      const m = /stats (\{.*\})/.exec(line);
      if (!m) return;
      const s = JSON.parse(m[1]!) as Parts & {
        runtime?: { buffers?: { held?: number; heapPooled?: number; heapLent?: number } | null };
        heapSpaces?: Record<string, number>;
        heapLimits?: { maxYoungGenerationSizeMb?: number };
      };
      waiters.shift()?.({
        heapUsed: s.heapUsed,
        heapTotal: s.heapTotal,
        external: s.external,
        arrayBuffers: s.arrayBuffers,
        held: s.runtime?.buffers?.held ?? 0,
        heapPooled: s.runtime?.buffers?.heapPooled ?? 0,
        heapLent: s.runtime?.buffers?.heapLent ?? 0,
        newSpace: s.heapSpaces?.new_space ?? 0,
        oldSpace: s.heapSpaces?.old_space ?? 0,
        newSpaceCap: ((s.heapLimits?.maxYoungGenerationSizeMb ?? 0) * 2 * 1024 * 1024) / 3,
      });
    });
  }
  try {
    await waitForHttp(port, PATH, '127.0.0.1', 30_000);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  const parts = () => {
    const p = new Promise<Parts>((r) => waiters.push(r));
    peer.child.kill('SIGUSR2');
    return p;
  };
  return { peer, parts, trims: () => trims };
}

async function startProxy(name: 'nginx' | 'loch', upstreamPort: number, count: number) {
  const port = await freePort();
  if (name === 'loch') return { port, proxy: await startLoch(port, upstreamPort, count) };
  const peer = await startNginxProxy({
    port,
    upstreamPort,
    workers: 1,
    cpu: PROXY_CPU,
    connections: count + 1_000,
  });
  await waitForHttp(port, PATH);
  return { port, proxy: { peer } as Proxy };
}

/**
 * The proxy's resident KiB by mapping kind now; with --smaps-dir, also a copy of each of its
 * processes' smaps, named after `what` (peer, mode, round, moment).
 */
function mapsNow(peer: Peer, what: string): MapParts {
  // --spaces-dir: the loch worker's preload reads its heap spaces when it sees this mark (<= 50 ms).
  if (spacesDir !== undefined && what.startsWith('loch')) writeFileSync(join(spacesDir, 'mark'), `${what}\n`);
  const dir = args['smaps-dir'];
  if (dir !== undefined)
    for (const pid of processTree(peer.pid))
      try {
        writeFileSync(join(dir, `${what}-${pid}.smaps`), readFileSync(`/proc/${pid}/smaps`));
      } catch {
        // the process ended while we looked
      }
  return mapParts(peer.pid);
}

async function rssMedian(peer: Peer): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await delay(SAMPLE_INTERVAL_MS);
    out.push(rssKiB(peer.pid));
  }
  return median(out);
}

/**
 * --warm-young: keeps the load on until the peer's memory stops growing (loch: its worker's new
 * space reaches its cap, then --warm-after-cap more seconds, or stays for --warm-still; nginx: RSS
 * stays for --warm-still), at most
 * --warm-young; returns the seconds it took and whether loch's new space reached its cap.
 */
async function warmUntilStill(
  proxy: Proxy,
  onGrown: () => Promise<void>,
): Promise<{ seconds: number; reachedCap: boolean; trace: Warmed['trace'] }> {
  const start = Date.now();
  let last = -1;
  let grewAt = start;
  /** When loch's new space was first seen at its cap (undefined while below it). */
  let capAt: number | undefined;
  const trace: Warmed['trace'] = [];
  for (;;) {
    const p = await proxy.parts?.();
    const rss = rssKiB(proxy.peer.pid);
    const measure = p?.newSpace ?? rss * 1024;
    const now = Date.now();
    trace.push({
      seconds: Math.round((now - start) / 1000),
      ...(p === undefined ? {} : { newSpace: p.newSpace }),
      rssKiB: rss,
    });
    if (measure > last) {
      last = measure;
      grewAt = now;
    }
    const reachedCap = p !== undefined && p.newSpaceCap > 0 && p.newSpace >= p.newSpaceCap;
    if (reachedCap && capAt === undefined) {
      capAt = now;
      await onGrown();
    } else if (!reachedCap) capAt = undefined;
    // At the cap: --warm-after-cap more seconds, so the grown semi-spaces' pages are resident.
    const settled = capAt !== undefined && now - capAt >= warmAfterCapMs;
    const still = !args['warm-full'] && (settled || (!reachedCap && now - grewAt >= warmStillMs));
    if (still || now - start >= warmYoungMs) {
      await onGrown();
      return { seconds: Math.round((now - start) / 1000), reachedCap, trace };
    }
    await delay(WARM_POLL_MS);
  }
}

async function reading(
  name: 'nginx' | 'loch',
  mode: 'busy' | 'quiet',
  count: number,
  round: number,
  upstreamPort: number,
): Promise<Reading> {
  const { port, proxy } = await startProxy(name, upstreamPort, count);
  let wrk: Peer | undefined;
  try {
    const url = `http://127.0.0.1:${port}${PATH}`;
    await delay(startupWaitMs);
    // Warm: pools, JIT and new space as under load (quiet: then `settle` of nothing).
    const warm = startPeer('wrk (warm)', 'wrk', ['-t1', '-c64', '-d1s', url], { cpu: LOAD_CPU });
    await warm.exited;
    if (mode === 'busy')
      wrk = startPeer('wrk (busy)', 'wrk', ['-t1', `-c${busyConnections}`, '-d3600s', url], {
        cpu: LOAD_CPU,
      });
    if (args.pregrow)
      await (await openIdleClients(port, { count, path: PATH, clientCpu: LOAD_CPU })).release();
    const trimsAfterWarm = proxy.trims?.() ?? 0;
    if (mode === 'busy') {
      await delay(busyWarmMs);
    } else {
      await delay(settleMs);
      if (!(await untilTrimmed(proxy, trimsAfterWarm)))
        console.error(`${name}: no idle trim before the baseline`);
    }
    const baselineKiB = await rssMedian(proxy.peer);
    const arenasBefore = name === 'loch' ? arenaReading(proxy.peer.pid) : undefined;
    const what = `${name}-${mode}-r${round + 1}`;
    const mapsBefore = mapsNow(proxy.peer, `${what}-baseline`);
    const before = await proxy.parts?.();
    let warmed:
      | { seconds: number; reachedCap: boolean; baselineKiB: number; trace: Warmed['trace']; maps: MapParts }
      | undefined;
    let warmArenas: ArenaReading | undefined;
    let warmParts: Parts | undefined;
    if (mode === 'busy' && warmYoungMs > 0) {
      // --warm-connections: more load until the memory has grown (stopped at the cap, or at the end).
      let extra: Peer | undefined;
      if (warmConnections > busyConnections)
        extra = startPeer(
          'wrk (warm extra)',
          'wrk',
          ['-t1', `-c${warmConnections - busyConnections}`, '-d3600s', url],
          {
            cpu: LOAD_CPU,
          },
        );
      const grown = await warmUntilStill(proxy, async () => {
        if (extra === undefined) return;
        extra.child.kill('SIGINT');
        await extra.exited;
        extra = undefined;
      });
      // nginx has no cap: its extra load ran the whole warm; the same settle on the busy load as loch's.
      if (name === 'nginx' && warmConnections > busyConnections) await delay(warmAfterCapMs);
      warmed = {
        ...grown,
        baselineKiB: await rssMedian(proxy.peer),
        maps: mapsNow(proxy.peer, `${what}-warmed`),
      };
      warmArenas = name === 'loch' ? arenaReading(proxy.peer.pid) : undefined;
      warmParts = await proxy.parts?.();
    }
    let firstClients: Awaited<ReturnType<typeof openIdleClients>> | undefined;
    let first: Reading['first'];
    if (slopeFrom !== undefined) {
      firstClients = await openIdleClients(port, { count: slopeFrom, path: PATH, clientCpu: LOAD_CPU });
      const trimsFirst = proxy.trims?.() ?? 0;
      await delay(settleMs);
      if (mode === 'quiet' && !(await untilTrimmed(proxy, trimsFirst)))
        console.error(`${name}: no idle trim before the first reading`);
      const withKiB = await rssMedian(proxy.peer);
      const arenas = name === 'loch' ? arenaReading(proxy.peer.pid) : undefined;
      const maps = mapsNow(proxy.peer, `${what}-${slopeFrom}`);
      const parts = await proxy.parts?.();
      first = {
        connections: firstClients.connections,
        withKiB,
        maps,
        ...(parts ? { parts } : {}),
        ...(arenas ? { arenas } : {}),
      };
    }
    const clients = await openIdleClients(port, {
      count: count - (firstClients?.connections ?? 0),
      path: PATH,
      clientCpu: LOAD_CPU,
    });
    const trimsOpen = proxy.trims?.() ?? 0;
    try {
      await delay(settleMs);
      if (mode === 'quiet' && !(await untilTrimmed(proxy, trimsOpen)))
        console.error(`${name}: no idle trim before the reading`);
      const withKiB = await rssMedian(proxy.peer);
      const arenasWith = name === 'loch' ? arenaReading(proxy.peer.pid) : undefined;
      const mapsWith = mapsNow(proxy.peer, `${what}-${count}`);
      const after = await proxy.parts?.();
      let requestsPerSecond: number | undefined;
      if (wrk !== undefined) {
        if (wrk.child.exitCode !== null || wrk.child.signalCode !== null)
          throw new Error(`wrk ended before the last reading:\n${wrk.output()}`);
        wrk.child.kill('SIGINT');
        await wrk.exited;
        const load = parseWrk(wrk.output());
        if (load.requests === 0) throw new Error(`wrk served no requests:\n${wrk.output()}`);
        requestsPerSecond = load.requestsPerSecond;
      }
      return {
        count,
        mode,
        peer: name,
        round,
        connections: clients.connections + (firstClients?.connections ?? 0),
        failed: clients.failed + (firstClients?.failed ?? 0),
        baselineKiB,
        withKiB,
        maps: { before: mapsBefore, with: mapsWith },
        bytesPerConnection:
          ((withKiB - baselineKiB) * 1024) /
          Math.max(1, clients.connections + (firstClients?.connections ?? 0)),
        ...(first === undefined ? {} : { first }),
        ...(requestsPerSecond === undefined ? {} : { requestsPerSecond }),
        ...(before && after ? { parts: { before, with: after } } : {}),
        ...(arenasBefore && arenasWith ? { arenas: { before: arenasBefore, with: arenasWith } } : {}),
        ...(warmed === undefined
          ? {}
          : {
              warmed: {
                ...warmed,
                bytesPerConnection:
                  ((withKiB - warmed.baselineKiB) * 1024) /
                  Math.max(1, clients.connections + (firstClients?.connections ?? 0)),
                ...(warmParts ? { parts: warmParts } : {}),
                ...(warmArenas ? { arenas: warmArenas } : {}),
              },
            }),
      };
    } finally {
      await clients.release();
      await firstClients?.release();
    }
  } finally {
    await wrk?.stop();
    await proxy.peer.stop();
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function range(xs: readonly number[]): string {
  return `${Math.round(median(xs))} [${Math.round(Math.min(...xs))}, ${Math.round(Math.max(...xs))}]`;
}

const limit = hardNofile();
if (Math.max(...counts) + 1_000 > limit) {
  const want = Math.max(...counts) + 1_000;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `${Math.max(...counts)} idle connections need a descriptor limit of about ${want}; the hard limit here is ` +
        `${limit} and raising it failed (needs root with CAP_SYS_RESOURCE, or start the shell with ` +
        `\`ulimit -Hn ${want}\`): ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`,
    );
  }
}

stopPeersOnSignal();
process.once('exit', killLivePeers);
const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
await waitForHttp(backendPort, PATH);
const readings: Reading[] = [];
/** The counts each round ends at (--slope: the second only; the first is read on the way). */
const readCounts = slopeFrom === undefined ? counts : [counts[1]!];
try {
  for (const count of readCounts)
    for (let round = 0; round < rounds; round++)
      for (const mode of modes)
        for (const name of peers) {
          const r = await reading(name, mode, count, round, backendPort);
          readings.push(r);
          const parts = r.parts
            ? ` | heap used ${((r.parts.with.heapUsed - r.parts.before.heapUsed) / r.connections) | 0}` +
              ` total ${((r.parts.with.heapTotal - r.parts.before.heapTotal) / r.connections) | 0}` +
              ` external ${((r.parts.with.external - r.parts.before.external) / r.connections) | 0}` +
              ` arrayBuffers ${((r.parts.with.arrayBuffers - r.parts.before.arrayBuffers) / r.connections) | 0}` +
              ` held ${((r.parts.with.held - r.parts.before.held) / r.connections) | 0}` +
              ` heap pool ${((r.parts.with.heapPooled - r.parts.before.heapPooled) / r.connections) | 0}` +
              ` new space ${((r.parts.with.newSpace - r.parts.before.newSpace) / r.connections) | 0}` +
              ` old space ${((r.parts.with.oldSpace - r.parts.before.oldSpace) / r.connections) | 0} B/conn,` +
              ` heap lent ${r.parts.before.heapLent} -> ${r.parts.with.heapLent} buffers`
            : '';
          const arenas = r.arenas
            ? ` | thread arenas ${Math.round(((r.arenas.with.threadArenasKiB - r.arenas.before.threadArenasKiB) * 1024) / r.connections)}` +
              ` brk heap ${Math.round(((r.arenas.with.brkHeapKiB - r.arenas.before.brkHeapKiB) * 1024) / r.connections)} B/conn`
            : '';
          const f = r.first;
          const first = f
            ? ` | at ${f.connections}: RSS ${f.withKiB} KiB` +
              (f.parts && r.parts
                ? `, new space ${mib(f.parts.newSpace)} -> ${mib(r.parts.with.newSpace)} MiB`
                : '') +
              ` | slope ${Math.round(((r.withKiB - f.withKiB) * 1024) / (r.connections - f.connections))} B/conn`
            : '';
          const w = r.warmed;
          const warmed = w
            ? ` | warmed ${w.seconds} s${w.reachedCap ? ' (new space at its cap)' : ''}: RSS ${w.baselineKiB} -> ${r.withKiB} KiB, ` +
              `${Math.round(w.bytesPerConnection)} B/conn` +
              (w.parts && r.parts
                ? `, new space ${mib(r.parts.before.newSpace)} -> ${mib(w.parts.newSpace)} -> ${mib(r.parts.with.newSpace)} MiB` +
                  `, old space ${((r.parts.with.oldSpace - w.parts.oldSpace) / r.connections) | 0} B/conn` +
                  `, external ${((r.parts.with.external - w.parts.external) / r.connections) | 0} B/conn` +
                  `, heap pool ${mib(r.parts.before.heapPooled)} -> ${mib(w.parts.heapPooled)} -> ${mib(r.parts.with.heapPooled)} MiB` +
                  `, heap lent ${w.parts.heapLent} -> ${r.parts.with.heapLent} buffers`
                : '')
            : '';
          console.log(
            `${count} ${mode} ${name} round ${round + 1}: ${r.connections} conns (${r.failed} failed), ` +
              `RSS ${r.baselineKiB} -> ${r.withKiB} KiB, ${Math.round(r.bytesPerConnection)} B/conn` +
              (r.requestsPerSecond === undefined ? '' : `, wrk ${Math.round(r.requestsPerSecond)} req/s`) +
              parts +
              arenas +
              warmed +
              first,
          );
          if (w !== undefined)
            console.log(
              `  warm (s: new space MiB / RSS MiB): ${w.trace
                .map(
                  (t) =>
                    `${t.seconds}: ${t.newSpace === undefined ? '-' : mib(t.newSpace)} / ${(t.rssKiB / 1024).toFixed(1)}`,
                )
                .join(', ')}`,
            );
        }
} finally {
  await backend.stop();
}

console.log('\nBytes per idle connection, median [range] of the rounds:');
console.log(
  '| idle | mode | peer | RSS B/conn | loch/nginx | RSS less new space | heap used | heap total | new space | old space | external | arrayBuffers |',
);
console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const count of readCounts)
  for (const mode of modes) {
    const of = (peer: string) =>
      readings.filter((r) => r.count === count && r.mode === mode && r.peer === peer);
    const nginx = median(of('nginx').map((r) => r.bytesPerConnection));
    for (const peer of peers) {
      const rs = of(peer);
      if (rs.length === 0) continue;
      const per = (f: (p: Parts) => number) =>
        rs[0]!.parts ? range(rs.map((r) => (f(r.parts!.with) - f(r.parts!.before)) / r.connections)) : '';
      const ratio =
        peer !== 'nginx' && nginx > 0 ? (median(rs.map((r) => r.bytesPerConnection)) / nginx).toFixed(2) : '';
      console.log(
        `| ${count} | ${mode} | ${peer} | ${range(rs.map((r) => r.bytesPerConnection))} | ${ratio} | ` +
          `${rs[0]!.parts ? range(rs.map((r) => r.bytesPerConnection - (r.parts!.with.newSpace - r.parts!.before.newSpace) / r.connections)) : ''} | ` +
          `${per((p) => p.heapUsed)} | ${per((p) => p.heapTotal)} | ${per((p) => p.newSpace)} | ` +
          `${per((p) => p.oldSpace)} | ${per((p) => p.external)} | ${per((p) => p.arrayBuffers)} |`,
      );
    }
  }
if (readings.some((r) => r.warmed !== undefined)) {
  console.log(
    "\nBusy, warmed baseline (--warm-young: the load alone first, until the memory stopped growing or loch's new " +
      'space reached its cap; the reading with the connections as above, less this baseline), median [range] of the rounds:',
  );
  console.log(
    '| idle | peer | RSS B/conn (warmed) | loch/nginx (warmed) | RSS B/conn (baseline before the warm) | warm s | new space at warmed baseline -> with (MiB) | at cap | old space | heap used |',
  );
  console.log('|---:|---|---:|---:|---:|---:|---|---|---:|---:|');
  for (const count of readCounts) {
    const of = (peer: string) =>
      readings.filter((r) => r.count === count && r.mode === 'busy' && r.peer === peer && r.warmed);
    const nginx = median(of('nginx').map((r) => r.warmed!.bytesPerConnection));
    for (const peer of peers) {
      const rs = of(peer);
      if (rs.length === 0) continue;
      const withParts = rs.filter((r) => r.parts && r.warmed!.parts);
      const per = (f: (p: Parts) => number) =>
        withParts.length === 0
          ? ''
          : range(withParts.map((r) => (f(r.parts!.with) - f(r.warmed!.parts!)) / r.connections));
      const ratio =
        peer !== 'nginx' && nginx > 0
          ? (median(rs.map((r) => r.warmed!.bytesPerConnection)) / nginx).toFixed(2)
          : '';
      console.log(
        `| ${count} | ${peer} | ${range(rs.map((r) => r.warmed!.bytesPerConnection))} | ${ratio} | ` +
          `${range(rs.map((r) => r.bytesPerConnection))} | ${range(rs.map((r) => r.warmed!.seconds))} | ` +
          `${withParts.map((r) => `${mib(r.warmed!.parts!.newSpace)} -> ${mib(r.parts!.with.newSpace)}`).join('; ')} | ` +
          `${withParts.map((r) => (r.warmed!.reachedCap ? 'yes' : 'no')).join('; ')} | ` +
          `${per((p) => p.oldSpace)} | ${per((p) => p.heapUsed)} |`,
      );
    }
  }
}
// V8 grows its young generation (up to 2 x 16 MiB of semi-spaces) when many objects survive
// scavenges, as thousands of new connections do, and shrinks it only when allocation slows
// (never while busy). A busy baseline read before the load had grown it charges that one-time
// growth to the connections: the "RSS less new space" column leaves it out.
if (readings.some((r) => r.parts !== undefined && r.parts.with.newSpace !== r.parts.before.newSpace))
  console.log(
    "\nNote: loch's new space grew between its baseline and its reading in some rounds (a baseline before the " +
      'load had grown it to its maximum; a longer --busy-warm helps): see "RSS less new space".',
  );
if (counts.length >= 2 && slopeFrom === undefined) {
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  console.log(
    `\nSlope ${lo} -> ${hi} (B per added idle connection, from the medians of RSS with connections minus baseline):`,
  );
  for (const mode of modes)
    for (const peer of peers) {
      const at = (n: number) =>
        median(
          readings
            .filter((r) => r.count === n && r.mode === mode && r.peer === peer)
            .map((r) => (r.withKiB - r.baselineKiB) * 1024),
        );
      console.log(`  ${mode} ${peer}: ${Math.round((at(hi) - at(lo)) / (hi - lo))} B/conn`);
    }
}
mappingTable(readings);
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(readings, null, 2)}\n`);
if (slopeFrom !== undefined) {
  const hi = counts[1]!;
  console.log(
    `\nSlope ${slopeFrom} -> ${hi} in one proxy per round (B per added idle connection: (RSS at ${hi} - RSS at ` +
      `${slopeFrom}) / (${hi} - ${slopeFrom}), the fixed costs cancelled) beside the as-is figure (RSS at ${hi} less the ` +
      `baseline before any connection, over ${hi}), median [range] of the rounds:`,
  );
  console.log(
    '| mode | peer | slope B/conn | loch/nginx (slope) | as is B/conn | loch/nginx (as is) | new space at the two readings (MiB) | old space (slope) | external (slope) | thread arenas (slope) |',
  );
  console.log('|---|---|---:|---:|---:|---:|---|---:|---:|---:|');
  const slopeOf = (r: Reading) =>
    ((r.withKiB - r.first!.withKiB) * 1024) / (r.connections - r.first!.connections);
  for (const mode of modes) {
    const of = (peer: string) => readings.filter((r) => r.mode === mode && r.peer === peer && r.first);
    const nginxSlope = median(of('nginx').map(slopeOf));
    const nginxAsIs = median(of('nginx').map((r) => r.bytesPerConnection));
    for (const peer of peers) {
      const rs = of(peer);
      if (rs.length === 0) continue;
      const ratio = (xs: number[], ref: number) =>
        peer !== 'nginx' && ref > 0 ? (median(xs) / ref).toFixed(2) : '';
      const slopes = rs.map(slopeOf);
      const asIs = rs.map((r) => r.bytesPerConnection);
      const withParts = rs.filter((r) => r.parts && r.first!.parts);
      const part = (f: (p: Parts) => number) =>
        withParts.length === 0
          ? ''
          : range(
              withParts.map(
                (r) => (f(r.parts!.with) - f(r.first!.parts!)) / (r.connections - r.first!.connections),
              ),
            );
      const withArenas = rs.filter((r) => r.arenas && r.first!.arenas);
      const arenas =
        withArenas.length === 0
          ? ''
          : range(
              withArenas.map(
                (r) =>
                  ((r.arenas!.with.threadArenasKiB - r.first!.arenas!.threadArenasKiB) * 1024) /
                  (r.connections - r.first!.connections),
              ),
            );
      console.log(
        `| ${mode} | ${peer} | ${range(slopes)} | ${ratio(slopes, nginxSlope)} | ${range(asIs)} | ${ratio(asIs, nginxAsIs)} | ` +
          `${withParts.map((r) => `${mib(r.first!.parts!.newSpace)} -> ${mib(r.parts!.with.newSpace)}`).join('; ')} | ` +
          `${part((p) => p.oldSpace)} | ${part((p) => p.external)} | ${arenas} |`,
      );
    }
  }
}

/**
 * The RSS differences split by mapping kind (map-parts.ts), between the moments a reading took
 * (the baseline, the warmed baseline, the first count of --slope, the last count): which allocator
 * grew when, KiB, median [range] of the rounds.
 */
function mappingTable(all: readonly Reading[]): void {
  const points = (r: Reading): [string, MapParts][] => [
    ['baseline', r.maps.before],
    ...(r.warmed?.maps === undefined ? [] : [['warmed', r.warmed.maps] as [string, MapParts]]),
    ...(r.first === undefined ? [] : [[String(slopeFrom), r.first.maps] as [string, MapParts]]),
    [String(r.count), r.maps.with],
  ];
  console.log(
    "\nResident KiB by mapping kind between the readings (map-parts.ts; V8-sized: every isolate's heap pages), median [range] of the rounds:",
  );
  console.log(`| idle | mode | peer | from -> to | ${MAP_PART_KEYS.join(' | ')} | sum |`);
  console.log(`|---:|---|---|---|${MAP_PART_KEYS.map(() => '---:|').join('')}---:|`);
  for (const count of readCounts)
    for (const mode of modes)
      for (const peer of peers) {
        const rs = all.filter((r) => r.count === count && r.mode === mode && r.peer === peer);
        if (rs.length === 0) continue;
        const ps = points(rs[0]!);
        const spans: [number, number][] = ps.slice(1).map((_, i) => [i, i + 1]);
        if (ps.length > 2) spans.push([0, ps.length - 1]);
        for (const [a, b] of spans) {
          const delta = (k: keyof MapParts) =>
            rs.map((r) => {
              const pr = points(r);
              return pr[b]![1][k] - pr[a]![1][k];
            });
          const sum = rs.map((r) => {
            const pr = points(r);
            return MAP_PART_KEYS.reduce((t, k) => t + pr[b]![1][k] - pr[a]![1][k], 0);
          });
          console.log(
            `| ${count} | ${mode} | ${peer} | ${ps[a]![0]} -> ${ps[b]![0]} | ` +
              `${MAP_PART_KEYS.map((k) => range(delta(k))).join(' | ')} | ${range(sum)} |`,
          );
        }
      }
}
