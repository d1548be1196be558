/**
 * The server's onBodyEnd hook: told once per answered request whose body is streamed, when the
 * server is done with it, with the body's bytes taken and whether it failed, on every way a
 * body ends: HTTP/1.1's one write (the chunk and the end at hand), the DEFERRED tail (a large
 * chunk lent to the write), the waiting path (writeStreamRest: several chunks, chunked), a body
 * that fails midway, a HEAD answer (no body sent); HTTP/2's answer written at once and its
 * waiting path. A FixedBody is not told. Both drivers, real sockets.
 */
import * as http2 from 'node:http2';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AtHandBody } from '../test/at-hand-body.js';
import { recording } from '../test/body-end-recording.js';
import { availableDrivers, type Running, raw, startServer, statuses } from '../test/server-harness.js';
import { fixedBody, streamBody } from './body.js';
import type { HttpConnectionContext } from './context.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from './message.js';
import type { HttpHandler } from './server.js';

const drivers = await availableDrivers();

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(0x61);
const HUGE = bytes(48 * 1024 * 1024);

async function* slowChunks(sizes: number[], failAfter = false): AsyncGenerator<Uint8Array> {
  for (const n of sizes) {
    await new Promise((r) => setTimeout(r, 1));
    yield bytes(n);
  }
  if (failAfter) throw new Error('upstream cut');
}

/** A sized body whose first step throws (before any byte is out: the outer catch). */
class FailsAtOnceBody extends AtHandBody {
  override nextNow(): IteratorResult<Uint8Array> {
    throw new Error('failed at once');
  }
}

/** A sized body whose chunk is at hand and whose end then throws (the chunk goes out, then the cut). */
class FailsAtEndBody extends AtHandBody {
  #taken = false;
  override nextNow(): IteratorResult<Uint8Array> {
    if (this.#taken) throw new Error('failed at its end');
    this.#taken = true;
    return super.nextNow();
  }
}

/** Chunks of 1 KiB every 20 ms, 200 of them: a client can go away midway. */
async function* slowForever(): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    yield bytes(1024);
  }
}

/** The answer for each path. */
function answer(target: string): HttpResponse {
  switch (target) {
    case '/fail-at-once':
      return createResponse(200, { body: new FailsAtOnceBody(bytes(10)) });
    case '/fail-at-end':
      return createResponse(200, { body: new FailsAtEndBody(bytes(10)) });
    case '/up': {
      // A 101 whose answer holds a streamed body: never sent (a 101 has none), told with 0 bytes.
      const res = createResponse(101, {
        headers: [
          ['connection', 'upgrade'],
          ['upgrade', 'x-test'],
        ],
        body: streamBody(slowChunks([5]), { length: 5 }),
      });
      res.tunnel = async (stream) => {
        await stream.close();
      };
      return res;
    }
    case '/slow':
      return createResponse(200, { body: streamBody(slowForever(), { length: 200 * 1024 }) });
    case '/one':
      return createResponse(200, { body: new AtHandBody(bytes(128)) });
    case '/big':
      return createResponse(200, { body: new AtHandBody(bytes(20_000)) });
    case '/huge':
      // One chunk at hand far larger than the sockets' buffers: its write is still in flight
      // (the DEFERRED tail) when a client that reads nothing goes away.
      return createResponse(200, { body: new AtHandBody(HUGE) });
    case '/rest':
      return createResponse(200, { body: streamBody(slowChunks([100, 200, 300]), { length: 600 }) });
    case '/chunked':
      return createResponse(200, { body: streamBody(slowChunks([10, 20])) });
    case '/cut':
      return createResponse(200, { body: streamBody(slowChunks([50], true), { length: 100 }) });
    case '/fixed':
      return createResponse(200, { body: fixedBody('fixed') });
    default:
      return createResponse(200, { body: new AtHandBody(bytes(7)) });
  }
}

/** Told each handled target (a test waits for its request to be answered before acting). */
let onHandled: ((target: string) => void) | undefined;

const handler: HttpHandler<HttpConnectionContext> = {
  call: (req: HttpServerRequest<HttpConnectionContext>) => {
    onHandled?.(req.target);
    return Promise.resolve(answer(req.target));
  },
};

