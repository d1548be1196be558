/**
 * HttpServer.closeAll(): the end of a shutdown grace. close() closes only the connections between
 * requests; closeAll() closes the rest (a head half read, a body being read, an HTTP/2 stream
 * open) and each is released, so close() resolves. The proxy's worker relies on it: it keeps no
 * set of its attached connections (issue 18) and closes them through their servers.
 */
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { availableDrivers, type InProcess, RawClient, startServer } from './server-harness.js';

const drivers = await availableDrivers();

/** Polls `cond` for up to 10 s (the assertion after it says what failed). */
async function until(cond: () => boolean): Promise<void> {
  for (let n = 0; n < 400 && !cond(); n++) await new Promise((r) => setTimeout(r, 25));
}

describe.each(drivers)('HttpServer.closeAll (driver %s)', (driver) => {
  let srv: InProcess | undefined;
  const h2Sessions: http2.ClientHttp2Session[] = [];
  const raws: RawClient[] = [];
  afterEach(async () => {
    for (const s of h2Sessions) s.destroy();
    for (const r of raws) r.destroy();
    h2Sessions.length = 0;
    raws.length = 0;
    await srv?.stop();
    srv = undefined;
  });

  it('closes connections that are in the middle of a request, and close() then resolves', async () => {
    srv = await startServer(driver, { timeouts: { head: 60_000, body: 60_000 } });
    const server = srv.server;
    // HTTP/1.1: a head half sent, and a body of 100 bytes of which 2 were sent (/len reads it all).
    const head = new RawClient(srv.port);
    const body = new RawClient(srv.port);
    raws.push(head, body);
    await Promise.all([head.opened, body.opened]);
    head.write('GET /hello HTTP/1.1\r\nhost: x\r\n');
    body.write('POST /len HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nab');
    // HTTP/2 by prior knowledge: a request whose body never ends.
    const session = http2.connect(`http://127.0.0.1:${srv.port}`);
    h2Sessions.push(session);
    session.on('error', () => {});
    const h2Closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const req = session.request({ ':method': 'POST', ':path': '/len' }, { endStream: false });
    req.on('error', () => {});
    req.write('ab');
    await until(() => server.connections === 3 && server.idleConnections === 0);
    expect([server.connections, server.idleConnections]).toEqual([3, 0]);

    let drained = false;
    const closing = server.close().then(() => {
      drained = true;
    });
    // close() leaves connections with a request in flight open (they may finish within a grace).
    await new Promise((r) => setTimeout(r, 100));
    expect([head.closed, body.closed, drained]).toEqual([false, false, false]);

    await server.closeAll();
    await Promise.all([head.untilClosed(), body.untilClosed(), h2Closed]);
    await closing;
    expect([head.closed, body.closed, drained, server.connections]).toEqual([true, true, true, 0]);
  }, 30_000);
});
