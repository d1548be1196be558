/**
 * Workers and node's command-line flags: Node refuses V8 and process-wide flags in a Worker's
 * explicit execArgv (ERR_WORKER_INVALID_EXEC_ARGV), so a program run as `node
 * --max-old-space-size=... loch run` must still start its workers (src/workers/exec-argv.ts).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createWorker, workerExecArgv } from '../src/workers/exec-argv.js';

describe('worker execArgv', () => {
  it('start() runs its workers when node was started with V8 flags', () => {
    const program = fileURLToPath(new URL('./fixtures/flags-main.ts', import.meta.url));
    const out = spawnSync(
      process.execPath,
      [
        '--max-old-space-size=512',
        '--stack-size=900',
        '--conditions=@loch/source',
        '--import',
        'tsx',
        program,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(out.stderr).not.toContain('invalid execArgv');
    expect(out.status).toBe(0);
    const replies = JSON.parse(out.stdout.trim()) as { worker: number; ok: boolean }[];
    expect(replies).toEqual([expect.objectContaining({ worker: 0, ok: true })]);
  }, 90_000); // a node + tsx start with a worker: past vitest's 20 s on a loaded CI machine

  it('a worker given an explicit execArgv with V8 flags starts without them', async () => {
    const worker = createWorker('require("node:worker_threads").parentPort.postMessage(process.execArgv)', {
      eval: true,
      execArgv: ['--max-old-space-size=512', '--no-warnings', '--expose-gc'],
    });
    const seen = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(seen).toEqual(['--no-warnings']);
  });

  it('inherits (no explicit execArgv) unless a required flag is missing', () => {
    expect(workerExecArgv([])).toBeUndefined();
    const needed = workerExecArgv(['--conditions=loch-test-only']);
    expect(needed?.at(-1)).toBe('--conditions=loch-test-only');
  });
});
