/**
 * Interleaved A/B benchmark of two builds of loch (issue 12): is a change to the request path
 * bigger than the run-to-run spread? Two checkouts of this repo, each already built, run the
 * reference proxy benchmark's 1-worker layout (wrk -t1 -c64 on CPU 0 -> loch on CPU 1 -> nginx
 * static on CPU 0) in alternating order, round after round (A B, B A, A B, ...), and memory per
 * idle connection quiet and busy. Reports per metric the median and [min, max] of each side and
 * the B/A ratios, and every round's raw numbers, on stdout and in
 * bench/results/partial/ab-<time>.md (+ .json; git-ignored). Not a cross-peer comparison
 * (http-proxy/) and never builds a tree.
 *
 * Usage: tsx --conditions=@loch/source ab/run.ts --a <checkout> --b <checkout> [--rounds 5]
 *   [--sizes 128,11268,65536] [--seconds 8] [--warmup 2] [--idle-connections 10000]
 *   [--busy-connections 16] [--settle 5] [--no-memory] [--metrics off,on]
 *   [--access-log off,on]
 *
 * `--metrics <A>,<B>` (each on or off, default off,off): the side that is on runs with an
 * `[admin]` listener, so it records metrics (issue 17). With the same checkout as A and B,
 * `--metrics off,on` measures what metrics cost per request. `--access-log <A>,<B>` (default
 * off,off) likewise: the side that is on writes a text access line per request to a file in its
 * temp dir (issue 18 measures loch "with metrics and the access log on, as shipped":
 * `--metrics on,on --access-log on,on`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runnerArgs } from '../lib/args.js';
import { formatSize, writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  type Measurement,
  machineSummary,
  markdownTable,
  measure,
  type Peer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { busyConnectionMemory, type ConnectionMemory, quietConnectionMemory } from './connection-memory.js';
import { numberFlag, orderOf, usageExit } from './flags.js';
import { type AbRow, abTable } from './summary.js';
import { fileStamp, type LochTree, openTree, runWarnings, startLoch } from './tree.js';

const SCRIPT = 'ab/run.ts';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    sizes: { type: 'string', default: '128,11268,65536' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    'idle-connections': { type: 'string', default: '10000' },
    'busy-connections': { type: 'string', default: '16' },
    settle: { type: 'string', default: '5' },
    'no-memory': { type: 'boolean', default: false },
    metrics: { type: 'string', default: 'off,off' },
    'access-log': { type: 'string', default: 'off,off' },
  },
});

if (args.a === undefined || args.b === undefined)
  usageExit(SCRIPT, 'usage: ab/run.ts --a <built checkout> --b <built checkout> [--rounds 5] ...');
const rounds = numberFlag(SCRIPT, 'rounds', args.rounds, 1);
const sizes = args.sizes.split(',').map((s) => numberFlag(SCRIPT, 'sizes', s, 0));
const seconds = numberFlag(SCRIPT, 'seconds', args.seconds, 1);
const warmupSeconds = numberFlag(SCRIPT, 'warmup', args.warmup, 0);
const idleCount = numberFlag(SCRIPT, 'idle-connections', args['idle-connections'], 1);
const busyConnections = numberFlag(SCRIPT, 'busy-connections', args['busy-connections'], 1);
const settleMs = numberFlag(SCRIPT, 'settle', args.settle, 0) * 1000;
const withMemory = !args['no-memory'];
const metricsBySide = args.metrics.split(',');
if (metricsBySide.length !== 2 || metricsBySide.some((m) => m !== 'on' && m !== 'off'))
  usageExit(SCRIPT, `--metrics ${args.metrics}: want <A>,<B>, each on or off (e.g. off,on)`);
/** Whether side `label` ("A" or "B") records metrics. */
const metricsOn = (label: string) => metricsBySide[label === 'A' ? 0 : 1] === 'on';
const accessLogBySide = args['access-log'].split(',');
if (accessLogBySide.length !== 2 || accessLogBySide.some((m) => m !== 'on' && m !== 'off'))
  usageExit(SCRIPT, `--access-log ${args['access-log']}: want <A>,<B>, each on or off (e.g. off,on)`);
/** Whether side `label` ("A" or "B") writes an access log. */
const accessLogOn = (label: string) => accessLogBySide[label === 'A' ? 0 : 1] === 'on';

/** wrk, the backend and the idle clients share CPU 0; loch has CPU 1 to itself. */
const LOAD_CPU = '0';
const PROXY_CPU = '1';
/** The reference benchmark's load: wrk -t1 -c64. */
const CONNECTIONS = 64;
/** Body each idle connection fetches once, and the busy load's body. */
const MEMORY_SIZE = 128;
/** RSS samples per memory reading (median) and their spacing. */
const RSS_SAMPLES = 5;
const RSS_SAMPLE_INTERVAL_MS = 200;
/** A measured point with more failed requests than this share is a loch that stopped forwarding. */
const MAX_ERROR_SHARE = 0.01;

