/**
 * Runs examples/basic.ts in its own Node process on each driver. Besides keeping the README's
 * example honest, this is where the io_uring driver is exercised: vitest's module runner cannot
 * load the runtime's io_uring module (see availableDrivers), a plain tsx process can.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe.each(['legacy', 'uring'])('examples/basic.ts on the %s driver', (driver) => {
  it('serves and calls itself', async () => {
    let stdout: string;
    try {
      ({ stdout } = await run('npx', ['tsx', '--conditions=@loch/source', 'examples/basic.ts'], {
        cwd: root,
        env: { ...process.env, LOCH_DRIVER: driver },
        timeout: 30_000,
      }));
    } catch (e) {
      // A kernel or sandbox without io_uring: nothing to test on that driver.
      if (driver === 'uring' && /ERR_LOCH_URING_UNAVAILABLE/.test(String((e as { stderr?: string }).stderr)))
        return;
      throw e;
    }
    expect(stdout).toMatch(new RegExp(`listening on 127\\.0\\.0\\.1:\\d+ \\(${driver} driver\\)`));
    expect(stdout).toMatch(/200 hello 127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/200 chunked ping/);
    expect(stdout).toMatch(/connection reusable: true/);
  });
});
