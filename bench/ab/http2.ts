/**
 * Interleaved A/B benchmark of two builds of loch over HTTP/2 (issue 14), the HTTP/2 companion
 * of run.ts: is a change bigger than the run-to-run spread, where a single bench:http2 page is
 * not enough (per-process states differ from one start to the next)? Two checkouts, each already
 * built, run the HTTP/2 benchmark's 1-worker layout (h2load -t1 on CPU 0 -> loch on CPU 1, h2c
 * by prior knowledge and h2 over TLS 1.3 -> nginx static on CPU 0 over HTTP/1.1 keep-alive),
 * loch only, with the same config (http2/peers.ts's), in alternating order round after round
 * (A B, B A, ...): each round starts one fresh loch per side and measures every mode, load and
 * body size on both back to back. Reports per point the median and [min, max] of each side and
 * the per-round B/A ratio, and every round's raw numbers, on stdout and in
 * bench/results/partial/ab-http2-<time>.md (+ .json; git-ignored). Never builds a tree.
 *
 * Usage: tsx --conditions=@loch/source ab/http2.ts --a <checkout> --b <checkout> [--rounds 5]
 *   [--modes h2c,h2] [--loads 16x16,64x1] [--sizes 128,11268] [--seconds 8] [--warmup 2]
 *   [--a-env NAME=VALUE]... [--b-env NAME=VALUE]...
 *
 * `--a-env` / `--b-env` set environment variables for one side's loch only: with the same
 * checkout as A and B, `--a-env LOCH_TLS_RECORDS=openssl` measures OpenSSL's TLS record layer (A)
 * against Loch's own, loch's default (B).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type H2Load, measureH2 } from '../http2/h2load.js';
import { probed, writeLochH2Config } from '../http2/peers.js';
import { runnerArgs, runnerCommandLine } from '../lib/args.js';
import { formatSize, writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  type Measurement,
  machineSummary,
  markdownTable,
  type Peer,
  startPeer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { writeTlsCertificates } from '../lib/tls-certs.js';
import { envFlag, numberFlag, orderOf, usageExit } from './flags.js';
import { type AbRow, abTable } from './summary.js';
import { fileStamp, type LochTree, openTree, runWarnings } from './tree.js';

const SCRIPT = 'ab/http2.ts';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'h2c,h2' },
    loads: { type: 'string', default: '16x16,64x1' },
    sizes: { type: 'string', default: '128,11268' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    'a-env': { type: 'string', multiple: true, default: [] },
    'b-env': { type: 'string', multiple: true, default: [] },
  },
});

type Mode = 'h2c' | 'h2';

if (args.a === undefined || args.b === undefined)
  usageExit(SCRIPT, 'usage: ab/http2.ts --a <built checkout> --b <built checkout> [--rounds 5] ...');
const rounds = numberFlag(SCRIPT, 'rounds', args.rounds, 1);
const modes = args.modes.split(',').map((m) => {
  if (m !== 'h2c' && m !== 'h2') usageExit(SCRIPT, `--modes ${args.modes}: each of h2c, h2`);
  return m as Mode;
});
const loads: H2Load[] = args.loads.split(',').map((l) => {
  const m = /^(\d+)x(\d+)$/.exec(l);
  if (m === null) usageExit(SCRIPT, `--loads ${args.loads}: each <clients>x<streams>, like 16x16`);
  return { clients: numberFlag(SCRIPT, 'loads', m[1]!, 1), streams: numberFlag(SCRIPT, 'loads', m[2]!, 1) };
});
const sizes = args.sizes.split(',').map((s) => numberFlag(SCRIPT, 'sizes', s, 0));
const seconds = numberFlag(SCRIPT, 'seconds', args.seconds, 1);
const warmupSeconds = numberFlag(SCRIPT, 'warmup', args.warmup, 0);
const envBySide: Record<string, Record<string, string>> = {
  A: envFlag(SCRIPT, 'a-env', args['a-env']),
  B: envFlag(SCRIPT, 'b-env', args['b-env']),
};

/** h2load and the backend share CPU 0; loch has CPU 1 to itself. */
const LOAD_CPU = '0';
const PROXY_CPU = '1';
/** A measured point with more failed requests than this share is a loch that stopped forwarding. */
const MAX_ERROR_SHARE = 0.01;
const PROBE_PATH = '/128';

const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'results', 'partial');

/** One measured point of one side. */
interface Point {
  readonly round: number;
  /** 1 if this side ran first at this point in this round, 2 if second. */
  readonly position: number;
  readonly side: string;
  readonly mode: Mode;
  readonly load: H2Load;
  readonly size: number;
  readonly m: Measurement;
}

/** A point's row label: mode, load and body size. */
const pointName = (mode: Mode, load: H2Load, size: number) =>
  `${mode} -c${load.clients} -m${load.streams} ${formatSize(size)}`;

