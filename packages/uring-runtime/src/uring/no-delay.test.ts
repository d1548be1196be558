// TCP_NODELAY on accepted io_uring streams: the listener sets it once, and a server's
// setNoDelay(true) on top (every H1 connection makes one) costs no second addon call.
import type { NativeBinding } from '@loch/native';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ByteStream } from '../stream.js';
import { createUringDriver, probeUring, type UringDriver } from './index.js';
import { IPPROTO_TCP, TCP_NODELAY } from './sockopt.js';

const probe = probeUring();

describe.skipIf(!probe.available)('io_uring setNoDelay', () => {
  let driver: UringDriver;
  beforeEach(() => {
    // The descriptor path (setSockOpt / noDelay by fd); a direct stream's goes by a SETSOCKOPT
    // record (direct.test.ts), so these pin directFiles off whatever LOCH_URING_DIRECT_FILES says.
    driver = createUringDriver({ entries: 64, bufferCount: 64, bufferSize: 4096, directFiles: 0 });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await driver.close();
  });

  it('asks the kernel only when the setting changes', async () => {
    const binding = (driver as unknown as { host: { binding: NativeBinding } }).host.binding;
    const calls: boolean[] = [];
    const setSockOpt = binding.setSockOpt.bind(binding);
    vi.spyOn(binding, 'setSockOpt').mockImplementation((fd, level, optname, value) => {
      if (level === IPPROTO_TCP && optname === TCP_NODELAY) calls.push(value !== 0);
      return setSockOpt(fd, level, optname, value);
    });
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const address = listener.localAddress;
    if (address.family === 'unix') throw new Error('a TCP listener');
    const accepted = listener[Symbol.asyncIterator]().next();
    const client = await driver.connectTcp({ host: '127.0.0.1', port: address.port });
    const server = (await accepted).value!;
    calls.length = 0; // the client's own at connect and the listener's at accept
    server.setNoDelay(true);
    expect(calls).toEqual([]);
    server.setNoDelay(false);
    server.setNoDelay(false);
    server.setNoDelay(true);
    expect(calls).toEqual([false, true]);
    await client.close();
    await server.close();
    await listener.close();
  });

  it('makes no setsockopt call per accept: the accepted socket inherits TCP_NODELAY from the listener', async () => {
    const binding = (driver as unknown as { host: { binding: NativeBinding } }).host.binding;
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const address = listener.localAddress;
    if (address.family === 'unix') throw new Error('a TCP listener');
    expect(binding.noDelay(listener.fd)).toBe(1);
    const spy = vi.spyOn(binding, 'setSockOpt');
    const accepted = listener[Symbol.asyncIterator]().next();
    const client = await driver.connectTcp({ host: '127.0.0.1', port: address.port, noDelay: false });
    const server = (await accepted).value!;
    const fds = spy.mock.calls.map((c) => c[0]);
    expect(fds).not.toContain(server.fd);
    expect(binding.noDelay(server.fd)).toBe(1);
    expect(binding.noDelay(client.fd)).toBe(0);
    await client.close();
    await server.close();
    await listener.close();
  });

  it('knows what connectTcp set, with noDelay on (the default) and off', async () => {
    const binding = (driver as unknown as { host: { binding: NativeBinding } }).host.binding;
    const calls: boolean[] = [];
    const setSockOpt = binding.setSockOpt.bind(binding);
    vi.spyOn(binding, 'setSockOpt').mockImplementation((fd, level, optname, value) => {
      if (level === IPPROTO_TCP && optname === TCP_NODELAY) calls.push(value !== 0);
      return setSockOpt(fd, level, optname, value);
    });
    const listener = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const address = listener.localAddress;
    if (address.family === 'unix') throw new Error('a TCP listener');
    const accepted: ByteStream[] = [];
    const accepting = (async () => {
      for await (const s of listener) accepted.push(s);
    })();
    const on = await driver.connectTcp({ host: '127.0.0.1', port: address.port });
    calls.length = 0;
    on.setNoDelay(true);
    expect(calls).toEqual([]);
    on.setNoDelay(false);
    expect(calls).toEqual([false]);
    const off = await driver.connectTcp({ host: '127.0.0.1', port: address.port, noDelay: false });
    calls.length = 0;
    off.setNoDelay(false);
    off.setNoDelay(true);
    expect(calls).toEqual([true]);
    await on.close();
    await off.close();
    await listener.close();
    await accepting;
    for (const s of accepted) await s.close();
  });
});
