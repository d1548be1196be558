/**
 * Listener conformance: binding errors, SO_REUSEPORT, accept cancellation and Unix socket paths,
 * the same for every driver, over real sockets.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RuntimeError } from '../../src/errors.js';
import type { ByteStream } from '../../src/stream.js';
import { driverCases, portOf, readToEnd, useDriver } from './drivers.js';

const cases = await driverCases();

describe.each(cases)('listener conformance: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('accepted streams know both ends: local is the listener address, remote the client', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const listener = res.add(await driver().listenTcp({ host, port: 0 }));
      const accepted = listener.accept();
      const client = res.add(await driver().connectTcp({ host, port: portOf(listener) }));
      const server = res.add(await accepted);
      expect(server.localAddress).toEqual(listener.localAddress);
      expect(server.remoteAddress).toEqual(client.localAddress);
      expect(client.remoteAddress).toEqual(listener.localAddress);
      expect(server.remoteAddress).toMatchObject({ family: host === '::1' ? 'ipv6' : 'ipv4', address: host });
    }
  });

  run('a second bind of the same port without reusePort fails with EADDRINUSE', async () => {
    const first = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const port = portOf(first);
    const error = await driver()
      .listenTcp({ host: '127.0.0.1', port })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('EADDRINUSE');
    expect((error as RuntimeError).address).toMatchObject({ port });
  });

  run('reusePort lets two listeners share a port, and the kernel spreads connections', async () => {
    const a = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0, reusePort: true }));
    const port = portOf(a);
    const b = res.add(await driver().listenTcp({ host: '127.0.0.1', port, reusePort: true }));
    expect(portOf(b)).toBe(port);
    const counts = [0, 0];
    const serve = (index: number, listener: typeof a) =>
      (async () => {
        for (;;) {
          let stream: ByteStream;
          try {
            stream = await listener.accept();
          } catch {
            return;
          }
          counts[index]!++;
          await stream.writeAll(Buffer.from(String(index)));
          await stream.close();
        }
      })();
    void serve(0, a);
    void serve(1, b);
    const answers: string[] = [];
    for (let i = 0; i < 32; i++) {
      const client = res.add(await driver().connectTcp({ host: '127.0.0.1', port }));
      answers.push((await readToEnd(client)).toString());
      await client.close();
    }
    expect(answers).toHaveLength(32);
    expect(counts[0]! + counts[1]!).toBe(32);
    // Distinct 4-tuples hash to both sockets; all 32 on one would be a 2^-31 event.
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(0);
  });

  run('a plain bind on a reusePort port fails with EADDRINUSE', async () => {
    const a = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0, reusePort: true }));
    const error = await driver()
      .listenTcp({ host: '127.0.0.1', port: portOf(a) })
      .catch((e: unknown) => e);
    expect((error as RuntimeError).code).toBe('EADDRINUSE');
  });

  run('a reusePort bind on a port held without reusePort fails with EADDRINUSE', async () => {
    const a = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const error = await driver()
      .listenTcp({ host: '127.0.0.1', port: portOf(a), reusePort: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', address: { port: portOf(a) } });
  });

  run('reusePort listeners on IPv6 loopback share a port', async () => {
    const a = res.add(await driver().listenTcp({ host: '::1', port: 0, reusePort: true }));
    const b = res.add(await driver().listenTcp({ host: '::1', port: portOf(a), reusePort: true }));
    expect(b.localAddress).toMatchObject({ family: 'ipv6', address: '::1', port: portOf(a) });
  });

  run('binds IPv6 loopback with a backlog', async () => {
    const listener = res.add(await driver().listenTcp({ host: '::1', port: 0, backlog: 16 }));
    expect(listener.localAddress).toMatchObject({ family: 'ipv6', address: '::1' });
    const accepted = listener.accept();
    const client = res.add(await driver().connectTcp({ host: '::1', port: portOf(listener) }));
    const server = res.add(await accepted);
    expect(server.remoteAddress).toMatchObject({
      family: 'ipv6',
      port: (client.localAddress as { port: number }).port,
    });
  });

  run('an aborted accept rejects with ECANCELED; close() rejects pending accepts', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const controller = new AbortController();
    const aborted = listener.accept({ signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ECANCELED' });
    const pending = listener.accept().catch((e: unknown) => e);
    await listener.close();
    expect(await pending).toMatchObject({ code: 'ECANCELED' });
  });

  run('async iteration over a listener ends when it is closed', async () => {
    const listener = res.add(await driver().listenTcp({ host: '127.0.0.1', port: 0 }));
    const seen: ByteStream[] = [];
    const loop = (async () => {
      for await (const stream of listener) {
        seen.push(res.add(stream));
        if (seen.length === 2) await listener.close();
      }
    })();
    res.add(await driver().connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    res.add(await driver().connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    await loop;
    expect(seen).toHaveLength(2);
  });

  run('a Unix bind on an existing path fails with EADDRINUSE (like nginx)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loch-conf-'));
    res.add({ close: () => rm(dir, { recursive: true, force: true }) });
    const path = join(dir, 'taken.sock');
    await writeFile(path, '');
    const error = await driver()
      .listenUnix({ path })
      .catch((e: unknown) => e);
    expect((error as RuntimeError).code).toBe('EADDRINUSE');
    expect((error as RuntimeError).address).toEqual({ family: 'unix', path });
  });

  run('a Unix connect to a missing path fails with ENOENT', async () => {
    const error = await driver()
      .connectUnix({ path: join(tmpdir(), `loch-missing-${process.pid}.sock`) })
      .catch((e: unknown) => e);
    expect((error as RuntimeError).code).toBe('ENOENT');
  });
});
