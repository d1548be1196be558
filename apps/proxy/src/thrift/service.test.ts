/**
 * ThriftProxyService's side of the server's frame memory: a call whose bytes were never sent
 * upstream (no route, or no connection to its upstream) is released at once, so the server
 * receives the connection's next calls into the same memory; with the server's callsInPlace (as
 * the worker runs it), 10 KiB calls are relayed from the received chunks themselves, byte-exact,
 * and every receive buffer goes back on every path (replies, a timed-out call, a client gone
 * mid-call), exclusive and multiplexed; in process, over the runtime's streams, with @loch/thrift
 * clients.
 */
import { createHook } from 'node:async_hooks';
import {
  FrameReader,
  MessageType,
  TApplicationException,
  TApplicationExceptionType,
  ThriftClient,
  type ThriftHandler,
  ThriftServer,
  TType,
} from '@loch/thrift';
import { createRuntime, type DriverChoice, type Runtime } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../../packages/http/test/free-port.js';
import { echoCall, echoUpstream, netClient, readEcho } from '../../test/thrift-peers.js';
import { parseConfig } from '../config/load.js';
import { ProxyLog } from '../proxy/log.js';
import { ThriftProxyService } from './service.js';
import { ThriftUpstreams } from './upstream.js';

/**
 * A port nothing listens on (connections to it are refused): one of apps/proxy's band, where only
 * freePort() callers bind, each its own (a closed listen(0) port may be another test's next one).
 */
const refusedPort = (): Promise<number> => freePort('apps/proxy');

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ log: () => undefined });
});
afterAll(async () => {
  await runtime.close();
});

/**
 * The refused-upstream probe: a ThriftProxyService logging to `log` whose method "refused" routes
 * to a port nothing listens on (other methods have no route), served through `handler` (given
 * the service) to a ThriftClient on the shared runtime. `close()` ends client, server and pool.
 */
async function refusedRouteProbe(
  log: ProxyLog,
  handler: (service: ThriftProxyService) => ThriftHandler = (service) => service,
): Promise<{ client: ThriftClient; close(): Promise<void> }> {
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
  const service = new ThriftProxyService(upstreams, config.thriftServers[0]!, log);
  const server = new ThriftServer(handler(service), { framing: 'auto' });
  const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const serving = server.serve(listener);
  const port = (listener.localAddress as { port: number }).port;
  const client = new ThriftClient(await runtime.driver.connectTcp({ host: '127.0.0.1', port }));
  return {
    client,
    async close() {
      await client.close();
      await server.close();
      await serving;
      upstreams.closeAll();
    },
  };
}

describe('ThriftProxyService frame memory', () => {
  it('releases a call that was never sent upstream (no route, or its upstream refused): the next calls reuse its memory', async () => {
    const memory = new Set<ArrayBufferLike>();
    const { client, close } = await refusedRouteProbe(
      new ProxyLog('error', 'test'),
      (service): ThriftHandler => ({
        call(request) {
          memory.add(request.frame.payload.buffer);
          return service.call(request);
        },
      }),
    );
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
      await close();
    }
  });
});

describe('ThriftProxyService in the upstream callback', () => {
  it('a throw while logging an upstream failure answers the call (INTERNAL_ERROR), never reaches the runtime', async () => {
    /** A log whose warn throws: a bug in logging, met in the upstream's callback. */
    class BrokenLog extends ProxyLog {
      override warn(): void {
        throw new Error('log broke');
      }
    }
    const { client, close } = await refusedRouteProbe(new BrokenLog('error', 'test'));
    try {
      for (let i = 0; i < 2; i++) {
        const failed = await client
          .call('refused', (w) => {
            w.writeStructBegin();
            w.writeFieldStop();
            w.writeStructEnd();
          })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(failed).toBeInstanceOf(TApplicationException);
        expect((failed as TApplicationException).type).toBe(TApplicationExceptionType.INTERNAL_ERROR);
        expect((failed as Error).message).toContain('log broke');
      }
    } finally {
      await close();
    }
  });
});

