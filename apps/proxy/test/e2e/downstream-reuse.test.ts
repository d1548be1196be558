/**
 * `loch run` cuts a client connection whose response body broke upstream, as nginx and haproxy
 * do: what was valid is relayed, then the connection closes without a clean end (a chunked
 * response never gets its last chunk, a sized one stays short), and nothing the client
 * pipelined behind it is answered. And an upstream that answers before reading the request body
 * never makes loch parse that body as a request. A raw node:net upstream sends the answers; one
 * `loch run` per available driver.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, type Loch, rawExchange, startLochInFrontOf } from './harness.js';

const drivers = availableDrivers();

/** What the upstream writes (in one write) for each /broken/<case> request, then what it does. */
const BROKEN: Record<string, { bytes: string; after: 'hold' | 'end' | 'reset' }> = {
  // A valid chunk, then a chunk size line that is not hex.
  'bad-chunk': {
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n',
    after: 'hold',
  },
  // The very first chunk line is invalid: nothing of the body is valid.
  'bad-first-chunk': {
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n',
    after: 'hold',
  },
  // Content-Length 100, 7 bytes, then the upstream closes.
  'short-length': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', after: 'end' },
  // A chunk, then the upstream resets.
  'reset-chunked': {
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
    after: 'reset',
  },
};

async function brokenUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    /** Request body bytes still to skip (answered before it was read). */
    let skip = 0;
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, buf.length);
          buf = buf.slice(n);
          skip -= n;
          if (skip > 0) return;
        }
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        const path = head.split(' ')[1] ?? '/';
        skip = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        const broken = path.startsWith('/broken/') ? BROKEN[path.slice(8)] : undefined;
        if (path === '/early-close') {
          // Answers before reading the request body, and closes.
          s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!');
          return;
        }
        if (path === '/early-keep') {
          // Answers before the request body arrived, then reads it away (as nginx discards it).
          s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!');
          continue;
        }
        if (broken === undefined) {
          const body = `ok ${path}`;
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          continue;
        }
        s.write(broken.bytes);
        if (broken.after === 'end') s.end();
        else if (broken.after === 'reset') setTimeout(() => s.resetAndDestroy(), 20);
        return;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A request the client pipelines behind the broken one: it must never be answered. */
const NEXT = 'GET /next HTTP/1.1\r\nHost: t\r\n\r\n';
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;
/** Where a response head ends. */
const HEAD_END = '\r\n\r\n';

describe.each(drivers)('loch cuts a client connection whose upstream body broke (driver %s)', (driver) => {
  let upstream: Awaited<ReturnType<typeof brokenUpstream>>;
  let loch: Loch;
  let port: number;

  beforeAll(async () => {
    upstream = await brokenUpstream();
    ({ loch, port } = await startLochInFrontOf(upstream.port, driver, 'loch-proxy-downstream-'));
  }, 30_000);

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  it('an invalid chunk size after a valid chunk: the head and the chunk, then close, never 0\\r\\n\\r\\n', async () => {
    const text = await rawExchange(port, get('/broken/bad-chunk') + NEXT);
    const end = text.indexOf(HEAD_END);
    expect(text.slice(0, end)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.slice(0, end)).toMatch(/\r\ntransfer-encoding: chunked(\r\n|$)/i);
    expect(text.slice(end + HEAD_END.length)).toBe('5\r\nhello\r\n');
    expect(text).not.toMatch(/ok \/next/);
  });

  it('an invalid first chunk line: a 502 that closes, or the head and a cut (never a clean end)', async () => {
    const text = await rawExchange(port, get('/broken/bad-first-chunk') + NEXT);
    const end = text.indexOf(HEAD_END);
    const head = text.slice(0, end);
    if (/^HTTP\/1\.1 502 /.test(head)) {
      // Nothing of the upstream's answer was out yet (the bad line came with its head).
      expect(head).toMatch(/\r\nconnection: close(\r\n|$)/i);
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
      expect(text.length).toBe(end + HEAD_END.length + length);
    } else {
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text.slice(end + HEAD_END.length)).toBe('');
    }
    expect(text).not.toMatch(/ok \/next/);
  });

  it('a Content-Length body the upstream closes short: the partial body, then close', async () => {
    const text = await rawExchange(port, get('/broken/short-length') + NEXT);
    const end = text.indexOf(HEAD_END);
    expect(text.slice(0, end)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.slice(0, end)).toMatch(/\r\ncontent-length: 100(\r\n|$)/i);
    expect(text.slice(end + HEAD_END.length)).toBe('partial');
  });

  it('an upstream reset mid-body (chunked): the chunk, then close, never 0\\r\\n\\r\\n', async () => {
    const text = await rawExchange(port, get('/broken/reset-chunked') + NEXT);
    const end = text.indexOf(HEAD_END);
    expect(text.slice(0, end)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.slice(end + HEAD_END.length)).toBe('5\r\nhello\r\n');
  });

  it.each([
    ['/early-close', 'answers and closes'],
    ['/early-keep', 'answers and ignores the body'],
  ])(
    'an upstream that answers %s before the request body: no request hidden in the body is served',
    async (path) => {
      const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n';
      const body = smuggled + 'p'.repeat(200 - smuggled.length);
      const text = await rawExchange(
        port,
        `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`,
      );
      expect(text).not.toMatch(/smuggled/);
      // The upstream's answer, then the genuine next request's (the body was read to its end).
      const heads = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
      expect(heads).toEqual([path === '/early-close' ? '413' : '404', '200']);
      expect(text).toMatch(/\r\n\r\nok \/next$/);
    },
  );

  it('keeps serving other clients', async () => {
    const text = await rawExchange(port, `GET /fine HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok \/fine$/);
  });
});
