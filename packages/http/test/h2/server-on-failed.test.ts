/**
 * HttpServerOptions.onFailed on HTTP/2 streams, as on HTTP/1.1: a handler whose promise rejects
 * is answered with what the hook returns (not told to onError); a hook that throws falls back to
 * the 500 (told to onError); without a hook, the 500 as before. Both drivers, node:http2 client.
 */
import * as http2 from 'node:http2';
import type { DriverName } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import { fixedBody } from '../../src/body.js';
import type { HttpConnectionContext } from '../../src/context.js';
import { createResponse } from '../../src/message.js';
import type { HttpServerOptions } from '../../src/server.js';
import { availableDrivers, startServer } from '../server-harness.js';

const drivers = await availableDrivers();

/** Rejects for /fail, answers 200 otherwise (both after a turn, as a proxied answer does). */
const handler = {
  call: (req: { target: string }) =>
    req.target === '/fail'
      ? Promise.reject(new Error('boom'))
      : Promise.resolve(createResponse(200, { body: fixedBody('ok') })),
};

async function ask(
  options: HttpServerOptions<HttpConnectionContext>,
  driver: DriverName,
  path: string,
): Promise<{ status: unknown; body: string; errors: unknown[] }> {
  const running = await startServer(driver, options, handler as never);
  const client = http2.connect(`http://127.0.0.1:${running.port}`);
  client.on('error', () => {});
  try {
    return await new Promise((resolve, reject) => {
      const req = client.request({ ':path': path });
      let status: unknown;
      let body = '';
      req.setEncoding('latin1');
      req.on('response', (h) => {
        status = h[':status'];
      });
      req.on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => resolve({ status, body, errors: running.errors }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    client.close();
    await running.stop();
  }
}

describe.each(drivers)('HTTP/2 streams and onFailed (%s)', (driver) => {
  it("answers a rejected handler's request with the hook's response, not told to onError", async () => {
    const seen: string[] = [];
    const got = await ask(
      {
        onFailed: (req, e) => {
          seen.push(`${req.target} ${(e as Error).message}`);
          return createResponse(503, { body: fixedBody(`mapped: ${(e as Error).message}`) });
        },
      },
      driver,
      '/fail',
    );
    expect(got.status).toBe(503);
    expect(got.body).toBe('mapped: boom');
    expect(seen).toEqual(['/fail boom']);
    expect(got.errors).toEqual([]);
    // An answered request is left alone.
    const ok = await ask({ onFailed: () => createResponse(503, { body: fixedBody('no') }) }, driver, '/');
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('ok');
  });

  it('falls back to the 500 (told to onError) when the hook throws, and without a hook', async () => {
    const thrown = await ask(
      {
        onFailed: () => {
          throw new Error('hook failed');
        },
      },
      driver,
      '/fail',
    );
    expect(thrown.status).toBe(500);
    expect(thrown.errors.map((e) => (e as Error).message)).toEqual(['hook failed']);
    const none = await ask({}, driver, '/fail');
    expect(none.status).toBe(500);
    expect(none.errors.map((e) => (e as Error).message)).toEqual(['boom']);
  });
});
