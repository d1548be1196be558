/**
 * Connection reuse on the downstream boundary, proved on the wire: a kept-alive client
 * connection carries a next request only when the previous one was read exactly to its end.
 * Raw bytes over real loopback sockets, on every runtime driver; assertions are on what a client
 * reads (responses, `connection: close`, the end of the connection), never on server internals,
 * so they hold for any HTTP core behind HttpServer.
 *
 * Every request body below holds bytes that look like a whole second request
 * (`GET /smuggled ...`); every handler answers with the target it saw, so a response that names
 * /smuggled means body bytes were parsed as a request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, type HttpBody, type ReadyBodyIterator, readBody, streamBody } from '../src/body.js';
import type { HttpConnectionContext } from '../src/context.js';
import { createResponse, type HttpRequest, type HttpResponse } from '../src/message.js';
import type { HttpHandler } from '../src/server.js';
import {
  availableDrivers,
  type InProcess,
  parseResponses,
  RawClient,
  raw,
  startServer,
  statuses,
} from './server-harness.js';

const drivers = await availableDrivers();

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
/** The drain budget of the server under test. */
const DRAIN = 1024;
const SMALL = 200;
const LARGE = 4 * DRAIN;

/** A body of exactly `n` bytes that starts with a complete request. */
function smuggling(n: number): string {
  return SMUGGLED + 'p'.repeat(n - SMUGGLED.length);
}

/** `body` as chunks of at most `size` bytes, with the last chunk. */
function chunked(body: string, size = 100): string {
  let out = '';
  for (let i = 0; i < body.length; i += size) {
    const part = body.slice(i, i + size);
    out += `${part.length.toString(16)}\r\n${part}\r\n`;
  }
  return `${out}0\r\n\r\n`;
}

const post = (path: string, length: number, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: ${length}\r\n${extra}\r\n`;
const postChunked = (path: string, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n${extra}\r\n`;
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
/** The genuine request that follows; it closes, so a raw exchange ends after its answer. */
const NEXT = get('/next', 'Connection: close\r\n');

/** A body whose iterator fails at once, synchronously (its step is "at hand"). */
function failingAtHand(chunked: boolean): HttpBody {
  const it: ReadyBodyIterator = {
    next: () => Promise.reject(new Error('source broke')),
    nextNow: () => {
      throw new Error('source broke');
    },
    return: async () => ({ done: true, value: undefined }),
  };
  return {
    kind: chunked ? 'stream' : 'fixed',
    length: chunked ? -1 : 10,
    trailers: null,
    [Symbol.asyncIterator]: () => it,
  };
}

/** Chunks `parts`, waiting a moment before each, then fails. */
async function* thenFail(parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) {
    await new Promise((r) => setTimeout(r, 5));
    yield Buffer.from(p);
  }
  await new Promise((r) => setTimeout(r, 5));
  throw new Error('source broke mid-body');
}

/** What the handlers saw, for the few assertions on the handler API (typed body errors). */
const seen: { target: string; bodyError: unknown }[] = [];

