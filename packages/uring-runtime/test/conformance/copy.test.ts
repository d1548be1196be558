/**
 * copy() and zeroCopy() conformance: bytes move intact from one stream to another, the count is
 * right and the destination is half-closed at end of stream, on every driver.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copy, zeroCopy } from '../../src/copy.js';
import type { Driver } from '../../src/driver.js';
import { driverCases, portOf, type Resources, readToEnd, useDriver } from './drivers.js';

const cases = await driverCases();

async function pair(driver: Driver, res: Resources) {
  const listener = res.add(await driver.listenTcp({ host: '127.0.0.1', port: 0 }));
  const accepted = listener.accept();
  const client = res.add(await driver.connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
  return { client, server: res.add(await accepted) };
}

const digest = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe.each(cases)('copy conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  for (const [label, move] of [
    ['copy', (from, to) => copy(from, to)],
    [
      'zeroCopy',
      async (from, to) => {
        // Count splices: a driver that can splice must be used for it, not the copy fallback.
        const real = driver();
        let splices = 0;
        const counted = <F extends (...args: never[]) => Promise<number>>(f: F | undefined) =>
          f === undefined
            ? undefined
            : (...args: Parameters<F>) => {
                splices++;
                return f.apply(real, args);
              };
        const counting: Driver = Object.create(real, {
          splice: { value: counted(real.splice) },
          spliceAll: { value: counted(real.spliceAll) },
        });
        const moved = await zeroCopy(from, to, { driver: counting });
        expect(splices > 0).toBe(real.splice !== undefined);
        return moved;
      },
    ],
  ] as const satisfies readonly (readonly [string, (from: never, to: never) => Promise<number>])[]) {
    run(`${label} moves 2 MB from one connection into another and half-closes the target`, async () => {
      const inbound = await pair(driver(), res);
      const outbound = await pair(driver(), res);
      const payload = randomBytes(2 * 1024 * 1024);
      const [moved, received] = await Promise.all([
        move(inbound.server as never, outbound.client as never),
        readToEnd(outbound.server),
        inbound.client.writeAll(payload).then(() => inbound.client.shutdown()),
      ]);
      expect(moved).toBe(payload.byteLength);
      expect(digest(received)).toBe(digest(payload));
    });
  }
});
