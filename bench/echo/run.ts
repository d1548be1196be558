/**
 * The echo benchmark: a TCP echo server on Loch's io_uring driver beside a plain node:net echo
 * server, 64 connections of 64-byte ping-pong messages. Reports messages/s and the server
 * process's CPU microseconds per message (utime+stime from /proc). Server pinned to CPU 1, load
 * generator to CPU 0. Usage: `node --import tsx bench/echo/run.ts [seconds] [rounds]`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '../lib/measure.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 2);
const here = fileURLToPath(new URL('.', import.meta.url));
const CONNS = 64;
const SIZE = 64;

interface Row {
  server: string;
  messagesPerSecond: number;
  cpuMicrosPerMessage: number;
}

function run(cpu: string, args: string[]): ReturnType<typeof spawn> {
  return spawn('taskset', ['-c', cpu, process.execPath, '--import', 'tsx', ...args], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'inherit'],
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

async function measure(mode: 'uring' | 'net'): Promise<Row> {
  const server = run('1', ['server.ts', mode, '0']);
  const ready = await firstLine(server);
  const port = Number(ready.split(' ')[1]);
  const pid = server.pid!;
  const client = run('0', ['client.ts', String(port), String(CONNS), String(SIZE), String(seconds * 1000)]);
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
    server: mode === 'uring' ? 'loch uring driver' : 'node:net',
    messagesPerSecond: Math.round(rate),
    cpuMicrosPerMessage: ((cpu1 - cpu0) * 1e6) / (rate * windowSeconds),
  };
}

const rows: Row[] = [];
for (let r = 0; r < rounds; r++) {
  rows.push(await measure('net'));
  rows.push(await measure('uring'));
}
console.log(`echo: ${CONNS} connections, ${SIZE} B ping-pong, ${seconds} s per run, server on CPU 1\n`);
console.log('| server | messages/s | server CPU us/message |');
console.log('|---|---|---|');
for (const row of rows) {
  console.log(`| ${row.server} | ${row.messagesPerSecond} | ${row.cpuMicrosPerMessage.toFixed(2)} |`);
}
