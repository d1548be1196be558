/**
 * A preload for busy.ts --spaces-dir (issue 18): in each loch worker thread, at each of busy.ts's
 * marks ($LOCH_SPACES_DIR/mark: "<peer>-<mode>-r<round>-<moment>", lib/mark-file.cjs) it appends
 * one JSON line to $LOCH_SPACES_DIR/spaces.jsonl: the mark, the thread id, every V8 heap space's
 * committed, used and available bytes (v8.getHeapSpaceStatistics; Node 20 gives no per-space
 * physical size), the heap's physical (resident: pages allocation has reached), malloced and
 * external totals (v8.getHeapStatistics) and the thread's ArrayBuffer bytes.
 * space-diff.py prints the differences between moments per space: which V8 space the first
 * idle connections grow once and which grows with each. No GC is run; nothing is timed.
 * Usage: busy.ts --spaces-dir DIR (adds --require=<this file> to loch's node flags).
 */
'use strict';
const { isMainThread } = require('node:worker_threads');

const dir = process.env.LOCH_SPACES_DIR;
if (!isMainThread && dir !== undefined && dir !== '') {
  const fs = require('node:fs');
  const path = require('node:path');
  const v8 = require('node:v8');
  const { watchMark } = require('../lib/mark-file.cjs');
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  watchMark(dir, (mark) => {
    const spaces = {};
    for (const s of v8.getHeapSpaceStatistics())
      spaces[s.space_name] = {
        size: s.space_size,
        used: s.space_used_size,
        available: s.space_available_size,
      };
    const h = v8.getHeapStatistics();
    const line = {
      mark,
      tid,
      spaces,
      mallocedMemory: h.malloced_memory,
      peakMallocedMemory: h.peak_malloced_memory,
      externalMemory: h.external_memory,
      totalPhysical: h.total_physical_size,
      arrayBuffers: process.memoryUsage().arrayBuffers,
    };
    fs.appendFileSync(path.join(dir, 'spaces.jsonl'), `${JSON.stringify(line)}\n`);
  });
}
