/**
 * The echo benchmark: a TCP echo server on Loch's io_uring driver beside a plain node:net echo
 * server, 64 connections of 64-byte ping-pong messages. Reports messages/s and the server
 * process's CPU microseconds per message (utime+stime from /proc, and each alone). Server pinned to CPU 1, load
 * generator to CPU 0. Usage: `node --import tsx bench/echo/run.ts [seconds=5] [rounds=2] [pipeline=1]`.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
  userMicrosPerMessage: number;
  systemMicrosPerMessage: number;
}

/** utime and stime of a process (all its threads), in seconds. */
function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
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
  const cpu0 = cpuTimes(pid);
  const t0 = process.hrtime.bigint();
  const result = JSON.parse(await firstLine(client)) as { messages: number; seconds: number };
  const cpu1 = cpuTimes(pid);
  const t1 = process.hrtime.bigint();
  server.kill('SIGKILL');
  const rate = result.messages / result.seconds;
  const windowSeconds = Number(t1 - t0) / 1e9;
  const perMessage = (seconds: number) => (seconds * 1e6) / (rate * windowSeconds);
  const user = perMessage(cpu1.user - cpu0.user);
  const system = perMessage(cpu1.system - cpu0.system);
  return {
    server: LABELS[mode],
    messagesPerSecond: Math.round(rate),
    cpuMicrosPerMessage: user + system,
    userMicrosPerMessage: user,
    systemMicrosPerMessage: system,
  };
}

const rows: Row[] = [];
for (let r = 0; r < rounds; r++) {
  for (const mode of MODES) rows.push(await measure(mode));
}
console.log(
  `echo: ${CONNS} connections, ${SIZE} B messages, ${pipeline} in flight per connection, ${seconds} s per run, server on CPU 1\n`,
);
console.log('| server | messages/s | server CPU us/message | user | system | vs node:net |');
console.log('|---|---|---|---|---|---|');
for (let i = 0; i < rows.length; i++) {
  const row = rows[i]!;
  const base = rows[i - (i % MODES.length)]!;
  printRow(row.server, row, row.cpuMicrosPerMessage / base.cpuMicrosPerMessage);
}

function printRow(label: string, row: Omit<Row, 'server'>, ratio: number): void {
  const us = (v: number) => v.toFixed(2);
  console.log(
    `| ${label} | ${Math.round(row.messagesPerSecond)} | ${us(row.cpuMicrosPerMessage)} | ${us(row.userMicrosPerMessage)} | ${us(row.systemMicrosPerMessage)} | ${ratio.toFixed(2)} |`,
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

if (rounds > 1) {
  const baseCpu = median(rows.filter((r) => r.server === LABELS.net).map((r) => r.cpuMicrosPerMessage));
  console.log(`\nMedians over ${rounds} rounds (each column on its own):\n`);
  console.log('| server | messages/s | server CPU us/message | user | system | vs node:net |');
  console.log('|---|---|---|---|---|---|');
  for (const mode of MODES) {
    const mine = rows.filter((r) => r.server === LABELS[mode]);
    const cpu = median(mine.map((r) => r.cpuMicrosPerMessage));
    printRow(
      LABELS[mode],
      {
        messagesPerSecond: median(mine.map((r) => r.messagesPerSecond)),
        cpuMicrosPerMessage: cpu,
        userMicrosPerMessage: median(mine.map((r) => r.userMicrosPerMessage)),
        systemMicrosPerMessage: median(mine.map((r) => r.systemMicrosPerMessage)),
      },
      cpu / baseCpu,
    );
  }
}
