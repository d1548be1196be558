/**
 * The access log of a streamed answer written from the server's onBodyEnd (RequestHooks'
 * serverOptions(), as loch's worker wires them), the only way it is written: the line carries
 * the bytes passed on, for a body that ends, one that fails midway, and on HTTP/2 as on
 * HTTP/1.1, whether the server or the core layer answers the chain's failures (`serverHooks`).
 * Both drivers, a real HttpServer over loopback with the chain's outer layers (context, core).
 */
import * as http2 from 'node:http2';
import {
  createResponse,
  type HttpBody,
  type HttpResponse,
  HttpServer,
  type ReadyBodyIterator,
  streamBody,
} from '@loch/http';
import type { Service } from '@loch/service-async';
import { createRuntime, type DriverChoice } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import { rawExchange } from '../../test/e2e/harness.js';
import { logged } from '../../test/log-capture.js';
import { type ConnectionCx, ProxyContext, type RequestCx } from './context.js';
import { ContextHandler, CoreService, RequestHooks } from './core.js';

async function* chunks(sizes: number[], fail: boolean): AsyncGenerator<Uint8Array> {
  for (const n of sizes) {
    await new Promise((r) => setTimeout(r, 1));
    yield new Uint8Array(n).fill(0x62);
  }
  if (fail) throw new Error('upstream cut');
}

/** A sized body whose one chunk and end are at hand: a proxied answer that came in one read (one write). */
class AtHandBody implements HttpBody, ReadyBodyIterator {
  readonly kind = 'fixed' as const;
  readonly trailers = null;
  readonly length = 12;
  #step = 0;
  [Symbol.asyncIterator](): ReadyBodyIterator {
    return this;
  }
  nextNow(): IteratorResult<Uint8Array> {
    return this.#step++ === 0
      ? { done: false, value: new Uint8Array(12).fill(0x63) }
      : { done: true, value: undefined };
  }
  async next(): Promise<IteratorResult<Uint8Array>> {
    return this.nextNow();
  }
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.#step = 1;
    return { done: true, value: undefined };
  }
}

/**
 * /stream: 3 + 4 bytes, sized; /chunked: 5 + 6, unsized; /cut: 5 of 9 bytes, then a failure;
 * /now: 12 bytes at hand with the answer.
 */
const inner: Service<RequestCx, HttpResponse> = {
  call: async (cx) => {
    const target = cx.get('request').target;
    if (target === '/now') return createResponse(200, { body: new AtHandBody() });
    if (target === '/cut') return createResponse(200, { body: streamBody(chunks([5], true), { length: 9 }) });
    if (target === '/chunked') return createResponse(200, { body: streamBody(chunks([5, 6], false)) });
    return createResponse(200, { body: streamBody(chunks([3, 4], false), { length: 7 }) });
  },
};

describe.each(['uring', 'legacy'] as DriverChoice[])(
  'the access log at a streamed body’s end (%s)',
  (driver) => {
    it.each([true, false])(
      'logs each streamed answer once with the bytes passed on: ended, chunked, cut midway, HTTP/2 (serverHooks %s)',
      async (serverHooks) => {
        const { log, lines: logLines } = logged();
        const hooks = new RequestHooks('web', log, { lifecycle: { retired: false } });
        const chain = new ContextHandler(new CoreService(inner, log, 'web', true, serverHooks), true);
        const runtime = await createRuntime({ driver, log: () => undefined });
        const server = new HttpServer<ConnectionCx>(chain, {
          context: () =>
            ProxyContext.empty()
              .set('peerAddr', { family: 'ipv4', address: '10.0.0.1', port: 5000 })
              .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 80 } })
              .set('driver', driver === 'uring' ? 'uring' : 'legacy')
              .set('server', { key: 'web', scheme: 'http' }) as ConnectionCx,
          ...hooks.serverOptions(),
        });
        const listener = await runtime.driver.listenTcp({ host: '127.0.0.1', port: 0 });
        const serving = server.serve(listener);
        const port = (listener.localAddress as { port: number }).port;
        try {
          const h1 = await rawExchange(
            port,
            'GET /now HTTP/1.1\r\nHost: a\r\n\r\nGET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\n\r\nGET /cut HTTP/1.1\r\nHost: a\r\n\r\n',
          );
          expect(h1.match(/HTTP\/1\.1 200/g)).toHaveLength(4);
          const client = http2.connect(`http://127.0.0.1:${port}`);
          client.on('error', () => {});
          const body = await new Promise<string>((resolve, reject) => {
            const req = client.request({ ':path': '/stream' });
            let got = '';
            req.setEncoding('latin1');
            req.on('data', (d: string) => {
              got += d;
            });
            req.on('end', () => resolve(got));
            req.on('error', reject);
            req.end();
          });
          client.close();
          expect(body).toBe('bbbbbbb');
        } finally {
          await server.close();
          await serving;
        }
        const lines = logLines();
        const line = (target: string, bytes: number) =>
          new RegExp(` web 10\\.0\\.0\\.1:5000 GET ${target} 200 ${bytes} - \\d+\\.\\d\\d$`);
        expect(lines).toHaveLength(5);
        expect(lines[0]).toMatch(line('/now', 12));
        expect(lines[1]).toMatch(line('/stream', 7));
        expect(lines[2]).toMatch(line('/chunked', 11));
        expect(lines[3]).toMatch(line('/cut', 5));
        expect(lines[4]).toMatch(line('/stream', 7));
      },
    );
  },
);
