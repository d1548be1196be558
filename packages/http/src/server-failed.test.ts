/**
 * The server's onFailed hook (HTTP/1.1): a handler's rejected answer is answered with what the
 * hook returns (written, told to onAnswered, the connection kept), not with the server's 500
 * and onError; a hook that throws falls back to both; a synchronous throw and an invalid
 * answer never reach it. Both drivers, real sockets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { availableDrivers, type Running, raw, startServer, statuses } from '../test/server-harness.js';
import { fixedBody } from './body.js';
import type { HttpConnectionContext } from './context.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from './message.js';
import type { HttpHandler } from './server.js';

const drivers = await availableDrivers();

class UpstreamDown extends Error {}

/** /reject rejects (later), /throw throws at once, /bad resolves with no response, else 200. */
const handler: HttpHandler<HttpConnectionContext> = {
  call(req: HttpServerRequest<HttpConnectionContext>): Promise<HttpResponse> | HttpResponse {
    if (req.target === '/reject') return Promise.reject(new UpstreamDown('down'));
    if (req.target === '/throw') throw new UpstreamDown('at once');
    if (req.target === '/bad') return Promise.resolve(null as unknown as HttpResponse);
    return createResponse(200, { body: fixedBody('ok') });
  },
};

describe.each(drivers)('onFailed on the %s driver', (driver) => {
  let srv: Running | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it('answers a rejection with the hook’s answer, tells onAnswered, and keeps the connection', async () => {
    const failed: string[] = [];
    const answered: string[] = [];
    srv = await startServer(
      driver,
      {
        onFailed: (req, error) => {
          failed.push(`${req.target} ${(error as Error).message}`);
          return createResponse(502, { body: fixedBody('upstream down\n') });
        },
        onAnswered: (req, res) => answered.push(`${req.target} ${res.status}`),
      },
      handler,
    );
    const text = await raw(
      srv.port,
      'GET /reject HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    expect(statuses(text)).toEqual([502, 200]);
    expect(text).toContain('upstream down\n');
    expect(failed).toEqual(['/reject down']);
    expect(answered).toEqual(['/reject 502', '/next 200']);
    expect(srv.errors).toEqual([]);
  });

  it('a hook that throws, a synchronous throw and an invalid answer get the server’s 500 and onError', async () => {
    const failed: string[] = [];
    srv = await startServer(
      driver,
      {
        onFailed: (req) => {
          failed.push(req.target);
          throw new Error('hook failed');
        },
      },
      handler,
    );
    for (const target of ['/reject', '/throw', '/bad']) {
      const text = await raw(srv.port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      expect(statuses(text)).toEqual([500]);
    }
    expect(failed).toEqual(['/reject']);
    expect(srv.errors.map((e) => (e as Error).message)).toEqual([
      'hook failed',
      'at once',
      'handler returned no valid HttpResponse',
    ]);
  });
});
