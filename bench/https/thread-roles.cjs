/**
 * Preloaded (`node --require`) into a peer whose threads the handshake benchmark breaks down
 * (threads.ts): Node 20 names every thread `node`, so each JavaScript thread writes its own
 * role into $LOCH_BENCH_THREAD_ROLES/<tid> as it starts: `main` (and, in the main thread, the
 * threads that already exist then: V8's platform workers and Node's delayed-task thread, written
 * to `platform`), `worker <threadId>` in each worker thread (worker_threads inherit the preload
 * through execArgv). Threads neither names are libuv's threadpool (created later, on first use)
 * or io_uring's kernel workers (comm `iou-*`). Reads nothing, changes nothing in the peer; without
 * the variable it does nothing. Bench-only: not part of Loch.
 * $LOCH_BENCH_V8_FLAGS (e.g. `--trace-gc --trace-opt`): set in the main thread before any worker
 * starts (v8.setFlagsFromString; process-wide, and worker threads refuse V8 flags in execArgv).
 */
'use strict';
const dir = process.env.LOCH_BENCH_THREAD_ROLES;
if (dir) {
  const { isMainThread, threadId } = require('node:worker_threads');
  const { readlinkSync, readdirSync, writeFileSync } = require('node:fs');
  const tid = readlinkSync('/proc/thread-self').split('/').pop();
  const pid = String(process.pid);
  try {
    if (isMainThread) {
      if (process.env.LOCH_BENCH_V8_FLAGS)
        require('node:v8').setFlagsFromString(process.env.LOCH_BENCH_V8_FLAGS);
      const others = readdirSync('/proc/self/task').filter((t) => t !== pid);
      writeFileSync(`${dir}/platform`, others.join('\n'));
      writeFileSync(`${dir}/${tid}`, 'main');
    } else {
      writeFileSync(`${dir}/${tid}`, `worker ${threadId}`);
    }
  } catch {
    // the directory is gone: the reading falls back to unnamed threads
  }
}
