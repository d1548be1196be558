/**
 * Interleaved A/B benchmark over HTTPS (issue 13), the TLS companion of run.ts and http2.ts: is a
 * difference in HTTPS CPU per request, or in what TLS adds to it, bigger than the run-to-run
 * spread? A single bench:https page is not enough: each process settles into its own state for
 * its whole life (30-40% apart between starts of the same build), and the page's "TLS adds" is a
 * difference of two readings. A side is a built checkout of this repo (its `loch`) or `nginx`
 * (ssl + proxy_pass, bench/https/peers.ts's config), so the same form answers "Loch's own TLS
 * records vs OpenSSL's on one build" (`--a T --b T --b-env LOCH_TLS_RECORDS=openssl`), "loch vs
 * nginx" (`--a nginx --b T`) and "before vs after a change" (`--a T1 --b T2`).
 *
 * Layout: bench:https's (wrk -t1 -c64 over TLS 1.3, AES-128-GCM, ECDSA P-256 on CPU 0 -> proxy
 * on CPU 1 with 1 worker, CPUs 0-1 with more -> nginx static over plain HTTP on CPU 0). Each
 * round starts one fresh instance per side; per body size each side is measured over HTTPS and
 * then over plain HTTP on its second port (same process, same state), so TLS adds = HTTPS minus
 * HTTP of one instance in one round. Sides alternate A B, B A, ... round by round, and so does
 * the HTTPS/HTTP order within a side (HTTPS first in odd rounds, HTTP first in even ones), so
 * drift of the machine lands on both. Reports per size the median [min, max] of each side and
 * the paired per-round B/A of HTTPS CPU/request, TLS adds and plain HTTP CPU/request, and every
 * round's raw numbers, on stdout and in bench/results/partial/ab-https-<time>.md (+ .json;
 * git-ignored). A Loch side runs Loch's own TLS 1.3 record layer (loch's default) unless its env
 * says LOCH_TLS_RECORDS=openssl, and is then checked: every TLS connection of a point must have
 * been taken over by Loch's record layer (from /stats), or the page says how many were not. The
 * side's LOCH_TLS_RECORDS is always set, so a checkout from before the default changed runs the
 * same layer. Never builds a tree.
 *
 * Usage: tsx --conditions=@loch/source ab/https.ts --a <checkout|nginx> --b <checkout|nginx>
 *   [--rounds 5] [--sizes 128,11268,65536] [--seconds 8] [--warmup 2] [--workers 1]
 *   [--a-env NAME=VALUE]... [--b-env NAME=VALUE]...
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HTTPS_PROXIES, type HttpsProxy, type HttpsProxySpec, lochSpec, takenOver } from '../https/peers.js';
import { runnerArgs, runnerCommandLine } from '../lib/args.js';
import { formatSize, writeBodies } from '../lib/bodies.js';
import {
  freePort,
  killLivePeers,
  type Measurement,
  machineSummary,
  markdownTable,
  stopPeersOnSignal,
  waitForHttp,
} from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';
import { log } from '../lib/report.js';
import { tlsPolicy, writeTlsCertificates } from '../lib/tls-certs.js';
import { envFlag, numberFlag, orderOf, usageExit } from './flags.js';
import {
  type AbSide,
  CONNECTIONS,
  checkedReading,
  LOAD_CPU,
  openSide,
  proxyCpus,
  sideTrees,
} from './side.js';
import { type AbRow, abTable } from './summary.js';
import { fileStamp, runWarnings } from './tree.js';

const SCRIPT = 'ab/https.ts';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    sizes: { type: 'string', default: '128,11268,65536' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    workers: { type: 'string', default: '1' },
    'a-env': { type: 'string', multiple: true, default: [] },
    'b-env': { type: 'string', multiple: true, default: [] },
  },
});

if (args.a === undefined || args.b === undefined)
  usageExit(
    SCRIPT,
    'usage: ab/https.ts --a <built checkout|nginx> --b <built checkout|nginx> [--rounds 5] ...',
  );
const rounds = numberFlag(SCRIPT, 'rounds', args.rounds, 1);
const sizes = args.sizes.split(',').map((s) => numberFlag(SCRIPT, 'sizes', s, 0));
const seconds = numberFlag(SCRIPT, 'seconds', args.seconds, 1);
const warmupSeconds = numberFlag(SCRIPT, 'warmup', args.warmup, 0);
const workers = numberFlag(SCRIPT, 'workers', args.workers, 1);
const envBySide: Record<string, Record<string, string>> = {
  A: envFlag(SCRIPT, 'a-env', args['a-env']),
  B: envFlag(SCRIPT, 'b-env', args['b-env']),
};

const PROXY_CPU = proxyCpus(workers);
const PROBE_PATH = '/128';

const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'results', 'partial');

/** One side: a proxy spec and, for Loch, its record layer. */
interface Side extends AbSide {
  readonly spec: HttpsProxySpec;
  /** Loch's own TLS 1.3 record layer (the default; not LOCH_TLS_RECORDS=openssl in the side's env). */
  readonly ownRecords: boolean;
}

