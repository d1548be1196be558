/**
 * A preload for turns.sh (issue 18: loch's p99 latency and requests/s below nginx's at small
 * bodies): in each of loch's worker threads, how long the event loop's turns are and what runs in
 * the long ones. Counted, in the worker itself:
 *
 * - a turn: from the first callback of a loop iteration that this preload sees (a completion
 *   batch of the ring, a timer, an interval, an immediate) to the end of the ring's flush (its
 *   setImmediate, once per turn under load); so the poll phase's idle wait is not in it, and the
 *   microtasks after each callback are;
 * - per turn: the ring's completion callbacks and their CQEs, the timers and intervals run (by
 *   function name) and their milliseconds, the flush's milliseconds, and the garbage
 *   collections that started inside the turn (PerformanceObserver 'gc': kind and milliseconds);
 * - a histogram of turn lengths (ms), of completion batch lengths, and of GC pauses by kind;
 *   the longest turns (the 40 longest and every turn over LOCH_TURNS_LONG_MS, default 2, up to
 *   4,000) each with what ran in it.
 *
 * Asked by the file $LOCH_TURNS_DIR/mark as counts-preload.cjs (a 50 ms unref'd interval reads
 * it): each time its text changes the thread appends one JSON line (the counts since the last
 * mark) to $LOCH_TURNS_DIR/turns-<tid>.txt and starts counting afresh. Costs per turn: three
 * performance.now() reads and a few field updates; one closure per setTimeout/setInterval/
 * setImmediate call (the ring's flush is one setImmediate per turn).
 *
 * Usage: LOCH_TURNS_DIR=<dir> LOCH_COUNTS_NATIVE=<abs path of loch_native.node> \
 *   node --require <abs>/turns-preload.cjs <loch's entry> run -c ...
 */
const { isMainThread } = require('node:worker_threads');