const handler: HttpHandler<HttpConnectionContext> = {
  async call(req: HttpRequest): Promise<HttpResponse> {
    const target = req.target;
    const answer = (status: number, extra = '') =>
      createResponse(status, { body: fixedBody(`target=${target}${extra}`) });
    if (target.startsWith('/read')) {
      // Reads the whole body.
      try {
        const b = await readBody(req.body);
        return createResponse(200, { body: fixedBody(`target=${target} read=${b.length}`) });
      } catch (e) {
        seen.push({ target, bodyError: e });
        throw e;
      }
    }
    if (target === '/limit') return answer(200, ` ${(await readBody(req.body, 10)).length}`);
    if (target === '/throw') throw new Error('handler bug');
    if (target === '/fail-at-hand') return createResponse(200, { body: failingAtHand(true) });
    if (target === '/fail-at-hand-sized') return createResponse(200, { body: failingAtHand(false) });
    if (target === '/fail-first') return createResponse(200, { body: streamBody(thenFail([])) });
    if (target === '/fail-chunked')
      return createResponse(200, { body: streamBody(thenFail(['aaaa', 'bbbb'])) });
    if (target === '/fail-sized')
      return createResponse(200, { body: streamBody(thenFail(['aaaa', 'bbbb']), { length: 100 }) });
    if (target === '/fail-coalesced') {
      // The first chunk is at hand with the head, the failure right behind it.
      let step = 0;
      const it: ReadyBodyIterator = {
        next: () => Promise.reject(new Error('source broke')),
        nextNow: () => {
          if (step++ === 0) return { done: false, value: Buffer.from('hello') };
          throw new Error('source broke');
        },
        return: async () => ({ done: true, value: undefined }),
      };
      return createResponse(200, {
        body: { kind: 'stream', length: -1, trailers: null, [Symbol.asyncIterator]: () => it },
      });
    }
    if (target === '/concurrent-reader') {
      // Reads the body in the background while the answer goes out (a read is in flight when
      // the response ends): records how many bytes it got and how it ended.
      const it = req.body[Symbol.asyncIterator]();
      void (async () => {
        let n = 0;
        try {
          for (;;) {
            const r = await it.next();
            if (r.done) break;
            n += r.value.byteLength;
          }
          seen.push({ target, bodyError: `done ${n}` });
        } catch (e) {
          seen.push({ target, bodyError: e });
        }
      })();
      return answer(200);
    }
    if (target === '/late-reader') {
      // Answers at once and reads the body only after the response went out.
      const body = req.body;
      setTimeout(() => {
        readBody(body).then(
          (b) => seen.push({ target, bodyError: `read ${b.length}` }),
          (e) => seen.push({ target, bodyError: e }),
        );
      }, 50);
      return answer(200);
    }
    // Anything else: answered without reading the body (a 404 from a router, a cache hit...).
    return answer(404);
  },
};

/** The targets of the complete responses in `text`, and what is left after them. */
function targets(text: string): { targets: string[]; rest: string; heads: string[] } {
  const { responses, rest } = parseResponses(text);
  return {
    targets: responses
      .filter((r) => r.status !== 100)
      .map((r) => /target=(\S*)/.exec(r.body)?.[1] ?? `?${r.status}`),
    heads: responses.map((r) => r.head),
    rest,
  };
}

