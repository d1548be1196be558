/**
 * H2ClientSession against node:http2 servers on loopback, on both drivers: concurrent streams
 * within the server's SETTINGS_MAX_CONCURRENT_STREAMS, request and response bodies larger than
 * the windows (flow control both ways), trailers both ways, HEAD/204, aborts and deadlines as
 * RST_STREAM, REFUSED_STREAM and GOAWAY as retryable refusals, PING.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readBody, readText, streamBody } from '../src/body.js';
import { HttpAbortedError, HttpTimeoutError } from '../src/errors.js';
import { Http2RequestRefusedError, Http2SessionError } from '../src/h2/client-errors.js';
import { H2ClientSession } from '../src/h2/client-session.js';
import { Http2ErrorCode } from '../src/h2/errors.js';
import { encodeHeaders, encodeSettings, encodeSettingsAck, FrameType } from '../src/h2/frames.js';
import { HpackEncoder } from '../src/h2/hpack-encoder.js';
import { Http2StreamResetError } from '../src/h2/stream-reset-error.js';
import { HttpHeaders } from '../src/headers.js';
import { createRequest } from '../src/message.js';
import { availableDrivers, connectTo } from './server-harness.js';

const drivers = await availableDrivers();
const sessions: H2ClientSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
});

interface Seen {
  path: string;
  method: string;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

const seenOf = new WeakMap<http2.Http2Server, Seen[]>();
function seenBy(server: http2.Http2Server): Seen[] {
  return seenOf.get(server) ?? [];
}

function startServer(
  settings: http2.Settings = {},
): Promise<{ server: http2.Http2Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http2.createServer({ settings });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    const parts: Buffer[] = [];
    stream.on('data', (b: Buffer) => parts.push(b));
    stream.on('error', () => {});
    if (path === '/hang') return;
    if (path === '/slow-body') {
      stream.respond({ ':status': 200 });
      stream.write('first');
      return;
    }
    if (path === '/refuse') {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    stream.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({ path, method: String(headers[':method']), headers, body, trailers: {} });
      if (path === '/echo') {
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        stream.end(body);
      } else if (path === '/60k') {
        stream.respond({ ':status': 200 });
        stream.end(Buffer.alloc(60_000, 0x62));
      } else if (path === '/big') {
        stream.respond({ ':status': 200 });
        stream.end(Buffer.alloc(3 * 1024 * 1024, 0x61));
      } else if (path === '/trailers') {
        stream.respond({ ':status': 200 }, { waitForTrailers: true });
        stream.on('wantTrailers', () =>
          stream.sendTrailers({ 'grpc-status': '0', 'x-len': String(body.length) }),
        );
        stream.end('abc');
      } else if (path === '/trailers-only') {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5' },
          { endStream: true },
        );
      } else if (path === '/nocontent') {
        stream.respond({ ':status': 204 });
        stream.end();
      } else {
        stream.respond({ ':status': 200, 'x-path': path });
        stream.end(`${headers[':method']} ${path} ${body.length}`);
      }
    });
    stream.on('trailers', (t) => {
      queueMicrotask(() => {
        const last = seen.at(-1);
        if (last !== undefined) last.trailers = t;
      });
    });
  });
  seenOf.set(server, seen);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, port: (server.address() as { port: number }).port, seen });
    });
  });
}

describe.each(drivers)('H2ClientSession on the %s driver', (driver) => {
  let server: http2.Http2Server;
  let port: number;
  let seen: Seen[];
  beforeAll(async () => {
    ({ server, port, seen } = await startServer({ maxConcurrentStreams: 4 }));
  });
  afterAll(() => {
    server.close();
  });

  async function session(options = {}): Promise<H2ClientSession> {
    const s = new H2ClientSession(await connectTo(driver, port), {
      authority: `127.0.0.1:${port}`,
      ...options,
    });
    sessions.push(s);
    return s;
  }

  it('sends a GET and reads the answer; :authority from the options', async () => {
    const s = await session();
    const res = await s.send(createRequest('GET', '/hello'));
    expect(res.status).toBe(200);
    expect(res.version).toBe('2');
    expect(res.headers.get('x-path')).toBe('/hello');
    expect(await readText(res.body)).toBe('GET /hello 0');
    const last = seen.at(-1)!;
    expect(last.headers[':authority']).toBe(`127.0.0.1:${port}`);
    expect(last.headers[':scheme']).toBe('http');
  });

  it('runs 40 exchanges at once within the server limit of 4 streams', async () => {
    const s = await session();
    await s.ping();
    expect(s.maxConcurrentStreams).toBe(4);
    let peak = 0;
    const all = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await s.send(createRequest('GET', `/n${i}`));
        peak = Math.max(peak, s.activeStreams);
        return readText(res.body);
      }),
    );
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => `GET /n${i} 0`));
    expect(peak).toBeLessThanOrEqual(4);
  });

  it('sends a request body larger than the windows and maps Host to :authority, dropping connection fields', async () => {
    const s = await session();
    const big = new Uint8Array(1024 * 1024 + 123).fill(0x62);
    const req = createRequest('POST', '/echo', {
      headers: new HttpHeaders([
        ['Host', 'example.test'],
        ['Connection', 'keep-alive'],
        ['Keep-Alive', 'timeout=5'],
        ['TE', 'trailers, deflate'],
        ['X-Custom', 'yes'],
      ]),
      body: streamBody(
        (function* () {
          for (let i = 0; i < big.length; i += 100_000) yield big.subarray(i, i + 100_000);
        })(),
      ),
    });
    const res = await s.send(req);
    const echoed = await readBody(res.body, 4 << 20);
    expect(echoed.length).toBe(big.length);
    const last = seen.at(-1)!;
    expect(last.headers[':authority']).toBe('example.test');
    expect(last.headers.connection).toBeUndefined();
    expect(last.headers['keep-alive']).toBeUndefined();
    expect(last.headers.te).toBe('trailers');
    expect(last.headers['x-custom']).toBe('yes');
  });

  it('reads a response body larger than its windows (WINDOW_UPDATE as it is read)', async () => {
    const s = await session({ http2: { streamWindowSize: 65535, connectionWindowSize: 65535 } });
    const res = await s.send(createRequest('GET', '/big'));
    const body = await readBody(res.body, 4 << 20);
    expect(body.length).toBe(3 * 1024 * 1024);
  });

  it('carries trailers both ways', async () => {
    const s = await session();
    const trailers = new HttpHeaders([['x-checksum', '99']]);
    const res = await s.send(
      createRequest('POST', '/trailers', {
        headers: { te: 'trailers' },
        body: streamBody([new TextEncoder().encode('payload')], { trailers }),
      }),
    );
    expect(await readText(res.body)).toBe('abc');
    expect(res.body.trailers?.get('grpc-status')).toBe('0');
    expect(res.body.trailers?.get('x-len')).toBe('7');
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.at(-1)!.trailers['x-checksum']).toBe('99');
  });

  it('HEAD and 204 have no body', async () => {
    const s = await session();
    const head = await s.send(createRequest('HEAD', '/x'));
    expect(await readText(head.body)).toBe('');
    const nc = await s.send(createRequest('GET', '/nocontent'));
    expect(nc.status).toBe(204);
    expect(nc.body.kind).toBe('empty');
  });

  it('a response timeout resets the stream; the session goes on', async () => {
    const s = await session();
    await expect(s.send(createRequest('GET', '/hang'), { responseTimeout: 50 })).rejects.toBeInstanceOf(
      HttpTimeoutError,
    );
    const res = await s.send(createRequest('GET', '/after'));
    expect(await readText(res.body)).toBe('GET /after 0');
    expect(s.activeStreams).toBe(0);
  });

  it('a body timeout fails the body read', async () => {
    const s = await session();
    const res = await s.send(createRequest('GET', '/slow-body'), { bodyTimeout: 50 });
    await expect(readText(res.body)).rejects.toBeInstanceOf(HttpTimeoutError);
    expect(s.alive).toBe(true);
  });

  it('an abort resets the stream and fails with HttpAbortedError', async () => {
    const s = await session();
    const ac = new AbortController();
    const p = s.send(createRequest('GET', '/hang'), { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    await expect(p).rejects.toBeInstanceOf(HttpAbortedError);
    expect(s.activeStreams).toBe(0);
    expect(s.alive).toBe(true);
  });

  it('returning a body early cancels its stream', async () => {
    const s = await session();
    const res = await s.send(createRequest('GET', '/big'));
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    await it.return?.();
    expect(s.activeStreams).toBe(0);
    const again = await s.send(createRequest('GET', '/ok'));
    expect(await readText(again.body)).toBe('GET /ok 0');
  });

  it('a body returned after the whole of it arrived gives its unread bytes back to the connection window', async () => {
    // 60,000 B answers on a 131,072 B connection window: two bodies returned unread would
    // exhaust it if their queued bytes were not credited, and the third exchange would hang.
    const s = await session({ http2: { streamWindowSize: 65_535, connectionWindowSize: 131_072 } });
    for (let i = 0; i < 4; i++) {
      const res = await s.send(createRequest('GET', '/60k'));
      // Ended by the server (END_STREAM seen, every DATA frame queued), never read.
      await vi.waitFor(() => expect(s.activeStreams).toBe(0));
      await res.body[Symbol.asyncIterator]().return?.();
    }
    const last = await s.send(createRequest('GET', '/60k'), { responseTimeout: 2000, bodyTimeout: 2000 });
    expect((await readBody(last.body)).byteLength).toBe(60_000);
  });

  it('return() beside a pending read cancels the stream and ends that read', async () => {
    const s = await session();
    const res = await s.send(createRequest('GET', '/slow-body'));
    const it = res.body[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await it.next()).value)).toBe('first');
    const pending = it.next();
    await it.return?.();
    await expect(pending).rejects.toBeInstanceOf(HttpAbortedError);
    expect(s.activeStreams).toBe(0);
  });

  it('REFUSED_STREAM fails as a retryable refusal', async () => {
    const s = await session();
    const err = await s.send(createRequest('GET', '/refuse')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Http2RequestRefusedError);
    expect((err as Http2RequestRefusedError).retryable).toBe(true);
  });

  it('PING measures a round trip', async () => {
    const s = await session();
    expect(await s.ping()).toBeGreaterThanOrEqual(0);
  });
});

describe.each(drivers)('H2ClientSession with a small-window server on the %s driver', (driver) => {
  let server: http2.Http2Server;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await startServer({ initialWindowSize: 1000, maxFrameSize: 16384 }));
  });
  afterAll(() => {
    server.close();
  });

  it('a 300 KB body goes out in window-sized pieces (1000-byte stream window)', async () => {
    const s = new H2ClientSession(await connectTo(driver, port), { authority: 'small' });
    sessions.push(s);
    const body = new Uint8Array(300_000).fill(0x63);
    const res = await s.send(createRequest('POST', '/echo', { body: streamBody([body]) }));
    expect((await readBody(res.body)).length).toBe(body.length);
  });

  it('a 40 KB header block is split into CONTINUATION frames', async () => {
    const s = new H2ClientSession(await connectTo(driver, port), { authority: 'small' });
    sessions.push(s);
    const big = 'v'.repeat(40_000);
    const res = await s.send(createRequest('GET', '/headers', { headers: { 'x-big': big } }));
    expect(res.status).toBe(200);
    await readText(res.body);
    expect(seenBy(server).at(-1)?.headers['x-big']).toBe(big);
  });

  it('a trailers-only answer (HEADERS with END_STREAM, gRPC errors) has an empty body and its fields as headers', async () => {
    const s = new H2ClientSession(await connectTo(driver, port), { authority: 'small' });
    sessions.push(s);
    const res = await s.send(
      createRequest('POST', '/trailers-only', { body: streamBody([new Uint8Array(3)]) }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('grpc-status')).toBe('5');
    expect(await readText(res.body)).toBe('');
    expect(s.activeStreams).toBe(0);
  });
});

describe.each(drivers)('H2ClientSession and GOAWAY on the %s driver', (driver) => {
  it('streams above the last-stream-id fail as never processed; the session takes no new streams', async () => {
    const server = http2.createServer();
    let count = 0;
    server.on('stream', (stream) => {
      count++;
      stream.on('error', () => {});
      if (count === 1) {
        // The first stream is answered after a GOAWAY naming it as the last one processed.
        stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        setTimeout(() => {
          stream.respond({ ':status': 200 });
          stream.end('done');
        }, 20);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const changes: boolean[] = [];
    const s = new H2ClientSession(await connectTo(driver, port), {
      authority: 'localhost',
      onChange: (x) => changes.push(x.accepting),
    });
    sessions.push(s);
    const first = s.send(createRequest('GET', '/1'));
    const later = s.send(createRequest('GET', '/2')).catch((e: unknown) => e);
    const res = await first;
    expect(await readText(res.body)).toBe('done');
    const err = await later;
    expect(err).toBeInstanceOf(Http2RequestRefusedError);
    expect((err as Http2RequestRefusedError).reason).toBe('goaway');
    expect(s.accepting).toBe(false);
    expect(changes).toContain(false);
    expect(() => s.exchange(createRequest('GET', '/3'), {}, { onResponse() {}, onFailure() {} })).toThrow(
      /no new streams/,
    );
    server.close();
  });
});

/**
 * A server that sends its SETTINGS but never acknowledges the client's: the GOAWAY frames the
 * client sends are collected (last stream id, error code).
 */
