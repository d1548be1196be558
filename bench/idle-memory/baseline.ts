/**
 * Loch's RSS before the idle connections, read as bench/http-proxy/run.ts reads it (issue 18):
 * `loch run` of a given build with run.ts's config (peers.ts: 1 worker on CPU 1, `[admin]` when
 * metrics are on, the access log to a file when on), 1 s of wrk -t1 -c64 on /128, then the RSS
 * once it has settled (lib/memory.ts settledRssKiB, at least 5 s), and where it lives: the
 * process's mappings from /proc/PID/smaps grouped into the node binary, the native addons
 * (*.node), other shared objects, the brk heap, glibc thread arenas (arenas.ts), V8-sized
 * anonymous mappings and the rest, and with --stats the worker's own parts (SIGUSR2's stats
 * line: V8 spaces, external) and the main thread's V8 heap (used and committed, from Node's
 * diagnostic report: loch runs with --report-on-signal=SIGWINCH, which any build takes). Not the
 * idle-connection reading itself (run.ts, busy.ts).
 *
 * Usage (from bench/):
 *   pnpm exec tsx --conditions=@loch/source idle-memory/baseline.ts --loch-cli A/apps/proxy/dist/bin.js[,B/...]
 *     [--rounds 2] [--workers 1] [--metrics on|off] [--access-log on|off] [--stats] [--json out.json]
 * Each (build, round) is a fresh loch; builds alternate within a round. `--workers 2` runs two
 * workers (the process still on CPU 1); --stats then reads the first worker's stats line.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  measure,
  type Peer,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { settledRssKiB } from '../lib/memory.js';
import { startNginxStatic } from '../lib/nginx.js';
import { type MapParts, mapParts } from './map-parts.js';

const { values: args } = parseArgs({
  options: {
    'loch-cli': { type: 'string' },
    rounds: { type: 'string', default: '2' },
    workers: { type: 'string', default: '1' },
    metrics: { type: 'string', default: 'on' },
    'access-log': { type: 'string', default: 'on' },
    /** Log level info and one SIGUSR2 after the reading: the worker's V8 spaces and external. */
    stats: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (args['loch-cli'] === undefined) throw new Error('--loch-cli A[,B...] is required');
const clis = args['loch-cli'].split(',').map((p) => resolve(p));
const rounds = Number(args.rounds);
const metrics = args.metrics === 'on';
const accessLog = args['access-log'] === 'on';
/** run.ts's settle before each idle-memory reading (IDLE_SETTLE_MS). */
const SETTLE_MS = 5000;
const PATH = '/128';

interface Reading {
  cli: string;
  round: number;
  rssKiB: number;
  parts: MapParts;
  stats?: Record<string, unknown>;
  /** The main thread's V8 heap (bytes; --stats), from a diagnostic report. */
  mainHeap?: { used: number; committed: number; spaces: Record<string, number> };
}

/** The main thread's javascriptHeap of the report `dir` receives after SIGWINCH (main-thread.ts's way). */
async function mainHeap(peer: Peer, dir: string): Promise<Reading['mainHeap']> {
  const before = new Set(readdirSync(dir));
  peer.child.kill('SIGWINCH');
  for (let n = 0; n < 200; n++) {
    await delay(50);
    const fresh = readdirSync(dir).filter((f) => !before.has(f));
    if (fresh.length === 0) continue;
    await delay(200);
    // Node writes the report in pieces: on a loaded machine 200 ms may see half of it.
    let report: {
      javascriptHeap: {
        usedMemory: number;
        totalMemory: number;
        heapSpaces: Record<string, { memorySize: number }>;
      };
    };
    try {
      report = JSON.parse(readFileSync(join(dir, fresh[0]!), 'utf8'));
    } catch {
      before.clear();
      continue;
    }
    rmSync(join(dir, fresh[0]!));
    const h = report.javascriptHeap;
    return {
      used: h.usedMemory,
      committed: h.totalMemory,
      spaces: Object.fromEntries(Object.entries(h.heapSpaces).map(([k, v]) => [k, v.memorySize])),
    };
  }
  return undefined;
}

