#!/usr/bin/env node
// Runs the TLS engine's workload (leak-workload.mjs) under valgrind memcheck and fails when a
// definitely lost block's stack passes through loch_tls.node (OpenSSL runs inside the node
// binary, so a leaked SSL, session, certificate or BIO shows a stack through the addon).
// Needs valgrind and the openssl CLI; about 20 s. Not part of `pnpm test`.
// Usage: node scripts/leak-check.mjs [--cycles 20] [--keep-log]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const at = process.argv.indexOf('--cycles');
const cycles = at > 0 ? process.argv[at + 1] : '20';
const dir = mkdtempSync(join(tmpdir(), 'loch-tls-leak-'));
execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=localhost'],
    ...['-addext', 'subjectAltName=DNS:localhost'],
  ],
  { cwd: dir, stdio: 'ignore' },
);
const result = spawnSync(
  'valgrind',
  [
    '--leak-check=full',
    '--show-leak-kinds=definite',
    '--num-callers=40',
    process.execPath,
    '--jitless',
    '--expose-gc',
    join(here, 'leak-workload.mjs'),
    cycles,
  ],
  { encoding: 'utf8', env: { ...process.env, LOCH_LEAK_DIR: dir } },
);
const log = `${result.stdout}\n${result.stderr}`;
if (process.argv.includes('--keep-log')) writeFileSync(join(here, '..', 'leak-check.log'), log);
rmSync(dir, { recursive: true, force: true });
if (!log.includes('leak workload done')) {
  console.error(log.slice(-4000));
  console.error('tls leak check: the workload did not finish');
  process.exit(1);
}
// Each loss record: from "N bytes in M blocks are definitely lost" to the next blank line.
const records = log.split(/\n==\d+== \n/).filter((r) => /definitely lost in loss record/.test(r));
const ours = records.filter((r) => r.includes('loch_tls'));
const summary = /definitely lost: [^\n]+/.exec(log)?.[0] ?? 'no summary';
if (ours.length > 0) {
  console.error(ours.join('\n\n'));
  console.error(`tls leak check: ${ours.length} leak(s) through loch_tls.node (${summary})`);
  process.exit(1);
}
console.log(`tls leak check: no leak through loch_tls.node (${cycles} cycles; ${summary})`);
