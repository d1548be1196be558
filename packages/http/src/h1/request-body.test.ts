import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { scriptedStream } from '../../test/scripted-stream.js';
import { consumeBody, fixedBody, readBody, readText } from '../body.js';
import { HttpBodyError } from '../errors.js';
import { createResponse, type HttpServerRequest } from '../message.js';
import { HttpServer } from '../server.js';

/** What a handler saw of one request body read. */
interface Seen {
  /** The read's result came without a promise. */
  atOnce: boolean;
  text: string;
}

/** Serves `chunks` with a handler reading each body with consumeBody; what each read saw. */
async function serveConsuming(chunks: string[]): Promise<{ seen: Seen[]; wire: string }> {
  const seen: Seen[] = [];
  const server = new HttpServer({
    async call(req: HttpServerRequest<unknown>) {
      const r = consumeBody(req.body, (b) => Buffer.from(b).toString('latin1'));
      const atOnce = !(r instanceof Promise);
      const text = await r;
      seen.push({ atOnce, text });
      return createResponse(200, { body: fixedBody(text) });
    },
  });
  const { stream, writes } = scriptedStream(chunks);
  await server.serveConnection(stream);
  return { seen, wire: writes.flat().join('') };
}

const post = (body: string, extra = '') =>
  `POST /j HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

describe('HTTP/1.1 request bodies already received', () => {
  it('a body that came with its head is read without a promise', async () => {
    const { seen, wire } = await serveConsuming([post('{"a":1}')]);
    expect(seen).toEqual([{ atOnce: true, text: '{"a":1}' }]);
    expect(wire).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n\{"a":1\}$/);
  });

  it('so is a chunked body whose last chunk came too, in several pieces', async () => {
    const chunked =
      'POST /j HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n';
    const { seen } = await serveConsuming([chunked]);
    expect(seen).toEqual([{ atOnce: true, text: '{"a":1}' }]);
  });

  it('a body still on its way is waited for, and pipelined requests keep their own bodies', async () => {
    const head = post('0123456789');
    const { seen } = await serveConsuming([head.slice(0, -4), `${head.slice(-4)}${post('ab')}`]);
    expect(seen).toEqual([
      { atOnce: false, text: '0123456789' },
      { atOnce: true, text: 'ab' },
    ]);
  });

  it('a body behind Expect: 100-continue waits for the 100 Continue to be written first', async () => {
    const { seen, wire } = await serveConsuming([post('xyz', 'Expect: 100-continue\r\n')]);
    expect(seen).toEqual([{ atOnce: false, text: 'xyz' }]);
    expect(wire.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).toBe(true);
  });

  it('readBody and readText of a body at hand make one promise each (their own)', async () => {
    const counts: number[] = [];
    const texts: string[] = [];
    const server = new HttpServer({
      async call(req: HttpServerRequest<unknown>) {
        let promises = 0;
        const hook = createHook({
          init(_id, type) {
            if (type === 'PROMISE') promises++;
          },
        });
        hook.enable();
        const read = req.target === '/bytes' ? readBody(req.body) : readText(req.body);
        hook.disable();
        counts.push(promises);
        const got = await read;
        texts.push(typeof got === 'string' ? got : Buffer.from(got).toString('latin1'));
        return createResponse(204);
      },
    });
    const { stream } = scriptedStream([
      `${post('{"b":2}').replace('/j', '/bytes')}${post('{"c":3}').replace('/j', '/text')}`,
    ]);
    await server.serveConnection(stream);
    expect(texts).toEqual(['{"b":2}', '{"c":3}']);
    expect(counts).toEqual([1, 1]);
  });

  it('a body over the limit fails the read at once, before reading it', async () => {
    let failure: unknown;
    const server = new HttpServer({
      call(req: HttpServerRequest<unknown>) {
        try {
          consumeBody(req.body, () => 'unreachable', 4);
        } catch (e) {
          failure = e;
        }
        return createResponse(204);
      },
    });
    const { stream } = scriptedStream([post('too long')]);
    await server.serveConnection(stream);
    expect(failure).toBeInstanceOf(HttpBodyError);
    expect((failure as HttpBodyError).code).toBe('ERR_HTTP_BODY_TOO_LARGE');
  });

  it('nextNow hands out the buffered steps and leaves the rest to next()', async () => {
    const steps: string[] = [];
    const server = new HttpServer({
      async call(req: HttpServerRequest<unknown>) {
        const it = req.body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array> & {
          nextNow(): IteratorResult<Uint8Array> | null;
        };
        for (;;) {
          let r = it.nextNow();
          steps.push(r === null ? 'wait' : r.done ? 'end' : Buffer.from(r.value).toString('latin1'));
          if (r === null) r = await it.next();
          else if (r.done) break;
          else continue;
          steps.push(r.done ? 'end' : Buffer.from(r.value).toString('latin1'));
          if (r.done) break;
        }
        return createResponse(204);
      },
    });
    const request = 'POST /j HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n';
    const { stream } = scriptedStream([request, '2\r\ncd\r\n0\r\n\r\n']);
    await server.serveConnection(stream);
    expect(steps).toEqual(['ab', 'wait', 'cd', 'end']);
  });
});
