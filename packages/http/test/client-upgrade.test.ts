/**
 * HttpClient after a response that switched protocols, against raw node:net servers on
 * loopback, on every runtime driver: only a 101 answering a request that carried Upgrade (or a
 * 2xx to CONNECT) hands the connection over, with the bytes the server sent behind the 101 head;
 * then the stream is the caller's (no deadline, close() leaves it open), the client is never
 * reusable, and a switched connection nobody takes over is closed after the response timeout.
 * Anything else keeps HTTP framing.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readText } from '../src/body.js';
import { HttpClient } from '../src/client.js';
import { HttpConnectionError, HttpError, HttpParseError } from '../src/errors.js';
import { createRequest } from '../src/message.js';
import type { HttpStream, StreamChunk } from '../src/transport.js';
import { availableDrivers, connectTo } from './server-harness.js';

const drivers = await availableDrivers();

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

/** Reads from `stream` until `text` arrived (or the stream ended); returns what arrived. */
async function recvUntil(stream: HttpStream, text: string): Promise<string> {
  let got = '';
  while (!got.includes(text)) {
    const c = await recvOnce(stream);
    if (c === null) break;
    got += Buffer.from(c.bytes).toString('latin1');
    c.release();
  }
  return got;
}

/**
 * A server that answers `/upgrade` with a 101 and `early` behind it in the same write, then
 * echoes upper-cased; `/refuse` with a 400 (keep-alive); `/ok` with a 200; `/switch-anyway`
 * with a 101 whatever was asked.
 */