/** A side's environment in words, for the page ("" when it adds none). */
function envText(label: string): string {
  return Object.entries(envBySide[label]!)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  process.on('exit', killLivePeers);

  // pnpm runs the script in bench/; relative paths mean where the user ran pnpm (INIT_CWD).
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const trees: [LochTree, LochTree] = [
    openTree('A', resolve(cwd, args.a!)),
    openTree('B', resolve(cwd, args.b!)),
  ];
  const warnings: string[] = [];
  if (trees[0].root === trees[1].root && envText('A') === envText('B'))
    warnings.push('A and B are the same checkout with the same environment: an A/A run (the noise floor).');
  for (const label of ['A', 'B']) {
    if (envText(label) !== '') warnings.push(`${label} runs with ${envText(label)}.`);
  }
  warnings.push(...runWarnings(trees, rounds));
  for (const w of warnings) log(`WARNING: ${w}`);

  const started = new Date();
  const stamp = fileStamp(started);
  const loadBefore = loadavg();
  const perPoint = warmupSeconds + seconds + 0.5;
  const pointsPerSide = modes.length * loads.length * sizes.length;
  log(
    `A = ${trees[0].root} (${trees[0].revision}), B = ${trees[1].root} (${trees[1].revision}); ` +
      `${rounds} rounds of ${2 * pointsPerSide} points, about ${Math.round((rounds * (2 * pointsPerSide * perPoint + 6)) / 60)} min`,
  );

  const certificate = writeTlsCertificates().ecdsa;
  const root = writeBodies([...new Set([...sizes, 128])]);
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, PROBE_PATH);
  log(`backend nginx on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}), bodies in ${root}`);

  /** Starts `tree`'s loch with the HTTP/2 benchmark's config; resolves once both ports forward. */
  const start = async (tree: LochTree) => {
    const port = await freePort();
    const tlsPort = await freePort();
    const config = writeLochH2Config({ port, tlsPort, upstreamPort: backendPort, workers: 1, certificate });
    // cwd = the tree, so nothing of the harness's checkout leaks into module resolution.
    const peer = startPeer(`loch ${tree.label}`, process.execPath, [tree.cli, 'run', '-c', config], {
      cpu: PROXY_CPU,
      cwd: tree.root,
      env: { ...process.env, ...envBySide[tree.label] },
    });
    await probed(peer, { port, tlsPort, probePath: PROBE_PATH });
    return { peer, port, tlsPort };
  };

  const points: Point[] = [];
  const flagged: string[] = [];
  const write = (done: boolean) => {
    const page = renderPage({ started, loadBefore, trees, points, warnings, flagged, done });
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `ab-http2-${stamp}.md`), page);
    writeFileSync(
      join(resultsDir, `ab-http2-${stamp}.json`),
      `${JSON.stringify({ started, machine: machineSummary(), args: runnerArgs(), trees, env: envBySide, points, warnings, flagged }, null, 2)}\n`,
    );
    return page;
  };

  try {
    for (let round = 0; round < rounds; round++) {
      const order = orderOf(round, trees);
      log(`round ${round + 1}/${rounds}: ${order.map((t) => t.label).join(' then ')}`);
      // One fresh loch per side per round serves every point; the side not being measured sits
      // idle on the same CPU.
      const running = new Map<LochTree, { peer: Peer; port: number; tlsPort: number }>();
      try {
        for (const tree of order) running.set(tree, await start(tree));
        for (const mode of modes) {
          for (const load of loads) {
            for (const size of sizes) {
              for (const [position, tree] of order.entries()) {
                const { peer, port, tlsPort } = running.get(tree)!;
                if (peer.child.exitCode !== null || peer.child.signalCode !== null)
                  throw new Error(`loch ${tree.label} exited during round ${round + 1}:\n${peer.output()}`);
                const url =
                  mode === 'h2c'
                    ? `http://127.0.0.1:${port}/${size}`
                    : `https://127.0.0.1:${tlsPort}/${size}`;
                const m = await measureH2(peer, url, { ...load, seconds, warmupSeconds, cpu: LOAD_CPU });
                const what = `round ${round + 1} ${tree.label} ${pointName(mode, load, size)}`;
                if (m.requests === 0 || m.errors > m.requests * MAX_ERROR_SHARE)
                  throw new Error(
                    `${what}: loch ${tree.label} stopped forwarding (${m.requests} requests, ${m.errors} errors)\n${peer.output()}`,
                  );
                if (m.errors > 0) flagged.push(`${what}: ${m.errors} errors`);
                points.push({
                  round: round + 1,
                  position: position + 1,
                  side: tree.label,
                  mode,
                  load,
                  size,
                  m,
                });
                log(
                  `  ${tree.label} ${pointName(mode, load, size)}: ${Math.round(m.requestsPerSecond)} req/s, ` +
                    `${m.cpuUsPerRequest.toFixed(2)} us/req (sys ${m.sysUsPerRequest.toFixed(2)})`,
                );
              }
            }
          }
        }
      } finally {
        for (const { peer } of running.values()) await peer.stop();
      }
      write(false);
    }
  } catch (err) {
    // Leave what was measured, then fail loudly.
    if (points.length > 0) log(`partial results: ${join(resultsDir, `ab-http2-${stamp}.md`)}`);
    throw err;
  } finally {
    await backend.stop();
  }
  const page = write(true);
  process.stdout.write(`\n${page}\n`);
  log(`wrote ${join(resultsDir, `ab-http2-${stamp}.md`)} (+ .json)`);
}

