/**
 * Upload starvation (issue 16): with one worker, UPLOADERS clients (a Python peer) upload bodies
 * as fast as they can to a route whose upstream (a Python peer) reads 64 KiB/s per connection,
 * while a normal client (curl, a process of its own) asks a fast upstream on the same proxy every
 * 200 ms. Reports the normal client's latency (p50, p99, max, failures) alone and during the
 * flood, and the proxy's RSS, for loch (io_uring and legacy drivers), nginx (which buffers
 * request bodies to disk: proxy_request_buffering on, client_max_body_size 0) and HAProxy (which
 * streams them), each in the same run. Not a test: apps/proxy/test/e2e/upload-starvation.test.ts
 * asserts liveness on both drivers.
 *
 * Usage: tsx --conditions=@loch/source upload-starvation/run.ts [uploaders=96] [seconds=15]
 *   [body_mib=8] [proxies=loch-uring,loch-legacy,nginx,haproxy]
 * Each uploader sends one body of body_mib MiB (nginx spools up to uploaders x body_mib to disk).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  killLivePeers,
  type Peer,
  startPeer,
  stopPeersOnSignal,
  waitForPort,
} from '../lib/measure.js';

const UPLOADERS = Number(process.argv[2] ?? 96);
const SECONDS = Number(process.argv[3] ?? 15);
const BODY = Number(process.argv[4] ?? 8) * 1024 * 1024;
const PROXIES = (process.argv[5] ?? 'loch-uring,loch-legacy,nginx,haproxy').split(',');
const PROXY_DIR = fileURLToPath(new URL('../../apps/proxy', import.meta.url));
const PEERS = join(PROXY_DIR, 'test/e2e/peers');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

stopPeersOnSignal();
process.once('exit', killLivePeers);

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Math.round(Number(m![1]) / 102.4) / 10;
  } catch {
    return 0;
  }
}

/** One GET by curl (its own process): time_total in ms, or -1 when it failed (10 s cap). */
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

interface Summary {
  n: number;
  failed: number;
  p50: string;
  p99: string;
  max: string;
}

function summarize(xs: readonly number[]): Summary {
  const ok = xs.filter((x) => x >= 0).sort((a, b) => a - b);
  const at = (p: number) => ok[Math.min(ok.length - 1, Math.floor(p * ok.length))]?.toFixed(1) ?? '-';
  return {
    n: xs.length,
    failed: xs.length - ok.length,
    p50: at(0.5),
    p99: at(0.99),
    max: ok.at(-1)?.toFixed(1) ?? '-',
  };
}

/** Starts a Python peer from apps/proxy's e2e peers; resolves with it and its first output line. */
async function python(
  name: string,
  script: string,
  args: readonly string[],
): Promise<{ peer: Peer; line: string }> {
  const peer = startPeer(name, 'python3', [join(PEERS, script), ...args]);
  // Up to 30 s: the uploaders print once every connection is open (hundreds, on a busy machine).
  for (let i = 0; i < 600; i++) {
    const line = peer.output().split('\n')[0]!.trim();
    if (line !== '') return { peer, line };
    await sleep(50);
  }
  await peer.stop();
  throw new Error(`${script} printed nothing`);
}

async function startLoch(
  driver: string,
  port: number,
  slow: number,
  fast: number,
  dir: string,
): Promise<Peer> {
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `
[runtime]
workers = 1

[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { server_keepalive = "60s", server_read_body = "120s", upstream_read = "120s", server_write = "120s" }

[[servers.web.routes]]
path = "/slow/"
upstreams = [{ endpoint = "http://127.0.0.1:${slow}" }]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${fast}" }]
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

async function startNginx(port: number, slow: number, fast: number, dir: string): Promise<Peer> {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = `worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  client_max_body_size 0;
  proxy_request_buffering on;
  proxy_read_timeout 120s;
  proxy_send_timeout 120s;
  client_body_timeout 120s;
  upstream slow { server 127.0.0.1:${slow}; }
  upstream fast { server 127.0.0.1:${fast}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location /slow/ { proxy_pass http://slow; }
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

async function startHaproxy(port: number, slow: number, fast: number, dir: string): Promise<Peer> {
  const conf = `global
  nbthread 1
  maxconn 12000
  no strict-limits

defaults
  mode http
  maxconn 12000
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always

frontend fe
  bind 127.0.0.1:${port}
  use_backend slow if { path_beg /slow/ }
  default_backend fast

backend slow
  server s1 127.0.0.1:${slow}

backend fast
  server f1 127.0.0.1:${fast}
`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, conf);
  const peer = startPeer('haproxy', 'haproxy', ['-f', file, '-db']);
  await waitForPort(port);
  return peer;
}

const fast = createServer((_req, res) => res.end('ok\n'));
await new Promise<void>((r) => fast.listen(0, '127.0.0.1', r));
const fastPort = (fast.address() as AddressInfo).port;

const rows: string[] = [];
for (const name of PROXIES) {
  const dir = mkdtempSync(join(tmpdir(), `loch-starvation-${name}-`));
  const slow = await python('slow upstream', 'slow_upstream.py', ['65536']);
  const slowPort = Number(slow.line);
  const port = await freePort();
  let proxy: Peer;
  if (name === 'loch-uring' || name === 'loch-legacy')
    proxy = await startLoch(name.slice(5), port, slowPort, fastPort, dir);
  else if (name === 'nginx') proxy = await startNginx(port, slowPort, fastPort, dir);
  else if (name === 'haproxy') proxy = await startHaproxy(port, slowPort, fastPort, dir);
  else throw new Error(`unknown proxy ${name}`);

  const alone: number[] = [];
  for (let i = 0; i < 30; i++) alone.push(await probe(port));
  const rssBefore = rssMiB(proxy.pid);
  const flood = await python('uploaders', 'upload_flood.py', [
    String(port),
    String(UPLOADERS),
    '/slow/up',
    String(BODY),
  ]);
  const during: number[] = [];
  let rssPeak = rssBefore;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    during.push(await probe(port));
    rssPeak = Math.max(rssPeak, rssMiB(proxy.pid));
    await sleep(200);
  }
  await flood.peer.stop();
  await slow.peer.stop();
  await proxy.stop();
  rmSync(dir, { recursive: true, force: true });
  const a = summarize(alone);
  const d = summarize(during);
  const line = `| ${name} | ${a.p50} / ${a.p99} | ${d.p50} / ${d.p99} / ${d.max} | ${d.failed} of ${d.n} | ${rssBefore} -> ${rssPeak} |`;
  console.log(line);
  rows.push(line);
}
fast.close();

console.log(
  `\nupload starvation: ${UPLOADERS} uploaders x ${BODY / 1048576} MiB to a 64 KiB/s upstream, 1 worker, ${SECONDS} s; normal GET every 200 ms (curl)\n`,
);
console.log(
  '| proxy | alone p50 / p99 ms | during p50 / p99 / max ms | failed (10 s cap) | RSS MiB before -> peak |',
);
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const row of rows) console.log(row);