const dir = process.env.LOCH_TURNS_DIR;
if (!isMainThread && dir !== undefined && dir !== '') {
  const fs = require('node:fs');
  const path = require('node:path');
  const { watchMark } = require('../lib/mark-file.cjs');
  const { PerformanceObserver, constants, performance } = require('node:perf_hooks');
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  const longMs = Number(process.env.LOCH_TURNS_LONG_MS ?? 2);
  const now = () => performance.now();
  /** Histogram bounds (ms); the last bucket is everything above. */
  const BOUNDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 250];
  const histogram = () => ({ counts: new Array(BOUNDS.length + 1).fill(0), sum: 0, max: 0, n: 0 });
  const add = (h, ms) => {
    let i = 0;
    while (i < BOUNDS.length && ms > BOUNDS[i]) i++;
    h.counts[i]++;
    h.sum += ms;
    h.n++;
    if (ms > h.max) h.max = ms;
  };
  let since = now();
  let turns = histogram();
  let batches = histogram();
  let gcPauses = { minor: histogram(), major: histogram(), other: histogram() };
  let long = [];
  let totals = { turns: 0, batches: 0, cqes: 0, timers: 0, timerMs: 0, flushMs: 0, batchMs: 0 };
  /** Completions with a negative result, by errno (CQ records of three words: slot, res, flags). */
  let errors = {};

  // The turn being counted (null: none started since the last flush ended).
  let turn = null;
  let depth = 0;
  // The end of the last turn: the time from it to the next turn's start is the loop's wait.
  let lastEnd = -1;
  let gaps = histogram();
  const begin = (t) => {
    if (turn === null) {
      turn = { start: t, batches: 0, cqes: 0, batchMs: 0, timers: {}, timerMs: 0, flushMs: 0, gapMs: 0 };
      if (lastEnd >= 0) {
        turn.gapMs = t - lastEnd;
        add(gaps, turn.gapMs);
      }
    }
    return turn;
  };
  const end = (t) => {
    const cur = turn;
    turn = null;
    lastEnd = t;
    if (cur === null) return;
    const ms = t - cur.start;
    add(turns, ms);
    totals.turns++;
    if (ms >= longMs || long.length < 40) {
      cur.ms = ms;
      long.push(cur);
      if (long.length > 4000) {
        long.sort((a, b) => b.ms - a.ms);
        long.length = 2000;
      }
    }
  };

  // Completion batches of the ring: wrap the callback the runtime hands the addon's init().
  try {
    const native = require(process.env.LOCH_COUNTS_NATIVE);
    const init = native.init;
    native.init = function (sq, cq, callback, options) {
      const timed = (n) => {
        // Failed completions by errno (ENOBUFS: a multishot recv found the buffer pool empty).
        for (let i = 0, o = 0; i < n; i++, o += 3) {
          const res = cq[o + 1];
          if (res < 0) errors[-res] = (errors[-res] ?? 0) + 1;
        }
        const t0 = now();
        const cur = begin(t0);
        depth++;
        try {
          return callback(n);
        } finally {
          depth--;
          const ms = now() - t0;
          if (depth === 0) {
            cur.batches++;
            cur.cqes += n;
            cur.batchMs += ms;
            add(batches, ms);
            totals.batches++;
            totals.cqes += n;
            totals.batchMs += ms;
          }
        }
      };
      return init.call(this, sq, cq, timed, options);
    };
  } catch {
    // No addon: turns are then timers and immediates only.
  }

  const wrapTimer = (original, kind) =>
    function (fn, ...rest) {
      if (typeof fn !== 'function') return original.call(this, fn, ...rest);
      const name = `${kind}:${fn.name || 'anonymous'}`;
      const timed = function (...args) {
        const t0 = now();
        const cur = begin(t0);
        try {
          return fn.apply(this, args);
        } finally {
          const ms = now() - t0;
          cur.timers[name] = (cur.timers[name] ?? 0) + ms;
          cur.timerMs += ms;
          totals.timers++;
          totals.timerMs += ms;
        }
      };
      return original.call(this, timed, ...rest);
    };
  const setIntervalOriginal = globalThis.setInterval;
  globalThis.setTimeout = wrapTimer(globalThis.setTimeout, 'timeout');
  globalThis.setInterval = wrapTimer(globalThis.setInterval, 'interval');
  const setImmediateOriginal = globalThis.setImmediate;
  const isFlush = new WeakMap();
  globalThis.setImmediate = function (fn, ...rest) {
    if (typeof fn !== 'function') return setImmediateOriginal.call(this, fn, ...rest);
    // The ring's flush (Ring.flushBound, an arrow function named flushBound) ends the turn.
    let flush = isFlush.get(fn);
    if (flush === undefined) {
      flush = fn.name === 'flushBound' || /this\.flush\(\)/.test(Function.prototype.toString.call(fn));
      isFlush.set(fn, flush);
    }
    const name = `immediate:${fn.name || 'anonymous'}`;
    return setImmediateOriginal.call(
      this,
      function (...args) {
        const t0 = now();
        const cur = begin(t0);
        try {
          return fn.apply(this, args);
        } finally {
          const t1 = now();
          if (flush) {
            cur.flushMs += t1 - t0;
            totals.flushMs += t1 - t0;
            end(t1);
          } else {
            cur.timers[name] = (cur.timers[name] ?? 0) + (t1 - t0);
            cur.timerMs += t1 - t0;
          }
        }
      },
      ...rest,
    );
  };

  // Garbage collections, with their start on performance.now()'s scale (joined to turns below).
  let gcs = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = e.detail?.kind ?? e.kind;
      const k =
        kind === constants.NODE_PERFORMANCE_GC_MINOR
          ? 'minor'
          : kind === constants.NODE_PERFORMANCE_GC_MAJOR
            ? 'major'
            : 'other';
      add(gcPauses[k], e.duration);
      gcs.push({ k, start: e.startTime, ms: e.duration });
      if (gcs.length > 100_000) gcs.splice(0, 50_000);
    }
  }).observe({ entryTypes: ['gc'] });

  const report = (mark) => {
    const t = now();
    const seconds = (t - since) / 1000;
    long.sort((a, b) => b.ms - a.ms);
    // GCs that started inside each long turn.
    const gcIn = (x) => gcs.filter((g) => g.start >= x.start && g.start <= x.start + x.ms);
    const named = long.slice(0, 40).map((x) => {
      const g = gcIn(x);
      return {
        ms: +x.ms.toFixed(3),
        gapBeforeMs: +x.gapMs.toFixed(3),
        batches: x.batches,
        cqes: x.cqes,
        batchMs: +x.batchMs.toFixed(3),
        flushMs: +x.flushMs.toFixed(3),
        timers: Object.fromEntries(Object.entries(x.timers).map(([k, v]) => [k, +v.toFixed(3)])),
        gc: g.map((y) => `${y.k} ${y.ms.toFixed(2)}`),
      };
    });
    // Over every long turn: how many had a GC in them, and the milliseconds of each part.
    const over = long.filter((x) => x.ms >= longMs);
    let withGc = 0;
    let gcMs = 0;
    let overMs = 0;
    let overBatchMs = 0;
    let overTimerMs = 0;
    let overFlushMs = 0;
    for (const x of over) {
      const g = gcIn(x);
      if (g.length > 0) withGc++;
      for (const y of g) gcMs += y.ms;
      overMs += x.ms;
      overBatchMs += x.batchMs;
      overTimerMs += x.timerMs;
      overFlushMs += x.flushMs;
    }
    const line = {
      mark,
      tid,
      seconds: +seconds.toFixed(3),
      bounds: BOUNDS,
      totals,
      errors,
      turns,
      gaps,
      batches,
      gc: gcPauses,
      scavengesPerSecond: +(gcPauses.minor.n / seconds).toFixed(2),
      long: {
        overMs: longMs,
        count: over.length,
        withGc,
        ms: +overMs.toFixed(2),
        gcMs: +gcMs.toFixed(2),
        batchMs: +overBatchMs.toFixed(2),
        timerMs: +overTimerMs.toFixed(2),
        flushMs: +overFlushMs.toFixed(2),
      },
      longest: named,
    };
    fs.appendFileSync(path.join(dir, `turns-${tid}.txt`), `${JSON.stringify(line)}\n`);
    since = t;
    turns = histogram();
    gaps = histogram();
    batches = histogram();
    gcPauses = { minor: histogram(), major: histogram(), other: histogram() };
    long = [];
    gcs = [];
    errors = {};
    totals = { turns: 0, batches: 0, cqes: 0, timers: 0, timerMs: 0, flushMs: 0, batchMs: 0 };
  };

  // Not through the wrapper: the mark's reads are this preload's, not loch's.
  watchMark(dir, report, { setIntervalFn: setIntervalOriginal });
}
