/**
 * What loch's access log costs per request: wrk -> loch -> nginx static backend over HTTP/1.1
 * keep-alive, with the access log off, as text to stdout (a pipe the runner drains), as text to
 * a file, and as JSON lines to a file. Variants run interleaved over several rounds (each
 * round in a rotated order) so that machine drift spreads over all of them; the page reports
 * each variant's median CPU microseconds per request of loch's process and the difference to
 * "off". Writes bench/results/access-log.md (+ .json). Needs nginx and wrk on PATH.
 *
 * Usage: tsx --conditions=@loch/source access-log/run.ts [--quick] [--seconds N] [--warmup N]
 *   [--rounds N] [--workers N] [--size 128] [--from-source]
 * `--from-source` runs apps/proxy/src/bin.ts through tsx instead of the built dist/ (for a
 * smoke run when the build is stale; numbers from it are not for the results page).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LOCH_CLI } from '../http-proxy/peers.js';
import { runnerArgs, TIMING_OPTIONS, timing } from '../lib/args.js';
import { writeBodies } from '../lib/bodies.js';
import {
  freePort,
  type Measurement,
  machineSummary,
  markdownTable,
  measure,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    ...TIMING_OPTIONS,
    rounds: { type: 'string' },
    workers: { type: 'string', default: '1' },
    size: { type: 'string', default: '128' },
    'from-source': { type: 'boolean', default: false },
    /** Comma-separated variant names to run (default all), e.g. "off,JSON lines to a file". */
    variants: { type: 'string' },
  },
});
const { quick, seconds, warmupSeconds } = timing(args);
const rounds = Number(args.rounds ?? (quick ? 2 : 5));
const workers = Number(args.workers);
const size = Number(args.size);
const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, '..', 'results');
const proxyDir = join(here, '..', '..', 'apps', 'proxy');
/** Load generator and backend on CPU 0, loch on CPU 1 (as bench/http-proxy). */
const LOAD_CPU = '0';
const PROXY_CPU = '1';

/** The access-log settings of one variant (a line of `[servers.bench]`). */
const VARIANTS: readonly { name: string; line: (dir: string) => string }[] = [
  { name: 'off', line: () => 'access_log = false' },
  { name: 'text to stdout', line: () => 'access_log = true' },
  { name: 'text to a file', line: (dir) => `access_log = { path = "${join(dir, 'access.log')}" }` },
  {
    name: 'JSON lines to a file',
    line: (dir) => `access_log = { path = "${join(dir, 'access.json')}", format = "json" }`,
  },
];

const chosen =
  args.variants === undefined ? VARIANTS : VARIANTS.filter((v) => args.variants!.split(',').includes(v.name));

interface Point extends Measurement {
  readonly variant: string;
  readonly round: number;
  /** Bytes the access-log file grew by (file variants). */
  readonly logBytes: number;
}

async function runVariant(
  variant: (typeof VARIANTS)[number],
  round: number,
  backendPort: number,
): Promise<Point> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-access-log-'));
  const port = await freePort();
  const config = join(dir, 'loch.toml');
  writeFileSync(
    config,
    `[runtime]
workers = ${workers}

[log]
level = "warn"

[servers.bench]
listener = { type = "socket", value = "127.0.0.1:${port}" }
${variant.line(dir)}
timeouts = { server_keepalive = "300s" }

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${backendPort}" }]
`,
  );
  const command = args['from-source']
    ? ['--conditions=@loch/source', '--import', 'tsx', join(proxyDir, 'src', 'bin.ts')]
    : [LOCH_CLI];
  const peer = startPeer(`loch (${variant.name})`, process.execPath, [...command, 'run', '-c', config], {
    cpu: PROXY_CPU,
    cwd: proxyDir,
  });
  try {
    await waitForHttp(port, `/${size}`, '127.0.0.1', 20_000);
    const m = await measure(peer, `http://127.0.0.1:${port}/${size}`, {
      connections: 50,
      seconds,
      warmupSeconds,
      cpu: LOAD_CPU,
    });
    let logBytes = 0;
    for (const f of ['access.log', 'access.json']) {
      try {
        logBytes += statSync(join(dir, f)).size;
      } catch {
        // not this variant's file
      }
    }
    return { ...m, variant: variant.name, round, logBytes };
  } finally {
    await peer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  const started = new Date();
  const root = writeBodies([size]);
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, `/${size}`);
  const points: Point[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round: no variant always runs first (or last) on a drifting machine.
      for (let i = 0; i < chosen.length; i++) {
        const variant = chosen[(i + round) % chosen.length]!;
        const p = await runVariant(variant, round, backendPort);
        points.push(p);
        log(
          `round ${round + 1}/${rounds} ${variant.name}: ${p.requestsPerSecond.toFixed(0)} req/s, ${p.cpuUsPerRequest.toFixed(2)} us CPU/request`,
        );
      }
    }
  } finally {
    await backend.stop();
    rmSync(root, { recursive: true, force: true });
  }
  const off = median(points.filter((p) => p.variant === 'off').map((p) => p.cpuUsPerRequest));
  const rows = chosen.map((v) => {
    const mine = points.filter((p) => p.variant === v.name);
    const cpu = median(mine.map((p) => p.cpuUsPerRequest));
    const requests = mine.reduce((n, p) => n + p.requests, 0);
    const bytes = mine.reduce((n, p) => n + p.logBytes, 0);
    return [
      v.name,
      median(mine.map((p) => p.requestsPerSecond)),
      cpu,
      v.name === 'off' ? '-' : `${(cpu - off).toFixed(2)} (${(((cpu - off) / off) * 100).toFixed(1)}%)`,
      bytes > 0 ? (bytes / requests).toFixed(0) : '-',
    ] as const;
  });
  const page = `# Access log cost (loch, HTTP/1.1 keep-alive, ${size} B bodies)

Run ${started.toISOString()} on ${machineSummary()}; ${workers} worker(s) on CPU ${PROXY_CPU}, wrk
(50 connections) and the nginx backend on CPU ${LOAD_CPU}; ${rounds} interleaved rounds of ${seconds} s
(after ${warmupSeconds} s warm-up) per variant, medians. Command:
\`pnpm --filter @loch/bench exec tsx --conditions=@loch/source access-log/run.ts --rounds ${rounds} --seconds ${seconds}\`

${markdownTable(['access log', 'requests/s', 'CPU us/request', 'added CPU us/request', 'log bytes/request'], rows)}
`;
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, 'access-log.md'), page);
  writeFileSync(
    join(resultsDir, 'access-log.json'),
    `${JSON.stringify({ started, machine: machineSummary(), seconds, rounds, size, workers, points }, null, 2)}\n`,
  );
  log(`wrote ${join(resultsDir, 'access-log.md')}`);
  process.stdout.write(page);
}

await main();
