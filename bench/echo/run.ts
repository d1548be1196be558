/**
 * The echo benchmark: TCP echo servers side by side in one run — Loch's io_uring driver, Loch's
 * legacy (node:net) driver running the same loop, and a plain node:net echo — with 64 connections
 * of ping-pong messages of each size. Reports messages/s and the server process's CPU
 * microseconds per message (utime+stime from /proc, and each alone), per round and as medians.
 * Server pinned to CPU 1, load generator to CPU 0. Not a test; numbers go to bench/results/echo.md.
 *
 * Usage: node --import tsx bench/echo/run.ts [--seconds 5] [--rounds 3] [--sizes 64,16384]
 *          [--servers net,uring,legacy] [--pipeline 1]
 * Servers: net, uring, legacy, the uring flush modes uring-tick, uring-microtask, and uring-defer
 * (the DEFER_TASKRUN experiment: LOCH_URING_DEFER_TASKRUN=1 for the server only).
 * SERVER_NODE_ARGS (space-separated) goes to the server's node, e.g. "--cpu-prof".
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runnerArgs } from '../lib/args.js';

const { values: args } = parseArgs({
  args: runnerArgs(),
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '64,16384' },
    servers: { type: 'string', default: 'net,uring,legacy' },
    pipeline: { type: 'string', default: '1' },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
/** Messages in flight per connection: 1 is ping-pong; more saturates the server. */
const pipeline = Number(args.pipeline);
const sizes = args.sizes.split(',').map(Number);
const here = fileURLToPath(new URL('.', import.meta.url));
const CONNS = 64;

type Mode = 'net' | 'uring' | 'legacy' | 'uring-tick' | 'uring-microtask' | 'uring-defer';
const LABELS: Record<Mode, string> = {
  net: 'node:net (plain)',
  uring: 'loch uring driver',
  legacy: 'loch legacy driver (node:net)',
  'uring-tick': 'loch uring, flush per tick (process.nextTick)',
  'uring-microtask': 'loch uring, flush per microtask checkpoint',
  'uring-defer': 'loch uring, IORING_SETUP_DEFER_TASKRUN (eventfd + GETEVENTS)',
};
const modes = args.servers.split(',') as Mode[];
for (const mode of modes) if (!(mode in LABELS)) throw new Error(`unknown server ${mode}`);

interface Row {
  mode: Mode;
  size: number;
  messagesPerSecond: number;
  cpuMicrosPerMessage: number;
  userMicrosPerMessage: number;
  systemMicrosPerMessage: number;
}

/** utime and stime of a process (all its threads), in seconds. */
function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

function run(cpu: string, args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []) {
  return spawn(
    'taskset',
    // server.ts and client.ts import @loch/uring-runtime: resolve it to src, no build needed.
    ['-c', cpu, process.execPath, '--conditions=@loch/source', ...nodeArgs, '--import', 'tsx', ...args],
    {
      cwd: here,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    },
  );
}

function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (d: Buffer) => {
      text += d.toString();
      const i = text.indexOf('\n');
      if (i >= 0) resolve(text.slice(0, i));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${text}`)));
  });
}

async function measure(mode: Mode, size: number): Promise<Row> {
  const flush = mode === 'uring-tick' ? 'tick' : mode === 'uring-microtask' ? 'microtask' : 'immediate';
  const kind = mode.startsWith('uring') ? 'uring' : mode;
  const nodeArgs = (process.env.SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const server = run(
    '1',
    ['server.ts', kind, '0'],
    { LOCH_URING_FLUSH: flush, LOCH_URING_DEFER_TASKRUN: mode === 'uring-defer' ? '1' : '0' },
    nodeArgs,
  );
  const ready = await firstLine(server);
  const port = Number(ready.split(' ')[1]);
  const pid = server.pid!;
  const client = run('0', [
    'client.ts',
    String(port),
    String(CONNS),
    String(size),
    String(seconds * 1000),
    String(pipeline),
  ]);
  // Skip connection setup and warm-up: sample CPU from 1 s into the run.
  await new Promise((r) => setTimeout(r, 1000));
  const cpu0 = cpuTimes(pid);
  const t0 = process.hrtime.bigint();
  const result = JSON.parse(await firstLine(client)) as { messages: number; seconds: number };
  const cpu1 = cpuTimes(pid);
  const t1 = process.hrtime.bigint();
  const exited = new Promise((r) => server.once('exit', r));
  server.kill(nodeArgs.length > 0 ? 'SIGINT' : 'SIGKILL');
  await exited;
  const rate = result.messages / result.seconds;
  const windowSeconds = Number(t1 - t0) / 1e9;
  const perMessage = (s: number) => (s * 1e6) / (rate * windowSeconds);
  const user = perMessage(cpu1.user - cpu0.user);
  const system = perMessage(cpu1.system - cpu0.system);
  return {
    mode,
    size,
    messagesPerSecond: Math.round(rate),
    cpuMicrosPerMessage: user + system,
    userMicrosPerMessage: user,
    systemMicrosPerMessage: system,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
const loadBefore = load();
const rows: Row[] = [];
for (let r = 0; r < rounds; r++) {
  for (const size of sizes) for (const mode of modes) rows.push(await measure(mode, size));
}
const loadAfter = load();

const us = (v: number) => v.toFixed(2);
const header = '| size | server | messages/s | server CPU us/message | user | system | vs node:net |';
console.log(
  `echo: ${CONNS} connections, ${pipeline} in flight per connection, ${seconds} s per run, ${rounds} rounds, server on CPU 1, client on CPU 0`,
);
console.log(`load average before: ${loadBefore}; after: ${loadAfter}\n`);
console.log('Per round:\n');
console.log(header);
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) {
  const base = rows.find(
    (b) =>
      b.mode === 'net' &&
      b.size === row.size &&
      rows.indexOf(b) <= rows.indexOf(row) &&
      rows.indexOf(row) - rows.indexOf(b) < modes.length,
  );
  const ratio = base ? us(row.cpuMicrosPerMessage / base.cpuMicrosPerMessage) : '-';
  console.log(
    `| ${row.size} B | ${LABELS[row.mode]} | ${row.messagesPerSecond} | ${us(row.cpuMicrosPerMessage)} | ${us(row.userMicrosPerMessage)} | ${us(row.systemMicrosPerMessage)} | ${ratio} |`,
  );
}
console.log(`\nMedians over ${rounds} rounds (each column on its own):\n`);
console.log(header);
console.log('|---|---|---|---|---|---|---|');
for (const size of sizes) {
  const of = (mode: Mode) => rows.filter((r) => r.mode === mode && r.size === size);
  const net = of('net');
  const baseCpu = net.length > 0 ? median(net.map((r) => r.cpuMicrosPerMessage)) : undefined;
  for (const mode of modes) {
    const mine = of(mode);
    const cpu = median(mine.map((r) => r.cpuMicrosPerMessage));
    console.log(
      `| ${size} B | ${LABELS[mode]} | ${Math.round(median(mine.map((r) => r.messagesPerSecond)))} | ${us(cpu)} | ${us(median(mine.map((r) => r.userMicrosPerMessage)))} | ${us(median(mine.map((r) => r.systemMicrosPerMessage)))} | ${baseCpu ? us(cpu / baseCpu) : '-'} |`,
    );
  }
}
