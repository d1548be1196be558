#!/usr/bin/env node
// Runs the TLS engine's workloads under valgrind memcheck and fails when a definitely lost block's
// stack passes through the addon (loch_native.node, which embeds the engine and carries sessions
// in its ring, or loch_tls.node; OpenSSL runs inside the node binary, so a leaked SSL, session,
// certificate or BIO shows a stack through the addon): leak-workload.mjs (the engine fed from
// JavaScript) and leak-workload-ring.mts (in-ring TLS on the uring driver, skipped where io_uring
// is refused). Needs valgrind and the openssl CLI; about a minute. Not part of `pnpm test`.
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
const ringUsable =
  spawnSync(process.execPath, [
    '--input-type=module',
    '-e',
    "import { loadNative } from '@loch/native'; process.exit('error' in loadNative() ? 1 : 0)",
  ]).status === 0;
const workloads = [
  { name: 'engine fed from JavaScript', args: ['--expose-gc', join(here, 'leak-workload.mjs')] },
  ...(ringUsable
    ? [
        {
          name: 'in-ring TLS',
          args: [
            '--expose-gc',
            '--conditions=@loch/source',
            '--import',
            'tsx',
            join(here, 'leak-workload-ring.mts'),
          ],
        },
      ]
    : []),
];
let failed = false;
let logs = '';
for (const workload of workloads) {
  const result = spawnSync(
    'valgrind',
    [
      '--leak-check=full',
      '--show-leak-kinds=definite',
      '--num-callers=40',
      process.execPath,
      '--jitless',
      ...workload.args,
      cycles,
    ],
    { encoding: 'utf8', env: { ...process.env, LOCH_LEAK_DIR: dir }, cwd: join(here, '..') },
  );
  const log = `${result.stdout}\n${result.stderr}`;
  logs += log;
  if (!log.includes('leak workload done')) {
    console.error(log.slice(-4000));
    console.error(`tls leak check (${workload.name}): the workload did not finish`);
    failed = true;
    continue;
  }
  // Each loss record: from "N bytes in M blocks are definitely lost" to the next blank line.
  const records = log.split(/\n==\d+== \n/).filter((r) => /definitely lost in loss record/.test(r));
  const ours = records.filter((r) => r.includes('loch_tls') || r.includes('loch_native'));
  const summary = /definitely lost: [^\n]+/.exec(log)?.[0] ?? 'no summary';
  if (ours.length > 0) {
    console.error(ours.join('\n\n'));
    console.error(`tls leak check (${workload.name}): ${ours.length} leak(s) through the addon (${summary})`);
    failed = true;
  } else {
    console.log(
      `tls leak check (${workload.name}): no leak through the addon (${cycles} cycles; ${summary})`,
    );
  }
}
if (process.argv.includes('--keep-log')) writeFileSync(join(here, '..', 'leak-check.log'), logs);
rmSync(dir, { recursive: true, force: true });
if (failed) process.exit(1);
