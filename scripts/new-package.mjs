#!/usr/bin/env node
// Scaffolds a new workspace package under packages/<name> with the layout every Loch package
// shares (exports with types and a source condition, build/typecheck/test/bench scripts, README,
// example). Not for apps/ or native/, whose build steps differ.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [name, ...description] = process.argv.slice(2);
if (!name || !/^[a-z][a-z0-9-]*$/.test(name)) {
  console.error('usage: node scripts/new-package.mjs <name> [description...]');
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'packages', name);
if (existsSync(join(dir, 'package.json'))) {
  console.error(`packages/${name} already exists`);
  process.exit(1);
}
const write = (file, text) => {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, file), text);
};
const pkg = {
  name: `@loch/${name}`,
  version: '0.0.0',
  description: description.join(' ') || `Loch ${name}`,
  license: 'Apache-2.0',
  type: 'module',
  engines: { node: '>=20' },
  exports: {
    '.': { '@loch/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
    './internal/*': null,
    './package.json': './package.json',
  },
  main: './dist/index.js',
  types: './dist/index.d.ts',
  files: ['dist', 'src', '!src/**/*.test.ts', '!src/**/*.test-d.ts', 'README.md', 'CHANGELOG.md'],
  sideEffects: false,
  scripts: {
    build: 'tsc -b tsconfig.build.json',
    typecheck: 'tsc -p tsconfig.json',
    test: 'vitest run --typecheck',
    bench: 'vitest bench --run',
    example: 'tsx --conditions=@loch/source examples/basic.ts',
  },
};
write('package.json', `${JSON.stringify(pkg, null, 2)}\n`);
write(
  'tsconfig.json',
  `${JSON.stringify({ extends: '../../tsconfig.base.json', compilerOptions: { noEmit: true, composite: false, incremental: false, declaration: false, declarationMap: false, customConditions: ['@loch/source'] }, include: ['src', 'test', 'bench', 'examples'] }, null, 2)}\n`,
);
write(
  'tsconfig.build.json',
  `${JSON.stringify({ extends: '../../tsconfig.base.json', compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' }, include: ['src'], exclude: ['src/**/*.test.ts', 'src/**/*.test-d.ts'], references: [] }, null, 2)}\n`,
);
write(
  'vitest.config.ts',
  "import { defineConfig, mergeConfig } from 'vitest/config';\nimport shared from '../../vitest.shared.ts';\n\nexport default mergeConfig(shared, defineConfig({}));\n",
);
write('src/index.ts', `/** @loch/${name}: ${pkg.description}. */\nexport {};\n`);
write('README.md', `# @loch/${name}\n\n${pkg.description}.\n`);
console.log(`created packages/${name}; add it to tsconfig.json references and run pnpm install`);
