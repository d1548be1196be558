/**
 * HttpServerOptions.contextPerRequest (issue 18: memory per idle keep-alive connection): an
 * HTTP/1.1 connection calls the `context` factory for each request and each rejection and keeps
 * none, so an idle keep-alive connection holds no context object; without the option it keeps
 * the one it made at accept.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FixedBody } from '../src/body.js';
import { ConnectionContext, type HttpConnectionContext } from '../src/context.js';
import { H1ServerConnection } from '../src/h1/server-connection.js';
import { createResponse } from '../src/message.js';
import type { HttpRejection } from '../src/server.js';
import type { HttpStream } from '../src/transport.js';
import { availableDrivers, type InProcess, RawClient, startServer } from './server-harness.js';

const drivers = await availableDrivers();

/** A context factory that counts its calls. */
function countingFactory(): {
  made: HttpConnectionContext[];
  context: (s: HttpStream) => HttpConnectionContext;
} {
  const made: HttpConnectionContext[] = [];
  return {
    made,
    context: (stream) => {
      const cx = ConnectionContext.empty()
        .set('peerAddr', stream.remoteAddress)
        .set('localAddr', stream.localAddress)
        .set('driver', stream.driver);
      made.push(cx);
      return cx;
    },
  };
}

describe.each(drivers)('contextPerRequest (driver %s)', (driver) => {
  let srv: InProcess | undefined;
  let client: RawClient | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    client?.destroy();
    client = undefined;
    await srv?.stop();
    srv = undefined;
  });

  /** Serves with `perRequest`, sends three keep-alive requests, returns what it saw. */
  async function threeRequests(perRequest: boolean) {
    const conns: H1ServerConnection<unknown>[] = [];
    const start = H1ServerConnection.prototype.start;
    vi.spyOn(H1ServerConnection.prototype, 'start').mockImplementation(function (
      this: H1ServerConnection<unknown>,
    ) {
      conns.push(this);
      start.call(this);
    });
    const factory = countingFactory();
    const seen: HttpConnectionContext[] = [];
    srv = await startServer(
      driver,
      { contextPerRequest: perRequest, context: factory.context, timeouts: { idle: 60_000 } },
      {
        call: (request) => {
          seen.push(request.context);
          return createResponse(200, {
            body: new FixedBody(`peer ${request.context.get('peerAddr').family}\n`),
          });
        },
      },
    );
    client = new RawClient(srv.port);
    await client.opened;
    for (let i = 1; i <= 3; i++) {
      client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await client.until((t) => t.split('peer ipv4').length > i);
    }
    const server = srv.server;
    for (let n = 0; n < 200 && server.idleConnections !== 1; n++) await new Promise((r) => setTimeout(r, 10));
    expect(server.idleConnections).toBe(1);
    expect(conns).toHaveLength(1);
    const held = Object.values(conns[0] as object).filter((v) => factory.made.includes(v));
    return { made: factory.made, seen, held };
  }

  it('makes a context per request and an idle connection holds none', async () => {
    const { made, seen, held } = await threeRequests(true);
    expect(made).toHaveLength(3);
    expect(new Set(seen).size).toBe(3);
    expect(seen).toEqual(made);
    expect(held).toEqual([]);
  });

  it('without it, keeps the one context it made at accept', async () => {
    const { made, seen, held } = await threeRequests(false);
    expect(made).toHaveLength(1);
    expect(new Set(seen).size).toBe(1);
    expect(held).toEqual(made);
  });

  it('gives onRejected a context made for the rejection, not the request before it', async () => {
    const factory = countingFactory();
    const seen: HttpConnectionContext[] = [];
    const rejected: [HttpRejection, HttpConnectionContext][] = [];
    srv = await startServer(
      driver,
      {
        contextPerRequest: true,
        context: factory.context,
        onRejected: (r, cx) => rejected.push([r, cx]),
      },
      {
        call: (request) => {
          seen.push(request.context);
          return createResponse(200, { body: new FixedBody('ok\n') });
        },
      },
    );
    client = new RawClient(srv.port);
    await client.opened;
    // One request answered, then one the server rejects, on the same connection.
    client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await client.until((t) => t.includes('ok\n'));
    client.write('GET / HTTP/1.1\r\nHost : t\r\n\r\n');
    await client.until((t) => t.includes(' 400 '));
    for (let n = 0; n < 200 && rejected.length === 0; n++) await new Promise((r) => setTimeout(r, 10));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]![0].status).toBe(400);
    expect(factory.made).toEqual([seen[0], rejected[0]![1]]);
    expect(rejected[0]![1]).not.toBe(seen[0]);
    expect(rejected[0]![1].get('peerAddr')).toMatchObject({ address: '127.0.0.1' });
  });
});
