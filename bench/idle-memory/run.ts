/**
 * Memory per idle keep-alive connection of HttpServer (server.ts), measured from inside the
 * process after a forced GC: RSS and V8 heapUsed before and after N idle clients
 * (bench/lib/idle-clients.ts), and optionally a heap snapshot attributed by constructor
 * (analyze.ts). Not the cross-peer comparison (bench/http-proxy does that from outside).
 * Usage: node --import tsx run.ts [count=10000] [snapshotCount=0]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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
async function withClients(n: number, fn: () => Promise<void>): Promise<void> {
  const client = spawn(
    process.execPath,
    ['--import', 'tsx', '../lib/idle-clients.ts', String(port), String(n), '/'],
    {
      cwd: here,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const ready = await lines(client)();
  if (!ready.startsWith(`ready ${n} `)) throw new Error(ready);
  await fn();
  const exited = new Promise((r) => client.once('exit', r));
  client.kill('SIGTERM');
  await exited;
}
// Warm up (JIT, pools) with a small batch first.
await withClients(200, async () => {});
const [rss0, heap0] = await mem();
await withClients(count, async () => {
  const [rss1, heap1] = await mem();
  console.log(
    `HttpServer ${count} idle: rss ${((rss1 - rss0) / count) | 0} B/conn, heap ${((heap1 - heap0) / count) | 0} B/conn`,
  );
});
if (snapCount > 0) {
  await withClients(snapCount, async () => {
    server.stdin!.write(`snap ${here}idle-${snapCount}.heapsnapshot\n`);
    console.log(await next());
  });
}
server.stdin!.end();