describe.each([false, true])('ThriftProxyService with callsInPlace, multiplex %s', (multiplex) => {
  it('pipelined calls of mixed sizes (some split across receives) come back byte-exact and in order; every receive buffer goes back', async () => {
    const up = await echoUpstream();
    const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
max_pipelined_calls = 4
route = { upstreams = [{ endpoint = "127.0.0.1:${up.port}"${multiplex ? ', multiplex = true' : ''} }] }
`);
    const probe = config.thriftServers[0]!;
    const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
    const service = new ThriftProxyService(upstreams, probe, new ProxyLog('error', 'test'));
    const server = new ThriftServer(service, {
      framing: 'auto',
      callsInPlace: true,
      maxConcurrentCalls: probe.maxPipelinedCalls,
      replyOrder: 'request',
    });
    const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const serving = server.serve(listener);
    const port = (listener.localAddress as { port: number }).port;
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    const base = inUse();
    // Several calls in flight on one connection: they share receives and split across them.
    const client = new ThriftClient(await runtime.driver.connectTcp({ host: '127.0.0.1', port }), {
      multiplexed: true,
    });
    const sizes = [40, 30_000, 900, 5000, 1500, 70_000, 10, 12_000, 3000, 200, 20_000, 64];
    const text = (i: number) => `${i}:`.padEnd(sizes[i % sizes.length]!, String.fromCharCode(97 + (i % 26)));
    try {
      for (let round = 0; round < 4; round++) {
        const ids = sizes.map((_, k) => round * 100 + k);
        const got = await Promise.all(
          ids.map(async (i) => {
            const reply = await client.call('echo', (w) => {
              w.writeStructBegin();
              w.writeFieldBegin(TType.STRING, 1);
              w.writeString(text(i));
              w.writeFieldStop();
              w.writeStructEnd();
            });
            const r = reply!.reader();
            r.readFieldBegin();
            const t = r.readString();
            reply!.release();
            return t === text(i);
          }),
        );
        expect(got.every((ok) => ok)).toBe(true);
      }
      await client.close();
      // Buffers go back as the closes complete: waited for, however late the machine is.
      if (runtime.driver.name === 'uring')
        await vi.waitFor(() => expect(inUse()).toBe(base), { timeout: 15_000, interval: 20 });
    } finally {
      await server.close();
      await serving;
      upstreams.closeAll();
      await up.close();
    }
  });

  it('relays 10 KiB calls from the received chunks byte-exact; every receive buffer goes back on every path', async () => {
    const up = await echoUpstream();
    const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:${up.port}"${multiplex ? ', multiplex = true' : ''} }] }

# Only the never-answered calls get a short upstream_call: the others keep the default (30 s),
# so a late machine cannot time them out.
[[servers.probe.routes]]
method = "slow"
timeouts = { upstream_call = "300ms" }
upstreams = [{ endpoint = "127.0.0.1:${up.port}"${multiplex ? ', multiplex = true' : ''} }]
`);
    const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
    const service = new ThriftProxyService(
      upstreams,
      config.thriftServers[0]!,
      new ProxyLog('error', 'test'),
    );
    const server = new ThriftServer(service, { framing: 'auto', callsInPlace: true });
    const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
    const serving = server.serve(listener);
    const port = (listener.localAddress as { port: number }).port;
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    // Receives copied into the server's reader (the copy the in-place path avoids); the
    // server's readers are the ones made with its options.
    let copied = 0;
    const feed = FrameReader.prototype.feed;
    FrameReader.prototype.feed = function (this: FrameReader, bytes: Uint8Array): void {
      const options = (this as unknown as { options: { callsInPlace?: boolean } }).options;
      if (options.callsInPlace === true && bytes.byteLength >= 1024) copied++;
      feed.call(this, bytes);
    };
    const clients: ThriftClient[] = [];
    const connect = async () => {
      const c = new ThriftClient(await runtime.driver.connectTcp({ host: '127.0.0.1', port }));
      clients.push(c);
      return c;
    };
    const text = (i: number) => `${i}:`.padEnd(10_240, String.fromCharCode(97 + (i % 26)));
    const echo = async (client: ThriftClient, method: string, i: number) => {
      const reply = await client.call(method, (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRING, 1);
        w.writeString(text(i));
        w.writeFieldStop();
        w.writeStructEnd();
      });
      const r = reply!.reader();
      r.readFieldBegin();
      const got = r.readString();
      reply!.release();
      return got;
    };
    try {
      const base = inUse();
      // Four clients at once, 25 calls each: every text comes back as sent.
      const got = await Promise.all(
        [0, 1, 2, 3].map(async (k) => {
          const client = await connect();
          const texts: boolean[] = [];
          for (let i = 0; i < 25; i++)
            texts.push((await echo(client, 'echo', k * 100 + i)) === text(k * 100 + i));
          return texts;
        }),
      );
      expect(got.flat().every((ok) => ok)).toBe(true);
      // A call past upstream_call, and a client gone while its call waits upstream.
      const slow = await connect();
      await expect(echo(slow, 'slow', 1)).rejects.toThrow(/upstream_call/);
      const gone = await connect();
      const abandoned = echo(gone, 'slow', 2).catch(() => 'gone');
      await new Promise((resolve) => setTimeout(resolve, 20));
      await gone.close();
      expect(await abandoned).toBe('gone');
      expect(await echo(slow, 'echo', 3)).toBe(text(3));
      for (const c of clients) await c.close();
      // No call was copied into the server's reader (a chunk under 1 KiB or one ending inside
      // a call is; a loopback receive of a 10 KiB call holds it whole).
      expect(copied).toBe(0);
      // Buffers go back as the closes and the abandoned call's end complete: waited for.
      if (runtime.driver.name === 'uring')
        await vi.waitFor(() => expect(inUse()).toBe(base), { timeout: 15_000, interval: 20 });
    } finally {
      FrameReader.prototype.feed = feed;
      await server.close();
      await serving;
      upstreams.closeAll();
      await up.close();
    }
  });
});

