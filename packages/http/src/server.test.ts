import { plainFacts } from '@loch/uring-runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scriptedStream } from '../test/scripted-stream.js';
import { fixedBody, type HttpBody, type ReadyBodyIterator } from './body.js';
import { writeSlabStats } from './internal/write-slab.js';
import { createResponse } from './message.js';
import { HttpServer } from './server.js';
import type { HttpStream } from './transport.js';

const hello = new HttpServer({ call: (req) => createResponse(200, { body: fixedBody(req.target) }) });
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;

describe('HttpServer write batching', () => {
  it('answers requests pipelined in one chunk with one write', async () => {
    const { stream, writes } = scriptedStream([get('/1') + get('/2') + get('/3')]);
    await hello.serveConnection(stream);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.map((w) => w.slice(w.indexOf('\r\n\r\n') + 4))).toEqual(['/1', '/2', '/3']);
  });

  it('does not hold an answer while the next request is incomplete', async () => {
    const { stream, writes } = scriptedStream([`${get('/1')}GET /2 HT`, 'TP/1.1\r\nHost: t\r\n\r\n']);
    await hello.serveConnection(stream);
    expect(writes).toHaveLength(2);
    expect(writes[0]!.join('')).toMatch(/\r\n\r\n\/1$/);
    expect(writes[1]!.join('')).toMatch(/\r\n\r\n\/2$/);
  });

  it('flushes held answers before a parse error answer, in order', async () => {
    const { stream, writes } = scriptedStream([
      `${get('/1')}GET /2 HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n`,
    ]);
    await hello.serveConnection(stream);
    const all = writes.flat().join('');
    expect(all.indexOf('/1')).toBeGreaterThan(0);
    expect(all.indexOf('400 Bad Request')).toBeGreaterThan(all.indexOf('/1'));
  });
});

/** A streamed body whose chunks are all at hand: it offers every step through nextNow(). */
class ReadyChunks implements HttpBody, ReadyBodyIterator {
  readonly kind: 'fixed' | 'stream';
  readonly trailers = null;
  asyncSteps = 0;
  returned = false;
  constructor(
    private readonly chunks: string[],
    readonly length: number,
    private readonly ready: boolean,
  ) {
    this.kind = length >= 0 ? 'fixed' : 'stream';
  }
  [Symbol.asyncIterator]() {
    return this;
  }
  nextNow(): IteratorResult<Uint8Array> | null {
    if (!this.ready) return null;
    const c = this.chunks.shift();
    return c === undefined ? { done: true, value: undefined } : { done: false, value: Buffer.from(c) };
  }
  async next(): Promise<IteratorResult<Uint8Array>> {
    this.asyncSteps++;
    const c = this.chunks.shift();
    return c === undefined ? { done: true, value: undefined } : { done: false, value: Buffer.from(c) };
  }
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.returned = true;
    return { done: true, value: undefined };
  }
}

describe('HttpServer streamed bodies with chunks at hand', () => {
  const serve = async (body: ReadyChunks) => {
    const server = new HttpServer({ call: () => createResponse(200, { body }) }, { onError: () => {} });
    const { stream, writes } = scriptedStream([get('/')]);
    await server.serveConnection(stream);
    return writes;
  };

  it('writes the head and the first chunk in one write, then needs no promise step', async () => {
    const body = new ReadyChunks(['hello'], 5, true);
    const writes = await serve(body);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.join('')).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 5\r\n\r\nhello$/);
    expect(body.asyncSteps).toBe(0);
  });

  it('frames a chunked first chunk and the rest as before', async () => {
    const body = new ReadyChunks(['ab', 'cde'], -1, true);
    const out = (await serve(body)).map((w) => w.join(''));
    expect(out[0]).toMatch(/transfer-encoding: chunked\r\n\r\n2\r\nab\r\n$/);
    expect(out.slice(1).join('')).toBe('3\r\ncde\r\n0\r\n\r\n');
  });

  it('writes the head alone when no chunk is at hand', async () => {
    const body = new ReadyChunks(['hello'], 5, false);
    const writes = await serve(body);
    expect(writes.map((w) => w.join(''))).toHaveLength(2);
    expect(writes[1]!.join('')).toBe('hello');
    expect(body.asyncSteps).toBe(2);
  });

  it('fails a first chunk longer than announced without sending it, and returns the body', async () => {
    const body = new ReadyChunks(['toolong'], 3, true);
    const writes = await serve(body);
    const all = writes.map((w) => w.join('')).join('');
    expect(all).toMatch(/content-length: 3\r\n/);
    expect(all).not.toContain('toolong');
    expect(body.returned).toBe(true);
  });
});

