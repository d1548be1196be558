/**
 * The h1 connection's tunnel state, on the wire: only a 101 that answers a request which asked
 * to upgrade (Connection: upgrade + Upgrade, no body) and names a tunnel switches protocols;
 * then the 101 head goes out, the bytes the client sent behind its head reach the tunnel first,
 * and bytes flow both ways until the tunnel ends (the server closes the connection then).
 * Anything else keeps HTTP framing: a 101 to a plain request is a handler error (500).
 * Raw sockets over loopback, on every runtime driver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpConnectionContext } from '../src/context.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from '../src/message.js';
import type { HttpHandler } from '../src/server.js';
import type { HttpStream, StreamChunk } from '../src/transport.js';
import {
  availableDrivers,
  type InProcess,
  parseResponses,
  RawClient,
  startServer,
} from './server-harness.js';

const drivers = await availableDrivers();

/** Reads one chunk from a raw stream (the tunnel's own reads go through recvTo too). */
function recvOnce(stream: HttpStream): Promise<StreamChunk | null> {
  return new Promise((resolve, reject) => {
    stream.recvTo({ onRecv: (c, e) => (e !== undefined ? reject(e) : resolve(c)) });
  });
}

function writeOnce(stream: HttpStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.writeTo(data, { onWritten: (e) => (e !== undefined ? reject(e) : resolve()) });
  });
}

/** Echoes upper-cased bytes until the client sends `bye`, then ends (the server closes). */
async function shoutingTunnel(stream: HttpStream, head: Uint8Array): Promise<void> {
  let text = Buffer.from(head).toString('latin1');
  for (;;) {
    if (text.length > 0) await writeOnce(stream, Buffer.from(text.toUpperCase(), 'latin1'));
    if (text.includes('bye')) return;
    const c = await recvOnce(stream);
    if (c === null) return;
    text = Buffer.from(c.bytes).toString('latin1');
    c.release();
  }
}

const handler: HttpHandler<HttpConnectionContext> = {
  call(req: HttpServerRequest<HttpConnectionContext>): HttpResponse {
    if (req.target === '/no-tunnel') return createResponse(101, { headers: { upgrade: 'shout' } });
    return {
      ...createResponse(101, { headers: { connection: 'upgrade', upgrade: 'shout' } }),
      tunnel: shoutingTunnel,
    };
  },
};

const upgrade = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n`;

describe.each(drivers)('the h1 tunnel state on the %s driver (wire)', (driver) => {
  let srv: InProcess;
  beforeAll(async () => {
    srv = await startServer(driver, {}, handler);
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('sends the 101, hands over the bytes behind the head, then tunnels both ways', async () => {
    const c = new RawClient(srv.port);
    await c.opened;
    // The new protocol's first bytes arrive in the same write as the upgrade request.
    c.write(`${upgrade('/ws')}hello `);
    const first = await c.until((t) => t.includes('HELLO '));
    const head = first.slice(0, first.indexOf('\r\n\r\n') + 4);
    expect(head).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(head.toLowerCase()).toContain('upgrade: shout');
    expect(head.toLowerCase()).toContain('connection: upgrade');
    expect(head.toLowerCase()).not.toContain('content-length');
    expect(head.toLowerCase()).not.toContain('transfer-encoding');
    // What looks like HTTP is only payload now.
    c.write('GET /smuggled HTTP/1.1\r\n\r\n');
    await c.until((t) => t.includes('GET /SMUGGLED'));
    c.write('bye');
    const all = await c.untilClosed();
    expect(all.slice(head.length)).toBe('HELLO GET /SMUGGLED HTTP/1.1\r\n\r\nBYE');
    expect(srv.errors).toEqual([]);
  });

  it('answers a 101 to a request that did not ask to upgrade with 500 and keeps HTTP framing', async () => {
    const c = new RawClient(srv.port);
    await c.opened;
    c.write('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const { responses } = parseResponses(await c.untilClosed());
    expect(responses.map((r) => r.status)).toEqual([500]);
  });

  it('answers a 101 without a tunnel with 500', async () => {
    const c = new RawClient(srv.port);
    await c.opened;
    c.write(`${upgrade('/no-tunnel')}`);
    const text = await c.until((t) => t.includes('\r\n\r\n'));
    expect(text).toMatch(/^HTTP\/1\.1 500 /);
    c.destroy();
  });

  it('never switches for a request with a body', async () => {
    const c = new RawClient(srv.port);
    await c.opened;
    c.write(
      'POST /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, close\r\nUpgrade: shout\r\nContent-Length: 3\r\n\r\nabc',
    );
    const { responses } = parseResponses(await c.untilClosed());
    expect(responses.map((r) => r.status)).toEqual([500]);
  });
});
