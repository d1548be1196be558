/**
 * Preloaded (`node --require`) into apps/proxy/bench/proxy-core.ts's bundle by heap-sites.sh:
 * runs V8's sampling heap profiler from the start of the process to its exit with objects the
 * GC already collected kept in the profile (includeObjectsCollectedByMinorGC/MajorGC), so every
 * allocation is sampled whether it died young or not (one sample per LOCH_HEAP_INTERVAL bytes
 * on average, 32 by default), and writes the bytes per allocation site (function, script, line,
 * column of the function) to $LOCH_HEAP_OUT at exit. heap-sites.py subtracts two runs of N1 and
 * N2 requests: what a request allocates, by site, with the start and the JIT's warm-up gone.
 * Bench-only.
 */
'use strict';
const out = process.env.LOCH_HEAP_OUT;
if (out) {
  const { writeFileSync } = require('node:fs');
  const { Session } = require('node:inspector');
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.LOCH_HEAP_INTERVAL ?? 32),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (error) throw error;
      const bySite = new Map();
      const walk = (node, stack) => {
        const f = node.callFrame;
        const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}`;
        const here = [site, ...stack].slice(0, 3).join(' <- ');
        if (node.selfSize > 0) bySite.set(here, (bySite.get(here) ?? 0) + node.selfSize);
        for (const c of node.children) walk(c, [site, ...stack].slice(0, 3));
      };
      walk(result.profile.head, []);
      writeFileSync(out, JSON.stringify(Object.fromEntries(bySite)));
    });
  });
}
