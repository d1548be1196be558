/**
 * The echo benchmark: a TCP echo server on Loch's io_uring driver beside a plain node:net echo
 * server, 64 connections of 64-byte ping-pong messages. Reports messages/s and the server
 * process's CPU microseconds per message (utime+stime from /proc). Server pinned to CPU 1, load
 * generator to CPU 0. Usage: `node --import tsx bench/echo/run.ts [seconds=5] [rounds=2] [pipeline=1]`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '../lib/measure.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 2);
/** Messages in flight per connection: 1 is ping-pong; more saturates the server. */
const pipeline = Number(process.argv[4] ?? 1);
const here = fileURLToPath(new URL('.', import.meta.url));
const CONNS = 64;
const SIZE = 64;

interface Row {
  server: string;
  messagesPerSecond: number;
  cpuMicrosPerMessage: number;
}

function run(cpu: string, args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof spawn> {
  return spawn('taskset', ['-c', cpu, process.execPath, '--import', 'tsx', ...args], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
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

type Mode = 'net' | 'immediate' | 'tick' | 'microtask';
const MODES: readonly Mode[] = ['net', 'immediate', 'tick', 'microtask'];
const LABELS: Record<Mode, string> = {
  net: 'node:net',
  immediate: 'loch uring, flush per loop turn (setImmediate)',
  tick: 'loch uring, flush per tick (process.nextTick)',
  microtask: 'loch uring, flush per microtask checkpoint (queueMicrotask)',
};

async function measure(mode: Mode): Promise<Row> {
  const server = run('1', ['server.ts', mode === 'net' ? 'net' : 'uring', '0'], {
    LOCH_URING_FLUSH: mode === 'net' ? 'immediate' : mode,
  });
  const ready = await firstLine(server);
  const port = Number(ready.split(' ')[1]);
  const pid = server.pid!;
  const client = run('0', [
    'client.ts',
    String(port),
    String(CONNS),
    String(SIZE),
    String(seconds * 1000),
    String(pipeline),
  ]);
  // Skip connection setup and warm-up: sample CPU from 1 s into the run.
  await new Promise((r) => setTimeout(r, 1000));
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  const result = JSON.parse(await firstLine(client)) as { messages: number; seconds: number };
  const cpu1 = cpuSeconds(pid);
  const t1 = process.hrtime.bigint();
  server.kill('SIGKILL');
  const rate = result.messages / result.seconds;
  const windowSeconds = Number(t1 - t0) / 1e9;
  return {
    server: LABELS[mode],
    messagesPerSecond: Math.round(rate),
    cpuMicrosPerMessage: ((cpu1 - cpu0) * 1e6) / (rate * windowSeconds),
  };
}

const rows: Row[] = [];
for (let r = 0; r < rounds; r++) {
  for (const mode of MODES) rows.push(await measure(mode));
}
console.log(
  `echo: ${CONNS} connections, ${SIZE} B messages, ${pipeline} in flight per connection, ${seconds} s per run, server on CPU 1\n`,
);
console.log('| server | messages/s | server CPU us/message | vs node:net |');
console.log('|---|---|---|---|');
for (let i = 0; i < rows.length; i++) {
  const row = rows[i]!;
  const base = rows[i - (i % MODES.length)]!;
  const ratio = (row.cpuMicrosPerMessage / base.cpuMicrosPerMessage).toFixed(2);
  console.log(
    `| ${row.server} | ${row.messagesPerSecond} | ${row.cpuMicrosPerMessage.toFixed(2)} | ${ratio} |`,
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

if (rounds > 1) {
  const baseCpu = median(rows.filter((r) => r.server === LABELS.net).map((r) => r.cpuMicrosPerMessage));
  console.log(`\nMedians over ${rounds} rounds:\n`);
  console.log('| server | messages/s | server CPU us/message | vs node:net |');
  console.log('|---|---|---|---|');
  for (const mode of MODES) {
    const mine = rows.filter((r) => r.server === LABELS[mode]);
    const cpu = median(mine.map((r) => r.cpuMicrosPerMessage));
    const rate = median(mine.map((r) => r.messagesPerSecond));
    console.log(
      `| ${LABELS[mode]} | ${Math.round(rate)} | ${cpu.toFixed(2)} | ${(cpu / baseCpu).toFixed(2)} |`,
    );
  }
}
