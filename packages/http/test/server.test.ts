import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedBody, type HttpBody, streamBody } from '../src/body.js';
import { HttpParseError } from '../src/errors.js';
import { createResponse } from '../src/message.js';
import type { HttpRejection } from '../src/server.js';
import { availableDrivers, type InProcess, raw, startServer, statuses } from './server-harness.js';

const drivers = await availableDrivers();

/** Polls `cond` for up to 10 s (the assertion after it says what failed). */
async function until(cond: () => boolean): Promise<void> {
  for (let n = 0; n < 400 && !cond(); n++) await new Promise((r) => setTimeout(r, 25));
}

/** An endless source that records whether it was pulled and whether it was released. */
class TrackedSource implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  pulled = 0;
  returned = false;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }
  async next(): Promise<IteratorResult<Uint8Array>> {
    this.pulled++;
    return { done: false, value: Buffer.from('x') };
  }
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.returned = true;
    return { done: true, value: undefined };
  }
}

/** A body that is its own iterator (like a proxy's pass-through body). */
function ownBody(src: AsyncIterable<Uint8Array>): HttpBody & AsyncIterator<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  return {
    kind: 'stream',
    length: -1,
    trailers: null,
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () => it.next(),
    return: async () => (await it.return?.()) ?? { done: true, value: undefined },
  };
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

