/**
 * The server's onAnswered hook: once per request its handler answered, with the answer, never
 * for an abandoned one. The server's onAbandoned hook: a client that goes away while the handler works on its answer
 * is reported once, with the request (HTTP/1.1: the connection closed or half-closed while a
 * bodiless request waits; HTTP/2: RST_STREAM or the connection gone), and its answer is not
 * written; an answered request is never reported; bytes of a pipelined request that arrive
 * during the wait are kept and answered. Both drivers, real sockets.
 */
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { availableDrivers, RawClient, type Running, startServer } from '../test/server-harness.js';
import { fixedBody, readBody } from './body.js';
import type { HttpConnectionContext } from './context.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from './message.js';
import type { HttpHandler } from './server.js';

const drivers = await availableDrivers();

/** Polls `done` until it holds; fails after `ms` (a bound, not a measurement). */
async function eventually(what: string, done: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A handler whose /hold requests read their body to its end and then wait until released;
 * everything else is answered at once.
 */
function holdingHandler() {
  const held: { target: string; release: () => void }[] = [];
  const handler: HttpHandler<HttpConnectionContext> = {
    call(req: HttpServerRequest<HttpConnectionContext>): Promise<HttpResponse> | HttpResponse {
      if (!req.target.startsWith('/hold'))
        return createResponse(200, { body: fixedBody(`now ${req.target}`) });
      return readBody(req.body).then(
        () =>
          new Promise<HttpResponse>((resolve) =>
            held.push({
              target: req.target,
              release: () => resolve(createResponse(200, { body: fixedBody(`late ${req.target}`) })),
            }),
          ),
      );
    },
  };
  return { handler, held };
}

describe.each(drivers)('onAbandoned on the %s driver', (driver) => {
  let srv: Running | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  async function start() {
    const { handler, held } = holdingHandler();
    const abandoned: string[] = [];
    const answered: string[] = [];
    srv = await startServer(
      driver,
      {
        onAbandoned: (req) => abandoned.push(req.target),
        onAnswered: (req, res) => answered.push(`${req.target} ${res.status}`),
      },
      handler,
    );
    return { port: srv.port, held, abandoned, answered };
  }

  it('HTTP/1.1: a client that closes while its request waits is reported, and nothing is written', async () => {
    const { port, held, abandoned, answered } = await start();
    const client = new RawClient(port);
    await client.opened;
    client.write('GET /hold-1 HTTP/1.1\r\nHost: a\r\n\r\n');
    await eventually('the handler', () => held.length === 1);
    expect(abandoned).toEqual([]);
    client.end();
    await eventually('the report', () => abandoned.length === 1);
    expect(abandoned).toEqual(['/hold-1']);
    held[0]!.release();
    await eventually('the connection closed', () => client.closed);
    expect(client.text).toBe('');
    expect(answered).toEqual([]);
    expect(srv!.errors).toEqual([]);
  });

  it('HTTP/1.1: a client that closes once its request body was read is reported', async () => {
    const { port, held, abandoned } = await start();
    const client = new RawClient(port);
    await client.opened;
    client.write('POST /hold-body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello');
    await eventually('the handler', () => held.length === 1);
    client.destroy();
    await eventually('the report', () => abandoned.length === 1);
    expect(abandoned).toEqual(['/hold-body']);
    held[0]!.release();
  });

  it('HTTP/1.1: answered requests are not reported, and a pipelined request arriving meanwhile is answered', async () => {
    const { port, held, abandoned, answered } = await start();
    const client = new RawClient(port);
    await client.opened;
    client.write('GET /hold-2 HTTP/1.1\r\nHost: a\r\n\r\n');
    await eventually('the handler', () => held.length === 1);
    client.write('GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    // Let the pipelined bytes arrive while the first request still waits.
    await new Promise((r) => setTimeout(r, 50));
    held[0]!.release();
    await eventually('both answers', () => client.closed);
    const text = client.text;
    expect(text).toContain('late /hold-2');
    expect(text).toContain('now /next');
    expect(text.indexOf('late /hold-2')).toBeLessThan(text.indexOf('now /next'));
    expect(abandoned).toEqual([]);
    expect(answered).toEqual(['/hold-2 200', '/next 200']);
  });

  it('HTTP/2: a stream reset while its request waits is reported; the session goes on', async () => {
    const { port, held, abandoned, answered } = await start();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    try {
      const req = session.request({ ':path': '/hold-4' });
      req.on('error', () => {});
      req.end();
      await eventually('the handler', () => held.length === 1);
      req.close(http2.constants.NGHTTP2_CANCEL);
      await eventually('the report', () => abandoned.length === 1);
      expect(abandoned).toEqual(['/hold-4']);
      held[0]!.release();
      const body = await new Promise<string>((resolve, reject) => {
        const r = session.request({ ':path': '/after' });
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => {
          text += d;
        });
        r.on('end', () => resolve(text));
        r.on('error', reject);
        r.end();
      });
      expect(body).toBe('now /after');
      expect(answered).toEqual(['/after 200']);
    } finally {
      session.close();
    }
  });

  it('HTTP/2: a connection that ends while requests wait reports each of them', async () => {
    const { port, held, abandoned } = await start();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    for (const path of ['/hold-5', '/hold-6']) {
      const req = session.request({ ':path': path });
      req.on('error', () => {});
      req.end();
    }
    await eventually('the handlers', () => held.length === 2);
    session.destroy();
    await eventually('the reports', () => abandoned.length === 2);
    expect(abandoned.sort()).toEqual(['/hold-5', '/hold-6']);
    for (const h of held) h.release();
  });
});
