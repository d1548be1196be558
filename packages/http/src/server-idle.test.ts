/**
 * Idle keep-alive connections: between requests a connection parks in one recvTo (no suspended
 * function) and lends its decoder to the server's pool. These tests drive several connections
 * by hand so that parking, waking and decoder reuse interleave.
 */
import { describe, expect, it } from 'vitest';
import { handStream } from '../test/hand-stream.js';
import { fixedBody, type HttpBody, type ReadyBodyIterator } from './body.js';
import type { LiveConnections } from './live-connections.js';
import { createResponse } from './message.js';
import { HttpServer } from './server.js';
import type { HttpStream } from './transport.js';

const tick = () => new Promise((r) => setImmediate(r));
const bodies = (writes: string[]) =>
  writes
    .join('')
    .match(/\r\n\r\n[^H]*/g)
    ?.map((s) => s.slice(4)) ?? [];
const BIG = 'x'.repeat(70_000);
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;

/**
 * A `fixed` body of `size` bytes whose one chunk and end are at hand (as a proxied answer that
 * came in one read): over 3.5 KiB, its answer's one write is DEFERRED (the end is looked at once
 * the write is done), which makes the connection's rare part.
 */
function atHandBody(size: number): HttpBody {
  const data = Buffer.alloc(size, 0x62);
  return {
    kind: 'fixed',
    length: size,
    trailers: null,
    [Symbol.asyncIterator]() {
      let step = 0;
      const nextNow = (): IteratorResult<Uint8Array> =>
        step++ === 0 ? { done: false, value: data } : { done: true, value: undefined };
      const it: ReadyBodyIterator = { nextNow, next: async () => nextNow() };
      return it;
    },
  };
}

/**
 * What the server's first connection keeps of its last exchange (white-box, issue 18: a parked
 * connection should hold what a fresh one does): the request body, the part with the waits of
 * body reads and writes, and the rare part.
 */
function keptOfLastExchange(server: object): {
  reqBody: unknown;
  waits: unknown;
  rare: unknown;
} {
  const { live } = server as unknown as { live: LiveConnections<never> };
  const { reqBody, waits, rare } = live.at(0) as unknown as {
    reqBody: unknown;
    waits: unknown;
    rare: unknown;
  };
  return { reqBody, waits, rare };
}

