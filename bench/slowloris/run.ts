/**
 * Slowloris (issue 16): N connections (default 10,000) each send one byte of a request head per
 * second to a proxy on one worker whose header read timeout (default 10 s) cuts them, while a
 * normal client (curl, a process of its own) asks every 200 ms on the same worker. The same run
 * compares peers, each started fresh in the same setup: loch on io_uring and on the legacy
 * driver (`server_read_header`, a 408 before the close), nginx (`client_header_timeout`, closes
 * without an answer) and HAProxy (`timeout http-request`, a 408). Reports the normal client's
 * latency alone and during the attack (p50, p99, max, failures), the proxy's RSS (before, peak,
 * after; its whole process tree), descriptors, and how the slow connections ended. Not a test:
 * apps/proxy/test/e2e/slow-clients.test.ts asserts the same on loch (both drivers).
 *
 * The upstream is a process of its own (not this one, whose event loop is busy with the 10,000
 * slow sockets at the moment they are cut), so a slow normal request is the proxy's doing, or
 * the machine's: the slow sockets, curl and the proxy share the CPUs.
 *
 * Usage: tsx --conditions=@loch/source slowloris/run.ts [connections=10000]
 *   [peers=loch-uring,loch-legacy,nginx,haproxy] [header_timeout=10s] [--json <file>]
 * `uring` and `legacy` in the peers place mean loch on that driver (the earlier form's driver
 * argument). Needs `ulimit -n` above connections + 1000 in this shell: the clients live here.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AbuseRow, mib, takeJsonFlag, writeRows } from '../lib/abuse-row.js';
import {
  freePort,
  killLivePeers,
  type Peer,
  rssKiB,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
  waitForPort,
} from '../lib/measure.js';
import { type Latency, latency, probe } from '../lib/normal-client.js';

const args = process.argv.slice(2);
const jsonFile = takeJsonFlag(args);
const N = Number(args[0] ?? 10_000);
const PEERS = (args[1] ?? 'loch-uring,loch-legacy,nginx,haproxy')
  .split(',')
  .map((p) => (p === 'uring' || p === 'legacy' ? `loch-${p}` : p));
const HEADER_TIMEOUT = args[2] ?? '10s';
const TIMEOUT_SECONDS = Number.parseFloat(HEADER_TIMEOUT);
if (!(N > 0) || !(TIMEOUT_SECONDS > 0) || !/^\d+(\.\d+)?s$/.test(HEADER_TIMEOUT))
  throw new Error('usage: run.ts [connections] [peers] [header_timeout like 10s] [--json file]');
for (const p of PEERS)
  if (!['loch-uring', 'loch-legacy', 'nginx', 'haproxy'].includes(p)) throw new Error(`unknown peer ${p}`);

const PROXY_DIR = fileURLToPath(new URL('../../apps/proxy', import.meta.url));
const HEAD = `GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(100)}\r\n\r\n`;
/** Probes of the normal client alone, before the attack. */
const ALONE = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

stopPeersOnSignal();
process.once('exit', killLivePeers);

/** Descriptors open in the process tree rooted at `pid` (nginx's and HAProxy's workers too). */
function fdCount(pid: number): number {
  let n = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      n += readdirSync(`/proc/${p}/fd`).length;
      for (const c of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(' '))
        if (c.trim() !== '') stack.push(Number(c));
    } catch {
      // gone
    }
  }
  return n;
}

/** One peer's row (bench/abuse's shape), with what every slowloris row has. */
interface Row extends AbuseRow {
  scenario: 'slowloris';
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  /**
   * A second normal client, a Node process of its own asking every 200 ms over one kept-alive
   * connection (fetch): no accept in its path, so beside curl's (a new connection per probe) it
   * tells which step the attack delays. `failed` counts its failures during the attack.
   */
  keepAlive: { alone: Latency; during: Latency; failed: number };
}

/** The upstream: a node:http server in a process of its own; resolves with its port. */
async function startUpstream(): Promise<{ peer: Peer; port: number }> {
  const port = await freePort();
  const peer = startPeer('upstream', process.execPath, [
    '-e',
    `require('node:http').createServer((q, s) => s.end('ok\\n')).listen(${port}, '127.0.0.1')`,
  ]);
  await waitForPort(port);
  return { peer, port };
}

