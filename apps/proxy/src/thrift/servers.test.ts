/**
 * ThriftServers, the worker's thrift servers: the handler it gives ThriftServer dispatches each
 * call to the proxy service's dispatch() (answered from the upstream's receive callback, no
 * promise per call), never through its promise form call(), which the worker used for every call
 * while its handler had only call(); and a reload's commit serves the calls that start after it.
 * In process, over the runtime's streams, with a node:net client and upstreams.
 */
import { MessageType } from '@loch/thrift';
import { acceptLoop, createRuntime, type DriverChoice } from '@loch/uring-runtime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { echoCall, echoUpstream, netClient, readEcho } from '../../test/thrift-peers.js';
import { parseConfig } from '../config/load.js';
import { ProxyLog } from '../proxy/log.js';
import { ThriftServers } from './servers.js';
import { ThriftProxyService } from './service.js';

function configFor(port: number) {
  return parseConfig(`
[servers.probe]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = false
route = { upstreams = [{ endpoint = "127.0.0.1:${port}" }] }
`).thriftServers;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe.each(['uring', 'legacy'] as DriverChoice[])('ThriftServers (driver %s)', (driver) => {
  it('dispatches every call to the proxy service (never its promise form), and a commit serves the calls after it', async () => {
    const runtime = await createRuntime({ driver, log: () => undefined });
    const first = await echoUpstream();
    const second = await echoUpstream();
    const dispatched = vi.spyOn(ThriftProxyService.prototype, 'dispatch');
    const called = vi.spyOn(ThriftProxyService.prototype, 'call');
    const servers = new ThriftServers(new ProxyLog('error', 'test'), 0);
    servers.precommit(configFor(first.port));
    servers.commit(configFor(first.port));
    const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
    let stopping = false;
    const accepting = acceptLoop(listener, (stream) => servers.serve('probe', stream), {
      stopping: () => stopping,
    });
    const client = await netClient((listener.localAddress as { port: number }).port);
    try {
      for (let i = 0; i < 6; i++) {
        if (i === 3) {
          // A reload: the next calls start on the new service and go to its upstream.
          servers.precommit(configFor(second.port));
          servers.commit(configFor(second.port));
        }
        const text = `${i}`.padEnd(i % 2 === 0 ? 20 : 10_240, 'x');
        const reply = await client.call(echoCall(text, i));
        expect(readEcho(reply)).toEqual({ type: MessageType.REPLY, seqId: i, text });
      }
      // Counts only: a failing spy matcher would print every call's arguments, runtime streams
      // and their 32 MiB receive pool included (minutes of formatting).
      expect(dispatched.mock.calls.length).toBe(6);
      expect(called.mock.calls.length).toBe(0);
      expect(first.calls).toHaveLength(3);
      expect(second.calls).toHaveLength(3);
    } finally {
      client.close();
      stopping = true;
      await listener.close();
      await accepting.catch(() => {});
      await servers.shutdown(0);
      await first.close();
      await second.close();
      await runtime.close();
    }
  });
});
