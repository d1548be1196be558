/**
 * Slow readers (issue 16): with one worker, READERS clients (a Python peer,
 * apps/proxy/test/e2e/peers/slow_reader.py: a 4 KiB SO_RCVBUF and a 1460 MSS, as across a
 * network) each ask for a BODY_MIB response and read it 16 bytes every 20 ms, never stopping,
 * while a normal client (curl, a process of its own) asks every 200 ms on the same proxy. The
 * upstream is nginx serving files (sendfile: it costs next to nothing). Reports the normal
 * client's latency alone and during (p50 / p99 / max, failures at curl's 10 s cap), the proxy's
 * RSS (its process tree: before, peak, 3 s after the readers left), what the readers got and
 * whether any was cut, and what the proxy held: loch's receive budgets (/stats), nginx's
 * spooled response bodies (its default proxy_buffering reads the upstream ahead to disk, up to
 * proxy_max_temp_file_size 1 GiB per response). Every read/write timeout is 60 s (nginx's
 * send_timeout default). Not a test: apps/proxy/test/e2e/slow-readers.test.ts asserts the
 * invariants on loch.
 *
 * Usage: tsx --conditions=@loch/source slow-readers/run.ts [readers=256] [seconds=20]
 *   [body_mib=4] [peers=loch-uring,loch-legacy,nginx,haproxy] [--step 16] [--write-timeout 60]
 *   [--json <file>]
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abusePeers, startAbuseProxy } from '../lib/abuse-proxies.js';
import { type AbuseRow, latencyCell, mib, takeJsonFlag, writeRows } from '../lib/abuse-row.js';
import {
  freePort,
  killLivePeers,
  type Peer,
  rssKiB,
  startPeer,
  stopPeersOnSignal,
  waitForPort,
} from '../lib/measure.js';
import { failures, latency, probe, probeSeries } from '../lib/normal-client.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const jsonFile = takeJsonFlag(args);
/** `--name value` taken out of `args` (in place), or `fallback`. */
function takeFlag(name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const v = Number(args[at + 1]);
  if (!(v > 0)) throw new Error(`${name} needs a positive number`);
  args.splice(at, 2);
  return v;
}
/** Bytes each reader takes every 20 ms. */
const STEP = takeFlag('--step', 16);
/** Every read/write timeout of every peer (s): loch server_write, nginx send_timeout, HAProxy timeout client. */
const WRITE_TIMEOUT = takeFlag('--write-timeout', 60);
const READERS = Number(args[0] ?? 256);
const SECONDS = Number(args[1] ?? 20);
const BODY = Math.round(Number(args[2] ?? 4) * 1024 * 1024);
const PEERS = abusePeers(args[3] ?? 'loch-uring,loch-legacy,nginx,haproxy');
if (!(READERS > 0) || !(SECONDS > 0) || !(BODY > 0))
  throw new Error('usage: run.ts [readers] [seconds] [body_mib] [peers] [--json file]');
const READER = fileURLToPath(new URL('../../apps/proxy/test/e2e/peers/slow_reader.py', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

stopPeersOnSignal();
process.once('exit', killLivePeers);

/** The upstream: nginx serving a BODY-byte file at /big/ and "ok" at /normal. */
async function startBackend(dir: string): Promise<{ peer: Peer; port: number }> {
  const port = await freePort();
  mkdirSync(join(dir, 'files'), { recursive: true });
  writeFileSync(join(dir, 'files', 'big.bin'), Buffer.alloc(BODY, 0x62));
  const conf = `worker_processes 1;
user root;
pid ${dir}/backend.pid;
error_log ${dir}/backend-error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 12000; }
http {
  access_log off;
  client_body_temp_path ${dir}/b-body; proxy_temp_path ${dir}/b-proxy;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    location /big/ { root ${dir}/files; try_files /big.bin =404; }
    location /normal { return 200 "ok\\n"; }
  }
}
`;
  writeFileSync(join(dir, 'backend.conf'), conf);
  const peer = startPeer(
    'backend nginx',
    'nginx',
    ['-p', dir, '-c', join(dir, 'backend.conf'), '-g', 'daemon off;'],
    {
      nofile: 20_000,
    },
  );
  await waitForPort(port);
  return { peer, port };
}

interface ReaderTotals {
  bytes: number;
  closed: number;
  errors: number;
  bad: number;
}

/** slow_reader.py: started, connected; stop() resolves with its final totals. */
async function startReaders(port: number): Promise<{ stop(): Promise<ReaderTotals | null> }> {
  const peer = startPeer('slow readers', 'python3', [
    READER,
    String(port),
    String(READERS),
    '/big/',
    '--rcvbuf',
    '4096',
    '--mss',
    '1460',
    '--step',
    String(STEP),
    '--interval',
    '20',
  ]);
  for (let i = 0; i < 1200 && !peer.output().includes('connected'); i++) await sleep(50);
  if (!peer.output().includes('connected')) {
    await peer.stop();
    throw new Error(`slow_reader.py did not connect:\n${peer.output()}`);
  }
  return {
    async stop() {
      await peer.stop();
      const last = peer
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .at(-1);
      return last === undefined ? null : (JSON.parse(last) as ReaderTotals);
    },
  };
}

/**
 * Bytes of the files under `dir` that the process tree of `pid` holds open: nginx's spooled
 * response bodies (it unlinks a temp file once open, so `du` sees none of them).
 */
function openFileBytes(pid: number, dir: string): number {
  let bytes = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`)) {
        try {
          if (readlinkSync(`/proc/${p}/fd/${fd}`).startsWith(dir))
            bytes += statSync(`/proc/${p}/fd/${fd}`).size;
        } catch {
          // closed meanwhile
        }
      }
      for (const c of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(' '))
        if (c.trim() !== '') stack.push(Number(c));
    } catch {
      // gone
    }
  }
  return bytes;
}

/** loch's receive budgets from /stats (worker 0). */
async function lochBuffers(adminPort: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${adminPort}/stats`);
    const stats = (await res.json()) as {
      workers: {
        runtime: { buffers: { peakHeld: number; peakStreamHeld: number; workerCap: number } | null };
      }[];
    };
    const b = stats.workers[0]?.runtime.buffers;
    if (!b) return '';
    return `; held at most ${mib(b.peakHeld / 1024)} MiB (one stream ${mib(b.peakStreamHeld / 1024)}, worker cap ${mib(b.workerCap / 1024)})`;
  } catch {
    return '';
  }
}

