/**
 * The cross-peer idle-connection measurement of bench/http-proxy (lib/memory.ts
 * idleConnectionMemory: RSS from outside, 1 worker, a 1 s wrk warm-up, then N idle clients,
 * both readings after its own quiet period) with one knob: extra seconds to wait between the
 * warm-up and the baseline reading (0 = what http-proxy/run.ts does). With an older
 * lib/memory.ts that read the baseline right after the warm-up, a few seconds here give the
 * same fair comparison: a Loch worker trims its heap 1 s after the warm-up, nginx has nothing
 * to settle. Runs the BUILT proxy, like the bench.
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
