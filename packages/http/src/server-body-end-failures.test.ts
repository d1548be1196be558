/**
 * onBodyEnd when a write fails before a streamed body could go out: told once, with 0 bytes and
 * the write's failure, and the body let go (its source may hold an upstream connection). The
 * three HTTP/1.1 paths need a write that fails at a chosen moment, so they run on a connection
 * whose writes the test settles by hand (one request's answer held back behind the write of the
 * one before, or behind the pipelined answers flushed ahead of it); HTTP/2's is an answer whose
 * body fails as the response is started, on a real socket, both drivers.
 */
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { recording } from '../test/body-end-recording.js';
import { promiseStream } from '../test/promise-stream.js';
import { availableDrivers, type Running, startServer } from '../test/server-harness.js';
import { fixedBody, type HttpBody, type ReadyBodyIterator, streamBody } from './body.js';
import type { HttpConnectionContext } from './context.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from './message.js';
import { HttpServer } from './server.js';
import type { StreamChunk } from './transport.js';

/** A write the server made, held until the test settles it. */
interface HeldWrite {
  readonly text: string;
  settle(error?: Error): void;
}

/**
 * A connection whose peer the test plays: `deliver` hands the server its next received bytes
 * (a receive waits until then), every write is held in `writes` until settled, close() ends a
 * waiting receive.
 */
function heldConnection() {
  const writes: HeldWrite[] = [];
  const inbox: string[] = [];
  let waiting: ((c: StreamChunk | null) => void) | null = null;
  let closed = false;
  const chunk = (text: string): StreamChunk => ({ bytes: Buffer.from(text, 'latin1'), release() {} });
  const hold = (text: string, done: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      writes.push({ text, settle: (e) => (e === undefined ? resolve(done) : reject(e)) });
    });
  const stream = promiseStream({
    remoteAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    localAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    driver: 'legacy',
    get closed() {
      return closed;
    },
    recv: () =>
      new Promise<StreamChunk | null>((resolve) => {
        const next = inbox.shift();
        if (next !== undefined) resolve(chunk(next));
        else if (closed) resolve(null);
        else waiting = resolve;
      }),
    writeAll: (b) => hold(Buffer.from(b).toString('latin1'), b),
    writev: (bufs) => hold(bufs.map((b) => Buffer.from(b).toString('latin1')).join(''), undefined),
    async shutdown() {},
    async close() {
      closed = true;
      const w = waiting;
      waiting = null;
      w?.(null);
    },
    setNoDelay() {},
  });
  return {
    stream,
    writes,
    deliver(text: string) {
      const w = waiting;
      waiting = null;
      if (w !== null) w(chunk(text));
      else inbox.push(text);
    },
  };
}

const epipe = (): Error => Object.assign(new Error('EPIPE'), { code: 'EPIPE' });

/** Waits (a macrotask at a time) until `cond` holds; fails after ~2 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A streamed body that records whether it was let go. */
function trackedBody(): { body: HttpBody; returned: () => boolean } {
  let returned = false;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      yield Buffer.from('streamed');
    } finally {
      returned = true;
    }
  }
  const body = streamBody(chunks(), { length: 8 });
  // An iterator never started has nothing to run its finally: count its return() too.
  const it = body[Symbol.asyncIterator]();
  const ret = it.return?.bind(it);
  it.return = async (v?: unknown) => {
    returned = true;
    return ret !== undefined ? ret(v) : { done: true, value: undefined };
  };
  return { body: { ...body, [Symbol.asyncIterator]: () => it } as HttpBody, returned: () => returned };
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;

/**
 * A server answering /1 with a fixed body and any other target with a tracked streamed body, on
 * a held connection that has received `input`; `handled` turns true when the second is handled.
 */
function serving(input: string) {
  const { ended, options } = recording();
  const held = trackedBody();
  const state = { handled: false };
  const server = new HttpServer<HttpConnectionContext>(
    {
      call: async (req: HttpServerRequest<HttpConnectionContext>): Promise<HttpResponse> => {
        if (req.target === '/1') return createResponse(200, { body: fixedBody('one') });
        state.handled = true;
        return createResponse(200, { body: held.body });
      },
    },
    { ...options, onError: () => {} },
  );
  const conn = heldConnection();
  conn.deliver(input);
  return { ended, held, state, conn, served: server.serveConnection(conn.stream) };
}

