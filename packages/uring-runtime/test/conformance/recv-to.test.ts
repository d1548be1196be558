/**
 * recvTo() conformance (the promise-free one-shot receive), the same for every driver over real
 * sockets: data, end of stream, exactly one call per recvTo, never called from inside recvTo or
 * close(), close() settling a pending one with ECANCELED, order with recv(), and chunks that go
 * back to the pool.
 */
import { describe, expect, it } from 'vitest';
import type { RuntimeError } from '../../src/errors.js';
import type { ByteStream, RecvChunk, RecvTarget } from '../../src/stream.js';
import { driverCases, portOf, tcpPair, useDriver } from './drivers.js';

const cases = await driverCases();

/** A target that records every call it gets. */
class Recorder implements RecvTarget {
  readonly calls: { chunk: RecvChunk | null; error: RuntimeError | undefined }[] = [];
  #wake: (() => void) | undefined;
  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    this.calls.push({ chunk, error });
    this.#wake?.();
  }
  /** Resolves once at least `n` calls arrived. */
  async until(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((r) => (this.#wake = r));
  }
}

/** Receives with recvTo until `n` bytes came in. */
async function recvToBytes(stream: ByteStream, n: number): Promise<string> {
  let text = '';
  while (text.length < n) {
    const r = new Recorder();
    stream.recvTo(r);
    await r.until(1);
    const { chunk, error } = r.calls[0]!;
    if (error !== undefined) throw error;
    if (chunk === null) throw new Error('early end of stream');
    text += Buffer.from(chunk.bytes).toString();
    chunk.release();
  }
  return text;
}

describe.each(cases)('recvTo conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('delivers data once per call, then null at end of stream', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const first = new Recorder();
    server.recvTo(first);
    await client.writeAll(Buffer.from('hello'));
    await first.until(1);
    expect(first.calls).toHaveLength(1);
    expect(first.calls[0]!.error).toBeUndefined();
    let text = Buffer.from(first.calls[0]!.chunk!.bytes).toString();
    first.calls[0]!.chunk!.release();
    if (text.length < 5) text += await recvToBytes(server, 5 - text.length);
    expect(text).toBe('hello');
    await client.shutdown();
    const end = new Recorder();
    server.recvTo(end);
    await end.until(1);
    expect(end.calls).toEqual([{ chunk: null, error: undefined }]);
    // End of stream stays: another recvTo hears it again.
    const again = new Recorder();
    server.recvTo(again);
    await again.until(1);
    expect(again.calls).toEqual([{ chunk: null, error: undefined }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(first.calls).toHaveLength(1);
    expect(end.calls).toHaveLength(1);
  });

  run('never calls the target from inside recvTo, even with data already buffered', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    await client.writeAll(Buffer.from('ab'));
    // Let the bytes arrive and queue on the server side.
    const warm = await server.recv();
    expect(warm).not.toBeNull();
    warm!.release();
    await client.writeAll(Buffer.from('cd'));
    await new Promise((r) => setTimeout(r, 20));
    const r = new Recorder();
    server.recvTo(r);
    expect(r.calls).toHaveLength(0);
    await r.until(1);
    expect(r.calls).toHaveLength(1);
    r.calls[0]!.chunk?.release();
  });

  run('close() settles a pending recvTo with ECANCELED, once, and not from inside close()', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const r = new Recorder();
    server.recvTo(r);
    const closed = server.close();
    expect(r.calls).toHaveLength(0);
    await closed;
    await r.until(1);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.chunk).toBeNull();
    expect(r.calls[0]!.error?.code).toBe('ECANCELED');
    // Late data from the peer reaches no one.
    await client.writeAll(Buffer.from('late')).catch(() => undefined);
    await new Promise((r2) => setTimeout(r2, 30));
    expect(r.calls).toHaveLength(1);
  });

  run('recvTo on a closed stream delivers an error', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    await server.close();
    const r = new Recorder();
    server.recvTo(r);
    await r.until(1);
    expect(r.calls[0]!.chunk).toBeNull();
    expect(r.calls[0]!.error).toBeDefined();
  });

  run('keeps order with recv() and serves 200 parked connections', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const port = portOf(listener);
    const pairs: { client: ByteStream; server: ByteStream; r: Recorder }[] = [];
    for (let i = 0; i < 200; i++) {
      const accepted = listener.accept();
      const client = res.add(await driver().connectTcp({ host: '127.0.0.1', port }));
      const server = res.add(await accepted);
      const r = new Recorder();
      server.recvTo(r);
      pairs.push({ client, server, r });
    }
    await Promise.all(pairs.map((p, i) => p.client.writeAll(Buffer.from(`m${i}|`))));
    await Promise.all(pairs.map((p) => p.r.until(1)));
    for (const [i, p] of pairs.entries()) {
      let text = Buffer.from(p.r.calls[0]!.chunk!.bytes).toString();
      p.r.calls[0]!.chunk!.release();
      const want = `m${i}|`;
      if (text.length < want.length) text += await recvToBytes(p.server, want.length - text.length);
      expect(text).toBe(want);
    }
    // A recv() and a recvTo() waiting together are served in call order.
    const { client, server } = pairs[0]!;
    const viaPromise = server.recv();
    const r = new Recorder();
    server.recvTo(r);
    await client.writeAll(Buffer.from('1'));
    const firstChunk = await viaPromise;
    expect(Buffer.from(firstChunk!.bytes).toString()).toBe('1');
    firstChunk!.release();
    expect(r.calls).toHaveLength(0);
    await client.writeAll(Buffer.from('2'));
    await r.until(1);
    expect(Buffer.from(r.calls[0]!.chunk!.bytes).toString()).toBe('2');
    r.calls[0]!.chunk!.release();
  });

  run('a target that throws does not cost other targets their delivery', async () => {
    const a = await tcpPair(driver());
    const b = await tcpPair(driver());
    for (const p of [a, b]) {
      res.add(p.listener);
      res.add(p.client);
      res.add(p.server);
    }
    const thrown: unknown[] = [];
    const onUncaught = (e: unknown) => thrown.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const bad: RecvTarget = {
        onRecv() {
          throw new Error('target failure');
        },
      };
      const good = new Recorder();
      a.server.recvTo(bad);
      b.server.recvTo(good);
      await a.server.close();
      await b.server.close();
      await good.until(1);
      await new Promise((r) => setTimeout(r, 20));
      expect(good.calls[0]!.error?.code).toBe('ECANCELED');
      expect(thrown.map((e) => (e as Error).message)).toEqual(['target failure']);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
