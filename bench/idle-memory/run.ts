/**
 * Memory per idle keep-alive connection of HttpServer (server.ts), measured from inside the
 * process after a forced GC: RSS and V8 heapUsed before and after N idle clients
 * (bench/lib/idle-clients.ts), and optionally a heap snapshot attributed by constructor
 * (analyze.ts, against a baseline snapshot taken without clients). Not the cross-peer comparison (bench/http-proxy does that from outside).
 * With `loch` as the third argument it measures `loch run` (apps/proxy sources, 1 worker, a
 * node:http upstream in this process): loch runs with LOCH_DEBUG_GC=1, and SIGUSR2 (its stats
 * command) makes the worker run a full GC and report its heapUsed; RSS is the process's VmRSS.
 * Usage: node --import tsx run.ts [count=10000] [snapshotCount=0] [loch]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../lib/free-port.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const count = Number(process.argv[2] ?? 10_000);
const snapCount = Number(process.argv[3] ?? 0);

function lines(p: import('node:child_process').ChildProcess): () => Promise<string> {
  const rl = createInterface({ input: p.stdout! });
  const queue: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  rl.on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return () => new Promise((r) => (queue.length > 0 ? r(queue.shift()!) : waiters.push(r)));
}

/** Holds `n` idle keep-alive clients (../lib/idle-clients.ts, another process) open on `port` while `fn` runs. */
async function withClients(port: number, n: number, fn: () => Promise<void>): Promise<void> {
  const client = spawn(
    process.execPath,
    ['--import', 'tsx', '../lib/idle-clients.ts', String(port), String(n), '/'],
    { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const ready = await lines(client)();
  if (!ready.startsWith(`ready ${n} `)) throw new Error(ready);
  await fn();
  const exited = new Promise((r) => client.once('exit', r));
  client.kill('SIGTERM');
  await exited;
}

if (process.argv[4] === 'loch') {
  await measureLoch();
  process.exit(0);
}

function vmRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

async function measureLoch(): Promise<void> {
  const upstream = createHttpServer((_req, res) => res.end('hello\n'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upPort = (upstream.address() as { port: number }).port;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'loch-idle-'));
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]\nworkers = 1\ncpu_affinity = false\n\n[log]\nlevel = "info"\n\n[servers.bench]\nproxy_type = "http"\n` +
      `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n` +
      `timeouts = { server_keepalive = "300s" }\n\n[[servers.bench.routes]]\npath = "/"\n` +
      `upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]\n`,
  );
  const loch = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@loch/source', '../../apps/proxy/src/bin.ts', 'run', '-c', config],
    {
      cwd: here,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        LOCH_DEBUG_GC: '1',
        LOCH_DEBUG_HEAPSNAPSHOT: process.env.LOCH_DEBUG_HEAPSNAPSHOT ?? '',
      },
    },
  );
  // A worker that does not answer the stats command in time (a heap snapshot of a loaded machine
  // can take longer than the 5 s loch waits) is logged as `stats: worker N: ...`: fail, not hang.
  const statsWaiters: ((heap: number | Error) => void)[] = [];
  for (const out of [loch.stdout!, loch.stderr!]) {
    createInterface({ input: out }).on('line', (l) => {
      const m = /stats (\{.*\})/.exec(l);
      if (m) statsWaiters.shift()?.((JSON.parse(m[1]!) as { heapUsed: number }).heapUsed);
      else if (/stats: worker \d+:/.test(l)) statsWaiters.shift()?.(new Error(l));
    });
  }
  const measure = async (): Promise<[number, number]> => {
    const heap = new Promise<number | Error>((r) => statsWaiters.push(r));
    loch.kill('SIGUSR2');
    const h = await heap;
    if (h instanceof Error) {
      loch.kill('SIGTERM');
      throw h;
    }
    await new Promise((r) => setTimeout(r, 500));
    return [vmRssBytes(loch.pid!), h];
  };
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 100) throw new Error('loch did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
  const clients = (n: number, fn: () => Promise<void>) => withClients(port, n, fn);
  await clients(200, async () => {});
  await new Promise((r) => setTimeout(r, 1000));
  const [rss0, heap0] = await measure();
  await clients(count, async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const [rss1, heap1] = await measure();
    console.log(
      `loch run (1 worker) ${count} idle: rss ${((rss1 - rss0) / count) | 0} B/conn, worker heap ${((heap1 - heap0) / count) | 0} B/conn`,
    );
  });
  loch.kill('SIGTERM');
  upstream.close();
}

const server = spawn(
  process.execPath,
  ['--expose-gc', '--import', 'tsx', '--conditions=@loch/source', 'server.ts'],
  { cwd: here, stdio: ['pipe', 'pipe', 'inherit'] },
);
const next = lines(server);
const port = Number((await next()).split(' ')[1]);
async function mem(): Promise<[number, number]> {
  await new Promise((r) => setTimeout(r, 500));
  server.stdin!.write('gc\n');
  const [, rss, heap] = (await next()).split(' ');
  return [Number(rss), Number(heap)];
}
// Warm up (JIT, pools) with a small batch first.
await withClients(port, 200, async () => {});
const [rss0, heap0] = await mem();
await withClients(port, count, async () => {
  const [rss1, heap1] = await mem();
  console.log(
    `HttpServer ${count} idle: rss ${((rss1 - rss0) / count) | 0} B/conn, heap ${((heap1 - heap0) / count) | 0} B/conn`,
  );
});
if (snapCount > 0) {
  server.stdin!.write(`snap ${here}idle-0.heapsnapshot\n`);
  console.log(await next());
  await withClients(port, snapCount, async () => {
    server.stdin!.write(`snap ${here}idle-${snapCount}.heapsnapshot\n`);
    console.log(await next());
  });
}
server.stdin!.end();
