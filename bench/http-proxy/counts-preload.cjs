/**
 * A preload for counts-scaling.sh (issue 18, worker scaling): in each of loch's worker threads,
 * counts V8's garbage collections (PerformanceObserver 'gc') and, when asked, writes one line of
 * that thread's counters: @loch/native's crossings() (ring submit calls and completion callbacks
 * into JavaScript: one callback is one completion batch), the GCs so far by kind with their
 * milliseconds, the event loop's active and idle milliseconds, and the thread's Linux tid (so the
 * script can join these lines with perf's and /proc's per-thread numbers).
 *
 * Asked by the file $LOCH_COUNTS_DIR/mark: a 50 ms unref'd interval reads it, and each time its
 * text changed appends a JSON line to $LOCH_COUNTS_DIR/thread-<tid>.txt. Nothing on the request
 * path; the interval is 20 reads of a small file a second per worker.
 *
 * Usage: LOCH_COUNTS_DIR=<dir> LOCH_COUNTS_NATIVE=<abs path of loch_native.node> \
 *   node --require <abs>/counts-preload.cjs --conditions=@loch/source --import tsx apps/proxy/src/bin.ts run -c ...
 */
const { isMainThread } = require('node:worker_threads');

const dir = process.env.LOCH_COUNTS_DIR;
if (!isMainThread && dir !== undefined && dir !== '') {
  const fs = require('node:fs');
  const path = require('node:path');
  const { watchMark } = require('../lib/mark-file.cjs');
  const { PerformanceObserver, constants, performance } = require('node:perf_hooks');
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  const gc = { minor: 0, major: 0, other: 0, minorMs: 0, majorMs: 0, otherMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = e.detail?.kind ?? e.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minor++;
        gc.minorMs += e.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.majorMs += e.duration;
      } else {
        gc.other++;
        gc.otherMs += e.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  const out = path.join(dir, `thread-${tid}.txt`);
  let native;
  watchMark(dir, (mark) => {
    if (native === undefined) {
      try {
        // The runtime loaded it already: the same file is the same module (CJS cache, one env).
        native = require(process.env.LOCH_COUNTS_NATIVE);
      } catch {
        native = null;
      }
    }
    const c = native?.crossings?.() ?? [Number.NaN, Number.NaN, Number.NaN];
    const elu = performance.eventLoopUtilization();
    fs.appendFileSync(
      out,
      `${JSON.stringify({ mark, tid, submits: c[0], callbacks: c[1], ...gc, active: elu.active, idle: elu.idle })}\n`,
    );
  });
}
