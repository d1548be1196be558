/**
 * Preloaded (`node --require`) into a Loch server whose JavaScript allocation per connection is
 * counted (bench/https/handshake-heap.sh): in every worker thread it opens an inspector session on
 * that thread and, while the file $LOCH_BENCH_HEAP_SITES/start exists and .../stop does not, runs
 * V8's sampling heap profiler with objects the GC already collected kept in the profile
 * (`includeObjectsCollectedByMinorGC`/`MajorGC`): every allocation of the window is sampled,
 * whether it died young or not, so the profile's sizes add up to the bytes allocated (an estimate:
 * one sample per `LOCH_BENCH_HEAP_INTERVAL` bytes on average, 64 by default; LOCH_BENCH_HEAP_LIVE=1
 * keeps only what is still in the heap at the stop: what survived scavenges). It writes
 * `started-<threadId>` once sampling runs and `profile-<threadId>.json` at the stop. The main
 * thread does nothing. Bench-only: not part of Loch; without the variable it does nothing.
 */
'use strict';
const dir = process.env.LOCH_BENCH_HEAP_SITES;
const { isMainThread, threadId } = require('node:worker_threads');
if (dir && !isMainThread) {
  const { existsSync, writeFileSync } = require('node:fs');
  const { Session } = require('node:inspector');
  const interval = Number(process.env.LOCH_BENCH_HEAP_INTERVAL ?? 64);
  // LOCH_BENCH_HEAP_LIVE=1: only what is still in the heap at the stop (survivors of the young
  // generation's collections, promoted and not yet collected by a full GC), not every allocation.
  const live = process.env.LOCH_BENCH_HEAP_LIVE === '1';
  const session = new Session();
  session.connect();
  let state = 'waiting';
  const poll = setInterval(() => {
    if (state === 'waiting' && existsSync(`${dir}/start`)) {
      state = 'sampling';
      session.post(
        'HeapProfiler.startSampling',
        {
          samplingInterval: interval,
          includeObjectsCollectedByMajorGC: !live,
          includeObjectsCollectedByMinorGC: !live,
        },
        (error) => {
          if (error) writeFileSync(`${dir}/error-${threadId}`, String(error));
          else writeFileSync(`${dir}/started-${threadId}`, '');
        },
      );
    } else if (state === 'sampling' && existsSync(`${dir}/stop`)) {
      state = 'done';
      clearInterval(poll);
      session.post('HeapProfiler.stopSampling', (error, result) => {
        if (error) writeFileSync(`${dir}/error-${threadId}`, String(error));
        else writeFileSync(`${dir}/profile-${threadId}.json`, JSON.stringify(result.profile));
        session.disconnect();
      });
    }
  }, 100);
  poll.unref();
}
