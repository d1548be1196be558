/**
 * Regression: a uring worker that ends with its ring open (a recv in flight) must not take the
 * process down (it used to exit with SIGSEGV, 139). Each path runs in a child process, because a
 * crash there would kill the test runner: terminate at the stop deadline, stop({ deadline: 0 }),
 * and the worker's own process.exit(1) after its main rejected. Checked against the addon as it
 * was before the async cleanup hook (LOCH_NATIVE_PATH pointed at a build of 7f181bc^): all three
 * paths exit 139 there.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeUring } from '../src/uring/probe.js';

const program = fileURLToPath(new URL('./fixtures/ring-open-stop.ts', import.meta.url));
const available = probeUring().available;

function run(mode: string): { status: number | null; signal: string | null; stdout: string; stderr: string } {
  const out = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=@loch/source', program, mode], {
    encoding: 'utf8',
    // Liveness only: the child compiles TypeScript and starts a worker; at load ~25 one took 19 s.
    timeout: 100_000,
  });
  return { status: out.status, signal: out.signal, stdout: out.stdout, stderr: out.stderr };
}

describe.skipIf(!available)('a uring worker ending with its ring open', () => {
  it.each([
    ['deadline', 'stop({ deadline: 300 }) terminates it', /^ok deadline forced=0$/m],
    ['zero', 'stop({ deadline: 0 }) terminates it', /^ok zero forced=0$/m],
    [
      'reject',
      'its main rejects and it exits with process.exit(1)',
      /^ok reject start failed: .*main rejects/m,
    ],
  ])('%s: %s, and the process exits 0', { timeout: 120_000 }, (mode, _what, expected) => {
    const out = run(mode);
    expect({ status: out.status, signal: out.signal, stderr: out.stderr }).toEqual({
      status: 0,
      signal: null,
      stderr: expect.any(String),
    });
    expect(out.stdout).toMatch(expected);
  });
});