function renderPage(r: {
  started: Date;
  loadBefore: number[];
  trees: readonly [LochTree, LochTree];
  points: readonly Point[];
  warnings: readonly string[];
  flagged: readonly string[];
  done: boolean;
}): string {
  const roundsDone = Math.max(0, ...r.points.map((p) => p.round));
  const rows = (value: (m: Measurement) => number): AbRow[] => {
    const out: AbRow[] = [];
    for (const mode of modes)
      for (const load of loads)
        for (const size of sizes) {
          const series = (side: string) =>
            Array.from({ length: roundsDone }, (_, i) => {
              const p = r.points.find(
                (q) =>
                  q.round === i + 1 &&
                  q.side === side &&
                  q.mode === mode &&
                  q.load === load &&
                  q.size === size,
              );
              return p === undefined ? Number.NaN : value(p.m);
            });
          out.push({ label: pointName(mode, load, size), a: series('A'), b: series('B') });
        }
    return out;
  };

  const out: string[] = [];
  out.push('# loch A/B: interleaved HTTP/2 proxy benchmark', '');
  out.push(
    `Generated by \`pnpm --filter @loch/bench bench:ab:http2 -- ${runnerCommandLine()}\` on ${r.started.toISOString()}` +
      `${r.done ? '' : ' (**incomplete: run still going or interrupted**)'}: ${roundsDone} of ${rounds} rounds, ` +
      `${seconds} s per point after a ${warmupSeconds} s warm-up.`,
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${r.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}.`,
    '',
    markdownTable(
      ['side', 'checkout', 'revision', 'loch built', 'environment'],
      r.trees.map((t) => [
        t.label,
        `\`${t.root}\``,
        t.revision,
        t.builtAt.toISOString(),
        envText(t.label) || '-',
      ]),
    ),
    '',
    'Method: the HTTP/2 benchmark (bench:http2) with 1 worker, loch only: h2load -t1 -c<clients> ' +
      '-m<streams> (CPU 0) -> loch `runtime.workers = 1` (CPU 1; h2c by prior knowledge on one listener, h2 ' +
      'by ALPN over TLS 1.3 on another) -> nginx static over HTTP/1.1 keep-alive (CPU 0), the same generated ' +
      'config for both sides. Each round starts one fresh loch per side and measures every point on both ' +
      'back to back; round 1 runs A first, round 2 B first, and so on (A B, B A, ...), so drift of the ' +
      'machine lands on both sides. CPU us/req = utime+stime of the loch process during the measured h2load ' +
      'run / requests served (/proc ticks are 10 ms). "B/A per round" is the median [min, max] of the paired ' +
      'per-round ratios; "disjoint" means the two sides\' [min, max] ranges do not overlap (with 5 rounds ' +
      'each, a rank test would give p < 0.01).',
    '',
  );
  if (r.warnings.length) out.push('Warnings:', '', ...r.warnings.map((w) => `- ${w}`), '');
  if (r.flagged.length)
    out.push('Flagged points (kept in the tables):', '', ...r.flagged.map((f) => `- ${f}`), '');
  out.push(
    '## CPU microseconds per request (lower is better)',
    '',
    abTable(
      'point',
      rows((m) => m.cpuUsPerRequest),
      2,
    ),
    '',
    '## Requests/s (higher is better)',
    '',
    abTable(
      'point',
      rows((m) => m.requestsPerSecond),
      0,
    ),
    '',
    '## Raw numbers per round',
    '',
    markdownTable(
      ['round', 'point', 'side', 'ran', 'req/s', 'CPU us/req', 'sys us/req', 'p50 ms', 'p99 ms', 'errors'],
      r.points.map((p) => [
        String(p.round),
        pointName(p.mode, p.load, p.size),
        p.side,
        p.position === 1 ? 'first' : 'second',
        Math.round(p.m.requestsPerSecond).toLocaleString('en-US'),
        p.m.cpuUsPerRequest.toFixed(2),
        p.m.sysUsPerRequest.toFixed(2),
        p.m.p50Ms.toFixed(2),
        p.m.p99Ms.toFixed(2),
        String(p.m.errors),
      ]),
    ),
    '',
  );
  return out.join('\n');
}

main().catch((err: Error) => {
  process.stderr.write(`ab http2: FAILED: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
