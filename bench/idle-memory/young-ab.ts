/**
 * The young generation's cap against CPU per request (issue 18): one loch build, two values of
 * `runtime.worker_young_generation_bytes`, interleaved round after round (A B, B A, ...), each
 * round a fresh loch (1 worker, CPU 1, metrics and the access log on, as shipped) under wrk -t1
 * -c64 on 128 B (CPU 0, nginx static behind it on CPU 0). Per run: CPU us per request (utime +
 * stime of loch's process), the worker's scavenges and mark-compacts per 10,000 requests (node
 * --trace-gc, counted for the isolate with the most collections: the worker), and loch's RSS at
 * the end of the load. Timings are worth only as the A/B ratio of one run (both sides share the
 * machine's drift); the GC counts are counts. Not busy.ts (memory per idle connection).
 *
 * Usage (from bench/): pnpm exec tsx --conditions=@loch/source idle-memory/young-ab.ts
 *   --loch-cli ../apps/proxy/dist/bin.js [--values 24m,12m] [--rounds 4] [--seconds 10] [--warmup 3]
 *   [--size 128]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../ab/summary.js';
import { writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  measure,
  rssKiB,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';

const { values: args } = parseArgs({
  options: {
    'loch-cli': { type: 'string' },
    values: { type: 'string', default: '24m,12m' },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    size: { type: 'string', default: '128' },
  },
});
if (args['loch-cli'] === undefined) throw new Error('--loch-cli <apps/proxy/dist/bin.js> is required');
const cli = resolve(args['loch-cli']);
const sides = args.values.split(',') as [string, string];
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);
const warmupSeconds = Number(args.warmup);
const size = Number(args.size);

/** One run of one side. */
interface Run {
  readonly side: string;
  readonly round: number;
  readonly reqPerSec: number;
  readonly cpuUs: number;
  readonly scavengesPer10k: number;
  readonly markCompactsPer10k: number;
  readonly rssMiB: number;
}

function config(port: number, upstreamPort: number, adminPort: number, dir: string, young: string): string {
  return `[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[runtime]
workers = 1
cpu_affinity = false
worker_young_generation_bytes = "${young}"

[log]
level = "warn"

[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = { path = ${JSON.stringify(join(dir, 'access.log'))}, format = "text" }
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]
`;
}

/** Collections by isolate from node --trace-gc lines ("[pid:0xISOLATE] ... Scavenge ..."). */
class GcCounter {
  readonly counts = new Map<string, { scavenges: number; markCompacts: number }>();
  private rest = '';
  feed(chunk: string): void {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop()!;
    for (const line of lines) {
      const m = /^\[\d+:(0x[0-9a-f]+)\]/.exec(line);
      if (m === null) continue;
      const c = this.counts.get(m[1]!) ?? { scavenges: 0, markCompacts: 0 };
      if (line.includes(' Scavenge')) c.scavenges++;
      else if (line.includes(' Mark-Compact')) c.markCompacts++;
      this.counts.set(m[1]!, c);
    }
  }
  /** The busiest isolate's counts (the worker's under load). */
  top(): { scavenges: number; markCompacts: number } {
    let best = { scavenges: 0, markCompacts: 0 };
    for (const c of this.counts.values()) if (c.scavenges > best.scavenges) best = c;
    return { ...best };
  }
}

async function runOne(side: string, round: number, upstreamPort: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-young-ab-'));
  const port = await freePort();
  const adminPort = await freePort();
  writeFileSync(join(dir, 'loch.toml'), config(port, upstreamPort, adminPort, dir, side));
  const peer = startPeer(
    `loch ${side}`,
    process.execPath,
    ['--trace-gc', cli, 'run', '-c', join(dir, 'loch.toml')],
    {
      cpu: '1',
    },
  );
  const gc = new GcCounter();
  peer.child.stdout?.on('data', (d: Buffer) => gc.feed(d.toString()));
  try {
    await waitForHttp(port, `/${size}`, '127.0.0.1', 15_000);
    const url = `http://127.0.0.1:${port}/${size}`;
    if (warmupSeconds > 0) await measure(peer, url, { connections: 64, seconds: warmupSeconds, cpu: '0' });
    const before = gc.top();
    const m = await measure(peer, url, { connections: 64, seconds, cpu: '0' });
    const after = gc.top();
    const per10k = (n: number) => (n * 10_000) / m.requests;
    return {
      side,
      round,
      reqPerSec: m.requests / seconds,
      cpuUs: m.cpuUsPerRequest,
      scavengesPer10k: per10k(after.scavenges - before.scavenges),
      markCompactsPer10k: per10k(after.markCompacts - before.markCompacts),
      rssMiB: rssKiB(peer.pid) / 1024,
    };
  } finally {
    await peer.stop();
  }
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  process.on('exit', killLivePeers);
  const root = writeBodies([size]);
  const upstreamPort = await freePort();
  const backend = await startNginxStatic({ root, port: upstreamPort, cpu: '0' });
  const runs: Run[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? sides : ([sides[1], sides[0]] as const);
      for (const side of order) {
        const run = await runOne(side, r, upstreamPort);
        runs.push(run);
        console.log(
          `round ${r} ${side}: ${run.reqPerSec.toFixed(0)} req/s, ${run.cpuUs.toFixed(2)} us/req, ` +
            `scavenges ${run.scavengesPer10k.toFixed(1)}/10k req, mark-compacts ${run.markCompactsPer10k.toFixed(2)}/10k, RSS ${run.rssMiB.toFixed(1)} MiB`,
        );
      }
    }
  } finally {
    await backend.stop();
  }
  const of = (side: string, f: (r: Run) => number) => runs.filter((r) => r.side === side).map(f);
  for (const [name, f] of [
    ['CPU us/req', (r: Run) => r.cpuUs],
    ['req/s', (r: Run) => r.reqPerSec],
    ['scavenges/10k req', (r: Run) => r.scavengesPer10k],
    ['mark-compacts/10k req', (r: Run) => r.markCompactsPer10k],
    ['RSS MiB', (r: Run) => r.rssMiB],
  ] as const) {
    const a = of(sides[0], f);
    const b = of(sides[1], f);
    console.log(
      `${name}: ${sides[0]} median ${median(a).toFixed(2)} [${Math.min(...a).toFixed(2)}, ${Math.max(...a).toFixed(2)}]` +
        `; ${sides[1]} median ${median(b).toFixed(2)} [${Math.min(...b).toFixed(2)}, ${Math.max(...b).toFixed(2)}]` +
        `; B/A ${(median(b) / median(a)).toFixed(3)}`,
    );
  }
  // Per-round ratios (B over A within a round: the pair shares the machine's drift).
  const ratios = Array.from({ length: rounds }, (_, r) => {
    const a = runs.find((x) => x.round === r && x.side === sides[0])!;
    const b = runs.find((x) => x.round === r && x.side === sides[1])!;
    return b.cpuUs / a.cpuUs;
  });
  console.log(`CPU us/req ${sides[1]}/${sides[0]} per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}`);
}

await main();
