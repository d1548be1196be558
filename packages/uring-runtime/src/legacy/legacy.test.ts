/**
 * Legacy-driver specifics that the conformance suite does not cover: stale Unix socket removal
 * (removeStale) and the SO_REUSEPORT path used on Node versions without `listen({ reusePort })`
 * (a socket from @loch/native adopted by net.Server; on newer Node the same cases run through
 * Node's own option).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RuntimeError } from '../errors.js';
import { createLegacyDriver, type LegacyDriver } from './driver.js';
import { openReusePortSocket } from './reuse-port.js';

let driver: LegacyDriver | undefined;
let dir: string | undefined;
afterEach(async () => {
  await driver?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  driver = undefined;
  dir = undefined;
});

/** Leaves a socket file nobody listens on, as a crashed server would. */
function staleSocket(path: string): void {
  execFileSync('python3', [
    '-c',
    `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`,
  ]);
}

describe('legacy Unix listener', () => {
  it('fails on a stale socket by default and replaces it with removeStale', async () => {
    driver = createLegacyDriver();
    dir = await mkdtemp(join(tmpdir(), 'loch-legacy-'));
    const path = join(dir, 'stale.sock');
    staleSocket(path);
    expect((await stat(path)).isSocket()).toBe(true);
    await expect(driver.listenUnix({ path })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const listener = await driver.listenUnix({ path, removeStale: true });
    const accepted = listener.accept();
    const client = await driver.connectUnix({ path });
    await (await accepted).close();
    await client.close();
    await listener.close();
  });

  it('never removes a live socket', async () => {
    driver = createLegacyDriver();
    dir = await mkdtemp(join(tmpdir(), 'loch-legacy-'));
    const path = join(dir, 'live.sock');
    const live = await driver.listenUnix({ path });
    await expect(driver.listenUnix({ path, removeStale: true })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await live.close();
  });
});

describe('legacy SO_REUSEPORT listeners', () => {
  const address = { family: 'ipv4', address: '127.0.0.1', port: 0 } as const;

  it('reports an addon that does not load as ERR_LOCH_REUSEPORT_UNSUPPORTED', async () => {
    const error = await openReusePortSocket(
      { host: '127.0.0.1', port: 0, backlog: 4, ipv6Only: false, address },
      { error: 'the addon is not built' },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error).toMatchObject({ code: 'ERR_LOCH_REUSEPORT_UNSUPPORTED', syscall: 'bind', address });
    expect((error as RuntimeError).message).toContain('the addon is not built');
  });

  it('fails with EADDRINUSE on a port held without reusePort, and ENOTFOUND for an unknown host', async () => {
    driver = createLegacyDriver();
    const plain = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const port = (plain.localAddress as { port: number }).port;
    const taken = await driver
      .listenTcp({ host: '127.0.0.1', port, reusePort: true })
      .catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(RuntimeError);
    expect(taken).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', address: { port } });
    const unknown = await driver
      .listenTcp({ host: 'no-such-host.invalid', port: 0, reusePort: true })
      .catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'ENOTFOUND', syscall: 'bind' });
  });

  it('binds host names, and closing the listener closes its descriptor', async () => {
    driver = createLegacyDriver();
    const before = readdirSync('/proc/self/fd').length;
    const listener = await driver.listenTcp({ host: 'localhost', port: 0, reusePort: true });
    expect(listener.localAddress).toMatchObject({ port: expect.any(Number) });
    const port = (listener.localAddress as { port: number }).port;
    const accepted = listener.accept();
    const client = await driver.connectTcp({ host: '127.0.0.1', port });
    await (await accepted).close();
    await client.close();
    await listener.close();
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });
});

describe('legacy listener with nobody accepting', () => {
  it('keeps at most its backlog of connections waiting and closes the rest, never running out of descriptors', async () => {
    driver = createLegacyDriver();
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0, backlog: 64 });
    const address = listener.localAddress as { port: number };
    const fdsBefore = readdirSync('/proc/self/fd').length;
    // A Python client opens 150 connections and reports how many the server closed.
    const script = `
import socket, time
socks = [socket.create_connection(("127.0.0.1", ${address.port})) for _ in range(150)]
for s in socks:
    s.setblocking(False)
def count():
    n = 0
    for s in socks:
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                n += 1
        except BlockingIOError:
            pass
        except OSError:
            n += 1
    return n
deadline = time.time() + 15
while count() < ${150 - 64} and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.3)
print(count(), flush=True)
time.sleep(5)
`;
    const child = spawn('python3', ['-c', script]);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 20));
    const closed = Number(out.trim());
    expect(closed).toBe(150 - 64);
    expect((listener as unknown as { droppedAccepts: number }).droppedAccepts).toBe(150 - 64);
    // The server side holds the 64 waiting ones (plus this test's own pipes), not 150.
    expect(readdirSync('/proc/self/fd').length - fdsBefore).toBeLessThan(64 + 16);
    // Accepting takes the queue; the listener still serves afterwards.
    for (let i = 0; i < 64; i++) await (await listener.accept()).close();
    const accepted = listener.accept();
    const client = await driver.connectTcp({ host: '127.0.0.1', port: address.port });
    await (await accepted).close();
    await client.close();
    child.kill('SIGKILL');
    await listener.close();
  });
});
