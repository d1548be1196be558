/**
 * A wave of connections on a busy loch worker, and what the wave collection after it costs and
 * gives back (issue 18; readings-2026-12-07c.md). Each round is a fresh 1-worker loch (a built
 * --loch-cli) behind wrk on a 128 B body:
 *   1. warm: wrk -c64 for --warm seconds (JIT, pools, the young generation to its cap);
 *   2. "before": wrk -c16 for --window seconds; requests/s and the proxy's CPU per request
 *      (utime + stime of its process, /proc/PID/stat, over wrk's requests);
 *   3. the wave, busy: wrk -c16 on, --count idle keep-alive connections opened (one GET each)
 *      and closed; then until the worker logs `wave collect N:` (NODE_DEBUG=loch), at most 20 s;
 *   4. "after": wrk stopped and a new wrk -c16 for --window seconds at once (compiled code a
 *      collection dropped would be compiled again here: CPU per request up);
 *   5. wrk -c16 --settle seconds more, then RSS (median of 5 samples) and the worker's heap
 *      (SIGUSR2 stats): what the collection gave back, with the young generation grown again.
 * Each --env entry is one variant (`NAME=value,NAME2=value`, `-` for none), rounds interleaved.
 *
 * Usage (from bench/):
 *   pnpm exec tsx idle-memory/wave.ts --loch-cli ../apps/proxy/dist/bin.js [--count 19000]
 *     [--rounds 2] [--warm 20] [--window 5] [--settle 10]
 *     [--env 'LOCH_WAVE_COLLECT_MS=0' --env -] [--json out.json]
 *     [--loch-node-args='--trace-gc --trace-flush-bytecode']
 * With --trace-gc, the worker's mark-compacts from the wave on are listed with the collection (V8's
 * own pause figures, also an incremental one's final pause); with --trace-flush-bytecode, the
 * functions whose bytecode the collections flushed are counted ("flushed": compiled again when
 * next called).
 */
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
  rssKiB,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { openIdleClients } from '../lib/memory.js';
import { startNginxStatic } from '../lib/nginx.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    'loch-cli': { type: 'string' },
    count: { type: 'string', default: '19000' },
    rounds: { type: 'string', default: '2' },
    warm: { type: 'string', default: '20' },
    window: { type: 'string', default: '5' },
    settle: { type: 'string', default: '10' },
    env: { type: 'string', multiple: true, default: ['-'] },
    json: { type: 'string' },
    'loch-node-args': { type: 'string', default: '' },
  },
});
if (args['loch-cli'] === undefined)
  throw new Error('--loch-cli is required (a built apps/proxy/dist/bin.js)');
const count = Number(args.count);
const PATH = '/128';
const PROXY_CPU = '1';
const LOAD_CPU = '0';
const TICK_MS = 1000 / 100; // USER_HZ

interface Window {
  readonly rps: number;
  readonly requests: number;
  /** Proxy CPU (user + system) per request, microseconds. */
  readonly cpuUs: number;
  readonly p99Ms: number;
}

interface Round {
  readonly variant: string;
  readonly round: number;
  readonly before: Window;
  readonly after: Window;
  /** The worker's `wave collect` lines (and --trace-gc's mark-compacts from the wave on). */
  readonly collects: string[];
  /** --trace-flush-bytecode lines from the wave on. */
  readonly flushed: number;
  readonly rssBeforeKiB: number;
  readonly rssAfterKiB: number;
  readonly heapUsedMiB: number;
  readonly oldSpaceMiB: number;
  readonly newSpaceMiB: number;
  readonly codeSpaceBeforeMiB: number;
  readonly codeSpaceMiB: number;
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}

async function rssMedian(pid: number): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await delay(200);
    out.push(rssKiB(pid));
  }
  return median(out);
}

async function measured(url: string, seconds: number, pid: number): Promise<Window> {
  const t0 = cpuTicks(pid);
  const w = startPeer('wrk', 'wrk', ['-t1', '-c16', `-d${seconds}s`, '--latency', url], { cpu: LOAD_CPU });
  await w.exited;
  const ticks = cpuTicks(pid) - t0;
  const r = parseWrk(w.output());
  return {
    rps: Math.round(r.requestsPerSecond),
    requests: r.requests,
    cpuUs: Math.round(((ticks * TICK_MS * 1000) / r.requests) * 100) / 100,
    p99Ms: r.p99Ms,
  };
}

function parseEnv(spec: string): Record<string, string> {
  if (spec === '-') return {};
  return Object.fromEntries(spec.split(',').map((kv) => kv.split('=', 2) as [string, string]));
}

