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
 *   [body_mib=8] [proxies=loch-uring,loch-legacy,nginx,haproxy] [--json <file>]
 * Each uploader sends one body of body_mib MiB (nginx spools up to uploaders x body_mib to disk).
 * `--json` writes one row per proxy (scenario "upload-flood", bench/lib/abuse-row.ts), which
 * bench/abuse/run.ts reads. RSS is the proxy's whole process tree (nginx's worker too).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abusePeers, startAbuseProxy } from '../lib/abuse-proxies.js';
import { type AbuseRow, latencyCell, mib, takeJsonFlag, writeRows } from '../lib/abuse-row.js';
import { freePort, killLivePeers, type Peer, rssKiB, startPeer, stopPeersOnSignal } from '../lib/measure.js';
import { failures, latency, probe, probeSeries } from '../lib/normal-client.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const jsonFile = takeJsonFlag(args);
const UPLOADERS = Number(args[0] ?? 96);
const SECONDS = Number(args[1] ?? 15);
const BODY = Number(args[2] ?? 8) * 1024 * 1024;
const PROXIES = abusePeers(args[3] ?? 'loch-uring,loch-legacy,nginx,haproxy');
const PEERS = fileURLToPath(new URL('../../apps/proxy/test/e2e/peers', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

stopPeersOnSignal();
process.once('exit', killLivePeers);

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

const fast = createServer((_req, res) => res.end('ok\n'));
await new Promise<void>((r) => fast.listen(0, '127.0.0.1', r));
const fastPort = (fast.address() as AddressInfo).port;

const rows: AbuseRow[] = [];
for (const name of PROXIES) {
  const dir = mkdtempSync(join(tmpdir(), `loch-starvation-${name}-`));
  const slow = await python('slow upstream', 'slow_upstream.py', ['65536']);
  const slowPort = Number(slow.line);
  const port = await freePort();
  const proxy = await startAbuseProxy(name, {
    port,
    dir,
    routes: [
      { prefix: '/slow/', port: slowPort },
      { prefix: '/', port: fastPort },
    ],
    timeoutSeconds: 120,
  });

  const alone = await probeSeries(port, 30);
  const rssBefore = rssKiB(proxy.pid);
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
    rssPeak = Math.max(rssPeak, rssKiB(proxy.pid));
    await sleep(200);
  }
  await flood.peer.stop();
  await slow.peer.stop();
  await sleep(3000);
  const rssAfter = rssKiB(proxy.pid);
  await proxy.stop();
  rmSync(dir, { recursive: true, force: true });
  const row: AbuseRow = {
    scenario: 'upload-flood',
    peer: name,
    alone: latency(alone),
    during: latency(during),
    failed: failures(during),
    rssBeforeMiB: mib(rssBefore),
    rssPeakMiB: mib(rssPeak),
    rssAfterMiB: mib(rssAfter),
    note:
      name === 'nginx'
        ? 'spools request bodies to disk (proxy_request_buffering on)'
        : name === 'haproxy'
          ? 'streams bodies through 16 KiB buffers'
          : 'backpressure: receive budgets (1 MiB per stream, 12 MiB per worker)',
  };
  rows.push(row);
  console.log(
    `| ${name} | ${latencyCell(row.alone)} | ${latencyCell(row.during)} | ${row.failed} of ${row.during.n} | ${row.rssBeforeMiB} / ${row.rssPeakMiB} / ${row.rssAfterMiB} |`,
  );
}
fast.close();

console.log(
  `\nupload starvation: ${UPLOADERS} uploaders x ${BODY / 1048576} MiB to a 64 KiB/s upstream, 1 worker, ${SECONDS} s; normal GET every 200 ms (curl)\n`,
);
console.log(
  '| proxy | alone p50 / p99 / max ms | during p50 / p99 / max ms | failed (10 s cap) | RSS MiB before / peak / after |',
);
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.peer} | ${latencyCell(r.alone)} | ${latencyCell(r.during)} | ${r.failed} of ${r.during.n} | ${r.rssBeforeMiB} / ${r.rssPeakMiB} / ${r.rssAfterMiB} |`,
  );
if (jsonFile !== undefined) writeRows(jsonFile, rows);