describe.each(drivers)('downstream connection reuse on the %s driver (wire)', (driver) => {
  let srv: InProcess;
  beforeAll(async () => {
    srv = await startServer(
      driver,
      { maxDrainBytes: DRAIN, timeouts: { idle: 2000, head: 1000, body: 1000, write: 2000 } },
      handler,
    );
  });
  afterAll(async () => {
    await srv.stop();
  });

  describe('an answer sent before the request body was read', () => {
    it('drains a Content-Length body within the budget and serves the genuine next request', async () => {
      const text = await raw(srv.port, post('/ignore', SMALL) + smuggling(SMALL) + NEXT);
      const t = targets(text);
      expect(t.targets).toEqual(['/ignore', '/next']);
      expect(t.heads[0]).not.toMatch(/connection: close/i);
      expect(text).not.toMatch(/\/smuggled/);
    });

    it('closes on a Content-Length body above the budget, saying so in the answer', async () => {
      const text = await raw(srv.port, post('/ignore', LARGE) + smuggling(LARGE) + NEXT);
      const t = targets(text);
      expect(t.targets).toEqual(['/ignore']);
      expect(t.heads[0]).toMatch(/connection: close/i);
      expect(t.rest).toBe('');
      expect(text).not.toMatch(/\/smuggled|\/next/);
    });

    it('drains a chunked body within the budget and serves the genuine next request', async () => {
      const text = await raw(srv.port, postChunked('/ignore') + chunked(smuggling(SMALL), 16) + NEXT);
      expect(targets(text).targets).toEqual(['/ignore', '/next']);
      expect(text).not.toMatch(/\/smuggled/);
    });

    it('closes on a chunked body above the budget, never parsing the rest', async () => {
      const text = await raw(srv.port, postChunked('/ignore') + chunked(smuggling(LARGE), 64) + NEXT);
      const t = targets(text);
      expect(t.targets).toEqual(['/ignore']);
      expect(t.rest).toBe('');
      expect(text).not.toMatch(/\/smuggled|\/next/);
    });

    it('closes on a chunked body whose chunks are themselves requests', async () => {
      const body = `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n`.repeat(
        Math.ceil(LARGE / SMUGGLED.length),
      );
      const text = await raw(srv.port, `${postChunked('/ignore')}${body}0\r\n\r\n${NEXT}`);
      expect(targets(text).targets).toEqual(['/ignore']);
      expect(text).not.toMatch(/\/smuggled|\/next/);
    });

    it('closes when the body being drained breaks its chunked framing, parsing nothing after it', async () => {
      const text = await raw(srv.port, `${postChunked('/ignore')}5\r\nabcde\r\nzz\r\n${SMUGGLED}${NEXT}`);
      const t = targets(text);
      expect(t.targets).toEqual(['/ignore']);
      expect(t.rest).toBe('');
      expect(text).not.toMatch(/\/smuggled|\/next/);
    });

    it.each([
      ['within', SMALL],
      ['above', LARGE],
    ])('a body %s the budget that arrives only after the answer is never parsed', async (_name, n) => {
      const c = new RawClient(srv.port);
      try {
        c.write(post('/ignore', n));
        await c.until((t) => targets(t).targets.length === 1);
        const head = targets(c.text).heads[0]!;
        if (n > DRAIN) expect(head).toMatch(/connection: close/i);
        else expect(head).not.toMatch(/connection: close/i);
        c.write(smuggling(n) + NEXT);
        const text = await c.untilClosed();
        expect(targets(text).targets).toEqual(n > DRAIN ? ['/ignore'] : ['/ignore', '/next']);
        expect(text).not.toMatch(/\/smuggled/);
      } finally {
        c.destroy();
      }
    });

    it('a body half sent before the answer and half after is drained, not parsed', async () => {
      const c = new RawClient(srv.port);
      try {
        const body = smuggling(SMALL);
        c.write(post('/ignore', SMALL) + body.slice(0, 10));
        await c.until((t) => targets(t).targets.length === 1);
        c.write(body.slice(10, 50));
        await new Promise((r) => setTimeout(r, 20));
        c.write(body.slice(50) + NEXT);
        const text = await c.untilClosed();
        expect(targets(text).targets).toEqual(['/ignore', '/next']);
      } finally {
        c.destroy();
      }
    });

    it('a handler still reading the body when its response ended: the server waits for that read, then drains', async () => {
      seen.length = 0;
      const c = new RawClient(srv.port);
      try {
        const body = smuggling(SMALL);
        c.write(post('/concurrent-reader', SMALL) + body.slice(0, 10));
        await c.until((t) => targets(t).targets.length === 1);
        c.write(body.slice(10) + NEXT);
        const text = await c.untilClosed();
        expect(targets(text).targets).toEqual(['/concurrent-reader', '/next']);
        expect(text).not.toMatch(/\/smuggled/);
        for (let i = 0; i < 40 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        // It read until the server took the body over (its in-flight read completed), then failed.
        expect(seen.map((s) => (s.bodyError as { code?: string }).code)).toEqual(['ERR_HTTP_BODY_TAKEN']);
      } finally {
        c.destroy();
      }
    });

    it('a handler that reads the body after its response was sent gets an error, not the next request', async () => {
      seen.length = 0;
      const c = new RawClient(srv.port);
      try {
        c.write(post('/late-reader', SMALL) + smuggling(SMALL));
        await c.until((t) => targets(t).targets.length === 1);
        // The next request's body is in progress when the late read starts.
        c.write(`${post('/read', 6, 'Connection: close\r\n')}SEC`);
        await new Promise((r) => setTimeout(r, 150));
        c.write('RET');
        const text = await c.untilClosed();
        expect(targets(text).targets).toEqual(['/late-reader', '/read']);
        expect(text).toMatch(/read=6/);
        for (let i = 0; i < 40 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        expect(seen).toHaveLength(1);
        // The late reader never sees bytes of the next request.
        expect(seen[0]!.bodyError).toBeInstanceOf(Error);
        expect((seen[0]!.bodyError as { code?: string }).code).toBe('ERR_HTTP_BODY_TAKEN');
      } finally {
        c.destroy();
      }
    });
  });

  describe('pipelined requests', () => {
    it('answers several requests with bodies written at once, in order', async () => {
      const text = await raw(
        srv.port,
        post('/read1', 3) +
          'abc' +
          postChunked('/read2') +
          chunked(SMUGGLED, 7) +
          post('/read3', SMUGGLED.length) +
          SMUGGLED +
          NEXT,
      );
      expect(targets(text).targets).toEqual(['/read1', '/read2', '/read3', '/next']);
      expect(text).toMatch(/read=3[\s\S]*read=35[\s\S]*read=35/);
    });

    it('answers a request pipelined behind a body the handler did not read', async () => {
      const text = await raw(
        srv.port,
        post('/ignore', SMALL) +
          smuggling(SMALL) +
          post('/read', 3) +
          'abc' +
          postChunked('/ignore') +
          chunked(SMUGGLED) +
          NEXT,
      );
      expect(targets(text).targets).toEqual(['/ignore', '/read', '/ignore', '/next']);
    });

    it('answers the requests before a malformed one in order, then 400 and close', async () => {
      const text = await raw(
        srv.port,
        `${get('/a')}${post('/ignore', SMALL)}${smuggling(SMALL)}${get('/b')}GET /c HTTP/1.1\r\nHost : t\r\n\r\n${get('/d')}`,
      );
      const { responses, rest } = parseResponses(text);
      expect(responses.map((r) => r.status)).toEqual([404, 404, 404, 400]);
      expect(targets(text).targets.slice(0, 3)).toEqual(['/a', '/ignore', '/b']);
      expect(responses[3]!.head).toMatch(/connection: close/i);
      expect(rest).toBe('');
      expect(text).not.toMatch(/\/d\b|\/smuggled/);
    });
  });

  describe('errors the server answers itself close the connection', () => {
    it.each([
      ['bad Content-Length', 400, 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n'],
      [
        'CL with TE',
        400,
        `POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n`,
      ],
      ['bad chunk size', 400, `${postChunked('/read')}zz\r\n`],
      ['huge head', 431, `GET / HTTP/1.1\r\nHost: t\r\nX: ${'a'.repeat(20000)}\r\n\r\n`],
      ['unsupported coding', 501, 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'],
      ['HTTP/2.0', 505, 'GET / HTTP/2.0\r\nHost: t\r\n\r\n'],
      ['body over the handler limit (413)', 413, `${post('/limit', SMUGGLED.length)}${SMUGGLED}`],
      ['chunked body over the handler limit (413)', 413, `${postChunked('/limit')}${chunked(SMUGGLED, 5)}`],
    ])('%s: answers %i with connection: close and parses nothing after it', async (_name, status, input) => {
      const text = await raw(srv.port, input + SMUGGLED + NEXT);
      const { responses, rest } = parseResponses(text);
      expect(responses.map((r) => r.status)).toEqual([status]);
      expect(responses[0]!.head).toMatch(/connection: close/i);
      expect(rest).toBe('');
      expect(text).not.toMatch(/\/smuggled|\/next/);
    });

    it('a handler error with the body unread answers 500 and never parses the body', async () => {
      for (const n of [SMALL, LARGE]) {
        const text = await raw(srv.port, post('/throw', n) + smuggling(n) + NEXT);
        const { responses } = parseResponses(text);
        expect(responses[0]!.status).toBe(500);
        expect(text).not.toMatch(/\/smuggled/);
        // Drained (the next request is served) or closed (said in the answer).
        if (responses.length === 1) expect(responses[0]!.head).toMatch(/connection: close/i);
        else expect(targets(text).targets.slice(1)).toEqual(['/next']);
      }
    });
  });

  describe('an aborted request body', () => {
    it('fails the handler read with a typed error when the client half-closes mid-body', async () => {
      seen.length = 0;
      const c = new RawClient(srv.port);
      try {
        c.write(post('/read-aborted', 100) + 'x'.repeat(50));
        await new Promise((r) => setTimeout(r, 20));
        c.end();
        const text = await c.untilClosed();
        expect(seen.map((s) => (s.bodyError as { code?: string }).code)).toEqual([
          'ERR_HTTP_INCOMPLETE_MESSAGE',
        ]);
        // At most the answer to the broken request, closing.
        const { responses, rest } = parseResponses(text);
        expect(responses.length).toBeLessThanOrEqual(1);
        if (responses.length === 1) expect(responses[0]!.head).toMatch(/connection: close/i);
        expect(rest).toBe('');
      } finally {
        c.destroy();
      }
    });

    it('survives a client that closes mid-body and keeps serving others', async () => {
      seen.length = 0;
      const c = new RawClient(srv.port);
      await c.opened;
      c.write(post('/read-gone', 100) + 'x'.repeat(50));
      await new Promise((r) => setTimeout(r, 20));
      c.destroy();
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(seen.map((s) => (s.bodyError as { code?: string }).code)).toEqual([
        expect.stringMatching(/^ERR_|^E/),
      ]);
      expect(targets(await raw(srv.port, NEXT)).targets).toEqual(['/next']);
    });
  });

  describe('a response body that fails', () => {
    it.each([
      ['/fail-at-hand', 'chunked'],
      ['/fail-at-hand-sized', 'sized'],
    ])('before anything was sent (%s): answers 5xx with connection: close', async (path) => {
      const text = await raw(srv.port, get(path) + NEXT);
      const { responses, rest } = parseResponses(text);
      expect(responses.map((r) => r.status)).toEqual([500]);
      expect(responses[0]!.head).toMatch(/connection: close/i);
      expect(rest).toBe('');
    });

    it('after the head only (chunked): the head, then a cut, never the last chunk', async () => {
      const text = await raw(srv.port, get('/fail-first') + NEXT);
      const { responses, rest } = parseResponses(text);
      expect(responses).toEqual([]);
      expect(rest).toMatch(
        /^HTTP\/1\.1 200 OK\r\n[\s\S]*transfer-encoding: chunked\r\n(?:[^\r\n]+\r\n)*\r\n$/,
      );
      expect(text).not.toMatch(/\/next/);
    });

    it('after some chunks (chunked): relays them, then cuts without the last chunk', async () => {
      const text = await raw(srv.port, get('/fail-chunked') + NEXT);
      const { responses, rest } = parseResponses(text);
      expect(responses).toEqual([]);
      expect(rest).toMatch(/\r\n\r\n4\r\naaaa\r\n4\r\nbbbb\r\n$/);
      expect(text).not.toMatch(/0\r\n\r\n/);
    });

    it('with the first chunk at hand and the failure behind it: relays the chunk, then cuts', async () => {
      const text = await raw(srv.port, get('/fail-coalesced') + NEXT);
      const { responses, rest } = parseResponses(text);
      expect(responses).toEqual([]);
      expect(rest).toMatch(/^HTTP\/1\.1 200 OK\r\n(?:[^\r\n]+\r\n)*\r\n5\r\nhello\r\n$/);
    });

    it('after some bytes (Content-Length): relays them, then closes short', async () => {
      const text = await raw(srv.port, get('/fail-sized') + NEXT);
      const { responses, rest } = parseResponses(text);
      expect(responses).toEqual([]);
      expect(rest).toMatch(/content-length: 100\r\n(?:[^\r\n]+\r\n)*\r\naaaabbbb$/);
    });
  });

  describe('Expect: 100-continue answered without reading', () => {
    it('sends no 100 and closes: the body the client may still send is never parsed', async () => {
      const c = new RawClient(srv.port);
      try {
        c.write(post('/ignore', SMALL, 'Expect: 100-continue\r\n'));
        await c.until((t) => targets(t).targets.length === 1);
        expect(c.text).not.toMatch(/100 Continue/);
        expect(targets(c.text).heads[0]).toMatch(/connection: close/i);
        c.write(smuggling(SMALL) + NEXT);
        const text = await c.untilClosed();
        expect(targets(text).targets).toEqual(['/ignore']);
      } finally {
        c.destroy();
      }
    });

    it('a client that sends the body without waiting is not served past it', async () => {
      const text = await raw(
        srv.port,
        post('/ignore', SMALL, 'Expect: 100-continue\r\n') + smuggling(SMALL) + NEXT,
      );
      expect(statuses(text)).not.toContain(100);
      const t = targets(text);
      expect(t.targets[0]).toBe('/ignore');
      expect(text).not.toMatch(/\/smuggled/);
      if (t.targets.length === 1) expect(t.heads[0]).toMatch(/connection: close/i);
    });

    it('sends 100 when the handler reads, and stays usable', async () => {
      const c = new RawClient(srv.port);
      try {
        c.write(post('/read', 5, 'Expect: 100-continue\r\n'));
        await c.until((t) => /100 Continue\r\n\r\n/.test(t));
        c.write(`hello${NEXT}`);
        const text = await c.untilClosed();
        expect(targets(text).targets).toEqual(['/read', '/next']);
      } finally {
        c.destroy();
      }
    });
  });
});
