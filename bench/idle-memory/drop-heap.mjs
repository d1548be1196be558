/**
 * Whether dropping a module graph gives its heap back (readings-2026-12-06c.md section 1): a
 * fresh worker isolate imports a build's config/load.js, validates a config, drops every
 * reference and runs full GCs; its heap used is printed beside an empty isolate's. (It does not
 * come back: an ES module stays in its isolate's module map for the isolate's life.)
 *
 * Usage: node --expose-gc idle-memory/drop-heap.mjs /abs/apps/proxy/dist some-config.toml
 */

import { Worker } from 'node:worker_threads';

const [dist, cfg] = process.argv.slice(2);
const code = (load) => `
import { parentPort } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
if (${load}) { let m = await import(${JSON.stringify(`file://${dist}/config/load.js`)}); let c = await m.loadConfigFile(${JSON.stringify(cfg)}); m = undefined; c = undefined; }
for (let i = 0; i < 3; i++) globalThis.gc();
await new Promise((r) => setTimeout(r, 200));
globalThis.gc();
parentPort.postMessage(getHeapStatistics().used_heap_size);
`;
for (const load of [false, true, false, true]) {
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code(load))}`), { type: 'module' });
  const used = await new Promise((r) => w.once('message', r));
  console.log(
    load ? 'import load.js, validate, drop, full GCs' : 'empty isolate',
    (used / 1048576).toFixed(2),
    'MiB',
  );
  await w.terminate();
}
