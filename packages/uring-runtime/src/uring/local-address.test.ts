// RuntimeStream.localAddressOf (REVIEW F217): on a wildcard listener a connection's local address
// is a getsockname (a direct stream's: a descriptor installed for a moment, a getsockname and a
// close), so a connection context holds one that asks only when a field is first read; a
// listener bound to one address hands it over with no ask at all. Descriptors and direct.
import { connect, type Socket } from 'node:net';
import { loadNative, type NativeBinding } from '@loch/native';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RuntimeStream } from '../net/runtime-stream.js';
import { TcpListener } from '../net/tcp.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { probeUring } from './index.js';

const probe = probeUring();
const native = loadNative();
const nativeProbe = 'error' in native ? undefined : native.binding.probe();
// A wildcard listener accepts direct only where a slot's address can be asked (FIXED_FD_INSTALL, 6.8).
const direct =
  probe.available &&
  nativeProbe?.ok === true &&
  nativeProbe.directFiles === true &&
  nativeProbe.ops.fixedFdInstall;

function nodeClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
}

const modes = [
  { name: 'descriptors', directFiles: 0, runs: probe.available },
  { name: 'direct descriptors', directFiles: 256, runs: direct },
];

for (const mode of modes) {
  describe.skipIf(!mode.runs)(`RuntimeStream.localAddressOf (${mode.name})`, () => {
    let runtime: Runtime | undefined;
    afterEach(async () => {
      vi.restoreAllMocks();
      await runtime?.close();
      runtime = undefined;
    });

    async function accepted(host: string) {
      runtime = await createRuntime({
        driver: 'uring',
        uring: { directFiles: mode.directFiles },
        idleTrimMs: 0,
        log: () => undefined,
      });
      const binding = (runtime.driver as unknown as { host: { binding: NativeBinding } }).host.binding;
      const listener = await TcpListener.bind({ host, port: 0, runtime });
      const port = (listener.localAddress as { port: number }).port;
      const next = listener.accept();
      const client = await nodeClient(port);
      const server = await next;
      const asks = [vi.spyOn(binding, 'address'), vi.spyOn(binding, 'directAddress')];
      const asked = () => asks.reduce((n, spy) => n + spy.mock.calls.length, 0);
      return { listener, port, client, server, asked };
    }

    it('on a wildcard listener asks the kernel on the first field read, once', async () => {
      const { listener, port, client, server, asked } = await accepted('0.0.0.0');
      const local = RuntimeStream.localAddressOf(server);
      expect(asked()).toBe(0);
      expect(RuntimeStream.localAddressOf(server)).toBe(local); // made once per stream
      expect(local.family).toBe('ipv4');
      expect(asked()).toBe(1);
      expect(local).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
      expect({ ...local }).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
      expect(JSON.parse(JSON.stringify(local))).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
      expect(server.localAddress).toEqual(local);
      expect(asked()).toBe(1);
      client.destroy();
      await server.close();
      await listener.close();
    });

    it('a spread as the first use reads the address too', async () => {
      const { listener, port, client, server, asked } = await accepted('0.0.0.0');
      const local = RuntimeStream.localAddressOf(server);
      expect(Object.keys(local)).toEqual(['family', 'address', 'port']);
      expect(asked()).toBe(1);
      expect({ ...local, port: 1 }).toEqual({ family: 'ipv4', address: '127.0.0.1', port: 1 });
      expect('port' in local && local.port).toBe(port);
      client.destroy();
      await server.close();
      await listener.close();
    });

    it('a stream closed before the read says 0.0.0.0:0 (its descriptor may be another socket now)', async () => {
      const { listener, client, server, asked } = await accepted('0.0.0.0');
      const local = RuntimeStream.localAddressOf(server);
      client.destroy();
      await server.close();
      expect({ ...local }).toEqual({ family: 'ipv4', address: '0.0.0.0', port: 0 });
      expect(asked()).toBe(0);
      await listener.close();
    });

    it('on a listener bound to one address asks nothing', async () => {
      const { listener, port, client, server, asked } = await accepted('127.0.0.1');
      expect(RuntimeStream.localAddressOf(server)).toEqual({ family: 'ipv4', address: '127.0.0.1', port });
      expect(asked()).toBe(0);
      client.destroy();
      await server.close();
      await listener.close();
    });
  });
}
