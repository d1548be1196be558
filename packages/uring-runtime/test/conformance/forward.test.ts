/**
 * Bidirectional forwarding conformance: two pairs of streams joined by copy() / zeroCopy() in both
 * directions (what an L4 forwarder does), keep-alive request/response rounds of many sizes that
 * must not stall, then half-close and end-of-stream propagation each way. Not for throughput.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copy, zeroCopy } from '../../src/copy.js';
import type { Driver } from '../../src/driver.js';
import type { ByteStream } from '../../src/stream.js';
import { driverCases, portOf, type Resources, readExactly, readToEnd, useDriver } from './drivers.js';

const cases = await driverCases();

async function pair(driver: Driver, res: Resources) {
  const listener = res.add(await driver.listenTcp({ host: '127.0.0.1', port: 0 }));
  const accepted = listener.accept();
  const client = res.add(await driver.connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
  return { client, server: res.add(await accepted) };
}

type Move = (from: ByteStream, to: ByteStream, driver: Driver) => Promise<number>;

const moves: readonly (readonly [string, Move])[] = [
  ['copy', (from, to) => copy(from, to)],
  ['zeroCopy', (from, to, driver) => zeroCopy(from, to, { driver })],
];

/** client <-> [front.server  ==move==>  back.client] <-> upstream (back.server). */
async function forwarder(driver: Driver, res: Resources, move: Move) {
  const front = await pair(driver, res);
  const back = await pair(driver, res);
  const up = move(front.server, back.client, driver);
  const down = move(back.client, front.server, driver);
  // Keep rejections observed even when a test fails before awaiting them.
  up.catch(() => undefined);
  down.catch(() => undefined);
  return { client: front.client, upstream: back.server, up, down };
}

const RESPONSE_SIZES = [128, 3269, 3 * 1024, 11 * 1024, 11268, 64 * 1024, 64 * 1024 + 1, 200 * 1024];