async function silentSettingsServer(): Promise<{
  port: number;
  goaways: { errorCode: number }[];
  closed: Promise<void>;
  close(): void;
}> {
  const goaways: { errorCode: number }[] = [];
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => {
    closedResolve = r;
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.write(encodeSettings({ maxConcurrentStreams: 10 }));
    let buf = Buffer.alloc(0);
    let prefaceLeft = 24;
    socket.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      if (prefaceLeft > 0) {
        const n = Math.min(prefaceLeft, buf.length);
        buf = buf.subarray(n);
        prefaceLeft -= n;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) break;
        if (buf[3] === FrameType.GOAWAY) goaways.push({ errorCode: buf.readUInt32BE(9 + 4) });
        buf = buf.subarray(9 + length);
      }
    });
    socket.on('close', () => closedResolve());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    goaways,
    closed,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.each(drivers)('H2ClientSession and the SETTINGS acknowledgement on the %s driver', (driver) => {
  it('a server that never acknowledges our SETTINGS: GOAWAY SETTINGS_TIMEOUT, the exchange fails (RFC 9113 6.5.3)', async () => {
    const peer = await silentSettingsServer();
    try {
      const s = new H2ClientSession(await connectTo(driver, peer.port), {
        authority: 'localhost',
        http2: { settingsTimeout: 100 },
      });
      sessions.push(s);
      const err = await s.send(createRequest('GET', '/never')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Http2SessionError);
      expect((err as Http2SessionError).errorCode).toBe(Http2ErrorCode.SETTINGS_TIMEOUT);
      expect(s.alive).toBe(false);
      await peer.closed;
      expect(peer.goaways).toEqual([{ errorCode: Http2ErrorCode.SETTINGS_TIMEOUT }]);
    } finally {
      peer.close();
    }
  });

  it('a server that acknowledged is not cut by the SETTINGS timeout', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const s = new H2ClientSession(await connectTo(driver, port), {
        authority: 'localhost',
        http2: { settingsTimeout: 50 },
      });
      sessions.push(s);
      await s.ping();
      await new Promise((r) => setTimeout(r, 300));
      const res = await s.send(createRequest('GET', '/'));
      expect(await readText(res.body)).toBe('ok');
      expect(s.alive).toBe(true);
    } finally {
      server.close();
    }
  });
});

