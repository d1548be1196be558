import { afterEach, describe, expect, it } from 'vitest';
import { TcpListener, TcpStream } from '../index.js';
import { createRuntime, type Runtime } from '../runtime.js';

/** Opens `n` loopback connections through the runtime (both ends counted) and returns them. */
async function openWave(runtime: Runtime, n: number): Promise<{ close(): Promise<void> }> {
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const port = (listener.localAddress as { port: number }).port;
  const accepted: { close(): Promise<void> }[] = [];
  const accepting = (async () => {
    while (accepted.length < n) accepted.push(await listener.accept());
  })();
  const clients: { close(): Promise<void> }[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = Math.min(100, n - i);
    clients.push(
      ...(await Promise.all(
        Array.from({ length: batch }, () => TcpStream.connect({ host: '127.0.0.1', port, runtime })),
      )),
    );
  }
  await accepting;
  await listener.close();
  return {
    close: async () => {
      await Promise.all([...clients, ...accepted].map((s) => s.close()));
    },
  };
}

const until = async (ok: () => boolean, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let runtime: Runtime | undefined;
afterEach(async () => {
  await runtime?.close();
  runtime = undefined;
});

describe.each(['legacy', 'uring'] as const)('the runtime collects after a wave (%s driver)', (driver) => {
  const make = async (waveCollectMs: number, waveCollectOpen = false): Promise<Runtime | undefined> => {
    try {
      runtime = await createRuntime({
        driver,
        idleTrimMs: 0,
        waveCollectMs,
        waveCollectOpen,
        log: () => undefined,
      });
    } catch {
      return undefined; // io_uring unavailable here
    }
    return runtime;
  };

  it('not while 1,200 connections stay open, once when they close', async (ctx) => {
    const rt = await make(60_000);
    if (rt === undefined) return ctx.skip();
    const wave = await openWave(rt, 600);
    expect(rt.openStreams).toBe(1200);
    await sleep(1500);
    expect(rt.waveCollections).toBe(0);
    await wave.close();
    expect(rt.openStreams).toBe(0);
    expect(await until(() => rt.waveCollections === 1, 3000)).toBe(true);
    expect(rt.waveCollectTimeMs).toBeGreaterThan(0);
  });

  it('after the 1,200 opened only with waveCollectOpen', async (ctx) => {
    const off = await make(60_000);
    if (off === undefined) return ctx.skip();
    const first = await openWave(off, 600);
    await sleep(1500);
    expect(off.waveOpenCollections).toBe(0);
    await first.close();
    await off.close();
    const on = await make(60_000, true);
    if (on === undefined) return ctx.skip();
    const second = await openWave(on, 600);
    expect(await until(() => on.waveOpenCollections === 1, 3000)).toBe(true);
    await second.close();
  });

  it('never with waveCollectMs 0', async (ctx) => {
    const rt = await make(0);
    if (rt === undefined) return ctx.skip();
    const wave = await openWave(rt, 600);
    await wave.close();
    await sleep(1500);
    expect(rt.waveCollections).toBe(0);
  });
});
