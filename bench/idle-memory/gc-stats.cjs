/**
 * A preload for the CPU cost of V8 heap settings in an in-process benchmark (issue 18): counts
 * the process's garbage collections by kind (PerformanceObserver 'gc') and prints them at exit,
 * per unit when LOCH_BENCH_GC_PER says how many units (requests) the run did. With
 * LOCH_BENCH_BALLAST=N it first builds N object graphs shaped like an idle keep-alive connection
 * of loch's (~1.2 KB of small linked objects each, kept for the whole run), so a major GC marks
 * what a worker holding N idle connections marks: the figure a heap-growing setting moves.
 * Usage: node --require /abs/bench/idle-memory/gc-stats.cjs [V8 flags] <benchmark> ...
 *   e.g. LOCH_BENCH_BALLAST=10000 LOCH_BENCH_GC_PER=1000000 node --require ./gc-stats.cjs \
 *        --max-semi-space-size=4 --conditions=@loch/source --import tsx apps/proxy/bench/proxy-core.ts
 */
const { PerformanceObserver, constants } = require('node:perf_hooks');

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};
const counts = new Map();
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = KINDS[entry.detail?.kind ?? entry.kind] ?? 'other';
    const c = counts.get(kind) ?? { n: 0, ms: 0 };
    c.n++;
    c.ms += entry.duration;
    counts.set(kind, c);
  }
});
observer.observe({ entryTypes: ['gc'] });

const ballast = [];
const idle = Number(process.env.LOCH_BENCH_BALLAST ?? 0);
for (let i = 0; i < idle; i++) {
  // A connection object of ~40 fields, a stream of ~30, a context of 14, two small objects and
  // a number: what a heap snapshot of loch's worker shows per idle connection.
  const conn = {};
  for (let f = 0; f < 40; f++) conn[`f${f}`] = f % 3 === 0 ? null : f;
  const stream = {};
  for (let f = 0; f < 30; f++) stream[`s${f}`] = f % 4 === 0 ? conn : f;
  const cx = new Array(14).fill(stream);
  conn.stream = stream;
  conn.cx = cx;
  conn.addr = { family: 'ipv4', address: '127.0.0.1', port: i & 0xffff };
  conn.facts = { clientAddress: conn.addr, secure: false };
  conn.deadline = Date.now() + 0.5;
  ballast.push(conn);
}

process.on('exit', () => {
  observer.disconnect();
  const per = Number(process.env.LOCH_BENCH_GC_PER ?? 0);
  const parts = [...counts].map(([kind, c]) => {
    const each = per > 0 ? `, ${((c.ms * 1000) / per).toFixed(3)} us/unit` : '';
    return `${kind} ${c.n} (${c.ms.toFixed(1)} ms${each})`;
  });
  const total = [...counts.values()].reduce((s, c) => s + c.ms, 0);
  process.stderr.write(
    `gc: ${parts.join('; ') || 'none'}; total ${total.toFixed(1)} ms` +
      (per > 0 ? `, ${((total * 1000) / per).toFixed(3)} us/unit` : '') +
      (idle > 0 ? `; ballast ${idle} (${ballast.length})` : '') +
      '\n',
  );
});
