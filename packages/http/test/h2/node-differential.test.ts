// Differential tests against Node's built-in HTTP/2 (nghttp2) over loopback sockets: our frame
// decoder and HPACK decoder parse what a real nghttp2 peer sends (preface, SETTINGS,
// WINDOW_UPDATE, Huffman-coded and indexed HEADERS, DATA), and nghttp2 accepts the frames and
// header blocks our encoders produce, in both roles.
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Http2ErrorCode } from '../../src/h2/errors.js';
import { FieldBlockValidator } from '../../src/h2/field-validator.js';
import { Http2FrameDecoder, type Http2FrameHandler } from '../../src/h2/frame-decoder.js';
import {
  CONNECTION_PREFACE,
  encodeData,
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
} from '../../src/h2/frames.js';
import { HpackDecoder } from '../../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A handler whose unused callbacks fail the test; tests override what they expect. */
function handler(overrides: Partial<Http2FrameHandler>): Http2FrameHandler {
  const unexpected = (what: string) => () => {
    throw new Error(`unexpected ${what}`);
  };
  return {
    onData: unexpected('DATA'),
    onHeaders: unexpected('HEADERS'),
    onPriority: unexpected('PRIORITY'),
    onRstStream: unexpected('RST_STREAM'),
    onSettings: unexpected('SETTINGS'),
    onSettingsAck: () => {},
    onPushPromise: unexpected('PUSH_PROMISE'),
    onPing: unexpected('PING'),
    onGoaway: () => {},
    onWindowUpdate: () => {},
    onStreamError: (e) => {
      throw e;
    },
    ...overrides,
  };
}

interface ReceivedRequest {
  streamId: number;
  fields: [string, string][];
  body: string;
}

describe('differential: Node http2 (nghttp2) client against our codec as a server', () => {
  it('decodes the client preface, SETTINGS and three requests; node accepts our responses', async () => {
    const received: ReceivedRequest[] = [];
    const errors: unknown[] = [];
    const sensitive = new Set<string>();
    let peakTable = 0;
    const server = net.createServer((sock) => {
      const hpackIn = new HpackDecoder();
      const hpackOut = new HpackEncoder();
      const validator = new FieldBlockValidator();
      const open = new Map<number, ReceivedRequest>();
      const respond = (req: ReceivedRequest) => {
        received.push(req);
        const method = req.fields.find(([n]) => n === ':method')![1];
        const path = req.fields.find(([n]) => n === ':path')![1];
        const block = hpackOut.encode([
          [':status', '201'],
          ['content-type', 'text/plain; charset=utf-8'],
          ['x-echo', `${method} ${path}`],
          ['set-cookie', 'sid=abc; HttpOnly'],
          ['cache-control', 'no-store'],
        ]);
        const body = Buffer.from(`got ${req.body.length} bytes: ${req.body}`);
        sock.write(
          Buffer.concat([
            encodeHeaders(req.streamId, block),
            encodeData(req.streamId, body, { endStream: true }),
          ]),
        );
      };
      const decoder = new Http2FrameDecoder(
        handler({
          onSettings: (s) => {
            if (s.headerTableSize !== undefined) hpackOut.setPeerMaxTableSize(s.headerTableSize);
            sock.write(encodeSettingsAck());
          },
          onHeaders: (streamId, block, endStream) => {
            validator.begin('request', streamId);
            const req: ReceivedRequest = { streamId, fields: [], body: '' };
            hpackIn.decode(block, {
              onField: (n, v, isSensitive) => {
                if (isSensitive) sensitive.add(n);
                req.fields.push([n, v]);
                validator.field(n, v);
              },
            });
            peakTable = Math.max(peakTable, hpackIn.table.length);
            const bad = validator.end();
            if (bad !== null) throw bad;
            if (endStream) respond(req);
            else open.set(streamId, req);
          },
          onData: (streamId, data, endStream) => {
            const req = open.get(streamId)!;
            req.body += Buffer.from(data).toString();
            if (endStream) {
              open.delete(streamId);
              respond(req);
            }
          },
          onPing: (data, ack) => {
            if (!ack) sock.write(encodePing(data, true));
          },
        }),
        { role: 'server' },
      );
      sock.write(encodeSettings({ maxConcurrentStreams: 100, enablePush: false }));
      sock.on('data', (chunk) => {
        try {
          decoder.feed(chunk);
        } catch (e) {
          errors.push(e);
          sock.destroy();
        }
      });
      sock.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;

    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => client.destroy());
    const responses: { headers: http2.IncomingHttpHeaders; body: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const req = client.request({
        ':method': i === 1 ? 'GET' : 'POST',
        ':path': `/upload?i=${i}`,
        'x-custom': 'same value every time',
        'user-agent': 'node-differential/1.0',
        cookie: 'session=0123456789abcdef0123456789abcdef',
        authorization: 'Bearer token-xyz',
        accept: '*/*',
      });
      if (i === 1) req.end();
      else req.end(`payload number ${i} ${'z'.repeat(i * 1000)}`);
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      req.setEncoding('utf8');
      for await (const chunk of req) body += chunk;
      responses.push({ headers, body });
    }
    client.close();
    expect(errors).toEqual([]);

    expect(received.map((r) => r.streamId)).toEqual([1, 3, 5]);
    // nghttp2 indexed the repeated fields (so later blocks used our dynamic table) and sent the
    // credentials never-indexed.
    expect(peakTable).toBeGreaterThan(0);
    expect([...sensitive].sort()).toEqual(['authorization']);
    for (const [i, req] of received.entries()) {
      const fields = Object.fromEntries(req.fields);
      expect(fields).toMatchObject({
        ':method': i === 1 ? 'GET' : 'POST',
        ':scheme': 'http',
        ':authority': `127.0.0.1:${port}`,
        ':path': `/upload?i=${i}`,
        'x-custom': 'same value every time',
        'user-agent': 'node-differential/1.0',
        cookie: 'session=0123456789abcdef0123456789abcdef',
        authorization: 'Bearer token-xyz',
        accept: '*/*',
      });
      expect(req.body).toBe(i === 1 ? '' : `payload number ${i} ${'z'.repeat(i * 1000)}`);
      const r = responses[i]!;
      expect(r.headers[':status']).toBe(201);
      expect(r.headers['x-echo']).toBe(`${i === 1 ? 'GET' : 'POST'} /upload?i=${i}`);
      expect(r.headers['set-cookie']).toEqual(['sid=abc; HttpOnly']);
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.body).toBe(`got ${req.body.length} bytes: ${req.body}`);
    }
  });
});