const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'results', 'partial');

/** One measured throughput point. */
interface Point {
  readonly round: number;
  /** 1 if this side ran first at this size in this round, 2 if second. */
  readonly position: number;
  readonly side: string;
  readonly size: number;
  readonly m: Measurement;
}

/** One memory reading. */
interface MemoryPoint {
  readonly round: number;
  readonly side: string;
  readonly state: 'quiet' | 'busy';
  readonly r: ConnectionMemory;
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  // An error or a normal end also takes nginx, both lochs and a busy wrk down (idle-client
  // processes exit by themselves when our stdin pipe to them closes).
  process.on('exit', killLivePeers);

  // pnpm runs the script in bench/; relative paths mean where the user ran pnpm (INIT_CWD).
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const trees: [LochTree, LochTree] = [
    openTree('A', resolve(cwd, args.a!)),
    openTree('B', resolve(cwd, args.b!)),
  ];
  const warnings: string[] = [];
  if (
    trees[0].root === trees[1].root &&
    metricsOn('A') === metricsOn('B') &&
    accessLogOn('A') === accessLogOn('B')
  )
    warnings.push('A and B are the same checkout: an A/A run (the noise floor).');
  if (accessLogOn('A') !== accessLogOn('B'))
    warnings.push(
      `access log: A ${accessLogOn('A') ? 'on' : 'off'}, B ${accessLogOn('B') ? 'on' : 'off'} (text lines to a file): B/A is what the access log costs.`,
    );
  else if (accessLogOn('A'))
    warnings.push('access log on for both sides (text lines to a file), as shipped.');
  if (metricsOn('A') !== metricsOn('B'))
    warnings.push(
      `metrics: A ${metricsOn('A') ? 'on' : 'off'}, B ${metricsOn('B') ? 'on' : 'off'} (an [admin] listener on the side that is on): B/A is what recording metrics costs.`,
    );
  warnings.push(...runWarnings(trees, rounds));
  for (const w of warnings) log(`WARNING: ${w}`);

  const started = new Date();
  const stamp = fileStamp(started);
  const loadBefore = loadavg();
  const perPoint = warmupSeconds + seconds + 0.5;
  const memorySeconds = withMemory ? 2 * ((2 * settleMs) / 1000 + 8) + 2 * (settleMs / 1000 + 9) : 0;
  log(
    `A = ${trees[0].root} (${trees[0].revision}), B = ${trees[1].root} (${trees[1].revision}); ` +
      `${rounds} rounds, about ${Math.round((rounds * (2 * sizes.length * perPoint + 4 + memorySeconds)) / 60)} min`,
  );

