#!/usr/bin/env node
// Leak check of @loch/native: runs scripts/leak-workload.mts (listen, many connect/echo/close
// over TCP and Unix, cancellations, refused connects, splice, a worker terminated with its ring
// open) under valgrind memcheck, then fails when
//   - valgrind reports a definite leak whose stack passes through the addon or liburing, or
//   - the workload saw its descriptors or io_uring instances not return to their baseline.
// Leaks inside node/V8 itself are listed for information only. Slow (about a minute or more);
// not part of `pnpm test`. Usage: node scripts/leak-check.mjs [--cycles N] [--keep-log]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const cyclesAt = args.indexOf('--cycles');
const cycles = cyclesAt >= 0 ? Number(args[cyclesAt + 1]) : 100;
const keepLog = args.includes('--keep-log');

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('leak-check: valgrind is not installed (apt-get install valgrind)');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'loch-leak-'));
const log = join(dir, 'valgrind.log');
const started = Date.now();
const run = spawnSync(
  'valgrind',
  [
    '--leak-check=full',
    '--show-leak-kinds=definite',
    '--errors-for-leak-kinds=definite',
    '--num-callers=40',
    '--trace-children=no',
    `--log-file=${log}`,
    process.execPath,
    '--jitless',
    '--import',
    'tsx',
    'scripts/leak-workload.mts',
  ],
  { cwd: here, env: { ...process.env, LEAK_CYCLES: String(cycles) }, encoding: 'utf8', timeout: 15 * 60_000 },
);
const seconds = ((Date.now() - started) / 1000).toFixed(0);
const text = readFileSync(log, 'utf8');
const workloadLine = run.stdout.trim().split('\n').pop() ?? '';
let workload;
try {
  workload = JSON.parse(workloadLine);
} catch {
  workload = { ok: false, output: run.stdout, stderr: run.stderr.slice(-2000) };
}

// Split the log into loss records ("N bytes in M blocks are definitely lost ...") with their stacks.
const lines = text.split('\n').map((l) => l.replace(/^==\d+== ?/, ''));
const records = [];
for (let i = 0; i < lines.length; i++) {
  if (!/are definitely lost in loss record/.test(lines[i])) continue;
  const stack = [];
  for (let j = i + 1; j < lines.length && lines[j].trim() !== ''; j++) stack.push(lines[j].trim());
  records.push({ head: lines[i].trim(), stack });
}
const ours = records.filter((r) =>
  r.stack.some((f) => /loch_native|liburing|\bloch::|ring\.cc|net\.cc|addon\.cc/.test(f)),
);
const summary = lines.filter((l) => /definitely lost:|indirectly lost:|possibly lost:|ERROR SUMMARY/.test(l));

console.log(`leak-check: ${cycles} cycles under valgrind in ${seconds} s (exit ${run.status})`);
console.log(`workload: ${JSON.stringify(workload)}`);
for (const l of summary) console.log(`valgrind: ${l.trim()}`);
console.log(
  `definite-loss records: ${records.length} in total, ${ours.length} through @loch/native or liburing`,
);
for (const r of ours) console.log(`\n${r.head}\n  ${r.stack.join('\n  ')}`);
if (keepLog) console.log(`log kept at ${log}`);
else rmSync(dir, { recursive: true, force: true });
const ok = workload.ok === true && ours.length === 0 && run.status === 0;
console.log(ok ? 'leak-check: OK' : 'leak-check: FAILED');
process.exit(ok ? 0 : 1);