/** `--a`/`--b`: the word nginx, or a built checkout (relative to where pnpm was run). */
function openHttpsSide(label: string, value: string, cwd: string): Side {
  const env = envBySide[label]!;
  const side = openSide(label, value, cwd, 'nginx (ssl + proxy_pass)');
  if (side.tree === undefined) {
    if (Object.keys(env).length > 0)
      usageExit(SCRIPT, `--${label.toLowerCase()}-env: nginx takes no environment`);
    return { ...side, spec: HTTPS_PROXIES.find((s) => s.name === 'nginx')!, ownRecords: false };
  }
  const ownRecords = env.LOCH_TLS_RECORDS !== 'openssl';
  const spec = lochSpec(ownRecords ? 'loch' : 'openssl', {
    name: `loch ${label}`,
    cli: side.tree.cli,
    cwd: side.tree.root,
    env,
  });
  return { ...side, spec, ownRecords };
}

/** One measured point of one side: the HTTPS and the plain HTTP reading of the same instance. */
interface Point {
  readonly round: number;
  /** 1 if this side ran first at this size in this round, 2 if second. */
  readonly position: number;
  /** Which of the two readings ran first in this round. */
  readonly firstScheme: 'https' | 'http';
  readonly side: string;
  readonly size: number;
  readonly https: Measurement;
  readonly http: Measurement;
  /** HTTPS minus HTTP CPU us/request. */
  readonly tlsAdds: number;
  /** Loch's record layer: TLS connections of this point taken over, and how many there were. */
  readonly takenOver?: { readonly count: number; readonly expected: number };
}

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
  const sides: [Side, Side] = [openHttpsSide('A', args.a!, cwd), openHttpsSide('B', args.b!, cwd)];
  const trees = sideTrees(sides);
  const warnings: string[] = [];
  if (args.a === args.b && envText('A') === envText('B'))
    warnings.push('A and B are the same peer with the same environment: an A/A run (the noise floor).');
  for (const label of ['A', 'B']) {
    if (envText(label) !== '') warnings.push(`${label} runs with ${envText(label)}.`);
  }
  warnings.push(...runWarnings(trees, rounds));
  for (const s of sides) {
    const reason = s.spec.unavailable();
    if (reason !== null) usageExit(SCRIPT, `${s.label}: ${reason}`);
  }
  for (const w of warnings) log(`WARNING: ${w}`);

  const started = new Date();
  const stamp = fileStamp(started);
  const loadBefore = loadavg();
  const perPoint = 2 * (warmupSeconds + seconds + 0.5);
  log(
    `A = ${sides[0].what}, B = ${sides[1].what}; ${rounds} rounds of ${2 * sizes.length} HTTPS + HTTP pairs, ` +
      `about ${Math.round((rounds * (2 * sizes.length * perPoint + 10)) / 60)} min`,
  );

  const certificate = writeTlsCertificates().ecdsa;
  const policy = tlsPolicy('TLSv1.3');
  const root = writeBodies([...new Set([...sizes, 128])]);
  const backendPort = await freePort();
  const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
  await waitForHttp(backendPort, PROBE_PATH);
  log(`backend nginx on 127.0.0.1:${backendPort} (CPU ${LOAD_CPU}), bodies in ${root}`);

  /** Starts `side` fresh on new ports; resolves once its TLS and plain ports both forward. */
  const start = async (side: Side) => {
    const port = await freePort();
    const plainPort = await freePort();
    const proxy = await side.spec.start({
      port,
      plainPort,
      upstreamPort: backendPort,
      workers,
      cpu: PROXY_CPU,
      certificate,
      policy,
      probePath: PROBE_PATH,
    });
    return { proxy, port, plainPort };
  };

  const points: Point[] = [];
  const flagged: string[] = [];
  const write = (done: boolean) => {
    const page = renderPage({ started, loadBefore, sides, points, warnings, flagged, done });
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `ab-https-${stamp}.md`), page);
    writeFileSync(
      join(resultsDir, `ab-https-${stamp}.json`),
      `${JSON.stringify({ started, machine: machineSummary(), args: runnerArgs(), sides: sides.map((s) => ({ label: s.label, what: s.what, tree: s.tree })), env: envBySide, points, warnings, flagged }, null, 2)}\n`,
    );
    return page;
  };

  /** One wrk reading; throws when the proxy stalled or failed requests (the run stops). */
  const reading = (what: string, proxy: HttpsProxy, url: string): Promise<Measurement> =>
    checkedReading(what, proxy.peer, url, { seconds, warmupSeconds, flagged });

  try {
    for (let round = 0; round < rounds; round++) {
      const order = orderOf(round, sides);
      const firstScheme = round % 2 === 0 ? 'https' : 'http';
      log(`round ${round + 1}/${rounds}: ${order.map((s) => s.label).join(' then ')}, ${firstScheme} first`);
      // One fresh instance per side per round serves every size; the side not being measured
      // sits idle on the same CPU.
      const running = new Map<Side, Awaited<ReturnType<typeof start>>>();
      try {
        for (const side of order) running.set(side, await start(side));
        for (const size of sizes) {
          for (const [position, side] of order.entries()) {
            const { proxy, port, plainPort } = running.get(side)!;
            const what = `round ${round + 1} ${side.label} ${formatSize(size)}`;
            const before = side.ownRecords ? await takenOver(proxy) : undefined;
            const urls = {
              https: `https://127.0.0.1:${port}/${size}`,
              http: `http://127.0.0.1:${plainPort}/${size}`,
            };
            const first = await reading(`${what} ${firstScheme}`, proxy, urls[firstScheme]);
            const secondScheme = firstScheme === 'https' ? 'http' : 'https';
            const second = await reading(`${what} ${secondScheme}`, proxy, urls[secondScheme]);
            const https = firstScheme === 'https' ? first : second;
            const http = firstScheme === 'https' ? second : first;
            const after = side.ownRecords ? await takenOver(proxy) : undefined;
            let taken: Point['takenOver'];
            if (before !== undefined && after !== undefined) {
              // wrk opens its connections afresh for the warm-up and the measured run.
              const expected = (warmupSeconds > 0 ? 2 : 1) * CONNECTIONS;
              taken = { count: after - before, expected };
              if (after - before < expected)
                flagged.push(
                  `${what}: ${after - before} of ${expected} TLS connections on Loch's record layer`,
                );
            } else if (side.ownRecords) {
              flagged.push(`${what}: no /stats, so takeovers by Loch's record layer were not checked`);
            }
            const tlsAdds = https.cpuUsPerRequest - http.cpuUsPerRequest;
            points.push({
              round: round + 1,
              position: position + 1,
              firstScheme,
              side: side.label,
              size,
              https,
              http,
              tlsAdds,
              ...(taken === undefined ? {} : { takenOver: taken }),
            });
            log(
              `  ${side.label} ${formatSize(size)}: https ${https.cpuUsPerRequest.toFixed(2)} us/req ` +
                `(${Math.round(https.requestsPerSecond)} req/s), http ${http.cpuUsPerRequest.toFixed(2)}, ` +
                `TLS adds ${tlsAdds.toFixed(2)}` +
                (taken === undefined ? '' : `; ${taken.count}/${taken.expected} on Loch's records`),
            );
          }
        }
      } finally {
        for (const { proxy } of running.values()) await proxy.peer.stop();
      }
      write(false);
    }
  } catch (err) {
    // Leave what was measured, then fail loudly.
    if (points.length > 0) log(`partial results: ${join(resultsDir, `ab-https-${stamp}.md`)}`);
    throw err;
  } finally {
    await backend.stop();
  }
  const page = write(true);
  process.stdout.write(`\n${page}\n`);
  log(`wrote ${join(resultsDir, `ab-https-${stamp}.md`)} (+ .json)`);
}

