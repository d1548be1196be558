#!/usr/bin/env node
// Builds the addon with node-gyp at install time. A failed build (no compiler, no liburing
// headers) must not fail the install: the runtime then reports why and serves on its legacy
// driver. The reason is written to build/loch-native-build-error.txt for that report.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const errorFile = join(here, 'build', 'loch-native-build-error.txt');
const strict = process.argv.includes('--strict') || process.env.LOCH_NATIVE_STRICT === '1';

// Use the headers installed beside this node binary when they exist (Debian's /usr/include/node,
// official tarballs' <prefix>/include/node): node-gyp then needs no download.
const prefix = resolve(dirname(process.execPath), '..');
// Incremental when this Node already configured the build: every `pnpm install` in the workspace
// runs this script, and a full rebuild would delete the working addon under running processes.
const stamp = join(here, 'build', '.loch-node-version');
const configured =
  !process.argv.includes('--rebuild') &&
  existsSync(join(here, 'build', 'Makefile')) &&
  existsSync(stamp) &&
  readFileSync(stamp, 'utf8') === `${process.version} ${process.arch}`;
const args = [configured ? 'build' : 'rebuild', '--release'];
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
if (process.env.LOCH_NATIVE_DEBUG === '1') args.push('--debug');

const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = null;
}
rmSync(errorFile, { force: true });
const result = gyp
  ? spawnSync(process.execPath, [gyp, ...args], {
      cwd: here,
      stdio: ['ignore', 'inherit', 'pipe'],
      encoding: 'utf8',
    })
  : { status: 1, stderr: 'node-gyp is not installed' };
if (result.status !== 0) {
  const reason = `native build failed (node-gyp ${args.join(' ')}):\n${String(result.stderr ?? '').slice(-4000)}`;
  mkdirSync(dirname(errorFile), { recursive: true });
  writeFileSync(errorFile, reason);
  process.stderr.write(
    `${reason}\n@loch/native: the io_uring driver is unavailable; the legacy driver will be used.\n`,
  );
  process.exit(strict ? 1 : 0);
} else {
  writeFileSync(stamp, `${process.version} ${process.arch}`);
  if (result.stderr) process.stderr.write(result.stderr);
}
