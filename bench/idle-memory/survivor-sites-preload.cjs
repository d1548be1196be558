/**
 * A preload for bench/http-proxy/gc-pauses.sh (issue 18): in each loch worker thread, V8's
 * sampling heap profiler keeps the sampled objects that no scavenge collected
 * (includeObjectsCollectedByMinorGC false, ...ByMajorGC true): objects that were promoted to old
 * space (whether a mark-compact freed them later or not), or are still live in new space. At each
 * of gc-pauses.sh's marks ($LOCH_AB_DIR/mark: "before", then "after <requests>") it runs a
 * scavenge (gc({ type: 'minor' }), so the young objects of that moment are either promoted or
 * collected), then reads the profile by site: the allocating function and its two callers. At
 * "after" it writes {requests, interval, before, after} to $LOCH_AB_DIR/survivors-<tid>.json;
 * survivor-sites.py prints (after - before) / requests by site.
 * It does not see objects that are copied within new space once and then die at the next
 * scavenge. Those are part of --trace-gc-nvp's new_space_survived (scavenge-survivors.py), not
 * of this profile. It is for byte counts only, never timings: sampling slows the worker.
 * Usage: LOCH_AB_DIR=<dir> LOCH_NODE_ARGS="--expose-gc --require=<abs>/survivor-sites-preload.cjs" \
 *   [LOCH_SURVIVOR_INTERVAL=256] gc-pauses.sh 128 10 3
 */
'use strict';
const { isMainThread } = require('node:worker_threads');

const dir = process.env.LOCH_AB_DIR;
if (!isMainThread && dir !== undefined && dir !== '') {
  const fs = require('node:fs');
  const path = require('node:path');
  const { Session } = require('node:inspector');
  const { watchMark } = require('../lib/mark-file.cjs');
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  const interval = Number(process.env.LOCH_SURVIVOR_INTERVAL ?? 256);
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: interval,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: false,
  });

  /** Bytes by "function file:line <- caller <- caller" of the profile's tree. */
  const bySite = (head) => {
    const sites = {};
    const visit = (node, callers) => {
      const f = node.callFrame;
      const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}`;
      const chain = [name, ...callers].slice(0, 3);
      if (node.selfSize > 0) {
        const key = chain.join(' <- ');
        sites[key] = (sites[key] ?? 0) + node.selfSize;
      }
      for (const child of node.children) visit(child, chain);
    };
    visit(head, []);
    return sites;
  };
  const profileNow = (done) => {
    globalThis.gc?.({ type: 'minor' });
    session.post('HeapProfiler.getSamplingProfile', (err, result) => {
      if (err) throw err;
      done(bySite(result.profile.head));
    });
  };

  let before;
  watchMark(dir, (text) => {
    if (text === 'before') profileNow((sites) => (before = sites));
    else if (text.startsWith('after') && before !== undefined) {
      const requests = Number(text.split(' ')[1]);
      profileNow((after) =>
        fs.writeFileSync(
          path.join(dir, `survivors-${tid}.json`),
          JSON.stringify({ requests, interval, before, after }),
        ),
      );
    }
  });
}