describe.each(cases)('forwarding conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  for (const [label, move] of moves) {
    run(
      `${label}: keep-alive request/response rounds of 128 B to 200 KiB do not stall`,
      async () => {
        const f = await forwarder(driver(), res, move);
        const request = randomBytes(100);
        let sentUp = 0;
        let sentDown = 0;
        for (let round = 0; round < 4; round++) {
          for (const size of RESPONSE_SIZES) {
            const response = randomBytes(size);
            const [atUpstream] = await Promise.all([
              readExactly(f.upstream, request.byteLength),
              f.client.writeAll(request),
            ]);
            expect(Buffer.compare(atUpstream, request)).toBe(0);
            const [atClient] = await Promise.all([
              readExactly(f.client, size),
              f.upstream.writeAll(response),
            ]);
            expect(Buffer.compare(atClient, response)).toBe(0);
            sentUp += request.byteLength;
            sentDown += size;
          }
        }
        // Pipelined: several requests back to back, then responses back to back.
        const burst = randomBytes(32 * 1024);
        const [atUpstream] = await Promise.all([
          readExactly(f.upstream, burst.byteLength * 3),
          (async () => {
            for (let i = 0; i < 3; i++) await f.client.writeAll(burst);
          })(),
        ]);
        expect(atUpstream.byteLength).toBe(burst.byteLength * 3);
        sentUp += burst.byteLength * 3;
        // End of stream each way: client half-closes, upstream answers then half-closes.
        await f.client.shutdown();
        expect((await readToEnd(f.upstream)).byteLength).toBe(0);
        expect(await f.up).toBe(sentUp);
        const last = randomBytes(5000);
        await f.upstream.writeAll(last);
        await f.upstream.shutdown();
        const tail = await readToEnd(f.client);
        expect(Buffer.compare(tail, last)).toBe(0);
        expect(await f.down).toBe(sentDown + last.byteLength);
      },
      30_000,
    );

    run(
      `${label}: upstream end of stream reaches the client while the client keeps sending`,
      async () => {
        const f = await forwarder(driver(), res, move);
        const response = randomBytes(3269);
        await f.upstream.writeAll(response);
        await f.upstream.shutdown();
        const [atClient, moved] = await Promise.all([readToEnd(f.client), f.down]);
        expect(Buffer.compare(atClient, response)).toBe(0);
        expect(moved).toBe(response.byteLength);
        // The other direction still works after the half-close.
        const request = randomBytes(11 * 1024);
        const [atUpstream] = await Promise.all([
          readExactly(f.upstream, request.byteLength),
          f.client.writeAll(request),
        ]);
        expect(Buffer.compare(atUpstream, request)).toBe(0);
        await f.client.shutdown();
        expect(await f.up).toBe(request.byteLength);
        expect((await readToEnd(f.upstream)).byteLength).toBe(0);
      },
      30_000,
    );
  }

  run(
    'zeroCopy: many forwarded connections at once, 3 KiB to 64 KiB answers, none stalls',
    async () => {
      const d = driver();
      const pairs = await Promise.all(Array.from({ length: 24 }, () => forwarder(d, res, moves[1]![1])));
      const sizes = [3269, 11268, 64 * 1024];
      await Promise.all(
        pairs.map(async (f, i) => {
          for (let round = 0; round < 6; round++) {
            const size = sizes[(i + round) % sizes.length]!;
            const request = randomBytes(90 + i);
            const response = randomBytes(size);
            const [atUpstream] = await Promise.all([
              readExactly(f.upstream, request.byteLength),
              f.client.writeAll(request),
            ]);
            expect(Buffer.compare(atUpstream, request)).toBe(0);
            const [atClient] = await Promise.all([
              readExactly(f.client, size),
              f.upstream.writeAll(response),
            ]);
            expect(Buffer.compare(atClient, response)).toBe(0);
          }
          await f.client.shutdown();
          await f.up;
          await f.upstream.shutdown();
          await f.down;
        }),
      );
    },
    60_000,
  );

  run('zeroCopy after a recv(): bytes the recv already took come first (one reader)', async () => {
    const d = driver();
    const inbound = await pair(d, res);
    const outbound = await pair(d, res);
    const head = randomBytes(1000);
    const rest = randomBytes(300 * 1024);
    await inbound.client.writeAll(head);
    // The multishot recv stays armed after this recv and may queue more chunks than it returns.
    const first = await inbound.server.recv();
    expect(first).not.toBeNull();
    const firstBytes = Buffer.from(first!.bytes);
    first!.release();
    await inbound.client.writeAll(rest.subarray(0, 1000));
    const [moved, received] = await Promise.all([
      zeroCopy(inbound.server, outbound.client, { driver: d }),
      readToEnd(outbound.server),
      inbound.client.writeAll(rest.subarray(1000)).then(() => inbound.client.shutdown()),
    ]);
    const all = Buffer.concat([head, rest]);
    expect(Buffer.compare(Buffer.concat([firstBytes, received]), all)).toBe(0);
    expect(moved).toBe(all.byteLength - firstBytes.byteLength);
  });

  run('zeroCopy rejects with ECANCELED on abort, and when the source is closed', async () => {
    const d = driver();
    const a = await pair(d, res);
    const b = await pair(d, res);
    const controller = new AbortController();
    const settled = (p: Promise<number>) =>
      p.then(
        (n) => n,
        (error: unknown) => error,
      );
    const aborted = settled(zeroCopy(a.server, b.client, { driver: d, signal: controller.signal }));
    await a.client.writeAll(randomBytes(5000));
    await readExactly(b.server, 5000);
    controller.abort();
    expect(await aborted).toMatchObject({ code: 'ECANCELED' });
    const c = await pair(d, res);
    const e = await pair(d, res);
    const closed = settled(zeroCopy(c.server, e.client, { driver: d }));
    await c.client.writeAll(randomBytes(100));
    await readExactly(e.server, 100);
    await c.server.close();
    expect(await closed).toMatchObject({ code: 'ECANCELED' });
  });

  run(
    'copy() beside zeroCopy on the same sockets: ring sends and recvs work while they are O_NONBLOCK',
    async () => {
      const d = driver();
      const front = await pair(d, res);
      const back = await pair(d, res);
      // Up: zeroCopy (both sockets non-blocking while it runs); down: copy() through ring recv/send.
      const up = zeroCopy(front.server, back.client, { driver: d });
      const down = copy(back.client, front.server);
      up.catch(() => undefined);
      down.catch(() => undefined);
      const request = randomBytes(1000);
      const response = randomBytes(4 * 1024 * 1024);
      const [atUpstream] = await Promise.all([
        readExactly(back.server, request.byteLength),
        front.client.writeAll(request),
      ]);
      expect(Buffer.compare(atUpstream, request)).toBe(0);
      // Nobody reads at first, so the copy's sends into the non-blocking socket meet a full buffer.
      const writing = back.server.writeAll(response);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const atClient = await readExactly(front.client, response.byteLength);
      await writing;
      expect(Buffer.compare(atClient, response)).toBe(0);
      await front.client.shutdown();
      expect(await up).toBe(request.byteLength);
      await back.server.shutdown();
      expect(await down).toBe(response.byteLength);
    },
    30_000,
  );
});
