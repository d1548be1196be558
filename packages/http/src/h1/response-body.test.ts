/**
 * A close-delimited response body (no Content-Length, not chunked) ends complete only when the
 * connection's end is the server's: over a stream whose facts say the end was not authenticated
 * (`closeNotified: false`, what a TLS stream says after a cut without close_notify) the body is
 * ERR_HTTP_INCOMPLETE_MESSAGE. A raw TCP peer sends the bodies; the stream's facts are set by a
 * thin wrapper (@loch/http does not depend on @loch/tls; loch's e2e covers real TLS upstreams).
 */
import * as net from 'node:net';
import type { ConnectionFacts } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, connectTo } from '../../test/server-harness.js';
import { readText } from '../body.js';
import { HttpClient } from '../client.js';
import { HttpParseError } from '../errors.js';
import { createRequest } from '../message.js';
import type { HttpStream } from '../transport.js';

const drivers = await availableDrivers();

/** `inner` with `closeNotified` in its facts (undefined: as the transport has it). */
function withCloseNotified(inner: HttpStream, closeNotified: boolean | undefined): HttpStream {
  const facts: ConnectionFacts =
    closeNotified === undefined ? inner.facts : { ...inner.facts, closeNotified };
  return new Proxy(inner, {
    get(target, key) {
      if (key === 'facts') return facts;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.each(drivers)('close-delimited response bodies on the %s driver', (driver) => {
  let server: net.Server;
  let port: number;

  beforeAll(async () => {
    // Answers each request, then closes: close-delimited (/eof) or Content-Length framed (/length).
    server = net.createServer((socket) => {
      socket.once('data', (head: Buffer) => {
        const framed = head.toString('latin1').startsWith('GET /length');
        socket.end(
          framed
            ? 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nall there'
            : 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall there',
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function get(path: string, closeNotified: boolean | undefined): Promise<string> {
    const client = new HttpClient(withCloseNotified(await connectTo(driver, port), closeNotified), {
      authority: 'x',
    });
    try {
      const res = await client.send(createRequest('GET', path));
      return await readText(res.body);
    } finally {
      await client.close().catch(() => {});
    }
  }

  it('completes over a transport without the signal (TCP) and after close_notify', async () => {
    expect(await get('/eof', undefined)).toBe('all there');
    expect(await get('/eof', true)).toBe('all there');
  });

  it('fails as truncated when the end was not authenticated', async () => {
    const error = await get('/eof', false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpParseError);
    expect((error as HttpParseError).code).toBe('ERR_HTTP_INCOMPLETE_MESSAGE');
    expect((error as Error).message).toMatch(/close_notify/);
  });

  it('leaves a Content-Length body alone: its framing says where it ends', async () => {
    expect(await get('/length', false)).toBe('all there');
  });
});