describe('HttpServer on hostile input', () => {
  const errors: unknown[] = [];
  const echo = new HttpServer(
    {
      async call(req) {
        let n = 0;
        for await (const chunk of req.body) n += chunk.byteLength;
        return createResponse(200, { body: fixedBody(String(n)) });
      },
    },
    { onError: (e) => errors.push(e), timeouts: { idle: 0, head: 0, body: 0, write: 0 } },
  );
  const valid = [
    get('/a'),
    'POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc',
    'POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  ];

  it('always ends the connection cleanly, answering only with well-formed responses', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...valid), { minLength: 1, maxLength: 3 }),
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (msgs, flips, cuts) => {
          const bytes = Buffer.from(msgs.join(''), 'latin1');
          for (const { at, byte } of flips) bytes[at % bytes.length] = byte;
          const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
          const chunks: string[] = [];
          let prev = 0;
          for (const c of [...points, bytes.length]) {
            if (c > prev) chunks.push(bytes.subarray(prev, c).toString('latin1'));
            prev = Math.max(prev, c);
          }
          const { stream, writes } = scriptedStream(chunks);
          await echo.serveConnection(stream);
          const out = writes.flat().join('');
          const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
          expect(out === '' || out.startsWith('HTTP/1.1 ')).toBe(true);
          for (const st of statuses) expect([200, 400, 408, 413, 414, 417, 431, 500, 501, 505]).toContain(st);
        },
      ),
      { numRuns: 400 },
    );
    // Parse errors are answered, not reported; anything reported must be a handler-side failure.
    for (const e of errors) expect((e as { name?: string }).name).toMatch(/HttpParseError|HttpError/);
  });
});

describe('HttpServer streamed bodies: a large first chunk', () => {
  it('sends a whole 3,269 B body at hand with its head as one buffer, in one write of a lent piece', async () => {
    // The bench's 3,269 B answer: copied behind its head (one buffer), so its end is seen before
    // the write and nothing waits for the write's completion; the buffer is a piece of the write
    // slab (no allocation of its own).
    const body = new ReadyChunks(['b'.repeat(3269)], 3269, true);
    const server = new HttpServer({ call: () => createResponse(200, { body }) }, { onError: () => {} });
    const { stream, writes } = scriptedStream([get('/')]);
    const unlent = writeSlabStats.unlent;
    await server.serveConnection(stream);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toHaveLength(1);
    expect(writes[0]![0]).toMatch(/content-length: 3269\r\n\r\nb{3269}$/);
    expect(writeSlabStats.unlent).toBe(unlent);
    expect(body.asyncSteps).toBe(0);
  });

  it('sends a first chunk above the coalescing size once (writev with the head), then the rest', async () => {
    const first = 'a'.repeat(5000);
    const body = new ReadyChunks([first, 'tail'], 5004, true);
    const server = new HttpServer({ call: () => createResponse(200, { body }) }, { onError: () => {} });
    const { stream, writes } = scriptedStream([get('/')]);
    await server.serveConnection(stream);
    const all = writes.map((w) => w.join('')).join('');
    expect(writes[0]).toHaveLength(2);
    expect(all.slice(all.indexOf('\r\n\r\n') + 4)).toBe(`${first}tail`);
  });

  it('writes a complete chunked body with its trailers in one write', async () => {
    const body = new ReadyChunks(['ab'], -1, true);
    const server = new HttpServer({ call: () => createResponse(200, { body }) }, { onError: () => {} });
    const { stream, writes } = scriptedStream([get('/')]);
    await server.serveConnection(stream);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.join('')).toMatch(/\r\n\r\n2\r\nab\r\n0\r\n\r\n$/);
  });
});

/**
 * An in-memory stream with recvTo/writeTo of its own, as runtime streams: outcomes arrive from a
 * microtask, close() settles a pending receive with ECANCELED. `failWritesFrom` makes the n-th
 * write (0-based) and later ones fail with EPIPE.
 */
