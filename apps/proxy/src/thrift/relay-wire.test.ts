import { MessageType, ThriftServer } from '@loch/thrift';
import { createRuntime, type DriverChoice, StreamForms } from '@loch/uring-runtime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { echoCall, echoUpstream, netClient, readEcho } from '../../test/thrift-peers.js';
import { parseConfig } from '../config/load.js';
import { ProxyLog } from '../proxy/log.js';
import { ThriftProxyService } from './service.js';
import { ThriftUpstreams } from './upstream.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe.each(['uring', 'legacy'] as DriverChoice[])(
  'thrift relay of framed calls as they came (driver %s)',
  (driver) => {
    /** Five calls through a proxy of the given kind of upstream, checking each write's form. */
    const relayRound = async (kind: string, keys: string): Promise<void> => {
      const rewrite = kind.startsWith('rewritten');
      const own = await createRuntime({ driver, log: () => undefined });
      const up = await echoUpstream(rewrite);
      const config = parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
${
  rewrite
    ? `[[servers.probe.routes]]
path = "/"
upstream_framing = "theader"
headers = { add = { caller = "probe" } }
upstreams = [{ endpoint = "127.0.0.1:${up.port}"${keys} }]`
    : `route = { upstreams = [{ endpoint = "127.0.0.1:${up.port}"${keys} }] }`
}
`);
      const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
      const service = new ThriftProxyService(
        upstreams,
        config.thriftServers[0]!,
        new ProxyLog('error', 'test'),
      );
      const server = new ThriftServer(service, { framing: 'auto', callsInPlace: true });
      const listener = await own.driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const serving = server.serve(listener);
      const port = (listener.localAddress as { port: number }).port;
      const client = await netClient(port);
      // Every write the proxy makes, from here on: one buffer, or a gathered list.
      const writes: ('one' | 'list')[] = [];
      // (The driver streams' own writeTo, under the runtime's wrappers: both drivers' extend StreamForms.)
      const writeTo = StreamForms.prototype.writeTo;
      vi.spyOn(StreamForms.prototype, 'writeTo').mockImplementation(function (
        this: StreamForms,
        data,
        target,
      ) {
        writes.push(data instanceof Uint8Array ? 'one' : 'list');
        writeTo.call(this, data, target);
      });
      try {
        // The first call connects; the next four run on the pooled connection.
        for (let i = 0; i < 5; i++) {
          const text = `${i}:`.padEnd(10_240, String.fromCharCode(97 + i));
          const call = echoCall(text, i);
          const reply = await client.call(call);
          expect(readEcho(reply)).toEqual({ type: MessageType.REPLY, seqId: i, text });
          if (kind === 'exclusive') expect(Buffer.compare(up.calls[i]!, call)).toBe(0);
        }
        expect(up.calls).toHaveLength(5);
        // Two writes per call: the call upstream, the reply to the client.
        expect(writes).toHaveLength(10);
        if (kind === 'exclusive') expect(writes).toEqual(Array(10).fill('one'));
        else {
          // The call framed anew (a list); the reply relayed as it came when framed (multiplexed:
          // its seq id is restored in place, the prefix unchanged).
          for (let i = 0; i < 10; i += 2) expect(writes[i]).toBe('list');
          for (let i = 1; i < 10; i += 2) expect(writes[i]).toBe(rewrite ? 'list' : 'one');
        }
      } finally {
        vi.restoreAllMocks();
        client.close();
        await server.close();
        await serving;
        upstreams.closeAll();
        await up.close();
        await own.close();
      }
    };

    it('one buffer per write when the call and reply go unchanged (exclusive and multiplexed), framed anew when rewritten; byte-exact', {
      timeout: 60_000,
    }, async () => {
      await relayRound('exclusive', '');
      // Seq ids remapped: the call is framed anew; the reply's id is restored in place.
      await relayRound('multiplexed', ', multiplex = true');
      await relayRound('rewritten (THeader upstream, a header added)', '');
    });
  },
);
