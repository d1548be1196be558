/**
 * Idle memory trim, the same for every driver: after I/O and then a quiet period the runtime
 * gives memory back once (observable as `idleTrims`), not again while the thread stays idle, and
 * again after new I/O. The policy's timing rules are tested on a hand-driven clock in
 * src/internal/idle-trim.test.ts; here only generous waits on real sockets.
 */

import { memoryTrimmer } from '@loch/native';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import type { ByteStream, StreamListener } from '../../src/stream.js';
import { driverCases, portOf, Resources } from './drivers.js';

const cases = await driverCases();
const hasAddon = memoryTrimmer() !== undefined;
/** The idle trim period of the first test. */
const PERIOD_MS = 250;

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * Whether `runtime`'s trim count stops moving: unchanged across one 8-period window, tried up to
 * 5 times (a trim that a burst's tail earned may still land in the first window).
 */
async function settled(runtime: Runtime): Promise<boolean> {
  for (let tries = 0; tries < 5; tries++) {
    const before = runtime.idleTrims;
    await new Promise((r) => setTimeout(r, 8 * runtime.idleTrimPeriodMs));
    if (runtime.idleTrims === before) return true;
  }
  return false;
}

async function echoRoundTrips(listener: StreamListener, client: ByteStream, n: number): Promise<void> {
  const served = (async () => {
    const s = await listener.accept();
    for (;;) {
      const chunk = await s.recv();
      if (chunk === null) break;
      await s.writeAll(Buffer.from(chunk.bytes));
      chunk.release();
    }
    await s.close();
  })();
  for (let i = 0; i < n; i++) {
    await client.writeAll(Buffer.from('ping'));
    let got = 0;
    while (got < 4) {
      const chunk = await client.recv();
      if (chunk === null) throw new Error('early end of stream');
      got += chunk.bytes.byteLength;
      chunk.release();
    }
  }
  await client.shutdown();
  await served;
}

describe.each(cases)('idle trim: $name driver', ({ name, skip }) => {
  const res = new Resources();
  let runtime: Runtime | undefined;
  afterEach(async () => {
    await res.closeAll();
    await runtime?.close();
    runtime = undefined;
  });
  const run = skip === undefined && hasAddon ? it : it.skip;

  run(
    'trims once after activity then quiet, not while idle, and again after new activity',
    async () => {
      // What a loaded machine cannot change is asserted, not the policy's exact counts (those are
      // pinned on a hand-driven clock in src/internal/idle-trim.test.ts): a stall of this process for
      // a whole period inside a burst is a quiet period to the runtime, so it may trim mid-burst and
      // once more after it, and count that return as one "soon after a trim".
      runtime = await createRuntime({ driver: name, log: () => undefined, idleTrimMs: PERIOD_MS });
      const driver = runtime.driver;
      const listener = res.add(await driver.listenTcp({ host: '127.0.0.1', port: 0 }));
      const port = portOf(listener);
      const first = res.add(await driver.connectTcp({ host: '127.0.0.1', port }));
      await echoRoundTrips(listener, first, 3);
      expect(await until(() => runtime!.idleTrims >= 1, 20_000)).toBe(true);
      // Quiet: the count settles and stays for 8 periods (a runtime that trims while idle adds one
      // every period and never settles).
      expect(await settled(runtime)).toBe(true);
      const afterFirst = runtime.idleTrims;
      const second = res.add(await driver.connectTcp({ host: '127.0.0.1', port }));
      await echoRoundTrips(listener, second, 3);
      expect(await until(() => runtime!.idleTrims > afterFirst, 20_000)).toBe(true);
      // That I/O came back within 32 periods of a trim: the period lets go once (or, after a stall
      // inside a burst, has already doubled).
      expect([PERIOD_MS, 2 * PERIOD_MS]).toContain(runtime.idleTrimPeriodMs);
      expect(await settled(runtime)).toBe(true);
      const afterSecond = runtime.idleTrims;
      const third = res.add(await driver.connectTcp({ host: '127.0.0.1', port }));
      await echoRoundTrips(listener, third, 3);
      // A return soon after a trim, again: the period doubles (at the timer's next check).
      expect(await until(() => runtime!.idleTrimPeriodMs >= 2 * PERIOD_MS, 20_000)).toBe(true);
      expect(await until(() => runtime!.idleTrims > afterSecond, 20_000)).toBe(true);
      expect(runtime.idleTrimTimeMs).toBeGreaterThan(0);
    },
    120_000,
  );

  run('idleTrimMs 0 disables trimming, and setIdleTrim turns it on later', async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined, idleTrimMs: 0 });
    const driver = runtime.driver;
    const listener = res.add(await driver.listenTcp({ host: '127.0.0.1', port: 0 }));
    const port = portOf(listener);
    const client = res.add(await driver.connectTcp({ host: '127.0.0.1', port }));
    await echoRoundTrips(listener, client, 5);
    await new Promise((r) => setTimeout(r, 300));
    expect(runtime.idleTrims).toBe(0);
    expect(runtime.setIdleTrim(40)).toBe(true);
    const again = res.add(await driver.connectTcp({ host: '127.0.0.1', port }));
    await echoRoundTrips(listener, again, 5);
    expect(await until(() => runtime!.idleTrims >= 1, 10_000)).toBe(true);
  });
});
