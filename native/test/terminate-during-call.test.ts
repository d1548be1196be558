/**
 * A worker thread terminated while it is inside one of the addon's calls must end quietly, never
 * abort the process. Worker.terminate() stops JavaScript in the worker at once: from then on
 * N-API refuses to create or set values (napi_pending_exception) and refuses to throw, and
 * node-addon-api built without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS turns that refused throw
 * into a FATAL ERROR (abort). trimMemory is the widest window (it runs several full GCs before it
 * builds its answer): loch's idle trim calls it on a timer, so a reload or shutdown that
 * terminates a worker at that moment took the whole process down.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// A child process (an abort must not take the test runner with it) that starts workers which
// call trimMemory in a loop over a heap worth collecting, and terminates each at a staggered
// moment, so some terminations land inside the call.
const CHILD = `
const { Worker } = require('node:worker_threads');
const path = require('node:path');
const index = path.join(process.cwd(), 'index.js');
const body = \`
  import(\${JSON.stringify('file://' + index)}).then((m) => {
    const trim = m.memoryTrimmer();
    if (trim === undefined) { require('node:worker_threads').parentPort.postMessage('no-addon'); return; }
    const keep = [];
    for (let i = 0; i < 20000; i++) keep.push({ i, s: 'x'.repeat(64) });
    require('node:worker_threads').parentPort.postMessage('ready');
    for (;;) { trim(); keep.push({ n: keep.length }); }
  });
\`;
(async () => {
  for (let round = 0; round < 24; round++) {
    const worker = new Worker(body, { eval: true });
    const first = await new Promise((resolve) => worker.once('message', resolve));
    if (first === 'no-addon') { console.log('no-addon'); await worker.terminate(); return; }
    await new Promise((resolve) => setTimeout(resolve, 3 + (round % 6) * 7));
    await worker.terminate();
  }
  console.log('done');
})();
`;

describe('a worker terminated inside an addon call', () => {
  it('ends the worker, not the process (trimMemory)', () => {
    const run = spawnSync(process.execPath, ['-e', CHILD], {
      cwd: new URL('..', import.meta.url).pathname,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (run.stdout.includes('no-addon')) return; // the addon is not built here: nothing to test
    expect(run.stderr).not.toContain('FATAL ERROR');
    expect({ status: run.status, signal: run.signal, stdout: run.stdout.trim() }).toEqual({
      status: 0,
      signal: null,
      stdout: 'done',
    });
  }, 150_000);
});
