/**
 * Issue 16's table: loch (io_uring and legacy) beside nginx and HAProxy under each abuse, the
 * normal client's latency alone and during, its failures, and the proxy's RSS. Runs each
 * scenario's own runner in a child process with `--json` and writes results/abuse.md from their
 * rows (bench/lib/abuse-row.ts):
 * - upload-flood: upload-starvation/run.ts (uploaders flooding a slow upstream);
 * - slowloris: slowloris/run.ts (connections trickling a head byte per second);
 * - slow-readers: slow-readers/run.ts (clients reading a response 16 bytes every 20 ms);
 * - worker-crash: abuse/worker-crash.ts (one of two workers dies under load).
 * The scenarios run one after the other, each peer started fresh. Not a test.
 *
 * Usage: tsx --conditions=@loch/source abuse/run.ts [--quick] [--scenarios a,b] [--peers a,b]
 *   [--uploaders N] [--upload-seconds N] [--upload-mib N] [--slowloris N] [--header-timeout 10s]
 *   [--readers N] [--reader-seconds N] [--reader-mib N] [--crash-seconds N]
 * Defaults take about 8 minutes; --quick (small sizes) about 3.5 and writes to results/partial/,
 * as does any run that leaves out a scenario or a peer.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ABUSE_PEERS, abusePeers } from '../lib/abuse-proxies.js';
import { type AbuseRow, latencyCell } from '../lib/abuse-row.js';
import { runnerArgs } from '../lib/args.js';
import { machineSummary } from '../lib/measure.js';

const SCENARIOS = ['upload-flood', 'slowloris', 'slow-readers', 'worker-crash'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values: o } = parseArgs({
  args: runnerArgs(),
  options: {
    quick: { type: 'boolean', default: false },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    peers: { type: 'string', default: ABUSE_PEERS.join(',') },
    uploaders: { type: 'string' },
    'upload-seconds': { type: 'string' },
    'upload-mib': { type: 'string' },
    slowloris: { type: 'string' },
    'header-timeout': { type: 'string' },
    readers: { type: 'string' },
    'reader-seconds': { type: 'string' },
    'reader-mib': { type: 'string' },
    'crash-seconds': { type: 'string' },
  },
});
const quick = o.quick === true;
const pick = (v: string | undefined, full: string, small: string) => v ?? (quick ? small : full);
const knobs = {
  uploaders: pick(o.uploaders, '96', '32'),
  uploadSeconds: pick(o['upload-seconds'], '15', '3'),
  uploadMib: pick(o['upload-mib'], '8', '1'),
  slowloris: pick(o.slowloris, '10000', '1000'),
  headerTimeout: pick(o['header-timeout'], '10s', '3s'),
  readers: pick(o.readers, '256', '50'),
  readerSeconds: pick(o['reader-seconds'], '20', '4'),
  readerMib: pick(o['reader-mib'], '4', '1'),
  crashSeconds: pick(o['crash-seconds'], '10', '5'),
};
const scenarios = o.scenarios.split(',').filter((s) => s !== '') as Scenario[];
for (const s of scenarios)
  if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s} (known: ${SCENARIOS.join(', ')})`);
const peers = abusePeers(o.peers).join(',');
const partial = quick || scenarios.length < SCENARIOS.length || peers !== ABUSE_PEERS.join(',');

const BENCH = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(BENCH, 'results');

/** What each scenario runs: its script (relative to bench/) and its arguments. */
function command(s: Scenario): { script: string; args: string[]; what: string } {
  switch (s) {
    case 'upload-flood':
      return {
        script: 'upload-starvation/run.ts',
        args: [knobs.uploaders, knobs.uploadSeconds, knobs.uploadMib, peers],
        what: `${knobs.uploaders} clients upload ${knobs.uploadMib} MiB bodies as fast as they can to a route whose upstream reads 64 KiB/s per connection; 1 worker; ${knobs.uploadSeconds} s`,
      };
    case 'slowloris':
      return {
        script: 'slowloris/run.ts',
        args: [knobs.slowloris, peers, knobs.headerTimeout],
        what: `${knobs.slowloris} connections send a request head byte per second; header timeout ${knobs.headerTimeout}; 1 worker`,
      };
    case 'slow-readers':
      return {
        script: 'slow-readers/run.ts',
        args: [knobs.readers, knobs.readerSeconds, knobs.readerMib, peers],
        what: `${knobs.readers} clients (SO_RCVBUF 4 KiB, MSS 1460) read a ${knobs.readerMib} MiB response 16 bytes every 20 ms; 1 worker; ${knobs.readerSeconds} s`,
      };
    case 'worker-crash':
      return {
        script: 'abuse/worker-crash.ts',
        args: [knobs.crashSeconds, peers],
        what: `2 workers serving 16 keep-alive connections of load; one worker dies; ${knobs.crashSeconds} s from the crash`,
      };
  }
}

