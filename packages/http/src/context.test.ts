// connectionContext's local address asks the kernel only when read (REVIEW F217: on a wildcard
// listener every connection's would be a getsockname, a direct stream's an install of a
// descriptor for a moment too), and reads as the socket's address then.
import type { NativeBinding } from '@loch/native';
import { createRuntime, RuntimeStream, TcpListener, TcpStream } from '@loch/uring-runtime';
import { describe, expect, it, vi } from 'vitest';
import { connectionContext } from './context.js';

const runtime = await createRuntime({ driver: 'auto', idleTrimMs: 0, log: () => undefined });

describe.skipIf(runtime.driver.name !== 'uring')('connectionContext', () => {
  it("asks for a wildcard listener's local address only when localAddr is read", async () => {
    const binding = (runtime.driver as unknown as { host: { binding: NativeBinding } }).host.binding;
    const listener = await TcpListener.bind({ host: '0.0.0.0', port: 0, runtime });
    const port = (listener.localAddress as { port: number }).port;
    const next = listener.accept();
    const client = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const server = await next;
    const fd = (RuntimeStream.innerOf(server) as unknown as { fd: number }).fd;
    const asks = [vi.spyOn(binding, 'address'), vi.spyOn(binding, 'directAddress')];
    // Asks for a local address (peer false) of the server's socket: the client's does not count.
    const asked = () =>
      asks.reduce((n, spy) => n + spy.mock.calls.filter(([f, peer]) => !peer && f === fd).length, 0);
    const cx = connectionContext(server);
    expect(cx.get('peerAddr')).toEqual(client.localAddress);
    expect(asked()).toBe(0);
    expect(cx.get('localAddr')).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
    expect(asked()).toBe(1);
    vi.restoreAllMocks();
    await client.close();
    await server.close();
    await listener.close();
    await runtime.close();
  });
});