describe.each(['uring', 'legacy'] as DriverChoice[])('ThriftProxyService.dispatch (driver %s)', (driver) => {
  it.each([false, true])(
    'relays a call (multiplexed: %s) with no promise of loch: the reply is answered from the upstream receive',
    async (multiplex) => {
      const own = await createRuntime({ driver, log: () => undefined });
      const up = await echoUpstream();
      const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:${up.port}"${multiplex ? ', multiplex = true' : ''} }] }
`);
      const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
      const service = new ThriftProxyService(
        upstreams,
        config.thriftServers[0]!,
        new ProxyLog('error', 'test'),
      );
      // Promises made between dispatch() and the answer by loch's code: the frame that made each
      // (past the hook's and V8's own) is in loch's sources. Not by the test runner, whose message
      // handling may run meanwhile (its async stack shows this test file, so only the first frame
      // counts).
      let promises = 0;
      const loch = /\/(apps\/proxy|packages\/(thrift|uring-runtime|transports))\/src\/[^:]*\.ts:/;
      const madeByLoch = (): boolean => {
        const frames = (new Error().stack ?? '').split('\n');
        // Past the hook's own frames (this test's init, node's async_hooks) and V8's
        // `new Promise`/`Promise.then`: the code that made the promise.
        let i = frames.length;
        while (i > 0 && !frames[i - 1]!.includes('node:internal/async_hooks')) i--;
        while (i < frames.length && frames[i]!.includes('(<anonymous>)')) i++;
        const first = frames[i];
        // The turn clock (metrics/turn-clock.ts) makes one promise per event-loop turn, not per
        // call (its expiry is a reaction, 272dfa3): a turn that serves many calls shares it, and
        // here each call is a turn of its own, so it is left out of the per-call count.
        return (
          first !== undefined &&
          loch.test(first) &&
          !first.includes('.test.ts:') &&
          !first.includes('turn-clock.ts:')
        );
      };
      const hook = createHook({
        init(_id, type) {
          if (type === 'PROMISE' && madeByLoch()) promises++;
        },
      });
      const counted: number[] = [];
      const handler: ThriftHandler = {
        call: () => Promise.reject(new Error('the server must dispatch')),
        dispatch(request, responder) {
          promises = 0;
          hook.enable();
          service.dispatch(request, {
            respond(reply, error) {
              hook.disable();
              counted.push(promises);
              responder.respond(reply, error);
            },
          });
        },
      };
      const server = new ThriftServer(handler, { framing: 'auto', callsInPlace: true });
      const listener = await own.driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const serving = server.serve(listener);
      const port = (listener.localAddress as { port: number }).port;
      // A node:net client (no promise per call of its own): framed binary calls, one at a time.
      const client = await netClient(port);
      try {
        for (let i = 0; i < 5; i++) {
          const text = `${i}`.padEnd(i % 2 === 0 ? 20 : 10_240, 'x');
          const reply = await client.call(echoCall(text, i));
          expect(readEcho(reply)).toEqual({ type: MessageType.REPLY, seqId: i, text });
        }
        // The first call connects (promises of the connect); the pooled ones make none, exclusive
        // or multiplexed (MuxPool's promise and its reaction, 2 per call, until 2026-12-05).
        expect(counted).toHaveLength(5);
        expect(counted.slice(1)).toEqual([0, 0, 0, 0]);
      } finally {
        hook.disable();
        client.close();
        await server.close();
        await serving;
        upstreams.closeAll();
        await up.close();
        await own.close();
      }
    },
  );
});