function renderPage(r: {
  started: Date;
  loadBefore: number[];
  sides: readonly [Side, Side];
  points: readonly Point[];
  warnings: readonly string[];
  flagged: readonly string[];
  done: boolean;
}): string {
  const roundsDone = Math.max(0, ...r.points.map((p) => p.round));
  const rows = (value: (p: Point) => number): AbRow[] =>
    sizes.map((size) => {
      const series = (side: string) =>
        Array.from({ length: roundsDone }, (_, i) => {
          const p = r.points.find((q) => q.round === i + 1 && q.side === side && q.size === size);
          return p === undefined ? Number.NaN : value(p);
        });
      return { label: formatSize(size), a: series('A'), b: series('B') };
    });

  const out: string[] = [];
  out.push('# A/B: interleaved HTTPS proxy benchmark', '');
  out.push(
    `Generated by \`pnpm --filter @loch/bench bench:ab:https -- ${runnerCommandLine()}\` on ${r.started.toISOString()}` +
      `${r.done ? '' : ' (**incomplete: run still going or interrupted**)'}: ${roundsDone} of ${rounds} rounds, ` +
      `${seconds} s per reading after a ${warmupSeconds} s warm-up, ${workers} worker(s).`,
    '',
    `Machine: ${machineSummary()}. Load average before/after: ${r.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
      `${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}.`,
    '',
    markdownTable(
      ['side', 'proxy', 'built', 'environment'],
      r.sides.map((s) => [s.label, s.what, s.tree?.builtAt.toISOString() ?? '-', envText(s.label) || '-']),
    ),
    '',
    `Method: bench:https's layout with ${workers} worker(s): wrk -t1 -c${CONNECTIONS} over TLS 1.3 (TLS_AES_128_GCM_SHA256, ` +
      `ECDSA P-256, every peer pinned to that suite) on CPU 0 -> the proxy on CPU ${PROXY_CPU} -> nginx static over ` +
      'plain HTTP/1.1 keep-alive on CPU 0; the same generated configs as bench:https for both sides. Each round ' +
      'starts one fresh instance per side; per body size each side is read over HTTPS and over plain HTTP on its ' +
      'second port (same process), so TLS adds = HTTPS minus HTTP of one instance in one round. Round 1 runs A ' +
      'first and HTTPS first, round 2 B first and HTTP first, and so on, so drift of the machine lands on both ' +
      'sides and both schemes. CPU us/req = utime+stime of the proxy process tree during the measured wrk run / ' +
      'requests served (/proc ticks are 10 ms). "B/A per round" is the median [min, max] of the paired per-round ' +
      'ratios; "disjoint" means the two sides\' [min, max] ranges do not overlap (with 5 rounds each, a rank test ' +
      "would give p < 0.01). A TLS adds ratio is n/a in a round where A's TLS adds was not positive.",
    '',
  );
  if (r.warnings.length) out.push('Warnings:', '', ...r.warnings.map((w) => `- ${w}`), '');
  if (r.flagged.length)
    out.push('Flagged points (kept in the tables):', '', ...r.flagged.map((f) => `- ${f}`), '');
  out.push(
    '## HTTPS: CPU microseconds per request (lower is better)',
    '',
    abTable(
      'body',
      rows((p) => p.https.cpuUsPerRequest),
      2,
    ),
    '',
    '## What TLS adds: HTTPS minus plain HTTP CPU microseconds per request, same instance and round',
    '',
    abTable(
      'body',
      rows((p) => p.tlsAdds),
      2,
    ),
    '',
    '## Plain HTTP on the same instances: CPU microseconds per request',
    '',
    abTable(
      'body',
      rows((p) => p.http.cpuUsPerRequest),
      2,
    ),
    '',
    '## HTTPS requests/s (higher is better)',
    '',
    abTable(
      'body',
      rows((p) => p.https.requestsPerSecond),
      0,
    ),
    '',
    '## Raw numbers per round',
    '',
    markdownTable(
      [
        'round',
        'body',
        'side',
        'ran',
        'HTTPS req/s',
        'HTTPS CPU us/req',
        'HTTPS sys us/req',
        'HTTP CPU us/req',
        'TLS adds',
        'HTTPS p99 ms',
        "on Loch's records",
      ],
      r.points.map((p) => [
        String(p.round),
        formatSize(p.size),
        p.side,
        `${p.position === 1 ? 'first' : 'second'}, ${p.firstScheme} first`,
        Math.round(p.https.requestsPerSecond).toLocaleString('en-US'),
        p.https.cpuUsPerRequest.toFixed(2),
        p.https.sysUsPerRequest.toFixed(2),
        p.http.cpuUsPerRequest.toFixed(2),
        p.tlsAdds.toFixed(2),
        p.https.p99Ms.toFixed(2),
        p.takenOver === undefined ? '-' : `${p.takenOver.count}/${p.takenOver.expected}`,
      ]),
    ),
    '',
  );
  return out.join('\n');
}

main().catch((err: Error) => {
  process.stderr.write(`ab https: FAILED: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
