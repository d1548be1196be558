/**
 * Conformance of the convenience forms that StreamForms builds on recvTo/writeTo (recv() with an
 * AbortSignal, write(), pre-aborted operations), the same for every driver over real sockets.
 */
import { describe, expect, it } from 'vitest';
import { RuntimeError } from '../../src/errors.js';
import { driverCases, readToEnd, tcpPair, useDriver } from './drivers.js';

const cases = await driverCases();

describe.each(cases)('stream forms conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  async function pair() {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    return { client, server };
  }

  run('an aborted recv() fails with ECANCELED and loses no bytes', async () => {
    const { client, server } = await pair();
    const controller = new AbortController();
    const pending = server.recv({ signal: controller.signal });
    controller.abort();
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ECANCELED');
    expect((error as RuntimeError).syscall).toBe('recv');
    await client.writeAll(Buffer.from('kept'));
    await client.shutdown();
    expect((await readToEnd(server)).toString()).toBe('kept');
  });

  run('aborting the first of two waiting recv() hands the data to the second', async () => {
    const { client, server } = await pair();
    const controller = new AbortController();
    const first = server.recv({ signal: controller.signal }).catch((e: unknown) => e);
    const second = server.recv();
    controller.abort();
    expect(((await first) as RuntimeError).code).toBe('ECANCELED');
    await client.writeAll(Buffer.from('x'));
    const chunk = await second;
    expect(Buffer.from(chunk!.bytes).toString()).toBe('x');
    chunk!.release();
  });

  run('write() resolves with the whole count and the buffer', async () => {
    const { client, server } = await pair();
    const buf = Buffer.from('counted');
    const [n, back] = await client.write(buf);
    expect(n).toBe(buf.byteLength);
    expect(back).toBe(buf);
    await client.shutdown();
    expect((await readToEnd(server)).toString()).toBe('counted');
  });

  run('pre-aborted recv(), writeAll() and writev() fail at once with ECANCELED', async () => {
    const { client } = await pair();
    const signal = AbortSignal.abort();
    const buf = Buffer.from('never');
    const recvError = (await client.recv({ signal }).catch((e: unknown) => e)) as RuntimeError;
    const writeError = (await client.writeAll(buf, { signal }).catch((e: unknown) => e)) as RuntimeError;
    const writevError = (await client.writev([buf], { signal }).catch((e: unknown) => e)) as RuntimeError;
    expect([recvError.code, writeError.code, writevError.code]).toEqual([
      'ECANCELED',
      'ECANCELED',
      'ECANCELED',
    ]);
    expect(writeError.buffer).toBe(buf);
    expect(writevError.syscall).toBe('writev');
  });

  run('iteration stops at end of stream, and recv() after close() fails', async () => {
    const { client, server } = await pair();
    await client.writev([Buffer.from('a'), Buffer.from('b')]);
    await client.shutdown();
    const parts: string[] = [];
    for await (const bytes of server) parts.push(Buffer.from(bytes).toString());
    expect(parts.join('')).toBe('ab');
    // The client saw no end of stream: after close() its recv() fails.
    await client.close();
    await expect(client.recv()).rejects.toBeInstanceOf(RuntimeError);
  });
});