async function upgradeServer(): Promise<{
  port: number;
  heads: string[];
  closedByPeer: Promise<void>[];
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  const heads: string[] = [];
  const closedByPeer: Promise<void>[] = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    closedByPeer.push(new Promise((r) => s.on('close', () => r())));
    let buf = '';
    let tunnelled = false;
    s.on('data', (d: Buffer) => {
      if (tunnelled) {
        s.write(d.toString('latin1').toUpperCase());
        return;
      }
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        heads.push(head);
        buf = buf.slice(end + 4);
        const [method, target] = head.split(' ');
        if (method === 'CONNECT') {
          tunnelled = true;
          s.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          return;
        }
        if (target === '/upgrade' || target === '/switch-anyway' || target === '/silent-upgrade') {
          tunnelled = true;
          const early = target === '/upgrade' ? 'early bytes' : '';
          s.write(
            `HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\n${early}`,
          );
          if (buf.length > 0) s.write(buf.toUpperCase());
          return;
        }
        if (target === '/refuse') {
          s.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno');
          continue;
        }
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    closedByPeer,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const upgradeRequest = (target: string) =>
  createRequest('GET', target, { headers: { connection: 'upgrade', upgrade: 'shout' } });

describe.each(drivers)('HttpClient after a protocol switch on the %s driver', (driver) => {
  let srv: Awaited<ReturnType<typeof upgradeServer>>;
  beforeAll(async () => {
    srv = await upgradeServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  it('hands over the stream and the bytes behind the 101 head, then the caller owns it', async () => {
    const client = new HttpClient(await connectTo(driver, srv.port), { authority: 'u' });
    const res = await client.send(upgradeRequest('/upgrade'));
    expect(res.status).toBe(101);
    // The request said `connection: upgrade` (once) beside its Upgrade field.
    const sent = srv.heads.at(-1)!.toLowerCase();
    expect(sent).toMatch(/^get \/upgrade http\/1\.1\r\n/);
    expect(sent.split('\r\n')).toContain('upgrade: shout');
    expect(sent.split('connection:').length).toBe(2);
    expect(sent.split('\r\n')).toContain('connection: upgrade');
    expect(res.headers.get('upgrade')).toBe('shout');
    expect(res.body.kind).toBe('empty');
    expect(client.upgraded).toBe(true);
    expect(client.reusable).toBe(false);
    expect(res.takeOver).toBeTypeOf('function');
    const { stream, head } = res.takeOver!();
    let early = Buffer.from(head).toString('latin1');
    // The server wrote the 101 and its first bytes together; they may still arrive apart.
    if (early.length < 'early bytes'.length) early += await recvUntil(stream, 'early bytes');
    expect(early).toBe('early bytes');
    // Taken over: the client lets go (close() leaves the stream open).
    await client.close();
    expect(stream.closed).toBe(false);
    await writeOnce(stream, Buffer.from('hello tunnel'));
    expect(await recvUntil(stream, 'HELLO TUNNEL')).toBe('HELLO TUNNEL');
    // A second hand-over is refused; so is another request.
    expect(() => client.takeOver()).toThrow(HttpConnectionError);
    await expect(client.send(createRequest('GET', '/ok'))).rejects.toBeInstanceOf(HttpConnectionError);
    await stream.close();
  });

  it('hands over a switch that came with no bytes behind it (head is empty)', async () => {
    const client = new HttpClient(await connectTo(driver, srv.port), { authority: 'u' });
    const res = await client.send(upgradeRequest('/silent-upgrade'));
    expect(res.status).toBe(101);
    const { stream, head } = client.takeOver();
    expect(head.byteLength).toBe(0);
    await writeOnce(stream, Buffer.from('abc'));
    expect(await recvUntil(stream, 'ABC')).toBe('ABC');
    await stream.close();
  });

  it('hands over the connection after a 2xx to CONNECT too', async () => {
    const client = new HttpClient(await connectTo(driver, srv.port));
    const res = await client.send(createRequest('CONNECT', 'example.test:443'));
    expect(res.status).toBe(200);
    expect(client.upgraded).toBe(true);
    const { stream } = res.takeOver!();
    await writeOnce(stream, Buffer.from('through'));
    expect(await recvUntil(stream, 'THROUGH')).toBe('THROUGH');
    await stream.close();
  });

  it('keeps HTTP framing when an upgrade request is answered with a 400 or a 200', async () => {
    const client = new HttpClient(await connectTo(driver, srv.port), { authority: 'u' });
    const refused = await client.send(upgradeRequest('/refuse'));
    expect(refused.status).toBe(400);
    expect(refused.takeOver).toBeUndefined();
    expect(await readText(refused.body)).toBe('no');
    expect(client.upgraded).toBe(false);
    expect(client.reusable).toBe(true);
    expect(() => client.takeOver()).toThrow(HttpError);
    try {
      client.takeOver();
    } catch (e) {
      expect((e as HttpError).code).toBe('ERR_HTTP_NOT_UPGRADED');
    }
    const ok = await client.send(upgradeRequest('/ok'));
    expect(ok.status).toBe(200);
    expect(await readText(ok.body)).toBe('ok');
    expect(client.reusable).toBe(true);
    await client.close();
  });

  it('refuses a 101 to a request that did not ask to upgrade (no hand-over)', async () => {
    const client = new HttpClient(await connectTo(driver, srv.port), { authority: 'u' });
    const err = await client.send(createRequest('GET', '/switch-anyway')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpParseError);
    expect((err as HttpParseError).code).toBe('ERR_HTTP_UNSOLICITED_UPGRADE');
    expect(client.upgraded).toBe(false);
    expect(client.reusable).toBe(false);
    await client.close();
  });

  it('closes a switched connection nobody takes over, after the response timeout', async () => {
    const before = srv.closedByPeer.length;
    const client = new HttpClient(await connectTo(driver, srv.port), {
      authority: 'u',
      responseTimeout: 50,
    });
    const res = await client.send(upgradeRequest('/silent-upgrade'));
    expect(res.status).toBe(101);
    // The server sees the connection closed (generous bound: the sweep ticks coarsely).
    await Promise.race([
      srv.closedByPeer[before],
      new Promise((_, reject) => setTimeout(() => reject(new Error('not closed')), 5000)),
    ]);
    expect(() => client.takeOver()).toThrow(HttpConnectionError);
  });
});
