/**
 * Overlapping writes conformance, the same for every driver over real sockets: writes started
 * while earlier ones are still in flight (every write form, large random buffers, a slow peer so
 * that sends come up short) reach the peer whole and in call order, each target hears once, and
 * a shutdown() started behind them half-closes only after their last byte. Also: close() fails
 * the writes still waiting with ECANCELED (their buffers back), and an abort takes a waiting
 * write out of the line without disturbing the others.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Driver } from '../../src/driver.js';
import type { RuntimeError } from '../../src/errors.js';
import type { ByteStream } from '../../src/stream.js';
import { driverCases, tcpPair, useDriver } from './drivers.js';

const cases = await driverCases();

/** One write of the sequence: its form and the buffers it carries. */
interface Write {
  readonly form: 'writeTo' | 'writeToV' | 'writeAll' | 'writev';
  readonly sizes: readonly number[];
}

const KiB = 1024;

const write: fc.Arbitrary<Write> = fc.record({
  form: fc.constantFrom('writeTo', 'writeToV', 'writeAll', 'writev'),
  // Large enough that a few of them fill both socket buffers (sends then come up short), small
  // enough to keep a run quick.
  sizes: fc.array(fc.integer({ min: 1, max: 1536 * KiB }), { minLength: 1, maxLength: 3 }),
});

/**
 * Starts `w` on `stream` without waiting. The promise gives the write's outcome (undefined: every
 * byte went out) once its target was told, or its promise settled; `told` gets `index` then.
 */
function start(
  stream: ByteStream,
  w: Write,
  bufs: Uint8Array[],
  told: number[],
  index: number,
): Promise<RuntimeError | undefined> {
  const outcome = (error: RuntimeError | undefined) => {
    told.push(index);
    return error;
  };
  const failed = (e: RuntimeError) => outcome(e);
  switch (w.form) {
    case 'writeTo':
    case 'writeToV':
      return new Promise((resolve) => {
        stream.writeTo(w.form === 'writeTo' && bufs.length === 1 ? bufs[0]! : bufs, {
          onWritten: (error) => resolve(outcome(error)),
        });
      });
    case 'writeAll':
      return Promise.all(bufs.map((b) => stream.writeAll(b))).then(() => outcome(undefined), failed);
    case 'writev':
      return stream.writev(bufs).then(() => outcome(undefined), failed);
  }
}

/** Reads to end of stream slowly (a pause now and then), so the writer's sends come up short. */
async function readSlowly(driver: Driver, stream: ByteStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  let buf = new Uint8Array(96 * KiB);
  await driver.sleep(10);
  for (let i = 0; ; i++) {
    const [n, back] = await stream.read(buf);
    buf = back;
    if (n === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(back.subarray(0, n)));
    if (i % 8 === 7) await driver.sleep(1);
  }
}

describe.each(cases)('overlapping writes conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run(
    'writes started while others are in flight arrive whole and in call order',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(write, { minLength: 2, maxLength: 6 }), async (writes) => {
          const { listener, client, server } = await tcpPair(driver());
          const payloads = writes.map((w) => w.sizes.map((n) => randomBytes(n)));
          const received = readSlowly(driver(), server);
          // A failed run closes the reader's stream under it: its ECANCELED then is no finding.
          received.catch(() => undefined);
          try {
            const told: number[] = [];
            // Every write in the same turn: each but the first starts while earlier ones are in flight.
            const done = writes.map((w, i) => start(client, w, payloads[i]!, told, i));
            // Behind them all: the peer must read every byte before its end of stream.
            const shut = client.shutdown();
            expect(await Promise.all(done)).toEqual(writes.map(() => undefined));
            await shut;
            const got = await received;
            const expected = Buffer.concat(payloads.flat());
            expect(got.length).toBe(expected.length);
            // Which write's bytes went astray, if any: the first offset where they differ.
            if (!got.equals(expected)) {
              let at = 0;
              while (got[at] === expected[at]) at++;
              expect.fail(`bytes differ from offset ${at} of ${expected.length}`);
            }
            // Each told once (in which order a promise form and a target hear is not the contract).
            expect(told.sort((x, y) => x - y)).toEqual(writes.map((_, i) => i));
          } finally {
            await Promise.all([client.close(), server.close(), listener.close()]);
          }
        }),
        { numRuns: 6 },
      );
    },
    60_000,
  );

  run('close() fails the writes still waiting with ECANCELED and their buffers', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    // The server never reads: the first write stays in flight once both socket buffers are full.
    const first = new Uint8Array(32 * 1024 * 1024);
    const waiting = [randomBytes(64 * KiB), randomBytes(64 * KiB)];
    const errors: (RuntimeError | undefined)[][] = [[], [], []];
    client.writeTo(first, { onWritten: (e) => errors[0]!.push(e) });
    client.writeTo(waiting[0]!, { onWritten: (e) => errors[1]!.push(e) });
    const second = client.writeAll(waiting[1]!).then(
      () => undefined,
      (e: RuntimeError) => e,
    );
    await driver().sleep(20);
    expect(errors.flat()).toEqual([]);
    await client.close();
    errors[2]!.push(await second);
    await driver().sleep(20);
    for (const list of errors) {
      expect(list).toHaveLength(1);
      expect(list[0]?.code).toBe('ECANCELED');
    }
    expect(errors[0]![0]?.buffer).toBe(first);
    expect(errors[1]![0]?.buffer).toBe(waiting[0]);
    expect(errors[2]![0]?.buffer).toBe(waiting[1]);
  });
});

// Aborting a write that waits behind another: the legacy driver destroys the socket on any write
// abort (node:net cannot take queued bytes back), so this is io_uring's own behaviour.
describe.each(cases.filter((c) => c.name === 'uring'))(
  'overlapping writes: $name driver abort',
  ({ name, skip }) => {
    const { driver, res } = useDriver(name);
    const run = skip === undefined ? it : it.skip;

    run('an aborted waiting write leaves the line; the others go out in order', async () => {
      const { listener, client, server } = await tcpPair(driver());
      res.add(listener);
      res.add(client);
      res.add(server);
      const a = randomBytes(8 * 1024 * 1024);
      const b = randomBytes(64 * KiB);
      const c = randomBytes(64 * KiB);
      const received = readSlowly(driver(), server);
      const abort = new AbortController();
      const first = client.writeAll(a);
      const aborted = client.writeAll(b, { signal: abort.signal }).then(
        () => undefined,
        (e: RuntimeError) => e,
      );
      const last = client.writeAll(c);
      abort.abort();
      const error = await aborted;
      expect(error?.code).toBe('ECANCELED');
      expect(error?.buffer).toBe(b);
      await first;
      await last;
      await client.shutdown();
      const got = await received;
      expect(got.equals(Buffer.concat([a, c]))).toBe(true);
    });
  },
);
