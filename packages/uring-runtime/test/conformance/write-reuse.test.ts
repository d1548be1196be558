/**
 * Write records reused (issue 15): the io_uring driver gives a write's record back to the
 * thread's spare list once the write settled at its final completion, and the thread's next
 * write (on any stream) takes it. What must hold, on every driver over real sockets: a write
 * whose completion is still due (a large one resubmitting after short sends, one cut by close()
 * or by the peer's reset) keeps its record while other streams write and settle many times
 * meanwhile; each target hears exactly once, with its own buffer; an abort of a finished write's
 * signal touches no later write. On io_uring, records are reused and a spare pins nothing.
 * No timing: every wait is for a state (bytes sent, calls heard), bounded only as a liveness
 * guard sized for a loaded CI.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RuntimeError } from '../../src/errors.js';
import { sentBytes } from '../../src/net/runtime-stream.js';
import type { ByteStream, WriteTarget } from '../../src/stream.js';
import { spareWriteOps } from '../../src/uring/stream.js';
import { driverCases, readExactly, readToEnd, tcpPair, useDriver } from './drivers.js';

const cases = await driverCases();

/** Liveness bound of one wait (a loaded CI runs every suite at once on 2 cores). */
const WAIT_TURNS = 6000;

/** A target that records every call it gets. */
class Recorder implements WriteTarget {
  readonly calls: (RuntimeError | undefined)[] = [];
  #wake: (() => void) | undefined;
  onWritten(error: RuntimeError | undefined): void {
    this.calls.push(error);
    this.#wake?.();
  }
  /** Resolves once at least one call arrived. */
  async settled(): Promise<void> {
    while (this.calls.length < 1) await new Promise<void>((r) => (this.#wake = r));
  }
}

/** Waits until `ready()` holds (a state), checking every 10 ms; throws past the liveness bound. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < WAIT_TURNS; i++) {
    if (ready()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

/**
 * `rounds` writes on `stream`, one at a time (the contract), alternating a single buffer and a
 * gathered one; checks each target heard once, without error. Returns the bytes written.
 */
async function writeRounds(stream: ByteStream, rounds: number, seed: number): Promise<Buffer> {
  const sent: Buffer[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = new Recorder();
    if (i % 2 === 0) {
      const one = Buffer.from(`single ${seed}.${i};`);
      sent.push(one);
      stream.writeTo(one, r);
    } else {
      const parts = [Buffer.from(`gathered ${seed}.${i}:`), randomBytes(1 + (i % 5) * 700), Buffer.from(';')];
      sent.push(...parts);
      stream.writeTo(parts, r);
    }
    await r.settled();
    expect(r.calls).toEqual([undefined]);
  }
  return Buffer.concat(sent);
}

describe.each(cases)('write records reused: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run(
    'a large write resubmitting after short sends keeps its record while another stream writes 200 times',
    { timeout: 120_000 },
    async () => {
      const a = await tcpPair(driver());
      const b = await tcpPair(driver());
      for (const s of [a.listener, a.client, a.server, b.listener, b.client, b.server]) res.add(s);
      // A's peer does not read yet: the write goes out in short sends as the peer makes room.
      const big = randomBytes(16 * 1024 * 1024);
      const bigCopy = Buffer.from(big);
      const ra = new Recorder();
      a.client.writeTo(big, ra);
      await until(() => sentBytes(a.client) > 0, 'the large write made progress');
      expect(ra.calls).toHaveLength(0);
      // B writes and settles many times while A's completion is due: on io_uring every one of
      // these takes a record from the thread's spare list.
      const bReceived = readToEnd(b.server);
      const bSent = await writeRounds(b.client, 200, 1);
      await b.client.shutdown();
      expect((await bReceived).equals(bSent)).toBe(true);
      expect(ra.calls).toHaveLength(0);
      // A's peer reads now: the large write's rest goes out from its own record, whole.
      const aReceived = readExactly(a.server, big.byteLength);
      await until(() => ra.calls.length > 0, 'the large write settled');
      expect(ra.calls).toEqual([undefined]);
      expect((await aReceived).equals(bigCopy)).toBe(true);
      // Then A's own next writes reuse records too, in order after it.
      const aMore = readToEnd(a.server);
      const aSent = await writeRounds(a.client, 20, 2);
      await a.client.shutdown();
      expect((await aMore).equals(aSent)).toBe(true);
      expect(ra.calls).toHaveLength(1);
    },
  );

  run(
    'writes cut by close() and by the peer reset each hear once, with their own buffer, while others reuse records',
    { timeout: 120_000 },
    async () => {
      const closed = await tcpPair(driver());
      const reset = await tcpPair(driver());
      const other = await tcpPair(driver());
      for (const p of [closed, reset, other]) {
        res.add(p.listener);
        res.add(p.client);
        res.add(p.server);
      }
      // Two writes stay due: their peers never read 32 MiB.
      const big1 = new Uint8Array(32 * 1024 * 1024);
      const big2 = new Uint8Array(32 * 1024 * 1024);
      const r1 = new Recorder();
      const r2 = new Recorder();
      closed.client.writeTo(big1, r1);
      reset.client.writeTo(big2, r2);
      await until(
        () => sentBytes(closed.client) > 0 && sentBytes(reset.client) > 0,
        'both writes made progress',
      );
      // Another stream writes and settles meanwhile.
      const otherReceived = readToEnd(other.server);
      const before = await writeRounds(other.client, 50, 3);
      expect(r1.calls).toHaveLength(0);
      expect(r2.calls).toHaveLength(0);
      // One is cut by its own close(), the other by its peer's reset (a close with unread bytes).
      await closed.client.close();
      await reset.server.close();
      await until(() => r1.calls.length > 0 && r2.calls.length > 0, 'both cut writes settled');
      expect(r1.calls).toHaveLength(1);
      expect(r1.calls[0]?.code).toBe('ECANCELED');
      expect(r1.calls[0]?.buffer).toBe(big1);
      expect(r2.calls).toHaveLength(1);
      expect(r2.calls[0]).toBeDefined();
      // Records given back by the cut writes serve the other stream's next writes; the cut ones
      // hear nothing more.
      const after = await writeRounds(other.client, 50, 4);
      await other.client.shutdown();
      expect((await otherReceived).equals(Buffer.concat([before, after]))).toBe(true);
      expect(r1.calls).toHaveLength(1);
      expect(r2.calls).toHaveLength(1);
    },
  );

  run(
    "aborting a finished write's signal does not cancel a later write that took its record",
    { timeout: 120_000 },
    async () => {
      const { listener, client, server } = await tcpPair(driver());
      res.add(listener);
      res.add(client);
      res.add(server);
      const controller = new AbortController();
      const first = Buffer.from('first;');
      await client.writeAll(first, { signal: controller.signal });
      // The next write takes the first one's record (io_uring) and stays due: the peer does not read.
      const big = randomBytes(16 * 1024 * 1024);
      const bigCopy = Buffer.from(big);
      const r = new Recorder();
      client.writeTo(big, r);
      await until(() => sentBytes(client) > first.byteLength, 'the large write made progress');
      controller.abort();
      const received = readExactly(server, first.byteLength + big.byteLength);
      await until(() => r.calls.length > 0, 'the large write settled');
      expect(r.calls).toEqual([undefined]);
      expect((await received).equals(Buffer.concat([first, bigCopy]))).toBe(true);
    },
  );

  if (name === 'uring')
    run('settled writes give their records back, and the next writes take them', async () => {
      const { listener, client, server } = await tcpPair(driver());
      res.add(listener);
      res.add(client);
      res.add(server);
      const received = readToEnd(server);
      const sent = await writeRounds(client, 10, 5);
      const spare = spareWriteOps();
      expect(spare).toBeGreaterThan(0);
      // A write in flight holds one: the list is one shorter until it settles, then back.
      const r = new Recorder();
      client.writeTo(Buffer.from('more'), r);
      expect(spareWriteOps()).toBe(spare - 1);
      await until(() => r.calls.length > 0, 'the write settled');
      expect(spareWriteOps()).toBe(spare);
      await client.shutdown();
      expect((await received).equals(Buffer.concat([sent, Buffer.from('more')]))).toBe(true);
    });
});
