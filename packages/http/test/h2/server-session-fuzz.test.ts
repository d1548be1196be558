/**
 * Property test of the HTTP/2 server session: random frame sequences from a misbehaving client
 * (valid and invalid ids, flags, windows, header blocks, CONTINUATION out of place, resets,
 * SETTINGS, trailers), cut at random chunk boundaries, fed through an in-memory stream. Whatever
 * arrives, the session never throws out of a callback, never reports an error of its own to
 * `onError` (protocol errors are answered on the wire, not reported), and always ends the
 * connection once the input ends; what it writes is valid HTTP/2 (our own decoder reads it).
 * Also HEAD and 204 answers, and the request body deadline (408).
 */

import { plainFacts } from '@loch/uring-runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixedBody, readBody, streamBody } from '../../src/body.js';
import { Http2FrameDecoder } from '../../src/h2/frame-decoder.js';
import {
  CONNECTION_PREFACE,
  encodeContinuation,
  encodeData,
  encodeFrame,
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodePriority,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  FrameType,
} from '../../src/h2/frames.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import { createResponse } from '../../src/message.js';
import { HttpServer } from '../../src/server.js';
import type { HttpStream, StreamRecvTarget, StreamWriteTarget } from '../../src/transport.js';
import { startServer } from '../server-harness.js';
import { RawH2Client } from './raw-h2-client.js';

/** An in-memory stream: delivers `chunks`, then end of stream; collects what is written. */
function memoryStream(chunks: Uint8Array[]): HttpStream & { written: Uint8Array[] } {
  let i = 0;
  let closed = false;
  const written: Uint8Array[] = [];
  const address = { address: '127.0.0.1', port: 1, family: 'ipv4' } as const;
  return {
    written,
    remoteAddress: address,
    localAddress: address,
    driver: 'legacy',
    get closed() {
      return closed;
    },
    facts: plainFacts(address),
    recvTo(target: StreamRecvTarget): void {
      const deliver = () => {
        if (closed)
          return target.onRecv(null, Object.assign(new Error('closed'), { code: 'ECANCELED' }) as never);
        const c = i < chunks.length ? chunks[i++]! : null;
        target.onRecv(c === null ? null : { bytes: c, release() {} }, undefined);
      };
      // Each chunk in its own task, the end of input a moment later: handlers answer what they
      // were given before more arrives (as over a socket).
      if (i < chunks.length) setImmediate(deliver);
      else setTimeout(deliver, 3);
    },
    writeTo(data: Uint8Array | readonly Uint8Array[], target: StreamWriteTarget): void {
      if (data instanceof Uint8Array) written.push(data.slice());
      else for (const d of data) written.push(d.slice());
      queueMicrotask(() => target.onWritten(undefined));
    },
    shutdown: async () => {},
    close: async () => {
      closed = true;
    },
    setNoDelay() {},
  } as unknown as HttpStream & { written: Uint8Array[] };
}

const handler = {
  async call(req: { target: string; body: AsyncIterable<Uint8Array> & { kind: string } }) {
    if (req.target === '/read') {
      const b = await readBody(req.body as never);
      return createResponse(200, { body: fixedBody(String(b.length)) });
    }
    if (req.target === '/stream')
      return createResponse(200, { body: streamBody([Buffer.from('ab'), Buffer.from('cd')]) });
    if (req.target === '/204') return createResponse(204, { body: fixedBody('x') });
    return createResponse(200, { body: fixedBody('hello') });
  },
};

const GET: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/hello'],
  [':authority', 'a'],
];
const ids = fc.constantFrom(0, 1, 2, 3, 5, 7, 9, 0x7fffffff);
const paths = fc.constantFrom('/hello', '/read', '/stream', '/204', '', 'x');

function frameArb(enc: HpackEncoder): fc.Arbitrary<() => Uint8Array> {
  return fc.oneof(
    fc
      .record({
        id: ids,
        path: paths,
        end: fc.boolean(),
        method: fc.constantFrom('GET', 'POST', 'HEAD', 'CONNECT'),
      })
      .map(
        ({ id, path, end, method }) =>
          () =>
            encodeHeaders(
              id || 1,
              enc.encode([
                [':method', method],
                [':scheme', 'http'],
                [':path', path],
                [':authority', 'a'],
              ]),
              { endStream: end },
            ),
      ),
    fc.record({ id: ids, len: fc.nat(300), end: fc.boolean() }).map(
      ({ id, len, end }) =>
        () =>
          encodeData(id || 1, new Uint8Array(len), { endStream: end }),
    ),
    fc.record({ id: ids, code: fc.nat(15) }).map(
      ({ id, code }) =>
        () =>
          encodeRstStream(id || 1, code),
    ),
    fc.record({ id: ids, inc: fc.integer({ min: 1, max: 0x7fffffff }) }).map(
      ({ id, inc }) =>
        () =>
          encodeWindowUpdate(id, inc),
    ),
    fc
      .record({
        w: fc.option(fc.nat(1 << 20), { nil: undefined }),
        t: fc.option(fc.nat(8192), { nil: undefined }),
      })
      .map(
        ({ w, t }) =>
          () =>
            encodeSettings({
              ...(w !== undefined ? { initialWindowSize: w } : {}),
              ...(t !== undefined ? { headerTableSize: t } : {}),
            }),
      ),
    fc.constant(() => encodePing(new Uint8Array(8), false)),
    fc.record({ id: ids }).map(
      ({ id }) =>
        () =>
          encodePriority(id || 1, { exclusive: false, dependency: 0, weight: 1 }),
    ),
    fc.record({ id: ids, end: fc.boolean() }).map(
      ({ id, end }) =>
        () =>
          encodeContinuation(id || 1, enc.encode([['x-c', 'v']]), end),
    ),
    fc.record({ id: ids }).map(
      ({ id }) =>
        () =>
          encodeFrame(FrameType.HEADERS, 0x1, id || 1, enc.encode([[':method', 'GET']])),
    ),
    fc.constant(() => encodeGoaway(0, 0)),
    fc.uint8Array({ maxLength: 20 }).map((b) => () => b),
  );
}