function targetStream(chunks: string[], failWritesFrom = Number.POSITIVE_INFINITY) {
  const writes: string[] = [];
  let pendingRecv: { onRecv(c: unknown, e: unknown): void } | null = null;
  const error = (code: string) => Object.assign(new Error(code), { code });
  const stream: HttpStream = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    localAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    driver: 'legacy',
    closed: false,
    facts: plainFacts({ family: 'ipv4', address: '10.0.0.1', port: 1000 }),
    recvTo(target) {
      pendingRecv = target as never;
      queueMicrotask(() => {
        if (pendingRecv !== target) return;
        pendingRecv = null;
        const c = chunks.shift();
        target.onRecv(c === undefined ? null : { bytes: Buffer.from(c, 'latin1'), release() {} }, undefined);
      });
    },
    writeTo(data, target) {
      const n = writes.length;
      const bufs = data instanceof Uint8Array ? [data] : data;
      if (n < failWritesFrom) writes.push(bufs.map((b) => Buffer.from(b).toString('latin1')).join(''));
      else writes.push('');
      queueMicrotask(() => target.onWritten(n < failWritesFrom ? undefined : (error('EPIPE') as never)));
    },
    async shutdown() {},
    async close() {
      (stream as { closed: boolean }).closed = true;
      const t = pendingRecv;
      pendingRecv = null;
      if (t !== null) queueMicrotask(() => t.onRecv(null, error('ECANCELED')));
    },
    setNoDelay() {},
  };
  return { stream, writes };
}

describe('HttpServer on a stream with recvTo/writeTo', () => {
  it('serves keep-alive requests', async () => {
    const { stream, writes } = targetStream([get('/1'), get('/2'), get('/3')]);
    await hello.serveConnection(stream);
    expect(writes.map((w) => w.slice(w.indexOf('\r\n\r\n') + 4))).toEqual(['/1', '/2', '/3']);
  });

  it('streams a body across several writes and keeps serving', async () => {
    const server = new HttpServer({
      call: () => createResponse(200, { body: new ReadyChunks(['x'.repeat(1500), 'yz'], 1502, false) }),
    });
    const { stream, writes } = targetStream([get('/1'), get('/2')]);
    await server.serveConnection(stream);
    const all = writes.join('');
    expect(all.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(all.match(/yz/g)).toHaveLength(2);
  });

  it('a failed final write closes the connection and is reported once', async () => {
    const errors: unknown[] = [];
    const server = new HttpServer(
      { call: (req) => createResponse(200, { body: fixedBody(req.target) }) },
      { onError: (e) => errors.push(e) },
    );
    const { stream, writes } = targetStream([get('/1'), get('/2'), get('/3')], 1);
    await server.serveConnection(stream);
    expect(stream.closed).toBe(true);
    expect(writes).toHaveLength(2);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['EPIPE']);
  });

  it('a failed streamed write closes the connection and returns the body', async () => {
    const errors: unknown[] = [];
    const body = new ReadyChunks(['x'.repeat(1500), 'more', 'rest'], 1508, false);
    const server = new HttpServer(
      { call: () => createResponse(200, { body }) },
      { onError: (e) => errors.push(e) },
    );
    const { stream } = targetStream([get('/1')], 1);
    await server.serveConnection(stream);
    expect(stream.closed).toBe(true);
    expect(body.returned).toBe(true);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['EPIPE']);
  });
});

describe('HttpServer: a large sized body complete in its first chunk (last write left in flight)', () => {
  // Above the size copied behind the head (response-writer.ts COALESCE_BYTES): a writev.
  const big = 'x'.repeat(5000);
  const open = (chunks: string[]) => {
    const t = targetStream(chunks);
    return { stream: t.stream, all: () => t.writes.join('') };
  };

  it('keeps serving after it', async () => {
    const server = new HttpServer({
      call: () => createResponse(200, { body: new ReadyChunks([big], 5000, true) }),
    });
    const { stream, all } = open([get('/1'), get('/2')]);
    await server.serveConnection(stream);
    expect(all().match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(all().split(big)).toHaveLength(3);
  });

  it('cuts the connection when more comes than announced', async () => {
    const errors: unknown[] = [];
    const body = new ReadyChunks([big, 'extra'], 5000, true);
    const server = new HttpServer(
      { call: () => createResponse(200, { body }) },
      { onError: (e) => errors.push(e) },
    );
    const { stream, all } = open([get('/1'), get('/2')]);
    await server.serveConnection(stream);
    expect(all().match(/HTTP\/1\.1 200 OK/g)).toHaveLength(1);
    expect(all()).not.toContain('extra');
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['ERR_HTTP_BODY_LENGTH_MISMATCH']);
  });

  it('a failed write closes the connection, returns the body and is reported once', async () => {
    const errors: unknown[] = [];
    const body = new ReadyChunks([big], 5000, true);
    const server = new HttpServer(
      { call: () => createResponse(200, { body }) },
      { onError: (e) => errors.push(e) },
    );
    const { stream } = targetStream([get('/1'), get('/2')], 0);
    await server.serveConnection(stream);
    expect(stream.closed).toBe(true);
    expect(body.returned).toBe(true);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['EPIPE']);
  });
});
