/**
 * What a busy loch worker's glibc arena holds per idle connection (issue 18), from inside the
 * process: loch from source under malloc-probe.so (LD_PRELOAD, malloc-probe.c), 1 worker on CPU 1,
 * wrk -c16 keeping it busy (as busy.ts does), then N idle keep-alive connections
 * (lib/idle-clients.ts). Reads malloc_info of every arena before and with the connections (the
 * worker's arena is the one that grows; printed: in use and free, per connection) and the thread
 * arenas' resident KiB from /proc (arenas.ts). Then, with --trim, one malloc_trim(0) while still
 * busy and the arenas again right after, 1 s and 4 s later (does the freed memory stay given back?);
 * with --count S, malloc calls per thread over a wrk run of S seconds (per request: divide by the
 * requests printed; sampled caller stacks in DIR/counts.txt).
 *
 * Usage (from bench/; builds the probe with gcc into DIR first):
 *   pnpm exec tsx --conditions=@loch/source idle-memory/malloc-probe.ts --dir DIR [--connections 5000]
 *     [--trim] [--count 5]
 * Not a benchmark: the probe's control thread and counting move CPU time; read bytes, not time.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  parseWrk,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { openIdleClients } from '../lib/memory.js';
import { startNginxStatic } from '../lib/nginx.js';
import { type ArenaReading, arenaReading } from './arenas.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    connections: { type: 'string', default: '5000' },
    trim: { type: 'boolean', default: false },
    count: { type: 'string' },
  },
});
if (args.dir === undefined) throw new Error('--dir DIR is required (the probe is built and writes there)');
const dir = resolve(args.dir);
mkdirSync(dir, { recursive: true });
for (const f of readdirSync(dir))
  if (/^(info-\d+\.xml|counts\.txt|trim\.log|cmd-.*)$/.test(f)) unlinkSync(join(dir, f));
const probe = join(dir, 'malloc-probe.so');
execFileSync('gcc', [
  '-O2',
  '-fPIC',
  '-shared',
  '-o',
  probe,
  join(here, 'malloc-probe.c'),
  '-ldl',
  '-lpthread',
]);
const count = Number(args.connections);

/** Issues a probe command and waits until the probe took it (and a little for its output). */
async function command(name: string): Promise<void> {
  writeFileSync(join(dir, name), '');
  while (existsSync(join(dir, name))) await delay(20);
  await delay(200);
}

interface Heap {
  nr: number;
  current: number;
  free: number;
}
/** Every arena of one malloc_info output: system bytes and free bytes (fastbins + bins + top). */
function heaps(file: string): Heap[] {
  const out: Heap[] = [];
  for (const m of readFileSync(file, 'utf8').matchAll(/<heap nr="(\d+)">([\s\S]*?)<\/heap>/g)) {
    const body = m[2]!;
    const fast = Number(/<total type="fast" count="\d+" size="(\d+)"/.exec(body)?.[1] ?? 0);
    const rest = Number(/<total type="rest" count="\d+" size="(\d+)"/.exec(body)?.[1] ?? 0);
    const current = Number(/<system type="current" size="(\d+)"/.exec(body)?.[1] ?? 0);
    out.push({ nr: Number(m[1]), current, free: fast + rest });
  }
  return out;
}
const largest = (a: ArenaReading) => Math.max(0, ...Object.values(a.arenas));

stopPeersOnSignal();
process.once('exit', killLivePeers);
const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: '0' });
await waitForHttp(backendPort, '/128');
const port = await freePort();
const config = join(mkdtempSync(join(tmpdir(), 'loch-malloc-probe-')), 'loch.toml');
writeFileSync(
  config,
  `[runtime]\nworkers = 1\ncpu_affinity = false\nmax_connections_per_worker = ${count + 1000}\n\n` +
    `[log]\nlevel = "info"\n\n[servers.bench]\nproxy_type = "http"\n` +
    `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n` +
    `timeouts = { server_keepalive = "600s" }\n\n[[servers.bench.routes]]\npath = "/"\n` +
    `upstreams = [{ endpoint = "http://127.0.0.1:${backendPort}" }]\n`,
);
const loch = startPeer(
  'loch',
  process.execPath,
  ['--import', 'tsx', '--conditions=@loch/source', '../../apps/proxy/src/bin.ts', 'run', '-c', config],
  { cpu: '1', cwd: here, env: { ...process.env, MEMPRE_DIR: dir, LD_PRELOAD: probe } },
);
const url = `http://127.0.0.1:${port}/128`;
try {
  await waitForHttp(port, '/128', '127.0.0.1', 30_000);
  await delay(10_000); // the main thread's memory reducer, as busy.ts's --startup-wait
  await startPeer('wrk (warm)', 'wrk', ['-t1', '-c64', '-d1s', url], { cpu: '0' }).exited;
  const busy = startPeer('wrk (busy)', 'wrk', ['-t1', '-c16', '-d3600s', url], { cpu: '0' });
  await delay(5000);
  const a0 = arenaReading(loch.pid);
  await command('cmd-info');
  const clients = await openIdleClients(port, { count, path: '/128', clientCpu: '0' });
  await delay(3000);
  const a1 = arenaReading(loch.pid);
  await command('cmd-info');
  const n = clients.connections;
  console.log(
    `${n} idle (busy): thread arenas resident ${a0.threadArenasKiB} -> ${a1.threadArenasKiB} KiB ` +
      `(${Math.round(((a1.threadArenasKiB - a0.threadArenasKiB) * 1024) / n)} B/conn), largest arena ${largest(a0)} -> ${largest(a1)} KiB`,
  );
  const before = heaps(join(dir, 'info-0.xml'));
  const after = new Map(heaps(join(dir, 'info-1.xml')).map((h) => [h.nr, h]));
  for (const h of before) {
    const w = after.get(h.nr);
    if (w === undefined || w.current === h.current) continue;
    const inUse = (x: Heap) => x.current - x.free;
    console.log(
      `  arena ${h.nr}: system ${h.current >> 10} -> ${w.current >> 10} KiB; in use ${Math.round((inUse(w) - inUse(h)) / n)} B/conn, ` +
        `free ${Math.round((w.free - h.free) / n)} B/conn`,
    );
  }
  if (args.trim) {
    await command('cmd-trim');
    const t1 = arenaReading(loch.pid);
    await delay(1000);
    const t2 = arenaReading(loch.pid);
    await delay(3000);
    const t3 = arenaReading(loch.pid);
    console.log(
      `malloc_trim(0) while busy: thread arenas ${a1.threadArenasKiB} -> ${t1.threadArenasKiB} KiB, ` +
        `1 s later ${t2.threadArenasKiB}, 4 s later ${t3.threadArenasKiB}; largest arena ${largest(a1)} -> ` +
        `${largest(t1)}, ${largest(t2)}, ${largest(t3)} KiB`,
    );
    console.log(readFileSync(join(dir, 'trim.log'), 'utf8').trim());
  }
  busy.child.kill('SIGINT');
  await busy.exited;
  if (args.count !== undefined) {
    await command('cmd-count');
    const w = startPeer('wrk (count)', 'wrk', ['-t1', '-c16', `-d${args.count}s`, url], { cpu: '0' });
    await w.exited;
    await command('cmd-dump');
    console.log(`malloc calls over ${parseWrk(w.output()).requests} requests: ${join(dir, 'counts.txt')}`);
  }
  await clients.release();
} finally {
  await loch.stop();
  await backend.stop();
}