const stats = { runs: 0, answered: 0 };

describe('HTTP/2 server session under random frame sequences', () => {
  it('never throws, never reports its own errors, always closes at end of input, writes valid frames', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(64), { maxLength: 8 }),
        async (picks, cuts) => {
          const enc = new HpackEncoder();
          // One generator of frames; the picks choose among a fixed sample of it.
          const sample = fc.sample(frameArb(enc), { numRuns: 64, seed: picks[0] ?? 0 });
          const frames = [
            CONNECTION_PREFACE,
            encodeSettings({}),
            encodeHeaders(1, enc.encode(GET), { endStream: true }),
          ];
          for (const p of picks) frames.push(sample[p % sample.length]!());
          const bytes = Buffer.concat(frames);
          const chunks: Uint8Array[] = [];
          let at = 0;
          for (const c of cuts) {
            const end = Math.min(bytes.length, at + 1 + c * 7);
            chunks.push(bytes.subarray(at, end));
            at = end;
          }
          if (at < bytes.length) chunks.push(bytes.subarray(at));
          const errors: unknown[] = [];
          const server = new HttpServer(handler as never, { onError: (e) => errors.push(e) });
          const stream = memoryStream(chunks);
          await server.serveConnection(stream);
          expect(
            errors.filter((e) => !(e instanceof Error && /stream|timeout|reset/i.test(e.message))),
          ).toEqual([]);
          // What we wrote decodes as frames.
          const out = Buffer.concat(stream.written);
          let answers = 0;
          const d = new Http2FrameDecoder(
            {
              onData() {},
              onHeaders() {
                answers++;
              },
              onPriority() {},
              onRstStream() {},
              onSettings() {},
              onSettingsAck() {},
              onPushPromise() {},
              onPing() {},
              onGoaway() {},
              onWindowUpdate() {},
              onStreamError() {},
            },
            { role: 'client' },
          );
          d.feed(out);
          // Our SETTINGS always went out first; the connection is gone.
          expect(out.subarray(3, 4)[0]).toBe(FrameType.SETTINGS);
          expect(server.connections).toBe(0);
          stats.runs++;
          if (answers > 0) stats.answered++;
          await server.close();
        },
      ),
      { numRuns: 300 },
    );
    // The sequences reach the handler often enough to mean something.
    expect(stats.answered).toBeGreaterThan(stats.runs / 10);
  });
});

describe('HTTP/2 answers without a body, and the body deadline', () => {
  it('HEAD gets the length of the GET and no DATA; 204 gets neither', async () => {
    const srv = await startServer('legacy');
    const c = await RawH2Client.connect(srv.port);
    try {
      c.send(c.headers(1, '/hello', { method: 'HEAD' }), c.headers(3, '/nocontent'));
      const head = await c.until((f) => f.t === 'headers' && f.streamId === 1);
      expect(head).toMatchObject({ endStream: true });
      expect(Object.fromEntries(head?.t === 'headers' ? head.fields : [])['content-length']).toBe('11');
      const nc = await c.until((f) => f.t === 'headers' && f.streamId === 3);
      expect(nc).toMatchObject({ endStream: true });
      expect(Object.fromEntries(nc?.t === 'headers' ? nc.fields : [])['content-length']).toBeUndefined();
      expect(c.frames.some((f) => f.t === 'data')).toBe(false);
    } finally {
      c.destroy();
      await srv.stop();
    }
  });

  it('a request body that stalls past the body timeout is answered 408', async () => {
    const srv = await startServer('legacy', { timeouts: { body: 100 } });
    const c = await RawH2Client.connect(srv.port);
    try {
      c.send(c.headers(1, '/len', { method: 'POST', endStream: false }), c.data(1, 'part'));
      expect((await c.response(1))[':status']).toBe('408');
      c.send(c.headers(3, '/hello'));
      expect(await c.body(3)).toBe('hello world');
    } finally {
      c.destroy();
      await srv.stop();
    }
  });
});
