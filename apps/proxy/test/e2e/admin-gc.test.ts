/**
 * The wave collection and V8's own pauses end to end (issue 18): `loch run` with one worker and
 * an admin listener; 1,200 connections open and close (a wave: the worker's open streams fall by
 * 1,000 or more to under half), and /stats then shows the worker's wave collection with V8's
 * final pause for it (runtime.waves.lastPauseMs, timed by @loch/native's GC hook, not the call)
 * and its mark-compacts (runtime.gc); the opening 1,200 made one open-wave collection first
 * (runtime.waves.openCollections); /metrics renders the same families.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerRuntimeStats } from '../../src/metrics/runtime-stats.js';
import { adminGet, freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

/** The part of /stats read here: a worker's runtime numbers. */
type WorkerRuntime = Pick<WorkerRuntimeStats, 'openStreams' | 'waves' | 'gc'>;

const WAVE = 1200;

describe('admin listener: wave collection and GC pauses', () => {
  const dir = tempDir('loch-admin-gc-');
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

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      // The open-wave collection is opt-in (REVIEW F229, bench/idle-memory/readings-2026-12-07g.md).
      { LOCH_WAVE_COLLECT_OPEN: '1' },
    );
  }, 60_000);

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  const runtime = async (): Promise<WorkerRuntime> => {
    const stats = JSON.parse(await adminGet(admin, '/stats')) as { workers: { runtime: WorkerRuntime }[] };
    return stats.workers[0]!.runtime;
  };
  const until = async (done: (r: WorkerRuntime) => boolean): Promise<WorkerRuntime> => {
    for (let i = 0; i < 150; i++) {
      const r = await runtime();
      if (done(r)) return r;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return runtime();
  };

  it("shows the wave's collection with V8's final pause for it, and the worker's mark-compacts", async () => {
    const before = await runtime();
    expect(before.waves).toMatchObject({
      collections: 0,
      openCollections: 0,
      freedBytes: 0,
      lastCallMs: 0,
      lastPauseMs: 0,
      retries: 0,
      misses: 0,
    });
    expect(before.gc).toMatchObject({ markCompacts: expect.any(Number), pauseMs: expect.any(Number) });

    const sockets: net.Socket[] = [];
    for (let i = 0; i < WAVE; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
    }
    await Promise.all(sockets.map((s) => new Promise((resolve) => s.once('connect', resolve))));
    expect((await until((r) => r.openStreams >= WAVE)).openStreams).toBeGreaterThanOrEqual(WAVE);
    // Held until the policy's own step (every 500 ms) has read them into its high-water mark.
    expect((await until((r) => r.waves.highWater >= WAVE)).waves.highWater).toBeGreaterThanOrEqual(WAVE);
    // The opening wave settled: one collection gives back the young generation it grew, counted
    // apart from the close waves'.
    const opened = await until((r) => r.waves.openCollections === 1);
    expect(opened.waves.openCollections).toBe(1);
    expect(opened.waves.collections).toBe(0);
    for (const s of sockets) s.destroy();

    // The collection starts at the first step after the count stops falling; V8 finishes it on
    // the worker's own tasks, and its final pause is then in.
    const after = await until((r) => r.waves.collections === 1 && r.waves.lastPauseMs > 0);
    expect(after.waves.collections).toBe(1);
    expect(after.waves.lastPauseMs).toBeGreaterThan(0);
    expect(after.waves.misses).toBe(0);
    expect(after.gc!.markCompacts).toBeGreaterThan(before.gc!.markCompacts);
    expect(after.gc!.pauseMs).toBeGreaterThanOrEqual(before.gc!.pauseMs + after.waves.lastPauseMs);

    const text = await adminGet(admin, '/metrics');
    const value = (family: string) => Number(new RegExp(`^${family} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('loch_wave_collections_total')).toBe(1);
    expect(value('loch_wave_open_collections_total')).toBe(1);
    expect(value('loch_wave_collect_last_pause_seconds')).toBeGreaterThan(0);
    expect(value('loch_wave_collect_retries_total')).toBe(after.waves.retries);
    expect(value('loch_wave_collect_misses_total')).toBe(0);
    expect(value('loch_gc_mark_compacts_total')).toBeGreaterThanOrEqual(after.gc!.markCompacts);
    expect(value('loch_gc_mark_compact_pause_seconds_total')).toBeGreaterThan(0);
    expect(value('loch_gc_mark_compact_last_pause_seconds')).toBeGreaterThan(0);
  }, 60_000);
});
