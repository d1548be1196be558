// Runs examples/basic.ts the way a user would (node + tsx, package resolved by its own name from
// source), so the README example cannot rot.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

it('examples/basic.ts runs and prints the routed request', () => {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=@loch/source', 'examples/basic.ts'],
    { cwd: packageDir, encoding: 'utf8', timeout: 30_000 },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toContain('req-1 from 10.1.2.3:40000 -> internal:8080');
  expect(result.stdout).toContain('took req-1; requestId present: false');
  expect(result.stdout).toContain('req-retry from 10.1.2.3:40000 -> internal:8080');
  expect(result.stdout).toContain('original has requestId: false');
});
