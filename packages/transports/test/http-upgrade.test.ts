/**
 * HttpConnector and HttpConnection after a response that switched protocols, against a node:http
 * peer that upgrades (its 'upgrade' event), on every runtime driver: a 101 to a request with
 * Upgrade leaves the pool for good (`takeOver` gives the raw stream and the bytes behind the
 * head; the pool stops counting it), a switched connection that is closed or never taken over
 * is released, and an upgrade answered with a plain response keeps the pool's reuse rules.
 */
import type { Socket } from 'node:net';
import { createRequest, HttpError, type HttpStream, readText, type StreamChunk } from '@loch/http';
import { endpoint, HttpConnector, type HttpConnectorOptions, UnifiedL4Connector } from '@loch/transports';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, eventually, fdCount, fdsBackTo, HttpPeer } from './harness.js';

const drivers = await driverCases();

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

async function recvUntil(stream: HttpStream, text: string, already = ''): Promise<string> {
  let got = already;
  while (!got.includes(text)) {
    const c = await recvOnce(stream);
    if (c === null) break;
    got += Buffer.from(c.bytes).toString('latin1');
    c.release();
  }
  return got;
}

const upgradeRequest = (target = '/ws') =>
  createRequest('GET', target, { headers: { connection: 'upgrade', upgrade: 'shout' } });

describe.each(drivers)('HttpConnector upgrades on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: HttpConnector | undefined;
  let peer: HttpPeer;
  /** Server-side sockets of upgraded connections, and whether each was closed. */
  let upgraded: { socket: Socket; closed: boolean }[];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    upgraded = [];
    peer = new HttpPeer((_req, res) => {
      res.writeHead(200, { 'content-length': 2 });
      res.end('no');
    });
    peer.server.on('upgrade', (req, socket: Socket, head: Buffer) => {
      if (req.url === '/decline') {
        // Declined with a plain answer: HTTP framing goes on (node:http no longer parses this
        // socket, which is all the case needs).
        socket.on('error', () => {});
        socket.write('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno');
        return;
      }
      const entry = { socket, closed: false };
      upgraded.push(entry);
      socket.on('close', () => {
        entry.closed = true;
      });
      socket.on('error', () => {});
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nwelcome;',
      );
      if (head.length > 0) socket.write(head.toString('latin1').toUpperCase());
      socket.on('data', (d: Buffer) => socket.write(d.toString('latin1').toUpperCase()));
      socket.on('end', () => socket.end());
    });
    await peer.listen();
  });

  afterEach(async () => {
    connector?.close();
    connector = undefined;
    await peer.close();
    await runtime.close();
  });

  function make(options: HttpConnectorOptions = {}): HttpConnector {
    connector = new HttpConnector(new UnifiedL4Connector({ runtime }), options);
    return connector;
  }

  run('a 101 leaves the pool: takeOver gives the raw stream and the bytes behind the head', async () => {
    const fds = fdCount();
    const c = make();
    const key = endpoint(`http://127.0.0.1:${peer.port}`);
    // A pooled connection first, so the upgrade goes over a reused one.
    const plain = await c.request(key, createRequest('GET', '/plain'));
    expect(await readText(plain.body)).toBe('no');
    expect(c.stats()).toMatchObject({ idle: 1, active: 0 });

    const res = await c.request(key, upgradeRequest());
    expect(res.status).toBe(101);
    expect(res.headers.get('upgrade')).toBe('shout');
    // Switched, not yet taken over: still active, never idle.
    expect(c.stats()).toMatchObject({ idle: 0, active: 1, reused: 1 });
    const { stream, head } = res.takeOver!();
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    // The node:http peer wrote its first bytes after the 101 head: they may come behind it or later.
    expect(await recvUntil(stream, 'welcome;', Buffer.from(head).toString('latin1'))).toBe('welcome;');
    await writeOnce(stream, Buffer.from('ping'));
    expect(await recvUntil(stream, 'PING')).toBe('PING');
    // Half-close: the peer ends its side too.
    await stream.shutdown();
    expect(await recvOnce(stream)).toBeNull();
    await stream.close();
    expect(await eventually(() => upgraded[0]!.closed)).toBe(true);
    // The next request takes a new connection: the switched one never went back.
    const again = await c.request(key, createRequest('GET', '/plain'));
    expect(await readText(again.body)).toBe('no');
    expect(peer.connections.length).toBe(2);
    c.close();
    expect(await fdsBackTo(fds)).toBeLessThanOrEqual(fds);
  });

  run('an HttpConnection takes over once; a second takeOver and a misuse throw', async () => {
    const c = make();
    const key = endpoint(`http://127.0.0.1:${peer.port}`);
    const conn = await c.connect(key);
    expect(() => conn.takeOver()).toThrow(HttpError);
    const res = await conn.send(upgradeRequest());
    expect(res.status).toBe(101);
    const taken = conn.takeOver();
    expect(conn.alive).toBe(false);
    expect(() => conn.takeOver()).toThrow(HttpError);
    expect(() => res.takeOver!()).toThrow(HttpError);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    // Closing the HttpConnection now leaves the taken stream alone.
    await conn.close();
    expect(taken.stream.closed).toBe(false);
    await taken.stream.close();
  });

  run('a switched connection closed without takeOver is released, and so is one nobody takes', async () => {
    const c = make({ readTimeout: 100 });
    const key = endpoint(`http://127.0.0.1:${peer.port}`);
    const conn = await c.connect(key);
    const res = await conn.send(upgradeRequest());
    expect(res.status).toBe(101);
    expect(c.stats()).toMatchObject({ active: 1 });
    await conn.close();
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    expect(await eventually(() => upgraded[0]?.closed === true)).toBe(true);

    // Never taken over: closed after the read timeout (generous bound), and no longer counted.
    const dropped = await c.request(key, upgradeRequest());
    expect(dropped.status).toBe(101);
    expect(c.stats()).toMatchObject({ active: 1 });
    expect(await eventually(() => upgraded[1]?.closed === true, 5000)).toBe(true);
    expect(await eventually(() => c.stats().active === 0)).toBe(true);
    expect(() => dropped.takeOver!()).toThrow(HttpError);
  });

  run('an upgrade answered with a plain response keeps HTTP framing and the pool', async () => {
    const c = make();
    const key = endpoint(`http://127.0.0.1:${peer.port}`);
    const res = await c.request(key, upgradeRequest('/decline'));
    expect(res.status).toBe(426);
    expect(res.takeOver).toBeUndefined();
    expect(await readText(res.body)).toBe('no');
    expect(c.stats()).toMatchObject({ idle: 1, active: 0 });
    expect(upgraded.length).toBe(0);
  });
});
