/**
 * Preloaded (`node --require`, through NODE_OPTIONS so worker threads inherit it) into a loch
 * whose JavaScript -> native crossings request-crossings.sh counts: in every thread it loads
 * @loch/native's addon the way native/index.js does (require() of the same .node file: the same
 * exports object in that thread) and wraps each of its functions with a counter by name
 * (packages/tls/test/binding-calls.cjs, which the in-process tests share); the
 * ring's completion callbacks (native -> JavaScript) come from the addon's own crossings()
 * counter. Every 200 ms each thread writes its cumulative counts to
 * $LOCH_BENCH_CROSSINGS/<pid>-<threadId>.json (a timer and a synchronous file write: no addon call).
 * Without the variable it does nothing. Bench-only: not part of Loch.
 */
'use strict';
const out = process.env.LOCH_BENCH_CROSSINGS;
if (out) {
  const { join } = require('node:path');
  const { writeFileSync } = require('node:fs');
  const { threadId } = require('node:worker_threads');
  const root = process.env.LOCH_ROOT || join(__dirname, '..', '..');
  const path = process.env.LOCH_NATIVE_PATH || join(root, 'native', 'build', 'Release', 'loch_native.node');
  const binding = require(path);
  const { calls } = require('../../packages/tls/test/binding-calls.cjs').countCalls(binding, ['crossings']);
  const file = join(out, `${process.pid}-${threadId}.json`);
  setInterval(() => {
    let callbacks = 0;
    try {
      callbacks = binding.crossings()[1];
    } catch {
      // no ring on this thread
    }
    writeFileSync(
      file,
      JSON.stringify({ ...Object.fromEntries(calls), '(completion callbacks)': callbacks }),
    );
  }, 200).unref();
}
