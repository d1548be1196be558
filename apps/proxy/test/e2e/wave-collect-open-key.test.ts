/**
 * runtime.wave_collect_open end to end (issue 18): `loch run` with the key on and no
 * LOCH_WAVE_COLLECT_OPEN in its env; 1,200 connections open and stay, and the worker's runtime
 * then counts one collection after the open wave (runtime.waves.openCollections in /stats), which
 * it makes only when the key reached the worker thread (off by default: admin-gc.test.ts turns it
 * on through the env instead).
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerRuntimeStats } from '../../src/metrics/runtime-stats.js';
import { adminGet, freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

const WAVE = 1200;

describe('runtime.wave_collect_open', () => {
  const dir = tempDir('loch-wave-open-key-');
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let loch: Loch;
  let port: number;
  let admin: number;

  beforeAll(async () => {
    upstream = await httpUpstream((_req, res) => res.end('ok'));
    port = await freePort();
    admin = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
wave_collect_open = true

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      // Empty reads as unset: the key alone decides.
      { LOCH_WAVE_COLLECT_OPEN: '' },
    );
  }, 60_000);

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  const waves = async (): Promise<WorkerRuntimeStats['waves']> => {
    const stats = JSON.parse(await adminGet(admin, '/stats')) as {
      workers: { runtime: Pick<WorkerRuntimeStats, 'waves'> }[];
    };
    return stats.workers[0]!.runtime.waves;
  };

  it('makes the worker collect after 1,200 connections opened', async () => {
    expect((await waves()).openCollections).toBe(0);
    const sockets: net.Socket[] = [];
    for (let i = 0; i < WAVE; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
    }
    await Promise.all(sockets.map((s) => new Promise((resolve) => s.once('connect', resolve))));
    let w = await waves();
    for (let i = 0; i < 150 && w.openCollections === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      w = await waves();
    }
    for (const s of sockets) s.destroy();
    expect(w.highWater).toBeGreaterThanOrEqual(WAVE);
    expect(w.openCollections).toBe(1);
  }, 60_000);
});