/**
 * A hand-made server: SETTINGS (and the ACK of the client's), then every request HEADERS is
 * answered with a trailers-only response made of `fields(path)` as given (no validation: the
 * malformed answers no real server sends). Records the RST_STREAM codes the client sends.
 */
async function rawAnswerServer(fields: (streamId: number) => [string, string][]): Promise<{
  port: number;
  resets: { streamId: number; errorCode: number }[];
  close(): void;
}> {
  const resets: { streamId: number; errorCode: number }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const enc = new HpackEncoder();
    socket.write(Buffer.concat([encodeSettings({}), encodeSettingsAck()]));
    let buf = Buffer.alloc(0);
    let prefaceLeft = 24;
    socket.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      if (prefaceLeft > 0) {
        const n = Math.min(prefaceLeft, buf.length);
        buf = buf.subarray(n);
        prefaceLeft -= n;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) break;
        const streamId = buf.readUInt32BE(5) & 0x7fffffff;
        if (buf[3] === FrameType.HEADERS)
          socket.write(encodeHeaders(streamId, enc.encode(fields(streamId)), { endStream: true }));
        if (buf[3] === FrameType.RST_STREAM) resets.push({ streamId, errorCode: buf.readUInt32BE(9) });
        buf = buf.subarray(9 + length);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    resets,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.each(drivers)('H2ClientSession and malformed response heads on the %s driver', (driver) => {
  it('a response with an uppercase, connection-specific or pseudo-after-regular field is reset (PROTOCOL_ERROR); good ones pass', async () => {
    const bad: Record<number, [string, string][]> = {
      1: [
        [':status', '200'],
        ['X-Upper', '1'],
      ],
      3: [
        [':status', '200'],
        ['connection', 'close'],
      ],
      5: [
        ['x-a', '1'],
        [':status', '200'],
      ],
      7: [
        [':status', '200'],
        ['x-v', ' padded'],
      ],
    };
    const peer = await rawAnswerServer(
      (id) =>
        bad[id] ?? [
          [':status', '204'],
          ['x-good', 'yes'],
          ['set-cookie', 'a=1'],
          ['set-cookie', 'b=2'],
        ],
    );
    try {
      const s = new H2ClientSession(await connectTo(driver, peer.port), { authority: 'localhost' });
      sessions.push(s);
      for (const id of [1, 3, 5, 7]) {
        const err = await s.send(createRequest('GET', `/${id}`)).catch((e: unknown) => e);
        expect(err, `stream ${id}`).toBeInstanceOf(Http2StreamResetError);
        expect((err as Http2StreamResetError).errorCode).toBe(Http2ErrorCode.PROTOCOL_ERROR);
      }
      const ok = await s.send(createRequest('GET', '/9'));
      expect(ok.status).toBe(204);
      expect([...ok.headers]).toEqual([
        ['x-good', 'yes'],
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
      ]);
      expect(peer.resets.map((r) => [r.streamId, r.errorCode])).toEqual(
        [1, 3, 5, 7].map((id) => [id, Http2ErrorCode.PROTOCOL_ERROR]),
      );
      expect(s.alive).toBe(true);
    } finally {
      peer.close();
    }
  });
});