const backendDir = mkdtempSync(join(tmpdir(), 'loch-slow-readers-backend-'));
const backend = await startBackend(backendDir);
const rows: AbuseRow[] = [];
try {
  for (const name of PEERS) {
    const dir = mkdtempSync(join(tmpdir(), `loch-slow-readers-${name}-`));
    const port = await freePort();
    const adminPort = name.startsWith('loch') ? await freePort() : undefined;
    const proxy = await startAbuseProxy(name, {
      port,
      dir,
      routes: [{ prefix: '/', port: backend.port }],
      timeoutSeconds: WRITE_TIMEOUT,
      ...(adminPort === undefined ? {} : { adminPort }),
    });
    const alone = await probeSeries(port, 30);
    const rssBefore = rssKiB(proxy.pid);
    const readers = await startReaders(port);
    const during: number[] = [];
    let rssPeak = rssBefore;
    let spooled = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < SECONDS * 1000) {
      during.push(await probe(port));
      rssPeak = Math.max(rssPeak, rssKiB(proxy.pid));
      if (name === 'nginx') spooled = Math.max(spooled, openFileBytes(proxy.pid, join(dir, 'proxy')));
      await sleep(200);
    }
    const held = adminPort === undefined ? '' : await lochBuffers(adminPort);
    const totals = await readers.stop();
    await sleep(3000);
    const rssAfter = rssKiB(proxy.pid);
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
    const got =
      totals === null
        ? 'readers: no totals'
        : `readers got ${mib(totals.bytes / 1024)} MiB, ${totals.closed} cut, ${totals.errors} reset`;
    const row: AbuseRow = {
      scenario: 'slow-readers',
      peer: name,
      alone: latency(alone),
      during: latency(during),
      failed: failures(during),
      rssBeforeMiB: mib(rssBefore),
      rssPeakMiB: mib(rssPeak),
      rssAfterMiB: mib(rssAfter),
      note: `${got}${held}${name === 'nginx' ? `; spooled ${mib(spooled / 1024)} MiB to disk` : ''}`,
    };
    rows.push(row);
    console.log(
      `| ${name} | ${latencyCell(row.alone)} | ${latencyCell(row.during)} | ${row.failed} of ${row.during.n} | ${row.rssBeforeMiB} / ${row.rssPeakMiB} / ${row.rssAfterMiB} | ${row.note} |`,
    );
  }
} finally {
  await backend.peer.stop();
  rmSync(backendDir, { recursive: true, force: true });
}

console.log(
  `\nslow readers: ${READERS} clients (SO_RCVBUF 4 KiB, MSS 1460) reading a ${BODY / 1048576} MiB response ${STEP} bytes every 20 ms, 1 worker, ${SECONDS} s, write timeouts ${WRITE_TIMEOUT} s; normal GET every 200 ms (curl)\n`,
);
console.log(
  '| proxy | alone p50 / p99 / max ms | during p50 / p99 / max ms | failed (10 s cap) | RSS MiB before / peak / after | note |',
);
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
for (const r of rows)
  console.log(
    `| ${r.peer} | ${latencyCell(r.alone)} | ${latencyCell(r.during)} | ${r.failed} of ${r.during.n} | ${r.rssBeforeMiB} / ${r.rssPeakMiB} / ${r.rssAfterMiB} | ${r.note} |`,
  );
if (jsonFile !== undefined) writeRows(jsonFile, rows);
