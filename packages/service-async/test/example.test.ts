// Runs examples/basic.ts the way a user would (node + tsx, package resolved by its own name from
// source), so the README example cannot rot.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

it('examples/basic.ts composes three layers and hot-reloads with state carried over', () => {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=@loch/source', 'examples/basic.ts'],
    { cwd: packageDir, encoding: 'utf8', timeout: 30_000 },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout.trim().split('\n')).toEqual([
    '[v1] /api/a -> 200 hello from /api/a',
    '[v1] /other -> 404 not found',
    '[v1] /api/slow -> 200 hello from /api/slow',
    '[v2] /api/b -> 200 bonjour from /api/b',
    'worker-0: 3 requests',
    'worker-1: 1 requests',
  ]);
});
