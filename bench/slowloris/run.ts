/**
 * Slowloris against `loch run` (one worker, from the sources): N connections (default 10,000)
 * each send one byte of a request head per second; server_read_header (default here 10 s) cuts
 * them with 408. Meanwhile a normal client (curl, its own process) asks every 200 ms on the same worker. Reports loch's
 * RSS (before, peak, after), descriptors, how the slow connections ended, and the normal
 * client's latency (p50, p99, max) beside a baseline taken before the attack. Not a test: the
 * CI-sized version with assertions is apps/proxy/test/e2e/slow-clients.test.ts.
 *
 * Usage: tsx --conditions=@loch/source slowloris/run.ts [connections=10000] [driver=uring] [header_timeout=10s]
 * (needs `ulimit -n` above connections + 1000 in this shell: the clients live in this process).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 10_000);
const driver = process.argv[3] ?? 'uring';
const headerTimeout = process.argv[4] ?? '10s';
const PROXY_DIR = fileURLToPath(new URL('../../apps/proxy', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 102.4) / 10;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * One GET by curl, a process of its own, so the latency is what curl measured (time_total, ms)
 * and not this process's event loop, busy with the slow connections; -1 when it failed.
 */
function probe(port: number): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn('curl', [
      '-s',
      '-o',
      '/dev/null',
      '--max-time',
      '10',
      '-w',
      '%{http_code} %{time_total}',
      `http://127.0.0.1:${port}/normal`,
    ]);
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    c.on('exit', () => {
      const [code, total] = out.split(' ');
      resolve(code === '200' ? Number(total) * 1000 : -1);
    });
  });
}

function percentiles(xs: number[]): string {
  const ok = xs.filter((x) => x >= 0).sort((a, b) => a - b);
  const at = (p: number) => ok[Math.min(ok.length - 1, Math.floor(p * ok.length))]?.toFixed(2) ?? '-';
  return `n=${xs.length} failed=${xs.length - ok.length} p50=${at(0.5)} p99=${at(0.99)} max=${ok.at(-1)?.toFixed(2) ?? '-'} ms`;
}

const upstream = createServer((_req, res) => res.end('ok\n'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'loch-slowloris-'));
const config = join(dir, 'loch.toml');
writeFileSync(
  config,
  `
[runtime]
workers = 1
max_connections_per_worker = ${N + 1000}

[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { server_read_header = "${headerTimeout}", server_keepalive = "60s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}" }]
`,
);
const loch = spawn(
  process.execPath,
  ['--conditions=@loch/source', '--import', 'tsx', join(PROXY_DIR, 'src/bin.ts'), 'run', '-c', config],
  { cwd: PROXY_DIR, env: { ...process.env, LOCH_DRIVER: driver }, stdio: ['ignore', 'ignore', 'pipe'] },
);
let stderr = '';
loch.stderr!.setEncoding('utf8').on('data', (d: string) => {
  stderr += d;
});
while (!/info started/.test(stderr)) {
  if (loch.exitCode !== null) throw new Error(stderr);
  await sleep(100);
}
const pid = loch.pid!;
const fds = () => readdirSync(`/proc/${pid}/fd`).length;

// Baseline: the normal client alone.
const baseline: number[] = [];
for (let i = 0; i < 50; i++) baseline.push(await probe(port));
await sleep(2000); // let the idle trim settle
const rssBefore = rssMiB(pid);
const fdsBefore = fds();

const head = `GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(100)}\r\n\r\n`;
const sockets: net.Socket[] = [];
const sent: number[] = [];
let closed = 0;
let got408 = 0;
let resets = 0;
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const s = net.connect(port, '127.0.0.1');
  sockets.push(s);
  sent.push(0);
  s.setEncoding('latin1');
  s.once('data', (d: string) => {
    if (d.startsWith('HTTP/1.1 408 ')) got408++;
  });
  s.on('error', () => {
    resets++;
  });
  s.on('close', () => closed++);
  if (i % 500 === 499) await sleep(20);
}
const tick = () => {
  for (let i = 0; i < sockets.length; i++) {
    const s = sockets[i]!;
    if (!s.destroyed && s.writable && sent[i]! < head.length) s.write(head[sent[i]!++]!);
  }
};
tick();
const trickle = setInterval(tick, 1000);
const during: number[] = [];
/** When (s after the attack began) each probe during it started. */
const duringAt: number[] = [];
let rssPeak = rssBefore;
let fdsPeak = fdsBefore;
while (closed < N && performance.now() - t0 < 120_000) {
  duringAt.push((performance.now() - t0) / 1000);
  during.push(await probe(port));
  rssPeak = Math.max(rssPeak, rssMiB(pid));
  fdsPeak = Math.max(fdsPeak, fds());
  await sleep(200);
}
const cutAfter = (performance.now() - t0) / 1000;
clearInterval(trickle);
for (const s of sockets) s.destroy();
await sleep(3000);
const rssAfter = rssMiB(pid);
console.log(
  `slowloris: ${N} connections, a head byte per second, server_read_header ${headerTimeout}, driver ${driver}`,
);
console.log(
  `  cut: ${closed} closed by loch within ${cutAfter.toFixed(1)} s (${got408} answered 408, ${resets} resets); most bytes a slow client sent: ${Math.max(...sent)} of ${head.length}`,
);
console.log(
  `  loch RSS: before ${rssBefore} MiB, peak ${rssPeak} MiB (+${(rssPeak - rssBefore).toFixed(1)}, ${(((rssPeak - rssBefore) * 1024) / N).toFixed(1)} KiB per connection), 3 s after ${rssAfter} MiB`,
);
console.log(`  loch fds: before ${fdsBefore}, peak ${fdsPeak}, after ${fds()}`);
console.log(`  normal client alone:     ${percentiles(baseline)}`);
console.log(`  normal client during it: ${percentiles(during)}`);
const slow = during
  .map((ms, i) => [ms, duringAt[i]!] as const)
  .filter(([ms]) => ms > 100)
  .map(([ms, at]) => `${ms.toFixed(0)} ms at ${at.toFixed(1)} s`);
console.log(`  probes above 100 ms: ${slow.join(', ') || 'none'}`);
loch.kill('SIGTERM');
await new Promise((r) => loch.once('exit', r));
upstream.close();
rmSync(dir, { recursive: true, force: true });
