/**
 * writeTo() conformance (the promise-free write), the same for every driver over real sockets:
 * one buffer and several, large writes that take many sends (short sends resubmitted), exactly
 * one onWritten per call and never from inside writeTo() or close(), close() settling a pending
 * one with ECANCELED (with the buffer), and a write on a closed stream. Also the promise
 * writev() across short sends and cancelled mid-way, which shares the io_uring op with writeTo().
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RuntimeError } from '../../src/errors.js';
import type { WriteTarget } from '../../src/stream.js';
import { driverCases, readExactly, readToEnd, tcpPair, useDriver } from './drivers.js';

const cases = await driverCases();

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

describe.each(cases)('writeTo conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('writes one buffer, then calls onWritten once, not from inside writeTo', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const r = new Recorder();
    client.writeTo(Buffer.from('hello'), r);
    expect(r.calls).toHaveLength(0);
    await r.settled();
    expect(r.calls).toEqual([undefined]);
    expect((await readExactly(server, 5)).toString()).toBe('hello');
    await driver().sleep(20);
    expect(r.calls).toHaveLength(1);
  });

  run('writes several buffers in order; an empty list settles at once', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const r = new Recorder();
    client.writeTo([Buffer.from('ab'), new Uint8Array(0), Buffer.from('cd'), Buffer.from('ef')], r);
    await r.settled();
    expect(r.calls).toEqual([undefined]);
    expect((await readExactly(server, 6)).toString()).toBe('abcdef');
    const empty = new Recorder();
    client.writeTo([], empty);
    expect(empty.calls).toHaveLength(0);
    await empty.settled();
    expect(empty.calls).toEqual([undefined]);
  });

  run('large single and gathered writes arrive whole and in order (many sends each)', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const one = randomBytes(6 * 1024 * 1024);
    const parts = Array.from({ length: 40 }, (_, i) => randomBytes(64 * 1024 + i * 997));
    const expected = Buffer.concat([one, ...parts]);
    const received = readToEnd(server);
    // One write at a time (the contract): the second starts once the first settled.
    const a = new Recorder();
    const b = new Recorder();
    client.writeTo(one, a);
    await a.settled();
    client.writeTo(parts, b);
    await b.settled();
    expect(a.calls).toEqual([undefined]);
    expect(b.calls).toEqual([undefined]);
    await client.shutdown();
    const got = await received;
    expect(got.length).toBe(expected.length);
    expect(got.equals(expected)).toBe(true);
  });

  run('close() settles a pending writeTo with ECANCELED and the buffer, once', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    // The server never reads: once both socket buffers are full the write stays pending.
    const big = new Uint8Array(32 * 1024 * 1024);
    const r = new Recorder();
    client.writeTo(big, r);
    await driver().sleep(20);
    expect(r.calls).toHaveLength(0);
    const closed = client.close();
    expect(r.calls).toHaveLength(0);
    await closed;
    await r.settled();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]?.code).toBe('ECANCELED');
    expect(r.calls[0]?.buffer).toBe(big);
    await driver().sleep(20);
    expect(r.calls).toHaveLength(1);
  });

  run('close() settles a pending gathered writeTo with ECANCELED', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    const parts = Array.from({ length: 8 }, () => new Uint8Array(4 * 1024 * 1024));
    const r = new Recorder();
    client.writeTo(parts, r);
    await driver().sleep(20);
    await client.close();
    await r.settled();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]?.code).toBe('ECANCELED');
  });

  run('writeTo on a closed stream delivers an error with the buffer, not from inside writeTo', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    await client.close();
    const buf = Buffer.from('late');
    const r = new Recorder();
    client.writeTo(buf, r);
    expect(r.calls).toHaveLength(0);
    await r.settled();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]).toBeDefined();
    expect(r.calls[0]?.buffer).toBe(buf);
  });

  run('aborting a pending writev() fails it with ECANCELED', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    // The server never reads: once both socket buffers are full the writev stays pending.
    const parts = Array.from({ length: 8 }, () => new Uint8Array(4 * 1024 * 1024));
    const controller = new AbortController();
    const pending = client.writev(parts, { signal: controller.signal }).catch((e: unknown) => e);
    await driver().sleep(20);
    controller.abort();
    expect(await pending).toMatchObject({ code: 'ECANCELED' });
  });

  run('close() fails a pending writev() with ECANCELED', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    const parts = Array.from({ length: 8 }, () => new Uint8Array(4 * 1024 * 1024));
    const pending = client.writev(parts).catch((e: unknown) => e);
    await driver().sleep(20);
    await client.close();
    expect(await pending).toMatchObject({ code: 'ECANCELED' });
  });

  run('writev() of many large buffers arrives whole across short sends', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const parts = Array.from({ length: 1500 }, (_, i) => randomBytes(2048 + (i % 7) * 311));
    const expected = Buffer.concat(parts);
    const received = readToEnd(server);
    const n = await client.writev(parts);
    expect(n).toBe(expected.length);
    await client.shutdown();
    const got = await received;
    expect(got.equals(expected)).toBe(true);
  });
});
