/**
 * Interleaved A/B benchmark of HTTP/1.1 reverse proxying (issues 12 and 18): is a change to the
 * request path, or the gap to nginx, bigger than the run-to-run spread? A side is a built
 * checkout of this repo (its `loch`) or `nginx` (bench:http-proxy's nginx peer, the same
 * proxy_pass config), so one form answers "before vs after a change" (`--a T1 --b T2`) and "loch
 * vs nginx" (`--a nginx --b T`). The reference proxy benchmark's layout (wrk -t1 -c64 on CPU 0 ->
 * the proxy on CPU 1 with 1 worker, CPUs 0-1 with more -> nginx static on CPU 0) runs the sides
 * in alternating order, round after round (A B, B A, A B, ...), and memory per idle connection
 * quiet and busy. Reports per metric the median and [min, max] of each side and the B/A ratios,
 * and every round's raw numbers, on stdout and in bench/results/partial/ab-<time>.md (+ .json;
 * git-ignored). Not the cross-peer page (http-proxy/) and never builds a tree.
 *
 * Usage: tsx --conditions=@loch/source ab/run.ts --a <checkout|nginx> --b <checkout|nginx>
 *   [--rounds 5] [--sizes 128,11268,65536] [--seconds 8] [--warmup 2] [--start-warmup 10] [--workers 1]
 *   [--idle-connections 10000] [--busy-connections 16] [--settle 5] [--no-memory]
 *   [--metrics off,on] [--access-log off,on] [--runtime-a 'key = value'] [--runtime-b '...']
 *   [--env-a NAME=value]... [--env-b NAME=value]... [--connection-close]
 *
 * `--connection-close`: every request on a new connection (wrk sends `Connection: close`, the proxy
 * closes after each response and wrk connects again), so a point reads accept and connection
 * setup and teardown per request rather than keep-alive reuse.
 *
 * `--metrics <A>,<B>` (each on or off, default off,off): the side that is on runs with an
 * `[admin]` listener, so it records metrics (issue 17). With the same checkout as A and B,
 * `--metrics off,on` measures what metrics cost per request. `--access-log <A>,<B>` (default
 * off,off) likewise: the side that is on writes a text access line per request to a file in its
 * temp dir (issue 18 measures loch "with metrics and the access log on, as shipped":
 * `--metrics on,on --access-log on,on`). An nginx side records no metrics (its `--metrics` must
 * be off); its access log on is nginx's as it ships (bench:http-proxy's: `combined`, unbuffered).
 * `--runtime-a`/`--runtime-b` add TOML lines to that side's loch `[runtime]` table, so one checkout
 * answers "what does this setting cost" (e.g. `--runtime-b 'worker_young_generation_bytes = 6291456'`).
 * `--env-a`/`--env-b` (repeatable) set a variable in that side's loch environment, for what no
 * config key reaches: Node startup flags (`--env-b NODE_OPTIONS=--use-largepages=on`, node's text on
 * 2 MiB pages; it replaces the harness's own NODE_OPTIONS) or a LOCH_* switch.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROXIES } from '../http-proxy/peers.js';
import { runnerArgs, runnerCommandLine } from '../lib/args.js';
import { formatSize, writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  type Measurement,
  machineSummary,
  markdownTable,
  type Peer,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { busyConnectionMemory, type ConnectionMemory, quietConnectionMemory } from './connection-memory.js';
import { numberFlag, orderOf, usageExit } from './flags.js';
import { type AbSide, checkedReading, LOAD_CPU, openSide, proxyCpus, sideTrees } from './side.js';
import { type AbRow, abTable, verdictTable } from './summary.js';
import { checkBodies, fileStamp, removeOnExit, runWarnings, startLoch, trimWhileRunning } from './tree.js';

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
    'start-warmup': { type: 'string', default: '10' },
    workers: { type: 'string', default: '1' },
    'idle-connections': { type: 'string', default: '10000' },
    'busy-connections': { type: 'string', default: '16' },
    settle: { type: 'string', default: '5' },
    'no-memory': { type: 'boolean', default: false },
    'connection-close': { type: 'boolean', default: false },
    metrics: { type: 'string', default: 'off,off' },
    'access-log': { type: 'string', default: 'off,off' },
    'runtime-a': { type: 'string', default: '' },
    'runtime-b': { type: 'string', default: '' },
    'env-a': { type: 'string', multiple: true, default: [] },
    'env-b': { type: 'string', multiple: true, default: [] },
  },
});

if (args.a === undefined || args.b === undefined)
  usageExit(
    SCRIPT,
    'usage: ab/run.ts --a <built checkout|nginx> --b <built checkout|nginx> [--rounds 5] ...',
  );
const rounds = numberFlag(SCRIPT, 'rounds', args.rounds, 1);
const sizes = args.sizes.split(',').map((s) => numberFlag(SCRIPT, 'sizes', s, 0));
const seconds = numberFlag(SCRIPT, 'seconds', args.seconds, 1);
const warmupSeconds = numberFlag(SCRIPT, 'warmup', args.warmup, 0);
const startWarmupSeconds = numberFlag(SCRIPT, 'start-warmup', args['start-warmup'], 0);
const workers = numberFlag(SCRIPT, 'workers', args.workers, 1);
const idleCount = numberFlag(SCRIPT, 'idle-connections', args['idle-connections'], 1);
const busyConnections = numberFlag(SCRIPT, 'busy-connections', args['busy-connections'], 1);
const settleMs = numberFlag(SCRIPT, 'settle', args.settle, 0) * 1000;
const withMemory = !args['no-memory'];
/** wrk's extra request headers: `Connection: close` with --connection-close, else none. */
const loadHeaders: readonly string[] = args['connection-close'] ? ['Connection: close'] : [];
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
/** Extra `[runtime]` lines of side `label`'s loch config (`--runtime-a`, `--runtime-b`), or ''. */
const runtimeLines = (label: string) => (label === 'A' ? args['runtime-a'] : args['runtime-b']);
/** Side `label`'s extra environment (`--env-a`, `--env-b`: NAME=value each). */
const sideEnv = (label: string): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const pair of label === 'A' ? args['env-a'] : args['env-b']) {
    const eq = pair.indexOf('=');
    if (eq <= 0) usageExit(SCRIPT, `--env-${label.toLowerCase()} ${pair}: want NAME=value`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
};
/** Side `label`'s extra environment in words ('' when none), for the page and the A/A check. */
const envWords = (label: string) =>
  Object.entries(sideEnv(label))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

/** wrk, the backend and the idle clients share CPU 0 (LOAD_CPU); one worker has CPU 1 to itself. */
const PROXY_CPU = proxyCpus(workers);
/** Body each idle connection fetches once, and the busy load's body. */
const MEMORY_SIZE = 128;
/** RSS samples per memory reading (median) and their spacing. */
const RSS_SAMPLES = 5;
const RSS_SAMPLE_INTERVAL_MS = 200;
/** bench:http-proxy's nginx peer: its proxy_pass config and its access log as nginx ships it. */
const NGINX = PROXIES.find((p) => p.name === 'nginx')!;

/** nginx's version line (`nginx -v` writes it to stderr), for the page. */
function nginxVersion(): string {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return (r.stderr ?? '').trim().replace(/^nginx version: /, '') || 'nginx (version unknown)';
}

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
  // An error or a normal end also takes the backend, both sides and a busy wrk down (idle-client
  // processes exit by themselves when our stdin pipe to them closes).
  process.on('exit', killLivePeers);

  // pnpm runs the script in bench/; relative paths mean where the user ran pnpm (INIT_CWD).
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const nginxWhat = `nginx ${nginxVersion()} (proxy_pass, bench:http-proxy's config)`;
  const sides: [AbSide, AbSide] = [
    openSide('A', args.a!, cwd, nginxWhat),
    openSide('B', args.b!, cwd, nginxWhat),
  ];
  for (const s of sides) {
    if (s.tree === undefined && metricsOn(s.label))
      usageExit(SCRIPT, `--metrics: side ${s.label} is nginx, which records no metrics; say off for it`);
  }
  const warnings: string[] = [];
  if (
    sides[0].tree?.root === sides[1].tree?.root &&
    metricsOn('A') === metricsOn('B') &&
    accessLogOn('A') === accessLogOn('B') &&
    runtimeLines('A') === runtimeLines('B') &&
    envWords('A') === envWords('B')
  )
    warnings.push(
      `A and B are the same ${sides[0].tree ? 'checkout' : 'peer'}: an A/A run (the noise floor).`,
    );
  if (accessLogOn('A') !== accessLogOn('B'))
    warnings.push(
      `access log: A ${accessLogOn('A') ? 'on' : 'off'}, B ${accessLogOn('B') ? 'on' : 'off'} (text lines to a file): B/A is what the access log costs.`,
    );
  else if (accessLogOn('A'))
    warnings.push('access log on for both sides (text lines to a file), as shipped.');
  if (metricsOn('A') !== metricsOn('B'))
    warnings.push(
      sides.some((s) => s.tree === undefined)
        ? `metrics: on for the loch side only (an [admin] listener; nginx records none), as shipped.`
        : `metrics: A ${metricsOn('A') ? 'on' : 'off'}, B ${metricsOn('B') ? 'on' : 'off'} (an [admin] listener on the side that is on): B/A is what recording metrics costs.`,
    );
  for (const s of sides) {
    if (runtimeLines(s.label) === '') continue;
    if (s.tree === undefined)
      usageExit(SCRIPT, `--runtime-${s.label.toLowerCase()}: side ${s.label} is nginx`);
    warnings.push(`side ${s.label}'s loch config adds to [runtime]: ${runtimeLines(s.label)}`);
  }
  for (const s of sides) {
    if (envWords(s.label) === '') continue;
    if (s.tree === undefined) usageExit(SCRIPT, `--env-${s.label.toLowerCase()}: side ${s.label} is nginx`);
    warnings.push(`side ${s.label}'s loch runs with ${envWords(s.label)} in its environment`);
  }
  warnings.push(...runWarnings(sideTrees(sides), rounds));
  for (const w of warnings) log(`WARNING: ${w}`);

  const started = new Date();
  const stamp = fileStamp(started);
  const loadBefore = loadavg();
  const perPoint = warmupSeconds + seconds + 0.5;
  const memorySeconds = withMemory ? 2 * ((2 * settleMs) / 1000 + 8) + 2 * (settleMs / 1000 + 9) : 0;
  log(
    `A = ${sides[0].what}, B = ${sides[1].what}; ${workers} worker(s) on CPU ${PROXY_CPU}; ` +
      `${rounds} rounds, about ${Math.round((rounds * (2 * sizes.length * perPoint + 2 * startWarmupSeconds + 4 + memorySeconds)) / 60)} min`,
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
  /**
   * Starts `side` fresh on a new port; resolves once it forwards every probe path with the
   * right body length (an nginx that does not is stopped and the run fails).
   */
  const start = async (
    side: AbSide,
  ): Promise<{ peer: Peer; port: number; adminPort: number | undefined }> => {
    const port = await freePort();
    const accessLog = accessLogOn(side.label);
    if (side.tree === undefined) {
      const peer = await NGINX.start({
        port,
        upstreamPort: backendPort,
        workers,
        cpu: PROXY_CPU,
        probePath: `/${MEMORY_SIZE}`,
        accessLog,
      });
      if (peer.accessLogFile !== undefined) {
        trimWhileRunning(peer, peer.accessLogFile);
        removeOnExit(peer, dirname(peer.accessLogFile));
      }
      try {
        await checkBodies(port, probes);
      } catch (err) {
        await peer.stop();
        throw new Error(`nginx (side ${side.label}) does not forward: ${(err as Error).message}`);
      }
      return { peer, port, adminPort: undefined };
    }
    const adminPort = metricsOn(side.label) ? await freePort() : undefined;
    const peer = await startLoch(side.tree, {
      port,
      upstreamPort: backendPort,
      cpu: PROXY_CPU,
      probes,
      workers,
      adminPort,
      accessLog,
      runtime: runtimeLines(side.label),
      env: sideEnv(side.label),
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
    const page = renderPage({ started, loadBefore, sides, points, memory, warnings, flagged, done });
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `ab-${stamp}.md`), page);
    writeFileSync(
      join(resultsDir, `ab-${stamp}.json`),
      `${JSON.stringify({ started, machine: machineSummary(), args: runnerArgs(), workers, sides, points, memory, warnings, flagged }, null, 2)}\n`,
    );
    return page;
  };

  try {
    for (let round = 0; round < rounds; round++) {
      const order = orderOf(round, sides);
      log(`round ${round + 1}/${rounds}: ${order.map((s) => s.label).join(' then ')}`);
      // One fresh instance per side per round serves every size (like http-proxy/run.ts); the
      // side not being measured sits idle on the same CPUs.
      const running = new Map<AbSide, Awaited<ReturnType<typeof start>>>();
      try {
        for (const side of order) running.set(side, await start(side));
        // A fresh proxy first serves unmeasured load (--start-warmup): loch's workers compile their
        // hot code in their first seconds (each worker its own isolate), which a proxy pays once
        // per start, not per request: without this the round's first size carried it (session 44:
        // 2 workers, 128 B, 6 s windows from start 21.0, 19.2, 16.1, 18.0 us a request).
        if (startWarmupSeconds > 0)
          for (const side of order) {
            const { peer, port } = running.get(side)!;
            await checkedReading(
              `round ${round + 1} ${side.label} start warm-up`,
              peer,
              `http://127.0.0.1:${port}/${sizes[0]}`,
              {
                seconds: startWarmupSeconds,
                warmupSeconds: 0,
                flagged,
                headers: loadHeaders,
              },
            );
          }
        for (const size of sizes) {
          for (const [position, side] of order.entries()) {
            const { peer, port, adminPort } = running.get(side)!;
            const what = `round ${round + 1} ${side.label} ${formatSize(size)}`;
            const m = await checkedReading(what, peer, `http://127.0.0.1:${port}/${size}`, {
              seconds,
              warmupSeconds,
              flagged,
              headers: loadHeaders,
            });
            if (adminPort !== undefined && (await countedRequests(adminPort)) < m.requests)
              flagged.push(`${what}: metrics on, but /metrics counted fewer requests than wrk made`);
            points.push({ round: round + 1, position: position + 1, side: side.label, size, m });
            log(
              `  ${side.label} ${formatSize(size)}: ${Math.round(m.requestsPerSecond)} req/s, ` +
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
          for (const side of order) {
            // A fresh instance per reading: the previous reading's connections leave a grown heap.
            const { peer, port } = await start(side);
            try {
              const r =
                state === 'quiet'
                  ? await quietConnectionMemory(peer, port, options)
                  : await busyConnectionMemory(peer, port, { ...options, connections: busyConnections });
              const what = `round ${round + 1} ${side.label} ${state}`;
              if (r.connections < idleCount)
                flagged.push(
                  `${what}: ${r.connections} of ${idleCount} idle connections opened (${r.failed} failed)`,
                );
              memory.push({ round: round + 1, side: side.label, state, r });
              log(
                `  ${side.label} ${state}: ${r.connections} conns, RSS ${r.baselineKiB} -> ${r.withConnectionsKiB} KiB, ` +
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
  sides: readonly [AbSide, AbSide];
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

  const cpuRows = metricRows((m) => m.cpuUsPerRequest);
  const name = (s: AbSide) => (s.tree === undefined ? 'nginx' : `loch ${s.tree.revision.split(' ')[0]}`);
  const out: string[] = [];
  out.push(
    `# A/B: interleaved HTTP/1.1 proxy benchmark, ${name(r.sides[0])} (A) vs ${name(r.sides[1])} (B)`,
    '',
  );
  out.push(
    `Generated by \`pnpm --filter @loch/bench bench:ab -- ${runnerCommandLine()}\` on ${r.started.toISOString()}` +
      `${r.done ? '' : ' (**incomplete: run still going or interrupted**)'}: ${roundsDone} of ${rounds} rounds, ` +
      `${seconds} s per point after a ${warmupSeconds} s warm-up, ${workers} worker(s); ` +
      `each round's fresh proxies first serve ${startWarmupSeconds} s of the first size, unmeasured` +
      (loadHeaders.length > 0 ? `; every request on a new connection (wrk -H '${loadHeaders[0]}').` : '.'),
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${r.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}.`,
    '',
    markdownTable(
      ['side', 'proxy', 'built', 'metrics', 'access log'],
      r.sides.map((s) => [
        s.label,
        s.what,
        s.tree?.builtAt.toISOString() ?? '-',
        s.tree === undefined ? 'none (nginx has none)' : metricsOn(s.label) ? 'on' : 'off',
        accessLogOn(s.label)
          ? s.tree === undefined
            ? 'on: `combined`, unbuffered (as nginx ships)'
            : 'on: text, to a file'
          : 'off',
      ]),
    ),
    '',
    `Method: the reference proxy benchmark with ${workers} worker(s): wrk -t1 -c64 (CPU ${LOAD_CPU}) -> the proxy ` +
      `(CPU ${PROXY_CPU}; loch \`runtime.workers = ${workers}\`, nginx \`worker_processes ${workers}\`) -> nginx static ` +
      `(CPU ${LOAD_CPU}); bench:http-proxy's configs (a loch side: the same generated config for every checkout). ` +
      'Each round starts one fresh instance per side and, for each body size, measures both sides back to back; ' +
      'round 1 runs A first, round 2 B first, and so on (A B, B A, ...), so drift of the machine lands on both ' +
      "sides. CPU us/req = utime+stime of the proxy's process tree during the measured wrk run / requests served " +
      '(/proc ticks are 10 ms). "B/A per round" is the median [min, max] of the paired per-round ratios, the ' +
      'verdict figure (each ratio pairs two readings taken back to back); "disjoint" means the two sides\' ' +
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
    abTable('body', cpuRows, 2),
    '',
    '### Verdict per size: B/A of CPU per request, round by round',
    '',
    verdictTable('body', cpuRows),
    '',
    '## User CPU microseconds per request',
    '',
    abTable(
      'body',
      metricRows((m) => m.cpuUsPerRequest - m.sysUsPerRequest),
      2,
    ),
    '',
    '## System CPU microseconds per request',
    '',
    abTable(
      'body',
      metricRows((m) => m.sysUsPerRequest),
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
        `\`GET /${MEMORY_SIZE}\`; a fresh instance per reading, RSS of its whole process tree (nginx: master and workers). Bytes per connection = (RSS with the connections - ` +
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
      [
        'round',
        'body',
        'side',
        'ran',
        'req/s',
        'CPU us/req',
        'user us/req',
        'sys us/req',
        'p50 ms',
        'p99 ms',
        'errors',
      ],
      r.points.map((p) => [
        String(p.round),
        formatSize(p.size),
        p.side,
        p.position === 1 ? 'first' : 'second',
        Math.round(p.m.requestsPerSecond).toLocaleString('en-US'),
        p.m.cpuUsPerRequest.toFixed(2),
        (p.m.cpuUsPerRequest - p.m.sysUsPerRequest).toFixed(2),
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
