// Properties of the runtime object that only V8 can tell: one hidden class per schema through
// every operation, fast properties, and the fallback when code generation is forbidden. Each
// check runs in a child node process (natives syntax and the codegen flag are per process).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

it('compiled contexts keep one V8 map through set, remove, take, fork and of', () => {
  const result = spawnSync(
    process.execPath,
    ['--allow-natives-syntax', '--import', 'tsx', '--conditions=@loch/source', 'test/shape-probe.ts'],
    { cwd: packageDir, encoding: 'utf8', timeout: 30_000 },
  );
  expect(result.stderr).toBe('');
  expect(JSON.parse(result.stdout)).toEqual({
    implementation: 'compiled',
    sameMap: true,
    fast: true,
    control: false,
  });
});

it('falls back to the record implementation when code generation from strings is forbidden', () => {
  const script =
    "import { defineContext } from '@loch/certain-map';" +
    "const C = defineContext()(['a', 'b']);" +
    "console.log(C.implementation, C.empty().set('a', 1).fork().get('a'), C.empty().has('b'));";
  const result = spawnSync(
    process.execPath,
    [
      '--disallow-code-generation-from-strings',
      '--import',
      'tsx',
      '--conditions=@loch/source',
      '--input-type=module',
      '-e',
      script,
    ],
    { cwd: packageDir, encoding: 'utf8', timeout: 30_000 },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout.trim()).toBe('record 1 false');
});
