/**
 * The HTTP/2 server session against hand-made frame sequences over real sockets (RawH2Client):
 * SETTINGS and PING, stream states and ids, flow control both ways, malformed requests,
 * resets, graceful GOAWAY, the protocol choice (preface sniff, split preface, Upgrade: h2c
 * ignored), and each attack HTTP/2 servers have had to fix: rapid reset, CONTINUATION flood,
 * HPACK bomb, SETTINGS/PING/empty-frame/WINDOW_UPDATE floods, too many streams, stream id reuse,
 * zero-window readers. Run on every driver this process can load.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fixedBody, readBody, streamBody } from '../../src/body.js';
import type { HttpConnectionContext } from '../../src/context.js';
import { Http2ErrorCode } from '../../src/h2/errors.js';
import {
  CONNECTION_PREFACE,
  encodeContinuation,
  encodeData,
  encodeFrame,
  encodeHeaders,
  encodePing,
  encodePriority,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  FrameType,
} from '../../src/h2/frames.js';
import { Http2StreamResetError } from '../../src/h2/stream-reset-error.js';
import { HttpHeaders } from '../../src/headers.js';
import { createResponse, type HttpServerRequest } from '../../src/message.js';
import type { HttpHandler, HttpServerOptions } from '../../src/server.js';
import { availableDrivers, type InProcess, RawClient, startServer } from '../server-harness.js';
import { RawH2Client } from './raw-h2-client.js';

const drivers = await availableDrivers();

/** What the test handler saw, for assertions on the server side. */
interface Seen {
  requests: HttpServerRequest<HttpConnectionContext>[];
  bodyErrors: unknown[];
  /** Chunks pulled from /forever's body. */
  pulls: number;
  /** /hang requests wait for this. */
  release: () => void;
  gate: Promise<void>;
}

function makeSeen(): Seen {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  return { requests: [], bodyErrors: [], pulls: 0, release, gate };
}

function handlerFor(seen: Seen): HttpHandler<HttpConnectionContext> {
  return {
    async call(req) {
      seen.requests.push(req);
      switch (req.target) {
        case '/hello':
          return createResponse(200, { headers: { 'x-a': '1' }, body: fixedBody('hello') });
        case '/hang':
          await seen.gate;
          return createResponse(200, { body: fixedBody('late') });
        case '/read':
          try {
            const body = await readBody(req.body);
            const t = req.body.trailers;
            return createResponse(200, { body: fixedBody(`${body.length}${t ? ` ${t.get('x-t')}` : ''}`) });
          } catch (e) {
            seen.bodyErrors.push(e);
            throw e;
          }
        case '/abandon': {
          const it = req.body[Symbol.asyncIterator]();
          await it.next();
          await it.return?.();
          await seen.gate;
          return createResponse(200, { body: fixedBody('abandoned') });
        }
        case '/noread':
          return createResponse(200, { body: fixedBody('ignored your body') });
        case '/forever': {
          const chunk = Buffer.alloc(16 * 1024, 0x62);
          return createResponse(200, {
            body: streamBody(
              (function* () {
                for (;;) {
                  seen.pulls++;
                  yield chunk;
                }
              })(),
            ),
          });
        }
        case '/trailers':
          return createResponse(200, {
            body: streamBody([Buffer.from('ab'), Buffer.from('cd')], {
              trailers: new HttpHeaders([['x-sum', '4']]),
            }),
          });
        case '/headers':
          return createResponse(200, {
            headers: { connection: 'x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', 'x-keep': 'yes' },
            body: fixedBody(JSON.stringify(req.headers.toObject())),
          });
        default:
          return createResponse(404, { body: fixedBody('not found') });
      }
    },
  };
}