describe('differential: our codec as a client against a Node http2 (nghttp2) server', () => {
  it('node accepts our preface, SETTINGS, HEADERS (with CONTINUATION) and DATA; we decode its answers', async () => {
    const server = http2.createServer();
    const seenByNode: Record<string, unknown>[] = [];
    server.on('stream', (stream, headers) => {
      seenByNode.push({ ...headers });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => {
        body += c;
      });
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'x-path': String(headers[':path']), 'content-type': 'text/plain' });
        stream.end(`echo:${body}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;

    const sock = net.connect(port, '127.0.0.1');
    cleanups.push(() => sock.destroy());
    await once(sock, 'connect');

    const hpackOut = new HpackEncoder();
    const hpackIn = new HpackDecoder();
    const responses = new Map<number, { fields: [string, string][]; body: string; done: boolean }>();
    let pingAck = '';
    let settings = 0;
    let finished: () => void = () => {};
    const allDone = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const checkDone = () => {
      if (responses.size === 3 && [...responses.values()].every((r) => r.done) && pingAck !== '') finished();
    };
    const decoder = new Http2FrameDecoder(
      handler({
        onSettings: (s) => {
          settings++;
          if (s.headerTableSize !== undefined) hpackOut.setPeerMaxTableSize(s.headerTableSize);
          sock.write(encodeSettingsAck());
        },
        onHeaders: (streamId, block, endStream) => {
          const r = { fields: hpackIn.decodeToList(block), body: '', done: endStream };
          responses.set(streamId, r);
          checkDone();
        },
        onData: (streamId, data, endStream) => {
          const r = responses.get(streamId)!;
          r.body += Buffer.from(data).toString();
          if (endStream) r.done = true;
          checkDone();
        },
        onPing: (data, ack) => {
          expect(ack).toBe(true);
          pingAck = Buffer.from(data).toString('hex');
          checkDone();
        },
      }),
      { role: 'client' },
    );
    const errors: unknown[] = [];
    sock.on('data', (chunk) => {
      try {
        decoder.feed(chunk);
      } catch (e) {
        errors.push(e);
        finished();
      }
    });

    const request = (path: string, extra: [string, string][] = []) =>
      hpackOut.encode([
        [':method', 'POST'],
        [':scheme', 'http'],
        [':authority', `127.0.0.1:${port}`],
        [':path', path],
        ['content-type', 'application/octet-stream'],
        ['x-trace-id', 'abcdef0123456789'],
        ...extra,
      ]);
    // A header block far larger than node's 16 KiB frames would allow in one: split by our encoder.
    const bigValue = 'b'.repeat(20000);
    sock.write(
      Buffer.concat([
        CONNECTION_PREFACE,
        encodeSettings({ enablePush: false, initialWindowSize: 1 << 20, headerTableSize: 4096 }),
        encodeWindowUpdate(0, 1 << 20),
        encodeHeaders(1, request('/one')),
        encodeData(1, Buffer.from('first body'), { endStream: true }),
        encodeHeaders(3, request('/two', [['x-big', bigValue]]), { maxFrameSize: 16384 }),
        encodeData(3, Buffer.from('second'), { padLength: 7 }),
        encodeData(3, Buffer.from(' body'), { endStream: true }),
        encodeHeaders(5, request('/three'), {
          padLength: 3,
          priority: { exclusive: false, dependency: 0, weight: 32 },
        }),
        encodeData(5, new Uint8Array(0), { endStream: true }),
        encodePing(Buffer.from('0123456789abcdef', 'hex'), false),
      ]),
    );
    await allDone;
    expect(errors).toEqual([]);
    expect(settings).toBeGreaterThanOrEqual(1);
    expect(pingAck).toBe('0123456789abcdef');
    expect(seenByNode.map((h) => h[':path'])).toEqual(['/one', '/two', '/three']);
    expect(seenByNode[1]!['x-big']).toBe(bigValue);
    expect(seenByNode[0]!['x-trace-id']).toBe('abcdef0123456789');
    const bodies = Object.fromEntries([...responses].map(([id, r]) => [id, r.body]));
    expect(bodies).toEqual({ 1: 'echo:first body', 3: 'echo:second body', 5: 'echo:' });
    for (const [id, r] of responses) {
      const f = Object.fromEntries(r.fields);
      expect(f[':status']).toBe('200');
      expect(f['x-path']).toBe({ 1: '/one', 3: '/two', 5: '/three' }[id]);
      expect(f['content-type']).toBe('text/plain');
    }
    sock.write(encodeGoaway(0, Http2ErrorCode.NO_ERROR));
  });
});