function startLoch(
  cli: string,
  port: number,
  upstreamPort: number,
  adminPort: number,
): Promise<Peer> & {
  stats: () => Promise<Record<string, unknown>>;
  reports: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'loch-baseline-'));
  const reports = join(dir, 'reports');
  mkdirSync(reports);
  const config = join(dir, 'loch.toml');
  // bench/http-proxy/peers.ts's loch config to the letter (the reading must be run.ts's), with the
  // log level raised to info only for --stats. It tracks that copy, not ab/tree.ts's lochConfig
  // (whose access log adds `format = "text"`, which the 12-03 build's config does not know).
  writeFileSync(
    config,
    `${metrics ? `[admin]\nlistener = { type = "socket", value = "127.0.0.1:${adminPort}" }\n\n` : ''}[runtime]
workers = ${Number(args.workers)}
cpu_affinity = false

[log]
level = "${args.stats ? 'info' : 'warn'}"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = ${accessLog ? `{ path = ${JSON.stringify(join(dir, 'access.log'))} }` : 'false'}
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]
`,
  );
  // The report flags change nothing until SIGWINCH (main-thread.ts reads the same way).
  const reportArgs = args.stats
    ? ['--report-on-signal', '--report-signal=SIGWINCH', `--report-directory=${reports}`, '--report-compact']
    : [];
  const peer = startPeer(
    `loch (${Number(args.workers)}w)`,
    process.execPath,
    [...reportArgs, cli, 'run', '-c', config],
    {
      cpu: '1',
    },
  );
  const waiters: ((s: Record<string, unknown>) => void)[] = [];
  for (const out of [peer.child.stdout!, peer.child.stderr!])
    createInterface({ input: out }).on('line', (line) => {
      const m = /stats (\{.*\})/.exec(line);
      if (m) waiters.shift()?.(JSON.parse(m[1]!) as Record<string, unknown>);
    });
  const ready = waitForHttp(port, PATH, '127.0.0.1', 15_000).then(() => peer);
  return Object.assign(ready, {
    reports,
    stats: () => {
      const p = new Promise<Record<string, unknown>>((r) => waiters.push(r));
      peer.child.kill('SIGUSR2');
      return Promise.race([p, delay(5000).then(() => ({}))]);
    },
  });
}

stopPeersOnSignal();
process.once('exit', killLivePeers);
const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: '0' });
await waitForHttp(backendPort, PATH);
const readings: Reading[] = [];
try {
  for (let round = 0; round < rounds; round++)
    for (const cli of clis) {
      const port = await freePort();
      const started = startLoch(cli, port, backendPort, await freePort());
      const peer = await started;
      try {
        // run.ts: one short load first, then the settled RSS.
        await measure(peer, `http://127.0.0.1:${port}${PATH}`, { connections: 64, seconds: 1, cpu: '0' });
        const rssKiB = await settledRssKiB(peer.pid, SETTLE_MS);
        const parts = mapParts(peer.pid);
        const stats = args.stats ? await started.stats() : undefined;
        const main = args.stats ? await mainHeap(peer, started.reports) : undefined;
        readings.push({
          cli,
          round,
          rssKiB,
          parts,
          ...(stats ? { stats } : {}),
          ...(main ? { mainHeap: main } : {}),
        });
        const s = stats as { heapSpaces?: Record<string, number>; external?: number } | undefined;
        const spaces = s?.heapSpaces
          ? ` | worker ${Object.entries(s.heapSpaces)
              .map(([k, v]) => `${k} ${(v / 1048576).toFixed(1)}`)
              .join(', ')} MiB, external ${((s.external ?? 0) / 1048576).toFixed(1)} MiB`
          : '';
        console.log(
          `${cli} round ${round + 1}: RSS ${(rssKiB / 1024).toFixed(1)} MiB | ` +
            Object.entries(parts)
              .map(([k, v]) => (k === 'threads' ? `threads ${v}` : `${k} ${(v / 1024).toFixed(1)}`))
              .join(', ') +
            spaces +
            (main === undefined
              ? ''
              : ` | main heap used ${(main.used / 1048576).toFixed(1)}, committed ${(main.committed / 1048576).toFixed(1)} MiB (old ${((main.spaces.old_space ?? 0) / 1048576).toFixed(1)}, code ${((main.spaces.code_space ?? 0) / 1048576).toFixed(1)}, new ${((main.spaces.new_space ?? 0) / 1048576).toFixed(1)})`),
        );
      } finally {
        await peer.stop();
      }
    }
} finally {
  await backend.stop();
}
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(readings, null, 2)}\n`);