/**
 * Starts the kept-alive client: node's fetch (undici) in a process of its own, one connection,
 * a GET every 200 ms; `take()` returns the latencies (ms, -1 failed) since the last take.
 */
function startKeepAliveProbe(port: number): { peer: Peer; take(): number[] } {
  const script = `
const url = 'http://127.0.0.1:${port}/normal';
const loop = async () => {
  for (;;) {
    const t0 = performance.now();
    let ms = -1;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10000) });
      await res.text();
      if (res.status === 200) ms = performance.now() - t0;
    } catch {}
    process.stdout.write(ms.toFixed(2) + '\\n');
    await new Promise((r) => setTimeout(r, 200));
  }
};
loop();
`;
  const peer = startPeer('keep-alive probe', process.execPath, ['-e', script]);
  let got: number[] = [];
  let partial = '';
  peer.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    for (const l of lines) got.push(Number(l));
  });
  return {
    peer,
    take() {
      const out = got;
      got = [];
      return out;
    },
  };
}

async function startLoch(driver: string, port: number, upstream: number, dir: string): Promise<Peer> {
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
timeouts = { server_read_header = "${HEADER_TIMEOUT}", server_keepalive = "60s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
`,
  );
  const peer = startPeer(
    `loch ${driver}`,
    process.execPath,
    ['--conditions=@loch/source', '--import', 'tsx', join(PROXY_DIR, 'src/bin.ts'), 'run', '-c', config],
    { cwd: PROXY_DIR, env: { ...process.env, LOCH_DRIVER: driver } },
  );
  await waitForPort(port, '127.0.0.1', 30_000);
  return peer;
}

async function startNginx(port: number, upstream: number, dir: string): Promise<Peer> {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = `worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log crit;
worker_rlimit_nofile ${N + 2000};
events { worker_connections ${N + 1000}; }
http {
  access_log off;
  client_header_timeout ${HEADER_TIMEOUT};
  keepalive_timeout 60s;
  upstream fast { server 127.0.0.1:${upstream}; keepalive 16; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://fast; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  const peer = startPeer('nginx', 'nginx', ['-p', dir, '-c', file, '-g', 'daemon off;']);
  await waitForPort(port);
  return peer;
}

async function startHaproxy(port: number, upstream: number, dir: string): Promise<Peer> {
  // Slow clients hold a frontend descriptor each and no server side: maxconn above N within
  // the 20,000-descriptor limit (no strict-limits: HAProxy would size for two per connection).
  const conf = `global
  nbthread 1
  maxconn ${N + 1000}
  ulimit-n ${N + 2000}
  no strict-limits

defaults
  mode http
  maxconn ${N + 1000}
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request ${HEADER_TIMEOUT}
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always

frontend fe
  bind 127.0.0.1:${port} backlog 4096
  default_backend fast

backend fast
  server f1 127.0.0.1:${upstream}
`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, conf);
  const peer = startPeer('haproxy', 'haproxy', ['-f', file, '-db']);
  await waitForPort(port);
  return peer;
}

async function measurePeer(name: string, upstream: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), `loch-slowloris-${name}-`));
  const port = await freePort();
  let proxy: Peer;
  let keepAlive: ReturnType<typeof startKeepAliveProbe> | undefined;
  if (name === 'loch-uring' || name === 'loch-legacy')
    proxy = await startLoch(name.slice(5), port, upstream, dir);
  else if (name === 'nginx') proxy = await startNginx(port, upstream, dir);
  else proxy = await startHaproxy(port, upstream, dir);
  try {
    await waitForHttp(port, '/normal');
    keepAlive = startKeepAliveProbe(port);
    const pid = proxy.pid;
    // Baseline: the normal client alone.
    const alone: number[] = [];
    for (let i = 0; i < ALONE; i++) alone.push(await probe(port));
    await sleep(2000); // let loch's idle trim settle
    const keptAlone = keepAlive.take().slice(1); // the first opened its connection
    const rssBefore = rssKiB(pid);
    const fdsBefore = fdCount(pid);

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
        if (!s.destroyed && s.writable && sent[i]! < HEAD.length) s.write(HEAD[sent[i]!++]!);
      }
    };
    tick();
    const trickle = setInterval(tick, 1000);
    const during: number[] = [];
    /** When (s after the attack began) each probe during it started. */
    const duringAt: number[] = [];
    let rssPeak = rssBefore;
    let fdsPeak = fdsBefore;
    const limit = (TIMEOUT_SECONDS + 60) * 1000;
    while (closed < N && performance.now() - t0 < limit) {
      duringAt.push((performance.now() - t0) / 1000);
      during.push(await probe(port));
      rssPeak = Math.max(rssPeak, rssKiB(pid));
      fdsPeak = Math.max(fdsPeak, fdCount(pid));
      await sleep(200);
    }
    const cutAfter = (performance.now() - t0) / 1000;
    const keptDuring = keepAlive.take();
    clearInterval(trickle);
    for (const s of sockets) s.destroy();
    await sleep(3000);
    const rssAfter = rssKiB(pid);
    const slow = during
      .map((ms, i) => [ms, duringAt[i]!] as const)
      .filter(([ms]) => ms > 100 || ms < 0)
      .map(([ms, at]) => `${ms < 0 ? 'failed' : `${ms.toFixed(0)} ms`} at ${at.toFixed(1)} s`);
    const note =
      `${closed} of ${N} closed by the proxy within ${cutAfter.toFixed(1)} s (${got408} answered 408, ${resets} resets); ` +
      `most head bytes a slow client sent: ${Math.max(...sent)} of ${HEAD.length}; ` +
      `fds ${fdsBefore} -> ${fdsPeak} -> ${fdCount(pid)}; ` +
      `probes above 100 ms: ${slow.join(', ') || 'none'}`;
    return {
      scenario: 'slowloris',
      peer: name,
      alone: latency(alone),
      during: latency(during),
      failed: during.filter((x) => x < 0).length,
      rssBeforeMiB: mib(rssBefore),
      rssPeakMiB: mib(rssPeak),
      rssAfterMiB: mib(rssAfter),
      note,
      keepAlive: {
        alone: latency(keptAlone),
        during: latency(keptDuring),
        failed: keptDuring.filter((x) => x < 0).length,
      },
    };
  } finally {
    await keepAlive?.peer.stop();
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const upstream = await startUpstream();
const rows: Row[] = [];
try {
  for (const name of PEERS) {
    const row = await measurePeer(name, upstream.port);
    rows.push(row);
    console.log(`${name}: ${JSON.stringify(row)}`);
  }
} finally {
  await upstream.peer.stop();
}

const ms = (v: number | null) => (v === null ? '-' : v.toFixed(1));
console.log(
  `\nslowloris: ${N} connections, a head byte per second, header timeout ${HEADER_TIMEOUT}, 1 worker; normal GET every 200 ms (curl)\n`,
);
console.log(
  '| peer | alone p50 / p99 / max ms | during p50 / p99 / max ms | failed | RSS MiB before -> peak -> after |',
);
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.peer} | ${ms(r.alone.p50)} / ${ms(r.alone.p99)} / ${ms(r.alone.max)} | ${ms(r.during.p50)} / ${ms(r.during.p99)} / ${ms(r.during.max)} | ${r.failed} of ${r.during.n} | ${r.rssBeforeMiB} -> ${r.rssPeakMiB} -> ${r.rssAfterMiB} |`,
  );
for (const r of rows) {
  const k = r.keepAlive;
  console.log(
    `- ${r.peer}: ${r.note}; kept-alive client (fetch, one connection) alone p50/p99/max ${ms(k.alone.p50)} / ${ms(k.alone.p99)} / ${ms(k.alone.max)}, during ${ms(k.during.p50)} / ${ms(k.during.p99)} / ${ms(k.during.max)} ms, ${k.failed} failed of ${k.during.n}`,
  );
}
if (jsonFile !== undefined) writeRows(jsonFile, rows);