  const root = writeBodies([...new Set([...sizes, MEMORY_SIZE])]);
  const probes = [...new Set([...sizes, MEMORY_SIZE])].map((bytes) => ({ path: `/${bytes}`, bytes }));
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, `/${MEMORY_SIZE}`);
  log(`backend nginx on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}), bodies in ${root}`);

  const points: Point[] = [];
  const memory: MemoryPoint[] = [];
  const flagged: string[] = [];
  const start = async (tree: LochTree) => {
    const port = await freePort();
    const adminPort = metricsOn(tree.label) ? await freePort() : undefined;
    const peer = await startLoch(tree, {
      port,
      upstreamPort: backendPort,
      cpu: PROXY_CPU,
      probes,
      adminPort,
      accessLog: accessLogOn(tree.label),
    });
    return { peer, port, adminPort };
  };
  /**
   * The requests the metrics-on side counted (its /metrics, loch_http_requests_total summed): a
   * side that should record and counted nothing makes the comparison meaningless.
   */
  const countedRequests = async (adminPort: number): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    let total = 0;
    for (const m of text.matchAll(/^loch_http_requests_total\{[^}]*\} (\S+)$/gm)) total += Number(m[1]);
    return total;
  };
  const write = (done: boolean) => {
    const page = renderPage({ started, loadBefore, trees, points, memory, warnings, flagged, done });
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `ab-${stamp}.md`), page);
    writeFileSync(
      join(resultsDir, `ab-${stamp}.json`),
      `${JSON.stringify({ started, machine: machineSummary(), args: runnerArgs(), trees, points, memory, warnings, flagged }, null, 2)}\n`,
    );
    return page;
  };

  try {
    for (let round = 0; round < rounds; round++) {
      const order = orderOf(round, trees);
      log(`round ${round + 1}/${rounds}: ${order.map((t) => t.label).join(' then ')}`);
      // One fresh loch per side per round serves every size (like http-proxy/run.ts); the side
      // not being measured sits idle on the same CPU.
      const running = new Map<LochTree, { peer: Peer; port: number; adminPort: number | undefined }>();
      try {
        for (const tree of order) running.set(tree, await start(tree));
        for (const size of sizes) {
          for (const [position, tree] of order.entries()) {
            const { peer, port, adminPort } = running.get(tree)!;
            if (peer.child.exitCode !== null || peer.child.signalCode !== null)
              throw new Error(`loch ${tree.label} exited during round ${round + 1}:\n${peer.output()}`);
            const m = await measure(peer, `http://127.0.0.1:${port}/${size}`, {
              connections: CONNECTIONS,
              seconds,
              warmupSeconds,
              cpu: LOAD_CPU,
            });
            const what = `round ${round + 1} ${tree.label} ${formatSize(size)}`;
            if (m.requests === 0 || m.errors > m.requests * MAX_ERROR_SHARE)
              throw new Error(
                `${what}: loch ${tree.label} stopped forwarding (${m.requests} requests, ${m.errors} errors)\n${peer.output()}`,
              );
            if (m.errors > 0) flagged.push(`${what}: ${m.errors} errors`);
            if (adminPort !== undefined && (await countedRequests(adminPort)) < m.requests)
              flagged.push(`${what}: metrics on, but /metrics counted fewer requests than wrk made`);
            points.push({ round: round + 1, position: position + 1, side: tree.label, size, m });
            log(
              `  ${tree.label} ${formatSize(size)}: ${Math.round(m.requestsPerSecond)} req/s, ` +
                `${m.cpuUsPerRequest.toFixed(2)} us/req (sys ${m.sysUsPerRequest.toFixed(2)})` +
                (m.errors ? `, ${m.errors} errors` : ''),
            );
          }
        }
      } finally {
        for (const { peer } of running.values()) await peer.stop();
      }

      if (withMemory) {
        const options = {
          count: idleCount,
          path: `/${MEMORY_SIZE}`,
          clientCpu: LOAD_CPU,
          settleMs,
          samples: RSS_SAMPLES,
          sampleIntervalMs: RSS_SAMPLE_INTERVAL_MS,
        };
        for (const state of ['quiet', 'busy'] as const) {
          for (const tree of order) {
            // A fresh loch per reading: the previous reading's connections leave a grown heap.
            const { peer, port } = await start(tree);
            try {
              const r =
                state === 'quiet'
                  ? await quietConnectionMemory(peer, port, options)
                  : await busyConnectionMemory(peer, port, { ...options, connections: busyConnections });
              const what = `round ${round + 1} ${tree.label} ${state}`;
              if (r.connections < idleCount)
                flagged.push(
                  `${what}: ${r.connections} of ${idleCount} idle connections opened (${r.failed} failed)`,
                );
              memory.push({ round: round + 1, side: tree.label, state, r });
              log(
                `  ${tree.label} ${state}: ${r.connections} conns, RSS ${r.baselineKiB} -> ${r.withConnectionsKiB} KiB, ` +
                  `${Math.round(r.bytesPerConnection)} B/conn` +
                  (r.load ? ` (load ${Math.round(r.load.requestsPerSecond)} req/s)` : ''),
              );
            } finally {
              await peer.stop();
            }
          }
        }
      }
      write(false);
    }
  } catch (err) {
    // Leave what was measured, then fail loudly.
    if (points.length > 0) log(`partial results: ${join(resultsDir, `ab-${stamp}.md`)}`);
    throw err;
  } finally {
    await backend.stop();
  }
  const page = write(true);
  process.stdout.write(`\n${page}\n`);
  log(`wrote ${join(resultsDir, `ab-${stamp}.md`)} (+ .json)`);
}