describe('HttpServer idle connections', () => {
  it('a parked connection keeps nothing of its last exchange (body, body wait, deferred answer) and serves the next ones', async () => {
    const seen: string[] = [];
    const kept: AsyncIterator<Uint8Array>[] = [];
    const server = new HttpServer({
      call: async (req) => {
        if (req.method !== 'POST') return createResponse(200, { body: fixedBody(req.target) });
        // Read by hand, the iterator kept: the test reads it again once the connection parked.
        const it = req.body[Symbol.asyncIterator]();
        kept.push(it);
        let text = '';
        for (let r = await it.next(); !r.done; r = await it.next())
          text += Buffer.from(r.value).toString('latin1');
        seen.push(text);
        return createResponse(200, { body: atHandBody(5000) });
      },
    });
    const a = handStream();
    server.attach(a.stream);
    await tick();
    // The body comes in a read of its own: the handler's read waits for it.
    a.push('POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n');
    await tick();
    a.push('hello');
    await tick();
    await tick();
    expect(seen).toEqual(['hello']);
    expect(bodies(a.writes)).toEqual(['b'.repeat(5000)]);
    expect(a.waiting()).toBe(true);
    expect(keptOfLastExchange(server)).toEqual({ reqBody: null, waits: null, rare: null });
    // A late read of the released body ends, as it did before: no byte of the next request.
    const late = await kept[0]!.next();
    expect(late.done).toBe(true);
    // The next requests on the same connection: bodiless, then a body in the read of its head.
    a.push(get('/g'));
    await tick();
    a.push('POST /q HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc');
    await tick();
    await tick();
    expect(seen).toEqual(['hello', 'abc']);
    expect(bodies(a.writes)).toEqual(['b'.repeat(5000), '/g', 'b'.repeat(5000)]);
    expect(keptOfLastExchange(server)).toEqual({ reqBody: null, waits: null, rare: null });
    a.push(null);
    await tick();
    expect(server.connections).toBe(0);
  });

  it('serves interleaved keep-alive connections whose heads arrive split while others park', async () => {
    // '/big' answers more than the server holds back for pipelining: written at once, so the
    // connection meets the next (partial) head with nothing pending.
    const server = new HttpServer({
      call: (req) => createResponse(200, { body: fixedBody(req.target === '/big' ? BIG : req.target) }),
    });
    const a = handStream();
    const b = handStream();
    server.attach(a.stream);
    server.attach(b.stream);
    await tick();
    expect(a.waiting() && b.waiting()).toBe(true);
    a.push('GET /a1 HT');
    await tick();
    b.push(get('/b1'));
    await tick();
    a.push('TP/1.1\r\nHost: t\r\n\r\n');
    await tick();
    b.push(`${get('/b2')}GET /b3 HTTP/1.1\r\nHo`);
    await tick();
    a.push(get('/a2'));
    await tick();
    b.push('st: t\r\n\r\n');
    await tick();
    expect(bodies(a.writes)).toEqual(['/a1', '/a2']);
    expect(bodies(b.writes)).toEqual(['/b1', '/b2', '/b3']);
    b.push(`${get('/big')}GET /b4 HTTP/1.1\r\nHo`);
    await tick();
    a.push(get('/a3'));
    await tick();
    b.push('st: t\r\n\r\n');
    await tick();
    expect(bodies(a.writes)).toEqual(['/a1', '/a2', '/a3']);
    expect(bodies(b.writes)).toEqual(['/b1', '/b2', '/b3', BIG, '/b4']);
    expect(server.connections).toBe(2);
    a.push(null);
    b.push(null);
    await tick();
    expect(server.connections).toBe(0);
  });

  it('idleConnections counts the connections between requests, not one whose request is in flight', async () => {
    let answer: (() => void) | null = null;
    const server = new HttpServer({
      call: (req) =>
        req.target === '/slow'
          ? new Promise((resolve) => {
              answer = () => resolve(createResponse(200, { body: fixedBody('slow') }));
            })
          : createResponse(200, { body: fixedBody('ok') }),
    });
    const a = handStream();
    const b = handStream();
    server.attach(a.stream);
    server.attach(b.stream);
    await tick();
    expect(server.idleConnections).toBe(2);
    a.push(get('/'));
    b.push(get('/slow'));
    await tick();
    expect(bodies(a.writes)).toEqual(['ok']);
    expect(server.connections).toBe(2);
    expect(server.idleConnections).toBe(1);
    b.push('GET /next HTTP/1.1\r\nHo');
    answer!();
    await tick();
    // b answered /slow and holds part of a next head: a request has begun.
    expect(bodies(b.writes)).toEqual(['slow']);
    expect(server.idleConnections).toBe(1);
    b.push('st: t\r\n\r\n');
    await tick();
    expect(server.idleConnections).toBe(2);
    a.push(null);
    b.push(null);
    await tick();
    expect(server.idleConnections).toBe(0);
  });

  it('attach calls onClosed once with the stream after the peer closes', async () => {
    const server = new HttpServer({ call: () => createResponse(200, { body: fixedBody('ok') }) });
    const a = handStream();
    const closed: HttpStream[] = [];
    server.attach(a.stream, (s) => closed.push(s));
    a.push(get('/'));
    await tick();
    expect(closed).toEqual([]);
    a.push(null);
    await tick();
    expect(closed).toEqual([a.stream]);
    expect(a.closes()).toBeGreaterThan(0);
  });

  it('close() ends parked connections and resolves', async () => {
    const server = new HttpServer({ call: () => createResponse(200, { body: fixedBody('ok') }) });
    const a = handStream();
    const done = server.serveConnection(a.stream);
    a.push(get('/'));
    await tick();
    expect(a.waiting()).toBe(true);
    await server.close();
    await done;
    expect(a.stream.closed).toBe(true);
    expect(server.connections).toBe(0);
  });

  it('a parked connection that the idle timeout closes is released without an answer', async () => {
    const server = new HttpServer(
      { call: () => createResponse(200, { body: fixedBody('ok') }) },
      { timeouts: { idle: 20 } },
    );
    const a = handStream();
    const done = server.serveConnection(a.stream);
    a.push(get('/'));
    await done;
    expect(bodies(a.writes)).toEqual(['ok']);
    expect(server.connections).toBe(0);
  });
});
