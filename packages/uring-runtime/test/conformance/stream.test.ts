/**
 * Stream conformance: the same echo, half-close, large-write, concurrency, cancellation, error
 * and descriptor-leak tests against every driver, over real sockets on loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Driver } from '../../src/driver.js';
import { RuntimeError } from '../../src/errors.js';
import type { ByteStream, StreamListener } from '../../src/stream.js';
import { driverCases, portOf, readExactly, readToEnd, tcpPair, useDriver } from './drivers.js';

const cases = await driverCases();

/** Echoes every stream accepted on `listener` until it is closed. */
function serveEcho(listener: StreamListener): Promise<void> {
  return (async () => {
    for (;;) {
      let stream: ByteStream;
      try {
        stream = await listener.accept();
      } catch {
        return;
      }
      void (async () => {
        try {
          for (;;) {
            const chunk = await stream.recv();
            if (chunk === null) break;
            await stream.writeAll(chunk.bytes);
            chunk.release();
          }
          await stream.shutdown();
        } catch {
          // peer went away: nothing to echo to
        } finally {
          await stream.close();
        }
      })();
    }
  })();
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The descriptor count once it stopped changing (earlier tests' closes finish asynchronously). */
async function settledFdCount(driver: Driver): Promise<number> {
  let last = fdCount();
  for (let stable = 0, i = 0; stable < 5 && i < 200; i++) {
    await driver.sleep(10);
    const now = fdCount();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

describe.each(cases)('stream conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  for (const host of ['127.0.0.1', '::1']) {
    run(`echoes over TCP ${host}`, async () => {
      const listener = res.add(await driver().listenTcp({ host, port: 0 }));
      void serveEcho(listener);
      const client = res.add(await driver().connectTcp({ host, port: portOf(listener) }));
      expect(client.driver).toBe(name);
      expect(client.remoteAddress).toMatchObject({
        family: host === '::1' ? 'ipv6' : 'ipv4',
        port: portOf(listener),
      });
      await client.writeAll(Buffer.from('hello loch'));
      await client.shutdown();
      expect((await readToEnd(client)).toString()).toBe('hello loch');
    });
  }

  run('echoes over a Unix socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loch-conf-'));
    res.add({ close: () => rm(dir, { recursive: true, force: true }) });
    const path = join(dir, 'echo.sock');
    const listener = res.add(await driver().listenUnix({ path }));
    expect(listener.localAddress).toEqual({ family: 'unix', path });
    void serveEcho(listener);
    const client = res.add(await driver().connectUnix({ path }));
    expect(client.remoteAddress).toEqual({ family: 'unix', path });
    await client.writev([Buffer.from('over '), Buffer.from('unix')]);
    await client.shutdown();
    expect((await readToEnd(client)).toString()).toBe('over unix');
    await listener.close();
    expect(existsSync(path)).toBe(false);
  });

  run('half-close: the peer reads end of stream and can still answer', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    await client.writeAll(Buffer.from('question'));
    await client.shutdown();
    expect((await readToEnd(server)).toString()).toBe('question');
    await server.writeAll(Buffer.from('answer'));
    await server.shutdown();
    expect((await readToEnd(client)).toString()).toBe('answer');
  });

  run('writes after shutdown fail with EPIPE and return the buffer', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    await client.shutdown();
    const buf = Buffer.from('late');
    const error = await client.write(buf).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('EPIPE');
    expect((error as RuntimeError).buffer).toBe(buf);
  });

  run('moves 8 MB intact in both directions', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const payload = randomBytes(8 * 1024 * 1024);
    const [received] = await Promise.all([
      readToEnd(server),
      client.writeAll(payload).then(() => client.shutdown()),
    ]);
    expect(received.byteLength).toBe(payload.byteLength);
    expect(sha256(received)).toBe(sha256(payload));
    const [back] = await Promise.all([readExactly(client, payload.byteLength), server.writeAll(payload)]);
    expect(sha256(back)).toBe(sha256(payload));
  });

  run('serves 200 concurrent connections', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    void serveEcho(listener);
    const port = portOf(listener);
    const answers = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const client = res.add(await driver().connectTcp({ host: '127.0.0.1', port }));
        await client.writeAll(Buffer.from(`message ${i}`));
        await client.shutdown();
        const text = (await readToEnd(client)).toString();
        await client.close();
        return text;
      }),
    );
    expect(answers).toEqual(Array.from({ length: 200 }, (_, i) => `message ${i}`));
  });

  run('cancelling a read returns the buffer, and the stream still reads afterwards', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const buf = new Uint8Array(1024);
    const controller = new AbortController();
    const pending = client.read(buf, { signal: controller.signal });
    controller.abort();
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ECANCELED');
    expect((error as RuntimeError).buffer).toBe(buf);
    await server.writeAll(Buffer.from('after'));
    expect((await readExactly(client, 5)).toString()).toBe('after');
  });

  run('a pre-aborted signal fails at once with the buffer', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const buf = new Uint8Array(16);
    const error = await client.read(buf, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect((error as RuntimeError).code).toBe('ECANCELED');
    expect((error as RuntimeError).buffer).toBe(buf);
  });

  run('close() fails a pending read with ECANCELED', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    const buf = new Uint8Array(16);
    const pending = client.read(buf).catch((e: unknown) => e);
    await client.close();
    const error = await pending;
    expect((error as RuntimeError).code).toBe('ECANCELED');
    expect((error as RuntimeError).buffer).toBe(buf);
    expect(client.closed).toBe(true);
  });

  run('close() fails a pending write with ECANCELED and returns the buffer', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(server);
    // The server never reads: once both socket buffers are full the write stays pending.
    const big = new Uint8Array(32 * 1024 * 1024);
    const pending = client.writeAll(big).catch((e: unknown) => e);
    await driver().sleep(20);
    await client.close();
    const error = await pending;
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ECANCELED');
    expect((error as RuntimeError).buffer).toBe(big);
  });

  run('aborting a pending write fails it with ECANCELED and returns the buffer', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const big = new Uint8Array(32 * 1024 * 1024);
    const controller = new AbortController();
    const pending = client.writeAll(big, { signal: controller.signal }).catch((e: unknown) => e);
    await driver().sleep(20);
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ECANCELED');
    expect((error as RuntimeError).buffer).toBe(big);
  });

  run('a peer reset while writing fails the write with EPIPE or ECONNRESET, with the buffer', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const accepted = listener.accept();
    const peer = netConnect({ host: '127.0.0.1', port: portOf(listener) });
    await new Promise<void>((resolve) => peer.once('connect', resolve));
    const server = res.add(await accepted);
    peer.resetAndDestroy();
    const big = new Uint8Array(16 * 1024 * 1024);
    let error: unknown;
    // The first write may still reach the kernel before the reset is seen; the next one cannot.
    for (let i = 0; i < 8 && error === undefined; i++) {
      error = await server.writeAll(big).then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    expect(error).toBeInstanceOf(RuntimeError);
    expect(['EPIPE', 'ECONNRESET']).toContain((error as RuntimeError).code);
    expect((error as RuntimeError).buffer).toBe(big);
  });

  run('connect refused fails with ECONNREFUSED and the address', async () => {
    const listener = await driver().listenTcp({ host: '127.0.0.1', port: 0 });
    const port = portOf(listener);
    await listener.close();
    const error = await driver()
      .connectTcp({ host: '127.0.0.1', port })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('ECONNREFUSED');
    expect((error as RuntimeError).syscall).toBe('connect');
    expect((error as RuntimeError).address).toMatchObject({ address: '127.0.0.1', port });
  });

  run('connect past its timeout fails with ETIMEDOUT', async () => {
    // A listener that never accepts, with a backlog of 0: once its queue is full the kernel
    // drops further SYNs, so a connect can only end by its deadline.
    const { spawn } = await import('node:child_process');
    const child = spawn(
      'python3',
      [
        '-c',
        'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    res.add({
      close: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('close', () => resolve());
          child.kill();
        }),
    });
    const port = await new Promise<number>((resolve) =>
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString()))),
    );
    let timedOut: RuntimeError | undefined;
    for (let attempt = 0; attempt < 16 && timedOut === undefined; attempt++) {
      try {
        res.add(await driver().connectTcp({ host: '127.0.0.1', port, timeout: 200 }));
      } catch (error) {
        timedOut = error as RuntimeError;
      }
    }
    expect(timedOut).toBeInstanceOf(RuntimeError);
    expect(timedOut?.code).toBe('ETIMEDOUT');
    expect(timedOut?.address).toMatchObject({ port });
  });

  run('a peer reset mid-read gives ECONNRESET or end of stream, never an uncaught error', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const accepted = listener.accept();
    const peer = netConnect({ host: '127.0.0.1', port: portOf(listener) });
    await new Promise<void>((resolve) => peer.once('connect', resolve));
    const server = res.add(await accepted);
    const reading = server.read(new Uint8Array(64)).then(
      ([n]) => (n === 0 ? 'eof' : 'data'),
      (error: RuntimeError) => error.code,
    );
    peer.resetAndDestroy();
    expect(['ECONNRESET', 'eof']).toContain(await reading);
  });

  run('writev sends every buffer in order', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.from(`part-${i};`));
    const total = await client.writev(parts);
    expect(total).toBe(Buffer.concat(parts).byteLength);
    await client.shutdown();
    expect((await readToEnd(server)).toString()).toBe(Buffer.concat(parts).toString());
  });

  run('async iteration yields the data and ends at end of stream', async () => {
    const { listener, client, server } = await tcpPair(driver());
    res.add(listener);
    res.add(client);
    res.add(server);
    await client.writeAll(Buffer.from('iterate me'));
    await client.shutdown();
    const parts: Buffer[] = [];
    for await (const bytes of server) parts.push(Buffer.from(bytes));
    expect(Buffer.concat(parts).toString()).toBe('iterate me');
  });

  run('sleep resolves, and rejects with ECANCELED when aborted', async () => {
    await driver().sleep(5);
    const controller = new AbortController();
    const pending = driver().sleep(60_000, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ECANCELED' });
  });

  run('leaks no descriptors over 500 connect/close cycles', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    void serveEcho(listener);
    const port = portOf(listener);
    // Warm up once so lazily created descriptors (pipes, eventfds) exist before counting.
    await (await driver().connectTcp({ host: '127.0.0.1', port })).close();
    const before = await settledFdCount(driver());
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const client = await driver().connectTcp({ host: '127.0.0.1', port });
          await client.writeAll(Buffer.from('x'));
          await client.shutdown();
          await readToEnd(client);
          await client.close();
        }),
      );
    }
    let after = fdCount();
    for (let i = 0; i < 100 && after !== before; i++) {
      await driver().sleep(20);
      after = fdCount();
    }
    expect(after).toBe(before);
  });
});
