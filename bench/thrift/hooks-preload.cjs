/**
 * A preload for counts.sh's HOOKS=1 mode (issue 15): in each of loch's worker threads, counts the
 * async resources V8 and node create (async_hooks init, by type: PROMISE, Immediate, Timeout,
 * TickObject, ...) and the promise reaction jobs run (a PROMISE resource's `before`: one await
 * resumption or then() callback each), in the real worker (bin.ts, its ThriftServers and the
 * handler they give ThriftServer), not a harness that builds the service itself as per-call.ts
 * does. With a hook enabled V8 also makes a throwaway promise per `await` that it does not make
 * without one: an await shows as one promise more here than it costs.
 *
 * Asked by the file $LOCH_HOOKS_DIR/mark: a 50 ms unref'd interval reads it, and each time its
 * text changed appends one JSON line (the counts so far) to $LOCH_HOOKS_DIR/thread-<tid>.txt;
 * counts.sh writes the mark before and after the counted load and divides the difference by the
 * load generator's calls. Counting only: the hook slows every promise, so no time read with it
 * loaded means anything.
 *
 * Usage: LOCH_HOOKS_DIR=<dir> node --require <abs>/hooks-preload.cjs ... apps/proxy/src/bin.ts run -c ...
 */
const { isMainThread } = require('node:worker_threads');

const dir = process.env.LOCH_HOOKS_DIR;
if (!isMainThread && dir !== undefined && dir !== '') {
  const fs = require('node:fs');
  const path = require('node:path');
  const { createHook } = require('node:async_hooks');
  const { watchMark } = require('../lib/mark-file.cjs');
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  const created = {};
  const promiseIds = new Set();
  let jobs = 0;
  createHook({
    init(id, type) {
      created[type] = (created[type] ?? 0) + 1;
      if (type === 'PROMISE') promiseIds.add(id);
    },
    before(id) {
      if (promiseIds.has(id)) jobs++;
    },
    promiseResolve() {},
    destroy(id) {
      promiseIds.delete(id);
    },
  }).enable();
  const out = path.join(dir, `thread-${tid}.txt`);
  watchMark(dir, (mark) => {
    fs.appendFileSync(out, `${JSON.stringify({ mark, tid, created, promiseJobs: jobs })}\n`);
  });
}
