/**
 * The cross-peer idle-connection measurement of bench/http-proxy (lib/memory.ts
 * idleConnectionMemory: RSS from outside, 1 worker, a 1 s wrk warm-up, then N idle clients)
 * with one knob: seconds to wait between the warm-up and the baseline reading. 0 is exactly
 * what http-proxy/run.ts does; a few seconds let every peer settle first (a Loch worker trims
 * its heap 1 s after the warm-up, nginx has nothing to settle), so the per-connection figure is
 * not helped by garbage the warm-up left in the baseline. Runs the BUILT proxy, like the bench.
 * Usage: tsx --conditions=@loch/source cross.ts [settleSeconds=3] [count=10000] [peers=nginx,loch]
 */

import { PROXIES } from '../http-proxy/peers.js';
import { writeBodies } from '../lib/bodies.js';
import { freePort, measure, type Peer, waitForHttp } from '../lib/measure.js';
import { idleConnectionMemory } from '../lib/memory.js';
import { startNginxStatic } from '../lib/nginx.js';

const settle = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 10_000);
const wanted = (process.argv[4] ?? 'nginx,loch').split(',');
const LOAD_CPU = '0';

const root = writeBodies([128]);
const backendPort = await freePort();
const backend = await startNginxStatic({ root, port: backendPort, cpu: LOAD_CPU });
await waitForHttp(backendPort, '/128');
try {
  for (const spec of PROXIES) {
    if (!wanted.includes(spec.name) || spec.unavailable() !== null) continue;
    const port = await freePort();
    let peer: Peer | undefined;
    try {
      peer = await spec.start({ port, upstreamPort: backendPort, workers: 1, cpu: '1', probePath: '/128' });
      await measure(peer, `http://127.0.0.1:${port}/128`, { connections: 64, seconds: 1, cpu: LOAD_CPU });
      await new Promise((r) => setTimeout(r, settle * 1000));
      const i = await idleConnectionMemory(peer, port, { count, path: '/128', clientCpu: LOAD_CPU });
      console.log(
        `${spec.name} idle (settle ${settle} s): ${i.connections} conns (${i.failed} failed), RSS ${i.baselineKiB} -> ${i.idleKiB} KiB, ${Math.round(i.bytesPerConnection)} B/conn`,
      );
    } finally {
      await peer?.stop();
    }
  }
} finally {
  await backend.stop();
}
