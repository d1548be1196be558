/**
 * Loch's time to first request (issue 18's memory work moves config validation into a thread of
 * its own: this says what that costs at start): `loch run` of each given build, 1 worker, the
 * config baseline.ts uses (an nginx static backend, /128), timed from the spawn of the process
 * to the first 200 answer through it (a new connection every 2 ms until one is served), and to
 * its "started" log line. Builds alternate within a round; each (build, round) is a fresh loch.
 * Not a throughput or memory reading (baseline.ts, busy.ts). A timing: hold the machine.
 *
 * Usage (from bench/):
 *   pnpm exec tsx --conditions=@loch/source idle-memory/start-time.ts --loch-cli A/apps/proxy/dist/bin.js,B/...
 *     [--rounds 10] [--json out.json]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { writeBodies } from '../lib/bodies.js';
import { freePort, killLivePeers, stopPeersOnSignal, waitForHttp } from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';

const { values: args } = parseArgs({
  options: {
    'loch-cli': { type: 'string' },
    rounds: { type: 'string', default: '10' },
    json: { type: 'string' },
  },
});
if (args['loch-cli'] === undefined) throw new Error('--loch-cli A[,B...] is required');
const clis = args['loch-cli'].split(',').map((p) => resolve(p));
const rounds = Number(args.rounds);
const PATH = '/128';

/** One GET on a new connection: its status, or 0 when nothing answered. */
function getOnce(port: number): Promise<number> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: PATH, agent: false }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0));
    });
    req.on('error', () => done(0));
    req.end();
  });
}

interface Reading {
  cli: string;
  round: number;
  /** Spawn to the "started" line (ms). */
  startedMs: number;
  /** Spawn to the first 200 through loch (ms). */
  firstRequestMs: number;
}

stopPeersOnSignal();
process.once('exit', killLivePeers);
const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: '0' });
await waitForHttp(backendPort, PATH);
const readings: Reading[] = [];
try {
  for (let round = 0; round < rounds; round++)
    for (const cli of clis) {
      const dir = mkdtempSync(join(tmpdir(), 'loch-start-'));
      const port = await freePort();
      const config = join(dir, 'loch.toml');
      writeFileSync(
        config,
        `[runtime]\nworkers = 1\ncpu_affinity = false\n\n[log]\nlevel = "info"\n\n[servers.bench]\nproxy_type = "http"\n` +
          `listener = { type = "socket", value = "127.0.0.1:${port}" }\naccess_log = false\n\n` +
          `[[servers.bench.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:${backendPort}" }]\n`,
      );
      const t0 = performance.now();
      const child = spawn('taskset', ['-c', '1', process.execPath, cli, 'run', '-c', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let startedMs = Number.NaN;
      for (const out of [child.stdout, child.stderr])
        createInterface({ input: out }).on('line', (line) => {
          if (Number.isNaN(startedMs) && / started \d+ worker/.test(line)) startedMs = performance.now() - t0;
        });
      let firstRequestMs = Number.NaN;
      while (performance.now() - t0 < 15_000) {
        if ((await getOnce(port)) === 200) {
          firstRequestMs = performance.now() - t0;
          break;
        }
        await delay(2);
      }
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      readings.push({ cli, round, startedMs, firstRequestMs });
      console.log(
        `${cli} round ${round + 1}: started ${startedMs.toFixed(1)} ms, first request ${firstRequestMs.toFixed(1)} ms`,
      );
    }
} finally {
  await backend.stop();
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
for (const cli of clis) {
  const mine = readings.filter((r) => r.cli === cli);
  console.log(
    `${cli}: median started ${median(mine.map((r) => r.startedMs)).toFixed(1)} ms, first request ${median(mine.map((r) => r.firstRequestMs)).toFixed(1)} ms [${Math.min(...mine.map((r) => r.firstRequestMs)).toFixed(1)}, ${Math.max(...mine.map((r) => r.firstRequestMs)).toFixed(1)}] over ${mine.length}`,
  );
}
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(readings, null, 2)}\n`);
