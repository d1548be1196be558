/**
 * Where loch's whole-process RSS moves while it is busy (issue 18): busy.ts found it drifting by
 * 10-17 MiB between two baselines of one process while the worker's heap stayed flat. This runs
 * one loch (a built CLI, 1 worker, the busy.ts config without idle connections) under wrk and
 * every `--every` seconds reads, from Node's diagnostic report (SIGWINCH: --report-on-signal),
 * the main thread's V8 heap (committed, used, per space) and each worker's, next to VmRSS, so a
 * move of RSS can be put on the thread whose heap moved (or on neither: native memory).
 *
 * Usage (from bench/): pnpm exec tsx idle-memory/main-thread.ts --loch-cli ../apps/proxy/dist/bin.js
 *   [--seconds 180] [--every 10] [--connections 16] [--quiet 60] [--node-args=FLAGS]
 * `--quiet S`: after the load, S more seconds of readings with no load (what a trim gives back).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  freePort,
  killLivePeers,
  rssKiB,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';

const { values: args } = parseArgs({
  options: {
    'loch-cli': { type: 'string' },
    seconds: { type: 'string', default: '180' },
    every: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    quiet: { type: 'string', default: '60' },
    'node-args': { type: 'string', default: '' },
  },
});
if (args['loch-cli'] === undefined)
  throw new Error('--loch-cli is required (a built apps/proxy/dist/bin.js)');
stopPeersOnSignal();
process.on('exit', killLivePeers);

interface HeapReport {
  readonly totalMemory: number;
  readonly usedMemory: number;
  readonly heapSpaces: Record<string, { readonly memorySize: number; readonly used: number }>;
}
interface Report {
  readonly javascriptHeap: HeapReport;
  readonly workers?: readonly { readonly javascriptHeap: HeapReport }[];
}

const MiB = 1024 * 1024;
const upstream = createServer((_req, res) => res.end('hello\n'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamPort = (upstream.address() as { port: number }).port;
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'loch-main-thread-'));
const reports = join(dir, 'reports');
mkdirSync(reports);
const config = join(dir, 'loch.toml');
writeFileSync(
  config,
  `[runtime]\nworkers = 1\ncpu_affinity = false\n\n[log]\nlevel = "warn"\n\n[servers.bench]\nproxy_type = "http"\n` +
    `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n\n` +
    `[[servers.bench.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]\n`,
);
const nodeArgs = args['node-args'].split(' ').filter((a) => a !== '');
const loch = startPeer(
  'loch',
  process.execPath,
  [
    ...nodeArgs,
    '--report-on-signal',
    '--report-signal=SIGWINCH',
    `--report-directory=${reports}`,
    '--report-compact',
    resolve(args['loch-cli']),
    'run',
    '-c',
    config,
  ],
  { cwd: dir },
);
await waitForHttp(port, '/', '127.0.0.1', 30_000);

/** Asks for a report and reads it (the newest file in the directory). */
async function report(): Promise<Report> {
  const before = new Set(readdirSync(reports));
  loch.child.kill('SIGWINCH');
  for (let n = 0; n < 200; n++) {
    await delay(50);
    const fresh = readdirSync(reports).filter((f) => !before.has(f));
    if (fresh.length > 0) {
      await delay(200);
      const text = readFileSync(join(reports, fresh[0]!), 'utf8');
      rmSync(join(reports, fresh[0]!));
      return JSON.parse(text) as Report;
    }
  }
  throw new Error('no report');
}
const t0 = performance.now();
const header =
  '| s | load | RSS MiB | main heap committed | main used | main new | main old | main code | worker committed | worker new | worker old |';
console.log(header);
console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
async function reading(load: string): Promise<void> {
  const r = await report();
  const m = r.javascriptHeap;
  const w = r.workers?.[0]?.javascriptHeap;
  const sp = (h: HeapReport | undefined, name: string) =>
    h === undefined ? '' : (h.heapSpaces[name]?.memorySize ?? 0) / MiB;
  const f = (x: number | string) => (typeof x === 'number' ? x.toFixed(1) : x);
  const row = `| ${((performance.now() - t0) / 1000).toFixed(0)} | ${load} | ${f(rssKiB(loch.pid) / 1024)} | ${f(m.totalMemory / MiB)} | ${f(m.usedMemory / MiB)} | ${f(sp(m, 'new_space'))} | ${f(sp(m, 'old_space'))} | ${f(sp(m, 'code_space'))} | ${f(w === undefined ? '' : w.totalMemory / MiB)} | ${f(sp(w, 'new_space'))} | ${f(sp(w, 'old_space'))} |`;
  console.log(row);
}

await reading('none');
const wrk = startPeer('wrk', 'wrk', [
  '-t1',
  `-c${args.connections}`,
  `-d${args.seconds}s`,
  `http://127.0.0.1:${port}/`,
]);
const every = Number(args.every) * 1000;
const loadEnds = performance.now() + Number(args.seconds) * 1000;
while (performance.now() < loadEnds - every / 2) {
  await delay(every);
  await reading('wrk');
}
await wrk.exited;
const quietEnds = performance.now() + Number(args.quiet) * 1000;
while (performance.now() < quietEnds) {
  await delay(every);
  await reading('none');
}
await loch.stop();
upstream.close();
rmSync(dir, { recursive: true, force: true });
