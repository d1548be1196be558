/**
 * The HTTP/1.1 client gives a complete response's last receive chunk back at once, so an idle
 * kept-alive connection (a pooled upstream) holds no receive memory: N connections each left
 * idle after one response hold no bytes of the thread's receive budget and, on io_uring, no
 * provided buffer (issue 16). And what a reader still uses after the end is intact: the body
 * relayed through an HttpServer (the last data lent to a write, trailers written after the end)
 * and the head and trailers read after the end, over a stream whose chunks are scribbled over
 * when released (what a provided buffer refilled by another connection's receive looks like).
 */
import * as net from 'node:net';
import type { RecvChunk, RecvTarget, RuntimeError } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, connectTo, raw, runtimeFor, startServer } from '../../test/server-harness.js';
import { readBody } from '../body.js';
import { HttpClient } from '../client.js';
import { HttpHeaders } from '../headers.js';
import { createRequest, createResponse } from '../message.js';
import type { HttpStream } from '../transport.js';

const drivers = await availableDrivers();

/** Body bytes that a scribbled-over buffer (0xEE) cannot pass for. */
function pattern(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + (i % 26));
  return s;
}

const LONG = pattern(3000);
const SHORT = pattern(500);

/** Canned answers, each written in one piece (one receive on the client). */
const ANSWERS: Record<string, string> = {
  '/length': `HTTP/1.1 200 OK\r\nContent-Length: ${LONG.length}\r\nX-Head: kept\r\n\r\n${LONG}`,
  '/chunked': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Head: kept\r\n\r\n${LONG.length.toString(16)}\r\n${LONG}\r\n0\r\nX-Sum: 42\r\nX-Tail: end-of-trailers\r\n\r\n`,
  '/short': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Head: kept\r\n\r\n${SHORT.length.toString(16)}\r\n${SHORT}\r\n0\r\nX-Sum: 7\r\n\r\n`,
  '/none': 'HTTP/1.1 204 No Content\r\nX-Head: kept\r\n\r\n',
};

/** A keep-alive upstream answering bodiless GETs from ANSWERS. */
function cannedUpstream(): net.Server {
  return net.createServer((socket) => {
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (b: Buffer) => {
      buffered += b.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const path = head.split(' ')[1] ?? '';
        socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      }
    });
  });
}

/** `inner` whose received chunks are overwritten with 0xEE when released. */
function scribblingOnRelease(inner: HttpStream): HttpStream {
  const recvTo = (target: RecvTarget): void => {
    inner.recvTo({
      onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined) {
        if (chunk === null) {
          target.onRecv(null, error);
          return;
        }
        target.onRecv(
          {
            bytes: chunk.bytes,
            release() {
              chunk.bytes.fill(0xee);
              chunk.release();
            },
          },
          undefined,
        );
      },
    });
  };
  return new Proxy(inner, {
    get(target, key) {
      if (key === 'recvTo') return recvTo;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.each(drivers)('HTTP/1.1 client receive chunks on the %s driver', (driver) => {
  let upstream: net.Server;
  let port: number;

  beforeAll(async () => {
    upstream = cannedUpstream();
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    port = (upstream.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('holds no receive memory on connections left idle after a complete response', async () => {
    const runtime = await runtimeFor(driver);
    const before = runtime.bufferStats()!;
    const paths = ['/length', '/chunked', '/short', '/none'];
    const clients: HttpClient[] = [];
    try {
      // One request on each of 12 connections, one after the other, each left idle (pooled).
      for (let i = 0; i < 12; i++) {
        const client = new HttpClient(await connectTo(driver, port), { authority: 'upstream.test' });
        clients.push(client);
        const res = await client.send(createRequest('GET', paths[i % paths.length]!));
        await readBody(res.body);
        expect(client.reusable).toBe(true);
      }
      const after = runtime.bufferStats()!;
      expect(after.held).toBe(before.held);
      expect(after.buffersInUse).toBe(before.buffersInUse);
      // Still usable: the next request on each connection is answered.
      for (const client of clients) {
        const res = await client.send(createRequest('GET', '/length'));
        expect(Buffer.from(await readBody(res.body)).toString('latin1')).toBe(LONG);
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('keeps the head, the last data and the trailers intact when the last chunk goes back', async () => {
    const client = new HttpClient(scribblingOnRelease(await connectTo(driver, port)), {
      authority: 'upstream.test',
    });
    try {
      for (const path of ['/chunked', '/short', '/length']) {
        const res = await client.send(createRequest('GET', path));
        const it = res.body[Symbol.asyncIterator]();
        const parts: Buffer[] = [];
        for (let r = await it.next(); !r.done; r = await it.next()) parts.push(Buffer.from(r.value));
        // Read after the end, i.e. after the chunk they were decoded from was scribbled over.
        expect(res.headers.get('x-head')).toBe('kept');
        expect(Buffer.concat(parts).toString('latin1')).toBe(path === '/short' ? SHORT : LONG);
        if (path === '/length') expect(res.body.trailers).toBeNull();
        else {
          expect(res.body.trailers?.get('x-sum')).toBe(path === '/short' ? '7' : '42');
          if (path === '/chunked') expect(res.body.trailers?.get('x-tail')).toBe('end-of-trailers');
        }
      }
    } finally {
      await client.close();
    }
  });

  it('relays the last data and the trailers intact through a server when the last chunk goes back', async () => {
    // A one-connection proxy: each downstream request is sent upstream on the one kept-alive
    // client, and the upstream body (a view into the client's chunk) is the answer's body.
    const client = new HttpClient(scribblingOnRelease(await connectTo(driver, port)), {
      authority: 'upstream.test',
    });
    const srv = await startServer(
      driver,
      {},
      {
        async call(req) {
          const res = await client.send(createRequest('GET', req.target));
          return createResponse(res.status, {
            headers: new HttpHeaders([['x-head', res.headers.get('x-head') ?? 'missing']]),
            body: res.body,
          });
        },
      },
    );
    try {
      for (const path of ['/length', '/chunked', '/short']) {
        const text = await raw(srv.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
        const split = text.indexOf('\r\n\r\n');
        const head = text.slice(0, split);
        const rest = text.slice(split + 4);
        expect(head).toMatch(/^HTTP\/1\.1 200 /);
        expect(head).toMatch(/\r\nx-head: kept/i);
        expect(text).not.toContain('\xee');
        if (path === '/length') {
          expect(rest).toBe(LONG);
        } else {
          const body = path === '/short' ? SHORT : LONG;
          expect(rest.startsWith(`${body.length.toString(16)}\r\n${body}\r\n0\r\n`)).toBe(true);
          expect(rest).toMatch(
            path === '/short' ? /\r\nx-sum: 7\r\n\r\n$/i : /x-tail: end-of-trailers\r\n\r\n$/i,
          );
        }
      }
      expect(srv.errors).toEqual([]);
    } finally {
      await srv.stop();
      await client.close();
    }
  });
});
