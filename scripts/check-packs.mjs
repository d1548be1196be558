#!/usr/bin/env node
// Proves that every publishable package works when a user installs it alone: packs each one
// (pnpm pack rewrites workspace: ranges), installs the tarball with npm into an empty project
// outside the workspace (with only the tarballs of the @loch packages it depends on), then
// imports it from Node and type-checks an import of it with tsc. A missing file, a wrong
// `exports` map or an undeclared dependency fails here. Not a functional test of the packages.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const only = process.argv.slice(2);

/** Every non-private workspace package: name -> { dir, manifest }. */
function workspacePackages() {
  const out = new Map();
  for (const group of ['packages', 'apps', '.']) {
    const base = join(root, group);
    const dirs = group === '.' ? ['native'] : readdirSync(base);
    for (const d of dirs) {
      const dir = join(base, d);
      let manifest;
      try {
        manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      if (!manifest.private) out.set(manifest.name, { dir, manifest });
    }
  }
  return out;
}

const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

const pkgs = workspacePackages();
const work = mkdtempSync(join(tmpdir(), 'loch-packs-'));
const tarballs = new Map();
let failures = 0;
try {
  for (const [name, { dir }] of pkgs) {
    const out = run('pnpm', ['pack', '--pack-destination', work], dir).trim().split('\n').pop();
    tarballs.set(name, out.startsWith('/') ? out : join(work, out));
  }
  /** The package and every @loch package it depends on, transitively. */
  const closure = (name, seen = new Set()) => {
    if (seen.has(name)) return seen;
    seen.add(name);
    const deps = pkgs.get(name)?.manifest.dependencies ?? {};
    for (const dep of Object.keys(deps)) if (pkgs.has(dep)) closure(dep, seen);
    return seen;
  };
  for (const [name, { manifest }] of pkgs) {
    if (only.length && !only.includes(name)) continue;
    const project = join(work, `use-${name.replace(/[@/]/g, '_')}`);
    mkdirSync(project);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    try {
      const specs = [...closure(name)].map((n) => tarballs.get(n));
      run(
        'npm',
        ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs, '@types/node@20'],
        project,
      );
      // Runtime: the package loads in plain Node by its public name.
      const probe = `const m = await import(${JSON.stringify(name)}); if (Object.keys(m).length === 0) { console.error('no exports'); process.exit(1); }`;
      run(process.execPath, ['--input-type=module', '-e', probe], project);
      // Types: its declared types resolve for a NodeNext TypeScript consumer (with Node's types,
      // which a Node library's users have).
      if (manifest.types || manifest.exports?.['.']?.types) {
        writeFileSync(
          join(project, 'use.ts'),
          `import * as m from ${JSON.stringify(name)};\nexport const keys: string[] = Object.keys(m);\n`,
        );
        writeFileSync(
          join(project, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              module: 'NodeNext',
              moduleResolution: 'NodeNext',
              strict: true,
              noEmit: true,
              types: ['node'],
              skipLibCheck: false,
              lib: ['ES2023'],
            },
            files: ['use.ts'],
          }),
        );
        run(process.execPath, [tsc, '-p', project], project);
      }
      console.log(`ok   ${name}`);
    } catch (err) {
      failures++;
      console.error(`FAIL ${name}\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failures) process.exit(1);
