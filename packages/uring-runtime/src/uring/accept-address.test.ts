// A TCP listener on descriptors takes each peer's address from its accept (OP_ACCEPT, one-shot
// accepts with an address buffer, as direct accepts do): remoteAddress is the client's with no
// native address() call (no getpeername per connection; bench/uring-direct/accept-address-2026-12-07.md),
// over IPv4 and IPv6, many connections in a burst; a Unix listener keeps its multishot accept and
// reads its peer as before.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeBinding } from '@loch/native';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createUringDriver, probeUring, type UringDriver, type UringStream } from './index.js';

const probe = probeUring();

/** Connects `n` node:net clients at once to `target` and waits until each is connected. */
function clients(n: number, target: { port: number; host: string } | { path: string }): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const c = 'path' in target ? connect(target.path) : connect(target.port, target.host);
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        }),
    ),
  );
}

/** Accepts `n` streams from `listener`. */
async function acceptN(listener: AsyncIterable<UringStream>, n: number): Promise<UringStream[]> {
  const got: UringStream[] = [];
  for await (const s of listener) {
    got.push(s);
    if (got.length === n) break;
  }
  return got;
}

describe.skipIf(!probe.available)('io_uring accept on descriptors: the peer address from the accept', () => {
  let driver: UringDriver | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await driver?.close();
    driver = undefined;
  });

  function open(): { driver: UringDriver; binding: NativeBinding } {
    driver = createUringDriver({ entries: 256, bufferCount: 64, bufferSize: 4096 });
    const host = (
      driver as unknown as { host: { binding: NativeBinding; ring: { info: { acceptAddress?: boolean } } } }
    ).host;
    expect(host.ring.info.acceptAddress).toBe(true);
    return { driver, binding: host.binding };
  }

  for (const host of ['127.0.0.1', '::1']) {
    it(`${host}: 40 connections at once, each remoteAddress the client's, no address() call`, async () => {
      const { driver, binding } = open();
      const listener = await driver.listenTcp({ host, port: 0 });
      const port = (listener.localAddress as { port: number }).port;
      const address = vi.spyOn(binding, 'address');
      const accepting = acceptN(listener, 40);
      const socks = await clients(40, { port, host });
      const served = await accepting;
      const family = host === '::1' ? 'ipv6' : 'ipv4';
      const byPort = new Map(served.map((s) => [(s.remoteAddress as { port: number }).port, s]));
      expect(byPort.size).toBe(40);
      for (const c of socks) {
        expect(byPort.get(c.localPort!)?.remoteAddress).toEqual({ family, address: host, port: c.localPort });
        expect(byPort.get(c.localPort!)?.direct).toBe(false);
      }
      // The streams work: one echo each way on the first.
      const first = byPort.get(socks[0]!.localPort!)!;
      const echoed = new Promise<string>((resolve) => socks[0]!.once('data', (d) => resolve(d.toString())));
      socks[0]!.write('ping');
      const chunk = await first.recv();
      expect(new TextDecoder().decode(chunk?.bytes)).toBe('ping');
      chunk?.release();
      await first.writeAll(new TextEncoder().encode('pong'));
      expect(await echoed).toBe('pong');
      expect(address).not.toHaveBeenCalled();
      for (const c of socks) c.destroy();
      await Promise.all(served.map((s) => s.close()));
      await listener.close();
    });
  }

  it('a Unix listener reads its peer through address(), as before', async () => {
    const { driver, binding } = open();
    const dir = mkdtempSync(join(tmpdir(), 'loch-accept-'));
    try {
      const path = join(dir, 's.sock');
      const listener = await driver.listenUnix({ path });
      const address = vi.spyOn(binding, 'address');
      const accepting = acceptN(listener, 3);
      const socks = await clients(3, { path });
      const served = await accepting;
      for (const s of served) expect(s.remoteAddress.family).toBe('unix');
      expect(address).toHaveBeenCalledTimes(3);
      for (const c of socks) c.destroy();
      await Promise.all(served.map((s) => s.close()));
      await listener.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