/** Runs one runner with --json into `file`; resolves with its exit code (its output goes to ours). */
function run(script: string, args: readonly string[], file: string): Promise<number | null> {
  const child = spawn(
    process.execPath,
    ['--conditions=@loch/source', '--import', 'tsx', join(BENCH, script), ...args, '--json', file],
    { cwd: BENCH, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const stop = () => child.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(code);
    }),
  );
}

/** The kept-alive client's latency, where the runner had one, for the note column. */
function keptAlive(r: AbuseRow): string {
  const k = r.keepAlive;
  if (k === undefined) return '';
  return `; kept-alive client alone ${latencyCell(k.alone)}, during ${latencyCell(k.during)} ms, ${k.failed} failed`;
}

const tmp = mkdtempSync(join(tmpdir(), 'loch-abuse-'));
const sections: string[] = [];
const started = Date.now();
for (const s of scenarios) {
  const c = command(s);
  console.log(`== ${s}: ${c.what}`);
  const file = join(tmp, `${s}.json`);
  const code = await run(c.script, c.args, file);
  if (!existsSync(file)) {
    sections.push(`## ${s}\n\n${c.what}.\n\n_The runner exited with ${code} before writing its rows._\n`);
    continue;
  }
  const rows = JSON.parse(readFileSync(file, 'utf8')) as AbuseRow[];
  const lines = [
    '| proxy | normal alone p50 / p99 / max ms | normal during p50 / p99 / max ms | failed | RSS MiB before / peak / after | note |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.peer} | ${latencyCell(r.alone)} | ${latencyCell(r.during)} | ${r.failed} of ${r.during.n} | ${r.rssBeforeMiB ?? '-'} / ${r.rssPeakMiB ?? '-'} / ${r.rssAfterMiB ?? '-'} | ${r.note}${keptAlive(r)} |`,
    ),
  ];
  sections.push(
    `## ${s}\n\n${c.what}.${code === 0 ? '' : ` (The runner exited with ${code}.)`}\n\n${lines.join('\n')}\n`,
  );
}
rmSync(tmp, { recursive: true, force: true });

const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const page = `# Loch under abuse, beside nginx and HAProxy (issue 16)

Generated by \`pnpm --filter @loch/bench bench:abuse${process.argv.slice(2).length > 0 ? ` -- ${runnerArgs().join(' ')}` : ''}\` on ${new Date().toISOString()} (${minutes} min).
${machineSummary()}

The normal client is curl in a process of its own, one GET every 200 ms on a new connection to
the same proxy (and worker) as the abuse; "alone" is a series of them (30; slowloris 50) before
the abuse starts.
"failed" counts normal requests without a 200 within curl's 10 s. RSS is the proxy's whole
process tree (nginx's workers too), before the abuse, its peak, and 3 s after the abusive
clients left. Each peer is started fresh with the same timeouts; see each runner's README
(upload-starvation/, slowloris/, slow-readers/, abuse/) for the setup.

${sections.join('\n')}`;
const out = partial
  ? join(RESULTS, 'partial', `abuse-${new Date().toISOString().replace(/[:.]/g, '-')}.md`)
  : join(RESULTS, 'abuse.md');
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(out, page);
console.log(`\nwrote ${out}`);