describe.each(drivers)('HTTP/2 server session on the %s driver', (driver) => {
  let srv: InProcess | null = null;
  let seen: Seen;
  const clients: RawH2Client[] = [];

  async function start(options: HttpServerOptions<HttpConnectionContext> = {}): Promise<number> {
    seen = makeSeen();
    srv = await startServer(driver, options, handlerFor(seen));
    return srv.port;
  }

  async function connect(port: number, settings = {}): Promise<RawH2Client> {
    const c = await RawH2Client.connect(port, settings);
    clients.push(c);
    return c;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    seen?.release();
    await srv?.stop();
    srv = null;
  });

  describe('connection setup', () => {
    it('sends its SETTINGS first, acknowledges the client', async () => {
      const port = await start();
      const c = await connect(port);
      const s = c.frames[0];
      expect(s).toEqual({
        t: 'settings',
        settings: {
          maxConcurrentStreams: 100,
          initialWindowSize: 65535,
          maxFrameSize: 16384,
          maxHeaderListSize: 16 * 1024 + 32 * 100,
        },
      });
      // The connection window is raised at once.
      expect(await c.until((f) => f.t === 'window')).toEqual({
        t: 'window',
        streamId: 0,
        increment: 1024 * 1024 - 65535,
      });
      expect(await c.until((f) => f.t === 'settingsAck')).toBeDefined();
    });

    it('answers PING with its data', async () => {
      const c = await connect(await start());
      c.send(encodePing(Buffer.from('12345678'), false));
      expect(await c.until((f) => f.t === 'ping')).toEqual({
        t: 'ping',
        data: Buffer.from('12345678').toString('hex'),
        ack: true,
      });
    });

    it('serves a request: :status, fields, content-length, date; version 2, host from :authority', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/hello?q=1'.replace('?q=1', ''), { authority: 'example.com:8080' }));
      const head = await c.response(1);
      expect(head[':status']).toBe('200');
      expect(head['x-a']).toBe('1');
      expect(head['content-length']).toBe('5');
      expect(head.date).toMatch(/GMT$/);
      expect(await c.body(1)).toBe('hello');
      const req = seen.requests[0]!;
      expect([req.version, req.method, req.target, req.targetForm]).toEqual(['2', 'GET', '/hello', 'origin']);
      expect(req.headers.get('host')).toBe('example.com:8080');
    });

    it('drops connection-specific fields of a response and joins request cookies', async () => {
      const c = await connect(await start());
      c.send(
        c.headers(1, '/headers', {
          extra: [
            ['cookie', 'a=1'],
            ['cookie', 'b=2'],
          ],
        }),
      );
      const head = await c.response(1);
      expect(head['x-keep']).toBe('yes');
      expect(head.connection).toBeUndefined();
      expect(head['x-hop']).toBeUndefined();
      expect(head['keep-alive']).toBeUndefined();
      expect(JSON.parse(await c.body(1)).cookie).toBe('a=1; b=2');
    });

    it('serves many streams at once on one connection', async () => {
      const c = await connect(await start());
      const ids = Array.from({ length: 50 }, (_, i) => 2 * i + 1);
      c.send(...ids.map((id) => c.headers(id, '/hello')));
      for (const id of ids) expect(await c.body(id)).toBe('hello');
    });

    it('sends response trailers as a final HEADERS', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/trailers'));
      const t = await c.until((f) => f.t === 'headers' && f.streamId === 1 && f.endStream);
      expect(t).toMatchObject({ fields: [['x-sum', '4']] });
      expect(Buffer.concat(c.bodies.get(1)!).toString()).toBe('abcd');
    });

    it('reads request bodies with trailers and checks content-length', async () => {
      const c = await connect(await start());
      c.send(
        c.headers(1, '/read', { method: 'POST', endStream: false, extra: [['content-length', '5']] }),
        c.data(1, 'hel'),
        c.data(1, 'lo'),
        encodeHeaders(1, c.encoder.encode([['x-t', 'tv']]), { endStream: true }),
      );
      expect(await c.body(1)).toBe('5 tv');
      // Longer than announced: malformed, the stream is reset.
      c.send(
        c.headers(3, '/read', { method: 'POST', endStream: false, extra: [['content-length', '2']] }),
        c.data(3, 'abc', true),
      );
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 3)).toMatchObject({
        errorCode: Http2ErrorCode.PROTOCOL_ERROR,
      });
      // Shorter than announced at END_STREAM too.
      c.send(
        c.headers(5, '/read', { method: 'POST', endStream: false, extra: [['content-length', '9']] }),
        c.data(5, 'abc', true),
      );
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 5)).toMatchObject({
        errorCode: Http2ErrorCode.PROTOCOL_ERROR,
      });
      // The connection goes on.
      c.send(c.headers(7, '/hello'));
      expect(await c.body(7)).toBe('hello');
    });

    it('resets malformed requests and keeps the connection', async () => {
      const c = await connect(await start());
      c.send(
        // host disagreeing with :authority
        c.headers(1, '/hello', { extra: [['host', 'other']] }),
        // a connection-specific field
        c.headers(3, '/hello', { extra: [['connection', 'close']] }),
        // uppercase name
        encodeHeaders(
          5,
          c.encoder.encode([
            [':method', 'GET'],
            [':scheme', 'http'],
            [':path', '/hello'],
            ['X-Up', '1'],
          ]),
          { endStream: true },
        ),
        // no :path
        encodeHeaders(
          7,
          c.encoder.encode([
            [':method', 'GET'],
            [':scheme', 'http'],
          ]),
          { endStream: true },
        ),
        c.headers(9, '/hello'),
      );
      for (const id of [1, 3, 5, 7]) {
        expect(await c.until((f) => f.t === 'rst' && f.streamId === id)).toMatchObject({
          errorCode: Http2ErrorCode.PROTOCOL_ERROR,
        });
      }
      expect(await c.body(9)).toBe('hello');
      expect(seen.requests.map((r) => r.target)).toEqual(['/hello']);
    });

    it('answers CONNECT with 501 without the handler', async () => {
      const c = await connect(await start());
      c.send(
        encodeHeaders(
          1,
          c.encoder.encode([
            [':method', 'CONNECT'],
            [':authority', 'example.com:443'],
          ]),
          { endStream: false },
        ),
      );
      expect((await c.response(1))[':status']).toBe('501');
      expect(seen.requests).toHaveLength(0);
    });
  });

  describe('stream states and ids', () => {
    it('an even stream id is a connection error (PROTOCOL_ERROR)', async () => {
      const c = await connect(await start());
      c.send(c.headers(2, '/hello'));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.PROTOCOL_ERROR });
    });

    it('a request on a used stream id (reuse or decrease) is a connection error', async () => {
      const c = await connect(await start());
      c.send(c.headers(5, '/hello'));
      expect(await c.body(5)).toBe('hello');
      c.send(c.headers(3, '/hello'));
      expect(await c.untilClosed()).toMatchObject({
        errorCode: Http2ErrorCode.PROTOCOL_ERROR,
        lastStreamId: 5,
      });
    });

    it('a reused id after the stream closed is a connection error too', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/hello'));
      expect(await c.body(1)).toBe('hello');
      c.send(c.headers(1, '/hello'));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.PROTOCOL_ERROR });
    });

    it('DATA or WINDOW_UPDATE on an idle stream is a connection error', async () => {
      const c = await connect(await start());
      c.send(c.data(7, 'x'));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.PROTOCOL_ERROR });
      const d = await connect(srv!.port);
      d.send(encodeWindowUpdate(9, 10));
      expect(await d.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.PROTOCOL_ERROR });
    });

    it('DATA after END_STREAM is a stream error (STREAM_CLOSED)', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/hang'), c.data(1, 'late'));
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 1)).toMatchObject({
        errorCode: Http2ErrorCode.STREAM_CLOSED,
      });
    });

    it('refuses streams over SETTINGS_MAX_CONCURRENT_STREAMS, counting reset ones until their handler ends', async () => {
      const c = await connect(await start({ http2: { maxConcurrentStreams: 2 } }));
      c.send(c.headers(1, '/hang'), c.headers(3, '/hang'), c.headers(5, '/hang'));
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 5)).toMatchObject({
        errorCode: Http2ErrorCode.REFUSED_STREAM,
      });
      // A client reset does not free the slot while the handler still runs (MadeYouReset).
      c.send(encodeRstStream(1, Http2ErrorCode.CANCEL), c.headers(7, '/hang'));
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 7)).toMatchObject({
        errorCode: Http2ErrorCode.REFUSED_STREAM,
      });
      seen.release();
      expect(await c.body(3)).toBe('late');
      c.send(c.headers(9, '/hello'));
      expect(await c.body(9)).toBe('hello');
      // The reset stream's answer was never sent.
      expect(c.frames.some((f) => f.t === 'headers' && f.streamId === 1)).toBe(false);
    });

    it("a client reset fails the handler's body read", async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/read', { method: 'POST', endStream: false }), c.data(1, 'part'));
      await expect.poll(() => seen.requests.length).toBe(1);
      c.send(encodeRstStream(1, Http2ErrorCode.CANCEL));
      await expect.poll(() => seen.bodyErrors.length).toBe(1);
      expect(seen.bodyErrors[0]).toBeInstanceOf(Http2StreamResetError);
      expect(seen.bodyErrors[0]).toMatchObject({ errorCode: Http2ErrorCode.CANCEL, by: 'peer' });
      c.send(c.headers(3, '/hello'));
      expect(await c.body(3)).toBe('hello');
    });

    it('a client reset stops an endless response body', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/forever'));
      await c.until((f) => f.t === 'data' && f.streamId === 1);
      // The first DATA filled the connection window: reset, then open it for the next stream.
      c.send(
        encodeRstStream(1, Http2ErrorCode.CANCEL),
        c.headers(3, '/hello'),
        encodeWindowUpdate(0, 1 << 20),
      );
      expect(await c.body(3)).toBe('hello');
      const pulls = seen.pulls;
      c.send(encodePing(Buffer.alloc(8), false));
      await c.until((f) => f.t === 'ping');
      expect(seen.pulls).toBe(pulls);
    });

    it('an answer before the whole request body tells the client to stop (RST_STREAM NO_ERROR)', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/noread', { method: 'POST', endStream: false }), c.data(1, 'some'));
      expect(await c.body(1)).toBe('ignored your body');
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 1)).toMatchObject({
        errorCode: Http2ErrorCode.NO_ERROR,
      });
      // What the client still sends is discarded; the connection goes on.
      c.send(c.data(1, 'more', true), c.headers(3, '/hello'));
      expect(await c.body(3)).toBe('hello');
    });
  });

  describe('flow control', () => {
    it('holds a response while the client window is 0 and resumes on WINDOW_UPDATE; memory stays bounded', async () => {
      const c = await connect(await start(), { initialWindowSize: 0 });
      c.send(c.headers(1, '/forever'));
      expect((await c.response(1))[':status']).toBe('200');
      // Ping round trips: the server had every chance to send or pull more.
      for (let i = 0; i < 3; i++) {
        c.send(encodePing(Buffer.alloc(8, i), false));
        await c.until((f) => f.t === 'ping' && f.data === Buffer.alloc(8, i).toString('hex'));
      }
      expect(c.frames.some((f) => f.t === 'data')).toBe(false);
      // One chunk is held, none pulled ahead.
      expect(seen.pulls).toBe(1);
      c.send(encodeWindowUpdate(1, 1000));
      const d = await c.until((f) => f.t === 'data' && f.streamId === 1);
      expect(d).toMatchObject({ length: 1000, endStream: false });
      expect(seen.pulls).toBe(1);
    });

    it('a tiny window: DATA never exceeds what the client allowed', async () => {
      const c = await connect(await start(), { initialWindowSize: 3 });
      c.send(c.headers(1, '/hello'), c.headers(3, '/trailers'));
      expect(await c.until((f) => f.t === 'data' && f.streamId === 1)).toMatchObject({ length: 3 });
      // The rest of a sized body continues where the window stopped it (not from its start).
      c.send(encodeWindowUpdate(1, 100), encodeWindowUpdate(3, 100));
      expect(await c.body(1)).toBe('hello');
      expect(await c.body(3)).toBe('abcd');
    });

    it('a client with huge windows that stops reading: the body is pulled only up to the output bound', async () => {
      const c = await connect(await start({ http2: { maxOutputBuffer: 64 * 1024 } }), {
        initialWindowSize: 0x7fffffff,
      });
      c.send(encodeWindowUpdate(0, 0x7fffffff - 65535));
      (c as unknown as { socket: import('node:net').Socket }).socket.pause();
      c.send(c.headers(1, '/forever'));
      // Once the kernel's buffers are full the pulls stop: the output bound holds what is left.
      let last = -1;
      for (let i = 0; i < 50 && seen.pulls !== last; i++) {
        last = seen.pulls;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen.pulls).toBe(last);
      // 16 KiB chunks: loopback socket buffers (a few MiB) plus the 64 KiB bound, not the endless body.
      expect(seen.pulls).toBeLessThan(2000);
      (c as unknown as { socket: import('node:net').Socket }).socket.resume();
      await expect.poll(() => seen.pulls > last).toBe(true);
    });

    it('resets a stream stalled on a closed window after the write timeout', async () => {
      const c = await connect(await start({ timeouts: { write: 100 } }), { initialWindowSize: 0 });
      c.send(c.headers(1, '/forever'));
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 1)).toMatchObject({
        errorCode: Http2ErrorCode.CANCEL,
      });
      c.send(c.headers(3, '/hello'));
      expect((await c.response(3))[':status']).toBe('200');
    });

    it('credits the request body window only as the handler reads (backpressure)', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/hang', { method: 'POST', endStream: false }));
      // The whole stream window, unread: no WINDOW_UPDATE for the stream.
      const chunk = Buffer.alloc(16384, 0x61);
      c.send(c.data(1, chunk), c.data(1, chunk), c.data(1, chunk), c.data(1, chunk.subarray(0, 16383)));
      c.send(encodePing(Buffer.alloc(8, 9), false));
      await c.until((f) => f.t === 'ping');
      expect(c.frames.some((f) => f.t === 'window' && f.streamId === 1)).toBe(false);
      // One octet more than the window: FLOW_CONTROL_ERROR on the stream.
      c.send(c.data(1, 'x'));
      expect(await c.until((f) => f.t === 'rst' && f.streamId === 1)).toMatchObject({
        errorCode: Http2ErrorCode.FLOW_CONTROL_ERROR,
      });
    });

    it('a body the handler stops reading is credited (what it left and what comes), so the client can finish', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/abandon', { method: 'POST', endStream: false }));
      const chunk = Buffer.alloc(16384, 0x61);
      c.send(c.data(1, chunk), c.data(1, chunk), c.data(1, chunk), c.data(1, chunk.subarray(0, 16383)));
      // The whole window was sent; the handler took one chunk and let go of the rest.
      await expect.poll(() => seen.requests.length).toBe(1);
      const credited = () =>
        c.frames.reduce((a, f) => a + (f.t === 'window' && f.streamId === 1 ? f.increment : 0), 0);
      // Credited in batches: more than the one chunk it read (without this, 16384 only).
      await expect.poll(() => credited() > 65535 - 16384).toBe(true);
      c.send(c.data(1, chunk), c.data(1, chunk, true));
      seen.release();
      expect(await c.body(1)).toBe('abandoned');
    });

    it('sends WINDOW_UPDATE as the handler reads a large body', async () => {
      const c = await connect(await start());
      const total = 1024 * 1024;
      c.send(c.headers(1, '/read', { method: 'POST', endStream: false }));
      const chunk = Buffer.alloc(16384, 0x61);
      let sent = 0;
      while (sent < total) {
        // What the client may send: the initial window plus every stream WINDOW_UPDATE so far.
        let credit = 65535;
        for (const f of c.frames) if (f.t === 'window' && f.streamId === 1) credit += f.increment;
        if (credit - sent <= 0) {
          const seenFrames = c.frames.length;
          await c.until(() => c.frames.length > seenFrames);
          continue;
        }
        const n = Math.min(credit - sent, chunk.length, total - sent);
        c.send(c.data(1, chunk.subarray(0, n), sent + n === total));
        sent += n;
      }
      expect(await c.body(1)).toBe(String(total));
    });
  });

  describe('attacks', () => {
    it('rapid reset (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM past the reset budget', async () => {
      const c = await connect(await start({ http2: { maxResetsPerInterval: 50, floodInterval: 60_000 } }));
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 100; i++) {
        const id = 2 * i + 1;
        frames.push(c.headers(id, '/hang'), encodeRstStream(id, Http2ErrorCode.CANCEL));
      }
      c.send(...frames);
      const goaway = await c.untilClosed();
      expect(goaway).toMatchObject({ errorCode: Http2ErrorCode.ENHANCE_YOUR_CALM });
      // Each reset stream counts against the concurrency limit until its handler ends, so at
      // most maxConcurrentStreams handlers ever ran.
      expect(seen.requests.length).toBeLessThanOrEqual(100);
    });

    it('CONTINUATION flood: the header block bound ends the connection (ENHANCE_YOUR_CALM)', async () => {
      const c = await connect(await start());
      const block = c.encoder.encode([
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/hello'],
      ]);
      const first = encodeFrame(FrameType.HEADERS, 0x1, 1, block);
      const frames = [first];
      for (let i = 0; i < 200; i++) frames.push(encodeContinuation(1, Buffer.alloc(1000, 0x40), false));
      c.send(...frames);
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.ENHANCE_YOUR_CALM });
    });

    it('endless empty CONTINUATION frames end the connection too', async () => {
      const c = await connect(await start());
      const first = encodeFrame(FrameType.HEADERS, 0x1, 1, c.encoder.encode([[':method', 'GET']]));
      const frames = [first];
      for (let i = 0; i < 5000; i++) frames.push(encodeContinuation(1, new Uint8Array(0), false));
      c.send(...frames);
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.ENHANCE_YOUR_CALM });
    });

    it('HPACK bomb: a small block that decodes past the header list size is answered 431, the connection stays', async () => {
      const c = await connect(await start());
      // One 4000-octet entry in the table, then referenced 100 times: ~400 KB decoded from ~100 octets.
      const fields: [string, string][] = [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/hello'],
        ['x-bomb', 'a'.repeat(3000)],
      ];
      for (let i = 0; i < 100; i++) fields.push(['x-bomb', 'a'.repeat(3000)]);
      const block = c.encoder.encode(fields);
      expect(block.length).toBeLessThan(4000);
      c.send(encodeHeaders(1, block, { endStream: true }));
      expect((await c.response(1))[':status']).toBe('431');
      // The table stayed in step: the next request (whose block may reference it) works.
      c.send(c.headers(3, '/hello', { extra: [['x-bomb', 'a'.repeat(3000)]] }));
      expect(await c.body(3)).toBe('hello');
      expect(seen.requests.map((r) => r.target)).toEqual(['/hello']);
    });

    it('too many fields is answered 431', async () => {
      const c = await connect(await start({ limits: { maxHeaderCount: 10 } }));
      const extra = Array.from({ length: 20 }, (_, i): [string, string] => [`x-f${i}`, 'v']);
      c.send(c.headers(1, '/hello', { extra }));
      expect((await c.response(1))[':status']).toBe('431');
    });

    it.each([
      ['SETTINGS', () => encodeSettings({})],
      ['PING', () => encodePing(Buffer.alloc(8), false)],
      ['empty DATA', () => encodeData(1, new Uint8Array(0))],
      ['PRIORITY', () => encodePriority(3, { exclusive: false, dependency: 0, weight: 16 })],
      ['WINDOW_UPDATE', () => encodeWindowUpdate(0, 1)],
    ])('%s flood: GOAWAY ENHANCE_YOUR_CALM past its budget', async (_name, frame) => {
      const c = await connect(
        await start({
          http2: {
            floodInterval: 60_000,
            maxSettingsPerInterval: 20,
            maxPingsPerInterval: 20,
            maxEmptyFramesPerInterval: 20,
            maxWindowUpdatesPerInterval: 20,
          },
        }),
      );
      c.send(c.headers(1, '/hang', { method: 'POST', endStream: false }));
      c.send(...Array.from({ length: 50 }, () => frame()));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.ENHANCE_YOUR_CALM });
    });

    it('large WINDOW_UPDATEs (a client reading fast) do not count against the flood budget', async () => {
      const c = await connect(
        await start({ http2: { floodInterval: 60_000, maxWindowUpdatesPerInterval: 20 } }),
      );
      c.send(...Array.from({ length: 50 }, () => encodeWindowUpdate(0, 65536)), c.headers(1, '/hello'));
      expect(await c.body(1)).toBe('hello');
      expect(c.frames.some((f) => f.t === 'goaway')).toBe(false);
    });

    it('a client that does not read: the server stops reading once its output bound is reached', async () => {
      const c = await connect(await start({ http2: { maxOutputBuffer: 4096, maxPingsPerInterval: 0 } }));
      // Pause reading on the client side and flood PINGs: the answers pile up only to the bound.
      (c as unknown as { socket: import('node:net').Socket }).socket.pause();
      const pings = Array.from({ length: 20_000 }, () => encodePing(Buffer.alloc(8), false));
      c.send(...pings);
      await new Promise((r) => setTimeout(r, 200));
      (c as unknown as { socket: import('node:net').Socket }).socket.resume();
      await c.until((f) => f.t === 'ping');
      expect(srv!.errors).toEqual([]);
    });

    it('a first frame other than SETTINGS is a connection error', async () => {
      const port = await start();
      const c = new RawH2Client(port);
      clients.push(c);
      await c.opened;
      c.send(CONNECTION_PREFACE, encodePing(Buffer.alloc(8), false));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.PROTOCOL_ERROR });
    });

    it('a client that never acknowledges our SETTINGS: GOAWAY SETTINGS_TIMEOUT (RFC 9113 6.5.3)', async () => {
      const port = await start({ http2: { settingsTimeout: 100 } });
      const c = await RawH2Client.connect(port, {}, { ackSettings: false });
      clients.push(c);
      // Requests and PINGs do not stand in for the acknowledgement.
      c.send(c.headers(1, '/hello'), encodePing(Buffer.alloc(8), false));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.SETTINGS_TIMEOUT });
    });

    it('a client that acknowledged is not cut by the SETTINGS timeout', async () => {
      const port = await start({ http2: { settingsTimeout: 50 } });
      const c = await connect(port);
      await c.until((f) => f.t === 'settingsAck');
      await new Promise((r) => setTimeout(r, 300));
      c.send(c.headers(1, '/hello'));
      expect(await c.body(1)).toBe('hello');
      expect(c.closed).toBe(false);
    });
  });

  describe('graceful close', () => {
    it('server.close() sends GOAWAY with the last stream id, finishes streams in flight, then closes', async () => {
      const c = await connect(await start());
      c.send(c.headers(1, '/hang'));
      await expect.poll(() => seen.requests.length).toBe(1);
      const closing = srv!.server.close();
      // The notice first (largest id, and a PING), then the last stream id once the PING returned.
      expect(await c.until((f) => f.t === 'goaway')).toMatchObject({
        lastStreamId: 0x7fffffff,
        errorCode: Http2ErrorCode.NO_ERROR,
      });
      expect(await c.until((f) => f.t === 'goaway' && f.lastStreamId !== 0x7fffffff)).toMatchObject({
        lastStreamId: 1,
        errorCode: Http2ErrorCode.NO_ERROR,
      });
      // A stream opened after the GOAWAY is ignored.
      c.send(c.headers(3, '/hello'));
      seen.release();
      expect(await c.body(1)).toBe('late');
      await c.untilClosed();
      await closing;
      expect(c.frames.some((f) => f.t === 'headers' && f.streamId === 3)).toBe(false);
    });

    it('a stream the client opened while the shutdown notice was on its way is still served', async () => {
      const c = await connect(await start());
      c.autoPingAck = false;
      c.send(c.headers(1, '/hello'));
      expect(await c.body(1)).toBe('hello');
      const closing = srv!.server.close();
      await c.until((f) => f.t === 'goaway');
      // Sent before the client read the notice: served (a one-phase GOAWAY would drop it).
      c.send(c.headers(3, '/hello'));
      expect(await c.body(3)).toBe('hello');
      // Without the PING's answer the final GOAWAY follows after a moment, then the close.
      expect(await c.until((f) => f.t === 'goaway' && f.lastStreamId === 3)).toBeDefined();
      await c.untilClosed();
      await closing;
    });

    it('an idle connection gets GOAWAY after the idle timeout', async () => {
      const c = await connect(await start({ timeouts: { idle: 100 } }));
      expect(await c.untilClosed()).toMatchObject({ errorCode: Http2ErrorCode.NO_ERROR });
    });
  });

  describe('protocol choice', () => {
    it('a preface split over several reads still starts HTTP/2', async () => {
      const port = await start();
      const c = new RawH2Client(port);
      clients.push(c);
      await c.opened;
      c.send(CONNECTION_PREFACE.subarray(0, 3));
      await new Promise((r) => setTimeout(r, 20));
      c.send(CONNECTION_PREFACE.subarray(3, 10));
      await new Promise((r) => setTimeout(r, 20));
      c.send(CONNECTION_PREFACE.subarray(10), encodeSettings({}), c.headers(1, '/hello'));
      expect(await c.body(1)).toBe('hello');
    });

    it('HTTP/1.1 requests on the same listener are untouched, also one starting like the preface', async () => {
      const port = await start();
      const a = new RawClient(port);
      a.write('GET /hello HTTP/1.1\r\nhost: x\r\n\r\n');
      expect(await a.until((t) => t.endsWith('hello'))).toMatch(/^HTTP\/1\.1 200/);
      a.destroy();
      // "P" then "UT": the split sniff hands the joined bytes to HTTP/1.1.
      const b = new RawClient(port);
      await b.opened;
      b.write('P');
      await new Promise((r) => setTimeout(r, 20));
      b.write('UT /hello HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n');
      expect(await b.until((t) => t.endsWith('hello'))).toMatch(/^HTTP\/1\.1 200/);
      b.destroy();
    });

    it('Upgrade: h2c is answered as plain HTTP/1.1', async () => {
      const port = await start();
      const a = new RawClient(port);
      a.write(
        'GET /hello HTTP/1.1\r\nhost: x\r\nconnection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
      );
      expect(await a.until((t) => t.endsWith('hello'))).toMatch(/^HTTP\/1\.1 200/);
      a.destroy();
    });

    it('http2: false serves HTTP/1.1 only (the preface is a bad HTTP/1 request)', async () => {
      const port = await start({ http2: false });
      const a = new RawClient(port);
      a.write(Buffer.from(CONNECTION_PREFACE).toString('latin1'));
      expect(await a.untilClosed()).toMatch(/^HTTP\/1\.1 (400|501|505)/);
    });
  });
});