describe.each(drivers)('HttpServer on the %s driver, raw sockets', (driver) => {
  let srv: InProcess;
  beforeEach(async () => {
    srv = await startServer(driver, { timeouts: { idle: 2000, head: 300, body: 300, write: 2000 } });
  });
  afterEach(async () => {
    await srv.stop();
  });

  it('answers pipelined requests in order on one connection', async () => {
    const text = await raw(srv.port, get('/hello') + get('/nope') + get('/hello', 'Connection: close\r\n'));
    expect(statuses(text)).toEqual([200, 404, 200]);
    expect(text.match(/hello world/g)).toHaveLength(2);
    expect(text).toMatch(/connection: close\r\n/);
  });

  it('keeps HTTP/1.0 connections only with keep-alive', async () => {
    const text = await raw(srv.port, 'GET /hello HTTP/1.0\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toMatch(/connection: close/);
    const ka = await raw(srv.port, [
      `GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`,
      'GET /hello HTTP/1.0\r\n\r\n',
    ]);
    expect(statuses(ka)).toEqual([200, 200]);
    expect(ka).toMatch(/connection: keep-alive/);
  });

  it('streams HTTP/1.0 responses close-delimited and 1.1 responses chunked with trailers', async () => {
    const old = await raw(srv.port, 'GET /stream HTTP/1.0\r\n\r\n');
    expect(old).not.toMatch(/transfer-encoding/);
    expect(old.endsWith('part0;part1;part2;part3;part4;')).toBe(true);
    const neu = await raw(srv.port, get('/stream', 'Connection: close\r\n'));
    expect(neu).toMatch(/transfer-encoding: chunked/);
    expect(neu).toMatch(/0\r\nx-trailer: done\r\n\r\n$/);
  });

  it('answers HEAD and 204 without a body', async () => {
    const text = await raw(
      srv.port,
      `HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n${get('/nocontent', 'Connection: close\r\n')}`,
    );
    expect(statuses(text)).toEqual([200, 204]);
    expect(text).toMatch(/content-length: 11\r\n/);
    expect(text).not.toMatch(/hello world|ignored/);
  });

  it('answers HEAD with the content-length of its fields when its body is empty (a proxied HEAD)', async () => {
    const head = await startServer(
      driver,
      {},
      {
        call: () =>
          createResponse(200, { headers: { 'content-length': '3269' }, body: fixedBody(new Uint8Array(0)) }),
      },
    );
    try {
      const text = await raw(head.port, 'HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      expect(text).toMatch(/content-length: 3269\r\n/);
      expect(text).not.toMatch(/content-length: 0/);
    } finally {
      await head.stop();
    }
  });

  it('reads chunked request bodies with trailers', async () => {
    const body = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n';
    const text = await raw(
      srv.port,
      `POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(text).toMatch(/\r\n\r\n11 \d+ abc$/);
  });

  it('sends 100 Continue when the handler reads the body', async () => {
    const text = await raw(srv.port, [
      'POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
      'abcd',
    ]);
    expect(text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
    expect(text).toMatch(/\r\n\r\n4 \d+$/);
  });

  it('answers an unknown expectation with 417', async () => {
    const text = await raw(
      srv.port,
      'POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: tea\r\n\r\nabcd',
    );
    expect(statuses(text)).toEqual([417]);
  });

  it.each([
    [
      'CL with TE',
      'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['duplicate CL', 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
    ['TE not chunked', 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
    [
      'TE gzip, chunked',
      'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
      501,
    ],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : t\r\n\r\n', 400],
    ['bare LF', 'GET / HTTP/1.1\nHost: t\r\n\r\n', 400],
    ['NUL in value', 'GET / HTTP/1.1\r\nHost: t\x00\r\n\r\n', 400],
    ['missing Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['unknown method', 'BREW / HTTP/1.1\r\nHost: t\r\n\r\n', 501],
    ['HTTP/2.0 line', 'GET / HTTP/2.0\r\nHost: t\r\n\r\n', 505],
    ['huge header', `GET / HTTP/1.1\r\nHost: t\r\nX: ${'a'.repeat(20000)}\r\n\r\n`, 431],
    ['long request line', `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: t\r\n\r\n`, 414],
  ])('rejects %s with %i and closes', async (_name, input, status) => {
    const text = await raw(srv.port, input + get('/hello'));
    expect(statuses(text)).toEqual([status]);
    expect(text).toMatch(/connection: close/);
  });

  it('smuggling attempt: the second, hidden request is never served', async () => {
    const attack =
      'POST /hello HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\nGET /peer HTTP/1.1\r\nHost: t\r\n\r\n';
    const text = await raw(srv.port, attack);
    expect(statuses(text)).toEqual([400]);
    expect(text).not.toMatch(/peer/);
  });

  it('a throwing handler costs its request a 500, not the connection', async () => {
    const text = await raw(srv.port, get('/throw') + get('/hello', 'Connection: close\r\n'));
    expect(statuses(text)).toEqual([500, 200]);
    expect(srv.errors.some((e) => (e as Error).message === 'handler bug')).toBe(true);
  });

  it('answers 408 when the head does not complete in time', async () => {
    const text = await raw(srv.port, 'GET /hello HTTP/1.1\r\nHost: t\r\n');
    expect(statuses(text)).toEqual([408]);
  });

  it('answers a stalled or malformed second request on a kept-alive connection', async () => {
    expect(statuses(await raw(srv.port, `${get('/hello')}GET /x HTTP/1.1\r\n`))).toEqual([200, 408]);
    expect(statuses(await raw(srv.port, `${get('/hello')}GET /x HTTP/1.1\r\nHost : t\r\n\r\n`))).toEqual([
      200, 400,
    ]);
  });

  it('answers 408 when the body stalls', async () => {
    const text = await raw(srv.port, 'POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc');
    expect(statuses(text)).toEqual([408]);
  });

  it('closes idle keep-alive connections silently', async () => {
    const quick = await startServer(driver, { timeouts: { idle: 100 } });
    try {
      const text = await raw(quick.port, get('/hello'));
      expect(statuses(text)).toEqual([200]);
    } finally {
      await quick.stop();
    }
  });

  it('drains an unread small body and keeps the connection', async () => {
    const text = await raw(
      srv.port,
      `POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde${get('/hello', 'Connection: close\r\n')}`,
    );
    expect(statuses(text)).toEqual([200, 200]);
  });

  it('fills the context with connection facts', async () => {
    const text = await raw(srv.port, get('/peer', 'Connection: close\r\n'));
    const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    expect(json.peer.address).toBe('127.0.0.1');
    expect(json.local.port).toBe(srv.port);
    expect(json.driver).toBe(driver);
  });

  it('closes instead of draining a large unread body', async () => {
    const big = 'a'.repeat(100_000);
    const text = await raw(
      srv.port,
      `POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: ${big.length}\r\n\r\n${big}${get('/hello')}`,
    );
    expect(statuses(text)).toEqual([200]);
  });

  it('cuts a response whose body breaks its announced length', async () => {
    const broken = await startServer(
      driver,
      {},
      {
        call: () => createResponse(200, { body: streamBody([Buffer.from('short')], { length: 10 }) }),
      },
    );
    try {
      const text = await raw(broken.port, get('/'));
      expect(text).toMatch(/content-length: 10\r\n\r\nshort$/);
      expect(broken.errors).toEqual([expect.objectContaining({ code: 'ERR_HTTP_BODY_LENGTH_MISMATCH' })]);
    } finally {
      await broken.stop();
    }
  });

  it('accepts HTTP/1.0 requests with a sized body', async () => {
    const text = await raw(srv.port, 'POST /len HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(text).toMatch(/\r\n\r\n3 \d+$/);
  });

  it('closes a connection whose peer stops reading (write timeout)', async () => {
    const stuck = await startServer(driver, { timeouts: { write: 200 } });
    try {
      const sock = net.connect(stuck.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.pause();
      sock.write(get('/forever'));
      const until = async (cond: () => boolean) => {
        for (let n = 0; n < 400 && !cond(); n++) await new Promise((r) => setTimeout(r, 25));
      };
      await until(() => stuck.server.connections === 1);
      expect(stuck.server.connections).toBe(1);
      // The server gives up on the write and drops the connection.
      await until(() => stuck.server.connections === 0);
      expect(stuck.server.connections).toBe(0);
      sock.destroy();
    } finally {
      await stuck.stop();
    }
  });

  it('close() lets an active request finish with connection: close', async () => {
    const sock = net.connect(srv.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (b) => chunks.push(b));
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.write(get('/slow'));
    await new Promise((r) => setTimeout(r, 10));
    await srv.stop();
    await closed;
    const text = Buffer.concat(chunks).toString('latin1');
    expect(statuses(text)).toEqual([200]);
    expect(text).toMatch(/connection: close/);
    srv = await startServer(driver);
  });

  it.each([
    ['no response', () => undefined],
    ['a bad status', () => createResponse(99)],
    ['a 101 it cannot switch to', () => createResponse(101, { headers: { upgrade: 'websocket' } })],
    ['a reason with CR LF', () => createResponse(200, { reason: 'OK\r\nx-injected: 1' })],
  ])('answers 500 when the handler returns %s', async (_name, make) => {
    const bad = await startServer(driver, {}, { call: make as never });
    try {
      const text = await raw(bad.port, get('/', 'Connection: close\r\n'));
      expect(statuses(text)).toEqual([500]);
      expect(text).not.toMatch(/x-injected/);
      expect(bad.errors.length).toBe(1);
    } finally {
      await bad.stop();
    }
  });

  it.each([
    ['an HttpBody of its own', (src: AsyncIterable<Uint8Array>) => ownBody(src)],
    ['a streamBody', (src: AsyncIterable<Uint8Array>) => streamBody(src)],
    ['a sized streamBody', (src: AsyncIterable<Uint8Array>) => streamBody(src, { length: 5 })],
  ])('releases %s when the client is gone before the response head is written', async (_name, wrap) => {
    let called!: () => void;
    const handlerCalled = new Promise<void>((r) => {
      called = r;
    });
    let answer!: () => void;
    const clientGone = new Promise<void>((r) => {
      answer = r;
    });
    const source = new TrackedSource();
    const gone = await startServer(
      driver,
      {},
      {
        async call() {
          called();
          await clientGone;
          return createResponse(200, { body: wrap(source) });
        },
      },
    );
    try {
      const sock = net.connect(gone.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write(get('/'));
      await handlerCalled;
      const closed = new Promise((r) => sock.on('close', r));
      sock.resetAndDestroy();
      await closed;
      answer();
      await until(() => gone.server.connections === 0);
      expect(gone.server.connections).toBe(0);
      // The head write failed: the body was never sent, and must have been let go.
      expect(source.pulled).toBe(0);
      expect(source.returned).toBe(true);
    } finally {
      await gone.stop();
    }
  });

  it('reports the requests it answers itself to onRejected, with the connection context', async () => {
    const seen: (HttpRejection & { peer: unknown })[] = [];
    const rej = await startServer(driver, {
      timeouts: { head: 200 },
      onRejected: (r, cx) => seen.push({ ...r, peer: cx.get('peerAddr') }),
    });
    try {
      expect(statuses(await raw(rej.port, 'GET / HTTP/1.1\r\nHost : t\r\n\r\n'))).toEqual([400]);
      expect(
        statuses(await raw(rej.port, `GET / HTTP/1.1\r\nHost: t\r\nX: ${'a'.repeat(20000)}\r\n\r\n`)),
      ).toEqual([431]);
      expect(
        statuses(
          await raw(rej.port, 'POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nExpect: tea\r\n\r\nx'),
        ),
      ).toEqual([417]);
      expect(statuses(await raw(rej.port, 'GET / HTTP/1.1\r\nHost: t\r\n'))).toEqual([408]);
      // Requests the handler answered are not reported.
      expect(statuses(await raw(rej.port, get('/hello', 'Connection: close\r\n')))).toEqual([200]);
      expect(seen.map((r) => [r.status, r.code, r.method, r.target])).toEqual([
        [400, 'ERR_HTTP_WHITESPACE_BEFORE_COLON', null, null],
        [431, 'ERR_HTTP_HEADER_LINE_TOO_LONG', null, null],
        [417, 'ERR_HTTP_EXPECTATION_FAILED', 'POST', '/len'],
        [408, 'ERR_HTTP_TIMEOUT', null, null],
      ]);
      expect(seen[0]!.bytes).toBe('ERR_HTTP_WHITESPACE_BEFORE_COLON\n'.length);
      expect(seen[0]!.peer).toMatchObject({ address: '127.0.0.1' });
      expect(seen[0]!.error).toBeInstanceOf(HttpParseError);
    } finally {
      await rej.stop();
    }
  });

  it('closes after maxRequestsPerConnection requests', async () => {
    const limited = await startServer(driver, { maxRequestsPerConnection: 2 });
    try {
      const text = await raw(limited.port, get('/hello') + get('/hello') + get('/hello'));
      expect(statuses(text)).toEqual([200, 200]);
      expect(text.match(/connection: close/g)).toHaveLength(1);
    } finally {
      await limited.stop();
    }
  });
});