async function round(variant: string, n: number, upstreamPort: number): Promise<Round> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'loch-wave-'));
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]\nworkers = 1\ncpu_affinity = false\nmax_connections_per_worker = ${count + 1_000}\n` +
      `[log]\nlevel = "info"\n\n[servers.bench]\nproxy_type = "http"\n` +
      `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n` +
      `timeouts = { server_keepalive = "600s" }\n\n[[servers.bench.routes]]\npath = "/"\n` +
      `upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]\n`,
  );
  const nodeArgs = args['loch-node-args']!.split(' ').filter((a) => a !== '');
  const peer = startPeer(
    'loch',
    process.execPath,
    [...nodeArgs, resolve(args['loch-cli']!), 'run', '-c', config],
    {
      cpu: PROXY_CPU,
      cwd: here,
      env: { ...process.env, ...parseEnv(variant), NODE_DEBUG: 'loch' },
      nofile: count + 1_000,
    },
  );
  const collects: string[] = [];
  let inWave = false;
  let flushed = 0;
  const stats: ((s: Record<string, unknown>) => void)[] = [];
  for (const out of [peer.child.stdout!, peer.child.stderr!])
    createInterface({ input: out }).on('line', (line) => {
      if (/wave collect \d+:/.test(line)) collects.push(line.replace(/^.*wave collect/, 'wave collect'));
      if (inWave && /Mark-Compact/.test(line)) collects.push(line.replace(/^\[[^\]]*\]\s*/, ''));
      if (inWave && /flush/i.test(line) && !/Mark-Compact/.test(line)) flushed++;
      const m = /stats (\{.*\})/.exec(line);
      if (m) stats.shift()?.(JSON.parse(m[1]!));
    });
  const heap = () => {
    const p = new Promise<Record<string, unknown>>((r) => stats.push(r));
    peer.child.kill('SIGUSR2');
    return p;
  };
  try {
    await waitForHttp(port, PATH, '127.0.0.1', 30_000);
    const url = `http://127.0.0.1:${port}${PATH}`;
    const warm = startPeer('wrk (warm)', 'wrk', ['-t1', '-c64', `-d${args.warm}s`, url], { cpu: LOAD_CPU });
    await warm.exited;
    const before = await measured(url, Number(args.window), peer.pid);
    const rssBeforeKiB = await rssMedian(peer.pid);
    const spaces0 = (await heap()).heapSpaces as Record<string, number>;
    inWave = true;
    let busy: Peer = startPeer('wrk (busy)', 'wrk', ['-t1', '-c16', '-d3600s', url], { cpu: LOAD_CPU });
    await (await openIdleClients(port, { count, path: PATH, clientCpu: LOAD_CPU })).release();
    for (let i = 0; i < 40 && collects.length === 0; i++) await delay(500);
    busy.child.kill('SIGINT');
    await busy.exited;
    const after = await measured(url, Number(args.window), peer.pid);
    busy = startPeer('wrk (busy)', 'wrk', ['-t1', '-c16', `-d${args.settle}s`, url], { cpu: LOAD_CPU });
    await busy.exited;
    const rssAfterKiB = await rssMedian(peer.pid);
    const s = await heap();
    const spaces = s.heapSpaces as Record<string, number>;
    const mib = (b: number | undefined) => Math.round(((b ?? 0) / 1048576) * 10) / 10;
    return {
      variant,
      round: n,
      before,
      after,
      collects,
      flushed,
      rssBeforeKiB,
      rssAfterKiB,
      heapUsedMiB: mib(s.heapUsed as number),
      oldSpaceMiB: mib(spaces.old_space),
      newSpaceMiB: mib(spaces.new_space),
      codeSpaceBeforeMiB: mib(spaces0.code_space),
      codeSpaceMiB: mib(spaces.code_space),
    };
  } finally {
    await peer.stop();
  }
}

stopPeersOnSignal();
process.once('exit', killLivePeers);
const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
await waitForHttp(backendPort, PATH);
const rounds: Round[] = [];
try {
  for (let n = 0; n < Number(args.rounds); n++)
    for (const variant of args.env!) {
      const r = await round(variant, n + 1, backendPort);
      rounds.push(r);
      console.log(
        `${variant} r${n + 1}: before ${r.before.rps} req/s ${r.before.cpuUs} us/req p99 ${r.before.p99Ms} ms; ` +
          `after ${r.after.rps} req/s ${r.after.cpuUs} us/req p99 ${r.after.p99Ms} ms; RSS ${r.rssBeforeKiB} -> ${r.rssAfterKiB} KiB; ` +
          `heap used ${r.heapUsedMiB} old ${r.oldSpaceMiB} new ${r.newSpaceMiB} code ${r.codeSpaceBeforeMiB} -> ${r.codeSpaceMiB} MiB; ` +
          `bytecode flushes ${r.flushed}`,
      );
      for (const line of r.collects) console.log(`  ${line}`);
    }
} finally {
  await backend.stop();
}
if (args.json !== undefined) writeFileSync(args.json, JSON.stringify(rounds, null, 2));
