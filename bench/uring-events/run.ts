/**
 * Kernel event counts per request for two builds of loch: how many io_uring submissions,
 * completions, poll arms (a recv that found no data and waits on the socket), io_uring_enter
 * calls, context switches and friends one proxied request costs. Counts per request do not
 * depend on how loaded the machine is, so they complement bench/ab's CPU and requests/s, which
 * do: a change that adds a re-armed receive per request shows here as +1.0 submit/req however
 * noisy the machine.
 *
 * Layout as bench/ab (ab/tree.ts starts each side): wrk -t1 -c64 on CPU 0 -> loch (1 worker) on
 * CPU 1 -> nginx static on CPU 0. Per round and body size, each side gets a fresh loch, a wrk
 * warm-up, then `perf stat -e <events> -p <loch pid>` around a measured wrk run; the counts are
 * divided by the requests wrk completed. Sides alternate order per round (A B, B A, ...).
 * Needs `perf` with tracepoint access (root, or kernel.perf_event_paranoid <= -1).
 *
 * Usage: tsx --conditions=@loch/source uring-events/run.ts --a <built checkout> --b <built checkout>
 *   [--sizes 11268] [--rounds 3] [--seconds 5] [--warmup 2] [--connections 64]
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { type LochTree, openTree, startLoch } from '../ab/tree.js';
import { runnerArgs } from '../lib/args.js';
import { writeBodies } from '../lib/bodies.js';
import { freePort, killLivePeers, runWrk, stopPeersOnSignal, waitForHttp } from '../lib/measure.js';
import { startNginxStatic } from '../lib/nginx.js';

/** What is counted; the short name (after the colon) labels the column. */
const EVENTS = [
  'io_uring:io_uring_submit_req',
  'io_uring:io_uring_complete',
  'io_uring:io_uring_poll_arm',
  'syscalls:sys_enter_io_uring_enter',
  'io_uring:io_uring_queue_async_work',
  'io_uring:io_uring_task_add',
  'io_uring:io_uring_cqring_wait',
  'syscalls:sys_enter_futex',
  'context-switches',
  'page-faults',
  'sock:sock_rcvqueue_full',
] as const;

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    sizes: { type: 'string', default: '11268' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
  },
});

/** A flag's value as an integer of at least `min`, or a loud exit naming the flag. */
function numberFlag(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} ${value}: want an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

if (args.a === undefined || args.b === undefined) {
  process.stderr.write(
    'usage: uring-events/run.ts --a <built checkout> --b <built checkout> [--sizes 11268] [--rounds 3] [--seconds 5]\n',
  );
  process.exit(2);
}
const sizes = args.sizes.split(',').map((s) => numberFlag('sizes', s, 0));
const rounds = numberFlag('rounds', args.rounds, 1);
const seconds = numberFlag('seconds', args.seconds, 1);
const warmup = numberFlag('warmup', args.warmup, 0);
const connections = numberFlag('connections', args.connections, 1);

const shortName = (event: string) => event.replace(/^.*:/, '');

/** Counts of EVENTS by short name for `pid` while `load` runs, and what `load` returned. */
async function countDuring<T>(pid: number, load: () => Promise<T>): Promise<[Map<string, number>, T]> {
  const perf = spawn('perf', ['stat', '-x', ',', '-e', EVENTS.join(','), '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let out = '';
  perf.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => perf.on('exit', resolve));
  const result = await load();
  perf.kill('SIGINT');
  await exited;
  const counts = new Map<string, number>();
  // CSV lines: value,unit,event,... ("<not supported>" or "<not counted>" as value when absent).
  for (const line of out.trim().split('\n')) {
    const fields = line.split(',');
    if (fields.length < 3) continue;
    const value = Number(fields[0]);
    if (Number.isFinite(value)) counts.set(shortName(fields[2]!), value);
  }
  if (counts.size === 0) throw new Error(`perf stat counted nothing (tracepoints need root):\n${out}`);
  return [counts, result];
}

/** Per-request numbers of one side at one size, per round. */
const samples = new Map<string, number[][]>();

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  stopPeersOnSignal();
  process.on('exit', killLivePeers);
  const trees: LochTree[] = [openTree('A', args.a!), openTree('B', args.b!)];
  for (const tree of trees) {
    console.log(`${tree.label}: ${tree.root} ${tree.revision}`);
    if (tree.staleBuilds.length > 0)
      console.log(`  warning: sources newer than the build in ${tree.staleBuilds.join(', ')}`);
  }
  const root = writeBodies([...sizes, 128]);
  const backendPort = await freePort();
  await startNginxStatic({ root, port: backendPort, cpu: '0' });
  await waitForHttp(backendPort, '/128');
  const columns = ['rps', ...EVENTS.map(shortName)];
  console.log(`side size round ${columns.join(' ')} (events per request)`);
  for (let round = 0; round < rounds; round++) {
    for (const size of sizes) {
      for (const tree of round % 2 ? [...trees].reverse() : trees) {
        const port = await freePort();
        const peer = await startLoch(tree, {
          port,
          upstreamPort: backendPort,
          cpu: '1',
          probes: [{ path: `/${size}`, bytes: size }],
        });
        const url = `http://127.0.0.1:${port}/${size}`;
        if (warmup > 0) await runWrk(url, { connections, seconds: warmup, cpu: '0' });
        const [counts, wrk] = await countDuring(peer.pid, () =>
          runWrk(url, { connections, seconds, cpu: '0' }),
        );
        await peer.stop();
        if (wrk.requests === 0) throw new Error(`${tree.label}: wrk completed no request`);
        const row = [
          wrk.requestsPerSecond,
          ...EVENTS.map((e) => (counts.get(shortName(e)) ?? Number.NaN) / wrk.requests),
        ];
        const key = `${tree.label} ${size}`;
        samples.set(key, [...(samples.get(key) ?? []), row]);
        console.log(
          `${tree.label} ${size} r${round + 1} ${row.map((v, i) => (i === 0 ? Math.round(v) : v.toFixed(3))).join(' ')}`,
        );
      }
    }
  }
  console.log(`\nmedians over ${rounds} round(s), events per request:`);
  console.log(`| side | size | ${columns.join(' | ')} |`);
  console.log(`|${' --- |'.repeat(columns.length + 2)}`);
  for (const size of sizes) {
    for (const tree of trees) {
      const rows = samples.get(`${tree.label} ${size}`) ?? [];
      const cells = columns.map((_, i) => {
        const m = median(rows.map((r) => r[i]!));
        return i === 0 ? String(Math.round(m)) : m.toFixed(3);
      });
      console.log(`| ${tree.label} | ${size} | ${cells.join(' | ')} |`);
    }
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