describe.each(drivers)('onBodyEnd on the %s driver', (driver) => {
  let srv: Running | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it('HTTP/1.1: tells every streamed body’s end once, with its bytes, on each write path', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const gets = ['/one', '/big', '/rest', '/chunked', '/fixed']
      .map((t) => `GET ${t} HTTP/1.1\r\nHost: a\r\n\r\n`)
      .join('');
    const text = await raw(srv.port, [gets, 'HEAD /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    expect(statuses(text)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(ended).toEqual([
      { target: '/one', status: 200, bytes: 128, error: null },
      { target: '/big', status: 200, bytes: 20_000, error: null },
      { target: '/rest', status: 200, bytes: 600, error: null },
      { target: '/chunked', status: 200, bytes: 30, error: null },
      // HEAD: the body is let go unsent.
      { target: '/one', status: 200, bytes: 0, error: null },
    ]);
    expect(srv.errors).toEqual([]);
  });

  it('HTTP/1.1: a body that fails midway is told with the bytes taken and its failure', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const text = await raw(srv.port, 'GET /cut HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(statuses(text)).toEqual([200]);
    expect(ended).toEqual([{ target: '/cut', status: 200, bytes: 50, error: 'upstream cut' }]);
  });

  it('HTTP/1.1: a body whose first step throws, or whose end throws after a chunk, is told once with its failure', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const first = await raw(srv.port, 'GET /fail-at-once HTTP/1.1\r\nHost: a\r\n\r\n');
    // Nothing of the answer went out: the server answers the failure instead.
    expect(statuses(first)).toEqual([500]);
    const second = await raw(srv.port, 'GET /fail-at-end HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(statuses(second)).toEqual([200]);
    expect(ended).toEqual([
      { target: '/fail-at-once', status: 200, bytes: 0, error: 'failed at once' },
      { target: '/fail-at-end', status: 200, bytes: 10, error: 'failed at its end' },
    ]);
  });

  it('HTTP/1.1: a 101 that switches protocols is told with 0 bytes (its body is never sent)', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const text = await raw(
      srv.port,
      'GET /up HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x-test\r\n\r\n',
    );
    expect(statuses(text)).toEqual([101]);
    expect(ended).toEqual([{ target: '/up', status: 101, bytes: 0, error: null }]);
  });

  it('HTTP/1.1: a client that goes away while a streamed answer is written is told once, with the bytes taken and an error', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const s = connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    let got = 0;
    await new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        got += d.length;
        // Some of the body came: leave.
        if (got > 4096) {
          s.destroy();
          resolve();
        }
      });
      s.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    });
    for (let i = 0; i < 200 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    // Every path settled (a later second telling would show here).
    await srv.stop();
    srv = undefined;
    expect(ended).toHaveLength(1);
    expect(ended[0]!.target).toBe('/slow');
    expect(ended[0]!.bytes).toBeGreaterThan(3 * 1024);
    expect(ended[0]!.bytes).toBeLessThan(200 * 1024);
    expect(ended[0]!.error).not.toBeNull();
  });

  it('HTTP/1.1: a client that reads nothing and goes away during a large answer fails its write: told once, with the body and the failure', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const s = connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((resolve) => s.on('connect', () => resolve()));
    s.pause();
    const answered = new Promise<void>((resolve) => {
      onHandled = (target) => {
        if (target === '/huge') resolve();
      };
    });
    s.write('GET /huge HTTP/1.1\r\nHost: a\r\n\r\nGET /one HTTP/1.1\r\nHost: a\r\n\r\n');
    await answered;
    onHandled = undefined;
    // Let the large write start and fill the socket buffers, then reset the connection (unread
    // bytes: the close sends RST).
    await new Promise((r) => setTimeout(r, 100));
    s.resetAndDestroy();
    for (let i = 0; i < 300 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await srv.stop();
    srv = undefined;
    const huge = ended.filter((e) => e.target === '/huge');
    expect(huge).toHaveLength(1);
    expect(huge[0]!.bytes).toBe(HUGE.length);
    expect(huge[0]!.error).not.toBeNull();
    // The pipelined request behind it is not handled while the large write is in flight (the
    // request loop resumes after the tail), so nothing else is told.
    expect(ended).toHaveLength(1);
  });

  it('HTTP/2: a stream the client resets mid-body is told once, with an error', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    client.on('error', () => {});
    try {
      await new Promise<void>((resolve) => {
        const req = client.request({ ':path': '/slow' });
        req.on('error', () => {});
        req.on('data', () => {
          req.close(http2.constants.NGHTTP2_CANCEL);
          resolve();
        });
        req.end();
      });
      for (let i = 0; i < 200 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      client.close();
    }
    await srv.stop();
    srv = undefined;
    expect(ended).toHaveLength(1);
    expect(ended[0]!.target).toBe('/slow');
    expect(ended[0]!.bytes).toBeLessThan(200 * 1024);
    expect(ended[0]!.error).not.toBeNull();
  });

  it('HTTP/2: tells the end of an answer written at once and of one that waited', async () => {
    const { ended, options } = recording();
    srv = await startServer(driver, options, handler);
    const client = http2.connect(`http://127.0.0.1:${srv.port}`);
    client.on('error', () => {});
    const get = (path: string, method = 'GET'): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = client.request({ ':path': path, ':method': method });
        let n = 0;
        req.on('data', (d: Buffer) => {
          n += d.length;
        });
        req.on('end', () => resolve(n));
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await get('/one')).toBe(128);
      expect(await get('/rest')).toBe(600);
      expect(await get('/fixed')).toBe(5);
      expect(await get('/one', 'HEAD')).toBe(0);
    } finally {
      client.close();
    }
    expect(ended).toEqual([
      { target: '/one', status: 200, bytes: 128, error: null },
      { target: '/rest', status: 200, bytes: 600, error: null },
      { target: '/one', status: 200, bytes: 0, error: null },
    ]);
  });
});
