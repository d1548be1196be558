/**
 * Property test over a real loopback connection: HttpClient -> HttpServer (echo handler) with
 * generated methods, headers, body framings, chunkings and trailers, several requests on one
 * kept-alive connection. What the client sends must come back byte for byte.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, readBody, streamBody } from '../src/body.js';
import { HttpClient } from '../src/client.js';
import { HttpHeaders } from '../src/headers.js';
import { createRequest, createResponse } from '../src/message.js';
import { headerList } from './arbitraries.js';
import { availableDrivers, connectTo, type Running, startServer } from './server-harness.js';

const drivers = await availableDrivers();

const bodyArb = fc.oneof(
  fc.record({ kind: fc.constant('none' as const) }),
  fc.record({ kind: fc.constant('fixed' as const), data: fc.uint8Array({ minLength: 1, maxLength: 5000 }) }),
  fc.record({
    kind: fc.constant('stream' as const),
    chunks: fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 6 }),
    trailers: fc.array(
      fc.tuple(fc.constantFrom('x-a', 'x-b', 'x-sum'), fc.stringMatching(/^[a-z0-9]{0,8}$/)),
      { maxLength: 2 },
    ),
  }),
);

describe.each(drivers)('client <-> server on the %s driver', (driver) => {
  let srv: Running;
  beforeAll(async () => {
    srv = await startServer(
      driver,
      {},
      {
        async call(req) {
          // Echo: body streamed back, request headers reflected as x-echo-*, trailers as trailers.
          const headers = new HttpHeaders([['x-method', req.method]]);
          for (const [n, v] of req.headers) if (n.startsWith('x-')) headers.append(`x-echo-${n}`, v);
          const body = await readBody(req.body);
          const trailers = req.body.trailers;
          return createResponse(200, {
            headers,
            body: trailers ? streamBody([body], { trailers }) : fixedBody(body),
          });
        },
      },
    );
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('round-trips generated requests over one connection', async () => {
    const client = new HttpClient(await connectTo(driver, srv.port), { authority: 'loopback.test' });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
          headerList,
          bodyArb,
          async (method, headers, spec) => {
            const reqHeaders = new HttpHeaders(headers.map(([n, v]) => [`x-${n}`, v] as [string, string]));
            const body =
              spec.kind === 'none'
                ? undefined
                : spec.kind === 'fixed'
                  ? fixedBody(spec.data)
                  : streamBody(spec.chunks, { trailers: new HttpHeaders(spec.trailers) });
            const res = await client.send(
              createRequest(method, '/echo', { headers: reqHeaders, ...(body ? { body } : {}) }),
            );
            expect(res.status).toBe(200);
            expect(res.headers.get('x-method')).toBe(method);
            for (const [n, v] of reqHeaders) expect(res.headers.getAll(`x-echo-${n}`)).toContain(v);
            const got = await readBody(res.body);
            const want =
              spec.kind === 'none'
                ? new Uint8Array(0)
                : spec.kind === 'fixed'
                  ? spec.data
                  : Buffer.concat(spec.chunks);
            expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
            if (spec.kind === 'stream' && spec.trailers.length > 0) {
              expect([...(res.body.trailers ?? [])]).toEqual(spec.trailers.map(([n, v]) => [n, v]));
            }
            expect(client.reusable).toBe(true);
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      await client.close();
    }
  });
});
