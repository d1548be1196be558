/**
 * A worker crash (issue 16): a proxy with two workers serves a steady keep-alive load (16
 * connections, one request at a time each, 10 ms apart) and a normal client (curl, a process of
 * its own, every 200 ms); one worker dies. loch: `LOCH_DEBUG_CRASH_WORKER=0` and SIGURG, an
 * uncaught error thrown in worker 0 (its supervisor replaces the thread); nginx: kill -9 of one
 * of its two worker processes (the master forks a new one). HAProxy has no equivalent: it is one
 * process whose threads (nbthread 2) cannot die alone; a crash takes the whole process and every
 * connection, and its master-worker mode does not fork a replacement (by default the master
 * exits with it; a process supervisor such as systemd restarts it), so its row says so.
 * Reports the normal client's latency alone and from the crash on, the background load's
 * requests and failures (those in flight on the dead worker, and connections it held), how
 * long until the replacement was there, and RSS (before, peak, 3 s after).
 *
 * Usage: tsx --conditions=@loch/source abuse/worker-crash.ts [seconds=10]
 *   [peers=loch-uring,loch-legacy,nginx,haproxy] [--json <file>]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
const SECONDS = Number(args[0] ?? 10);
const PEERS = abusePeers(args[1] ?? 'loch-uring,loch-legacy,nginx,haproxy');
if (!(SECONDS > 0)) throw new Error('usage: worker-crash.ts [seconds] [peers] [--json file]');
const LOAD_CONNECTIONS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

stopPeersOnSignal();
process.once('exit', killLivePeers);

/** The upstream: nginx answering "ok" (its own process, so this one only drives the load). */
async function startBackend(dir: string): Promise<{ peer: Peer; port: number }> {
  const port = await freePort();
  const conf = `worker_processes 1;
user root;
pid ${dir}/backend.pid;
error_log ${dir}/backend-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/b-body; proxy_temp_path ${dir}/b-proxy;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:${port}; location / { return 200 "ok\\n"; } }
}
`;
  writeFileSync(join(dir, 'backend.conf'), conf);
  const peer = startPeer('backend nginx', 'nginx', [
    '-p',
    dir,
    '-c',
    join(dir, 'backend.conf'),
    '-g',
    'daemon off;',
  ]);
  await waitForPort(port);
  return { peer, port };
}

/** Child pids of `pid` (nginx's workers). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((c) => c.trim() !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** The background load: LOAD_CONNECTIONS keep-alive loops until stop(); counts outcomes. */
function startLoad(port: number): { stop(): Promise<{ ok: number; failed: number; why: string }> } {
  const agent = new Agent({ keepAlive: true, maxSockets: LOAD_CONNECTIONS });
  let running = true;
  let ok = 0;
  let failed = 0;
  /** Failures by cause (error code, 'timeout' or the status), and when they came after the start. */
  const causes = new Map<string, number>();
  const fail = (cause: string) => {
    failed++;
    causes.set(cause, (causes.get(cause) ?? 0) + 1);
  };
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/load', agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else fail(String(res.statusCode));
          resolve();
        });
        res.on('error', (e: NodeJS.ErrnoException) => {
          fail(e.code ?? e.message);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        fail(e.code ?? e.message);
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: LOAD_CONNECTIONS }, async () => {
    while (running) {
      await one();
      await sleep(10);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      const why = [...causes].map(([c, n]) => `${n} ${c}`).join(', ');
      return { ok, failed, why };
    },
  };
}

/** Kills one worker of `proxy` and resolves with how the replacement is recognised. */
async function crashOne(name: string, proxy: Peer): Promise<() => boolean> {
  if (name === 'nginx') {
    const before = children(proxy.pid);
    const victim = before[0]!;
    process.kill(victim, 'SIGKILL');
    return () => {
      const now = children(proxy.pid);
      return now.length === before.length && !now.includes(victim);
    };
  }
  process.kill(proxy.pid, 'SIGURG');
  // loch logs little with the access log off: its kept output holds the line.
  return () => /worker 0 restarted/.test(proxy.output());
}

const backendDir = mkdtempSync(join(tmpdir(), 'loch-crash-backend-'));
const backend = await startBackend(backendDir);
const rows: AbuseRow[] = [];
try {
  for (const name of PEERS) {
    if (name === 'haproxy') {
      const none = { n: 0, p50: null, p99: null, max: null };
      rows.push({
        scenario: 'worker-crash',
        peer: name,
        alone: none,
        during: none,
        failed: 0,
        rssBeforeMiB: null,
        rssPeakMiB: null,
        rssAfterMiB: null,
        note: 'not applicable: one process with threads (nbthread); a thread cannot die alone, a crash takes the process and every connection, and no master forks a replacement (systemd Restart=on-failure does)',
      });
      continue;
    }
    const dir = mkdtempSync(join(tmpdir(), `loch-crash-${name}-`));
    const port = await freePort();
    const proxy = await startAbuseProxy(name, {
      port,
      dir,
      workers: 2,
      routes: [{ prefix: '/', port: backend.port }],
      env: { LOCH_DEBUG_CRASH_WORKER: '0' },
    });
    const alone = await probeSeries(port, 30);
    const rssBefore = rssKiB(proxy.pid);
    const load = startLoad(port);
    await sleep(2000);
    const crashedAt = performance.now();
    const replaced = await crashOne(name, proxy);
    let replacedMs = -1;
    let rssPeak = rssBefore;
    // Its own timer: a probe stuck in the dead worker's accept queue takes up to 10 s.
    const watch = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssKiB(proxy.pid));
      if (replacedMs < 0 && replaced()) replacedMs = Math.round(performance.now() - crashedAt);
    }, 50);
    const during: number[] = [];
    while (performance.now() - crashedAt < SECONDS * 1000) {
      during.push(await probe(port));
      await sleep(200);
    }
    clearInterval(watch);
    const background = await load.stop();
    await sleep(3000);
    const rssAfter = rssKiB(proxy.pid);
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
    const row: AbuseRow = {
      scenario: 'worker-crash',
      peer: name,
      alone: latency(alone),
      during: latency(during),
      failed: failures(during),
      rssBeforeMiB: mib(rssBefore),
      rssPeakMiB: mib(rssPeak),
      rssAfterMiB: mib(rssAfter),
      note:
        `${name === 'nginx' ? 'kill -9 of 1 of 2 worker processes' : 'uncaught error in 1 of 2 worker threads'}; ` +
        `replaced ${replacedMs < 0 ? 'not seen' : `within ${replacedMs} ms`}; background load ${background.ok} ok, ${background.failed} failed${background.why === '' ? '' : ` (${background.why})`}`,
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
  `\nworker crash: 2 workers, one killed; ${LOAD_CONNECTIONS} keep-alive connections of load; normal GET every 200 ms (curl) for ${SECONDS} s from the crash\n`,
);
console.log(
  '| proxy | alone p50 / p99 / max ms | during p50 / p99 / max ms | failed (10 s cap) | RSS MiB before / peak / after | note |',
);
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
for (const r of rows)
  console.log(
    `| ${r.peer} | ${latencyCell(r.alone)} | ${latencyCell(r.during)} | ${r.failed} of ${r.during.n} | ${r.rssBeforeMiB ?? '-'} / ${r.rssPeakMiB ?? '-'} / ${r.rssAfterMiB ?? '-'} | ${r.note} |`,
  );
if (jsonFile !== undefined) writeRows(jsonFile, rows);
