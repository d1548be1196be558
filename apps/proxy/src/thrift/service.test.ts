/**
 * ThriftProxyService's side of the server's frame memory: a call whose bytes were never sent
 * upstream (no route, or no connection to its upstream) is released at once, so the server
 * receives the connection's next calls into the same memory; in process, over the runtime's
 * streams, with a @loch/thrift client.
 */
import { createServer } from 'node:net';
import { ThriftClient, type ThriftHandler, ThriftServer, TType } from '@loch/thrift';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ProxyLog } from '../proxy/log.js';
import { ThriftProxyService } from './service.js';
import { ThriftUpstreams } from './upstream.js';

/** A port nothing listens on (connections to it are refused). */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ log: () => undefined });
});
afterAll(async () => {
  await runtime.close();
});

describe('ThriftProxyService frame memory', () => {
  it('releases a call that was never sent upstream (no route, or its upstream refused): the next calls reuse its memory', async () => {
    const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false

[[servers.probe.routes]]
method = "refused"
upstreams = [{ endpoint = "127.0.0.1:${await refusedPort()}" }]
`);
    const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
    const service = new ThriftProxyService(
      upstreams,
      config.thriftServers[0]!,
      new ProxyLog('error', 'test'),
    );
    const memory = new Set<ArrayBufferLike>();
    const recording: ThriftHandler = {
      call(request) {
        memory.add(request.frame.payload.buffer);
        return service.call(request);
      },
    };
    const server = new ThriftServer(recording, { framing: 'auto' });
    const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const serving = server.serve(listener);
    const port = (listener.localAddress as { port: number }).port;
    const client = new ThriftClient(await runtime.driver.connectTcp({ host: '127.0.0.1', port }));
    const text = 'x'.repeat(1000);
    try {
      for (const method of ['unrouted', 'refused']) {
        memory.clear();
        // 150 calls of ~1 KiB: more than twice the reader's 64 KiB buffer.
        for (let i = 0; i < 150; i++) {
          const failed = await client
            .call(method, (w) => {
              w.writeStructBegin();
              w.writeFieldBegin(TType.STRING, 1);
              w.writeString(text);
              w.writeFieldStop();
              w.writeStructEnd();
            })
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect((failed as Error).message).toContain(method === 'unrouted' ? 'no route' : 'refused');
        }
        expect(memory.size).toBe(1);
      }
    } finally {
      await client.close();
      await server.close();
      await serving;
      upstreams.closeAll();
    }
  });
});
