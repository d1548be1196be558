/**
 * The V8 heap a fresh worker isolate holds after importing each given module (full GCs first),
 * beside an empty one, and the process RSS each adds: what a module graph costs every isolate
 * that loads it (readings-2026-12-06b.md, -06c.md). Modules are absolute paths (a built dist's
 * .js) or node: builtins.
 *
 * Usage: node --expose-gc idle-memory/import-heap.mjs /abs/apps/proxy/dist/proxy/worker.js [...]
 */

import { Worker } from 'node:worker_threads';

const mods = process.argv.slice(2);
const code = `
import { parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics, getHeapSpaceStatistics } from 'node:v8';
if (workerData) await import(workerData);
for (let i = 0; i < 3; i++) globalThis.gc();
await new Promise((r) => setTimeout(r, 200));
globalThis.gc();
const h = getHeapStatistics();
parentPort.postMessage({ used: h.used_heap_size, total: h.total_heap_size, ext: h.external_memory });
await new Promise((r) => parentPort.once('message', r));
`;
const url = new URL(`data:text/javascript,${encodeURIComponent(code)}`);
const rss = () => process.memoryUsage().rss;
for (const m of ['', ...mods]) {
  const before = rss();
  const w = new Worker(url, {
    workerData: m ? (m.startsWith('node:') ? m : new URL(m, 'file:///').href) : '',
    type: 'module',
  });
  const s = await new Promise((r) => w.once('message', r));
  await new Promise((r) => setTimeout(r, 300));
  const after = rss();
  console.log(
    `${(m || '(nothing)').padEnd(70)} heap used ${(s.used / 1048576).toFixed(2)} MiB, committed ${(s.total / 1048576).toFixed(2)} MiB, process RSS +${((after - before) / 1048576).toFixed(1)} MiB`,
  );
  w.postMessage(0);
  await new Promise((r) => w.once('exit', r));
}