function renderPage(r: {
  started: Date;
  loadBefore: number[];
  trees: readonly [LochTree, LochTree];
  points: readonly Point[];
  memory: readonly MemoryPoint[];
  warnings: readonly string[];
  flagged: readonly string[];
  done: boolean;
}): string {
  const roundsDone = Math.max(0, ...r.points.map((p) => p.round));
  const series = (side: string, size: number, value: (m: Measurement) => number) =>
    Array.from({ length: roundsDone }, (_, i) => {
      const p = r.points.find((q) => q.round === i + 1 && q.side === side && q.size === size);
      return p === undefined ? Number.NaN : value(p.m);
    });
  const metricRows = (value: (m: Measurement) => number): AbRow[] =>
    sizes.map((size) => ({
      label: formatSize(size),
      a: series('A', size, value),
      b: series('B', size, value),
    }));
  const memorySeries = (side: string, state: string) =>
    Array.from({ length: roundsDone }, (_, i) => {
      const p = r.memory.find((q) => q.round === i + 1 && q.side === side && q.state === state);
      return p === undefined ? Number.NaN : p.r.bytesPerConnection;
    });

  const out: string[] = [];
  out.push('# loch A/B: interleaved proxy benchmark', '');
  out.push(
    `Generated by \`pnpm --filter @loch/bench bench:ab -- ${runnerArgs().join(' ')}\` on ${r.started.toISOString()}` +
      `${r.done ? '' : ' (**incomplete: run still going or interrupted**)'}: ${roundsDone} of ${rounds} rounds, ` +
      `${seconds} s per point after a ${warmupSeconds} s warm-up.`,
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${r.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}.`,
    '',
    markdownTable(
      ['side', 'checkout', 'revision', 'loch built'],
      r.trees.map((t) => [t.label, `\`${t.root}\``, t.revision, t.builtAt.toISOString()]),
    ),
    '',
    'Method: the reference proxy benchmark with 1 worker: wrk -t1 -c64 (CPU 0) -> loch `runtime.workers = 1` ' +
      '(CPU 1) -> nginx static (CPU 0), the same generated config for both sides. Each round starts one fresh loch ' +
      'per side and, for each body size, measures both sides back to back; round 1 runs A first, round 2 B ' +
      'first, and so on (A B, B A, ...), so drift of the machine lands on both sides. CPU us/req = utime+stime ' +
      'of the loch process during the measured wrk run / requests served (/proc ticks are 10 ms). ' +
      '"B/A per round" is the median [min, max] of the paired per-round ratios; "disjoint" means the two sides\' ' +
      '[min, max] ranges do not overlap (with 5 rounds each, a rank test would give p < 0.01).',
    '',
  );
  if (r.warnings.length) {
    out.push('Warnings:', '', ...r.warnings.map((w) => `- ${w}`), '');
  }
  if (r.flagged.length) {
    out.push('Flagged points (kept in the tables):', '', ...r.flagged.map((f) => `- ${f}`), '');
  }
  out.push(
    '## CPU microseconds per request (lower is better)',
    '',
    abTable(
      'body',
      metricRows((m) => m.cpuUsPerRequest),
      2,
    ),
    '',
  );
  out.push(
    '## Requests/s (higher is better)',
    '',
    abTable(
      'body',
      metricRows((m) => m.requestsPerSecond),
      0,
    ),
    '',
  );
  if (r.memory.length) {
    out.push(
      '## Memory per idle keep-alive connection (bytes, lower is better)',
      '',
      `${idleCount.toLocaleString('en-US')} connections from a client process on CPU 0, each after one ` +
        `\`GET /${MEMORY_SIZE}\`; a fresh loch per reading. Bytes per connection = (RSS with the connections - ` +
        `RSS before) / connections; each RSS is the median of ${RSS_SAMPLES} samples ${RSS_SAMPLE_INTERVAL_MS} ms apart. ` +
        `**quiet**: after a 1 s wrk load, ${settleMs / 1000} s of quiet before each reading (Loch's idle trim has run). ` +
        `**busy**: wrk -c${busyConnections} on /${MEMORY_SIZE} runs from 2 s before the baseline to after the last ` +
        `sample (${settleMs / 1000} s after the connections are open), so no idle trim runs.`,
      '',
      abTable(
        'state',
        (['quiet', 'busy'] as const).map((state) => ({
          label: state,
          a: memorySeries('A', state),
          b: memorySeries('B', state),
        })),
        0,
      ),
      '',
    );
  }
  out.push('## Raw numbers per round', '');
  out.push(
    markdownTable(
      ['round', 'body', 'side', 'ran', 'req/s', 'CPU us/req', 'sys us/req', 'p50 ms', 'p99 ms', 'errors'],
      r.points.map((p) => [
        String(p.round),
        formatSize(p.size),
        p.side,
        p.position === 1 ? 'first' : 'second',
        Math.round(p.m.requestsPerSecond).toLocaleString('en-US'),
        p.m.cpuUsPerRequest.toFixed(2),
        p.m.sysUsPerRequest.toFixed(2),
        p.m.p50Ms,
        p.m.p99Ms,
        String(p.m.errors),
      ]),
    ),
    '',
  );
  if (r.memory.length) {
    out.push(
      markdownTable(
        [
          'round',
          'state',
          'side',
          'idle conns',
          'RSS before KiB',
          'RSS with conns KiB',
          'bytes/conn',
          'busy load req/s',
        ],
        r.memory.map((p) => [
          String(p.round),
          p.state,
          p.side,
          `${p.r.connections}${p.r.failed ? ` (${p.r.failed} failed)` : ''}`,
          String(p.r.baselineKiB),
          String(p.r.withConnectionsKiB),
          String(Math.round(p.r.bytesPerConnection)),
          p.r.load ? Math.round(p.r.load.requestsPerSecond).toLocaleString('en-US') : '',
        ]),
      ),
      '',
    );
  }
  return out.join('\n');
}

main().catch((err: Error) => {
  process.stderr.write(`ab: FAILED: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