const toldFailed = [{ target: '/2', status: 200, bytes: 0, error: 'EPIPE' }];

describe('onBodyEnd: HTTP/1.1 writes that fail before a streamed body goes out', () => {
  it('an answer held behind the write in flight: that write fails, the held body is told with 0 bytes and let go', async () => {
    const { ended, held, state, conn, served } = serving(get('/1'));
    // /1's answer is being written (held); the server reads on and answers /2 meanwhile.
    await until(() => conn.writes.length === 1, "/1's write");
    conn.deliver(get('/2'));
    await until(() => state.handled, '/2 handled');
    await new Promise((r) => setTimeout(r, 10));
    expect(conn.writes).toHaveLength(1);
    conn.writes[0]!.settle(epipe());
    await served;
    expect(ended).toEqual(toldFailed);
    expect(held.returned()).toBe(true);
  });

  it('a streamed answer behind pipelined answers: their flush fails, the body is told with 0 bytes and let go', async () => {
    // Both requests in one read: /1's answer waits to go out with the next one's.
    const { ended, held, conn, served } = serving(get('/1') + get('/2'));
    await until(() => conn.writes.length === 1, 'the pipelined flush');
    expect(conn.writes[0]!.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\none$/);
    conn.writes[0]!.settle(epipe());
    await served;
    expect(ended).toEqual(toldFailed);
    expect(held.returned()).toBe(true);
  });

  it.each([
    ['fails: told once with the failure', epipe(), toldFailed],
    [
      'succeeds: told once without an error',
      undefined,
      [{ target: '/2', status: 200, bytes: 0, error: null }],
    ],
  ])(
    'a HEAD answer (its body never sent) behind pipelined answers whose flush %s',
    async (_, failure, told) => {
      const { ended, held, conn, served } = serving(
        `${get('/1')}HEAD /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
      );
      await until(() => conn.writes.length === 1, 'the pipelined flush');
      // Both heads in the one write, /1's body between them, no body after the HEAD answer's.
      expect(conn.writes[0]!.text).toMatch(/\r\n\r\noneHTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n$/);
      conn.writes[0]!.settle(failure);
      await served;
      expect(ended).toEqual(told);
      expect(held.returned()).toBe(true);
    },
  );
});

/** A body whose first step throws: HTTP/2's respond() fails as it starts the answer. */
class FailsAtOnceBody implements HttpBody, ReadyBodyIterator {
  readonly kind = 'fixed' as const;
  readonly trailers = null;
  readonly length = 10;
  [Symbol.asyncIterator](): ReadyBodyIterator {
    return this;
  }
  nextNow(): IteratorResult<Uint8Array> {
    throw new Error('failed at once');
  }
  async next(): Promise<IteratorResult<Uint8Array>> {
    return this.nextNow();
  }
  async return(): Promise<IteratorResult<Uint8Array>> {
    return { done: true, value: undefined };
  }
}

const drivers = await availableDrivers();

describe.each(drivers)('onBodyEnd: HTTP/2 on the %s driver', (driver) => {
  let srv: Running | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it('an answer whose body fails as the response starts is told once, with 0 bytes and the failure', async () => {
    const { ended, options } = recording();
    srv = await startServer(
      driver,
      { ...options, onError: () => {} },
      {
        call: async () => createResponse(200, { body: new FailsAtOnceBody() }),
      },
    );
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    client.on('error', () => {});
    try {
      // The client sees the stream fail (reset) or an error status; either way it ends.
      await new Promise<void>((resolve) => {
        const req = client.request({ ':path': '/x' });
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        req.resume();
        req.end();
      });
    } finally {
      client.close();
    }
    await srv.stop();
    srv = undefined;
    expect(ended).toEqual([{ target: '/x', status: 200, bytes: 0, error: 'failed at once' }]);
  });
});
