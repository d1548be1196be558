/**
 * The proxy path end to end over loopback: a Loch server whose handler routes by method name
 * and TTHeader headers and forwards the undecoded message through a multiplexed Loch client to
 * an upstream in another framing (TTHeader in, framed out), renumbering seq ids both ways.
 */
import { afterEach, expect, it } from 'vitest';
import {
  rewriteSeqId,
  ThriftClient,
  type ThriftHandler,
  ThriftServer,
  TTHeaderIntKey,
} from '../src/index.js';
import { calls, echoHandler, expected, lochEcho } from './echo-service.js';
import { connect, listen } from './net-stream.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('routes by method and headers and forwards without decoding the body', async () => {
  const upstreamServer = new ThriftServer(echoHandler, { maxConcurrentCalls: 8 });
  const upstreamListener = await listen();
  void upstreamServer.serve(upstreamListener);
  cleanups.push(() => upstreamServer.close());

  const upstream = new ThriftClient(await connect(upstreamListener.port), {
    framing: 'framed',
    protocol: 'binary',
    multiplexed: true,
  });
  cleanups.push(() => upstream.close());

  const routed: string[] = [];
  const proxy: ThriftHandler = {
    async call(req) {
      routed.push(`${req.header.name}@${req.frame.intHeaders.get(TTHeaderIntKey.TO_SERVICE)}`);
      const reply = await upstream.send(req.frame.payload);
      return {
        payload: rewriteSeqId(reply!.protocol, reply!.payload, req.header.seqId),
        intHeaders: new Map([[TTHeaderIntKey.FROM_SERVICE, 'loch-proxy']]),
      };
    },
  };
  const proxyServer = new ThriftServer(proxy, { maxConcurrentCalls: 8 });
  const proxyListener = await listen();
  void proxyServer.serve(proxyListener);
  cleanups.push(() => proxyServer.close());

  const client = new ThriftClient(await connect(proxyListener.port), {
    framing: 'ttheader',
    protocol: 'binary',
    multiplexed: true,
    intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'echo.svc']]),
  });
  cleanups.push(() => client.close());

  const results = await Promise.all([...calls, ...calls].map((a) => lochEcho(client, a)));
  expect(results).toEqual([...calls, ...calls].map((a) => expected(a)));
  expect(routed).toEqual(Array(6).fill('echo@echo.svc'));
  const res = await client.call('echo', (w) => {
    w.writeStructBegin();
    w.writeFieldStop();
    w.writeStructEnd();
  });
  expect(res!.frame.intHeaders.get(TTHeaderIntKey.FROM_SERVICE)).toBe('loch-proxy');
});
