/**
 * H2Connector against node:http2 servers, on every runtime driver: h2c by prior knowledge for
 * `http` endpoints and h2 by ALPN over TlsConnector for `https` ones (a server that does not pick
 * h2 is a ConnectError), one shared session for many concurrent requests, a request refused
 * (REFUSED_STREAM) or above a GOAWAY's last-stream-id sent again on another connection, and
 * read timeouts as TransportErrors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequest, readText } from '@loch/http';
import { ConnectError, endpoint, ReadError, UnifiedL4Connector } from '@loch/transports';
import { H2Connector, H2NotNegotiatedError } from '@loch/transports/h2';
import { TlsConnector } from '@loch/transports/tls';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, eventually, pki } from './harness.js';

const drivers = await driverCases();

let dir: string;
let caFile: string;
let plain: http2.Http2Server;
let secure: http2.Http2SecureServer;
let plainPort: number;
let securePort: number;
let sessions = 0;
/** The plain server's open sessions (a test closes them under the client). */
const live = new Set<http2.ServerHttp2Session>();
/** A server that says GOAWAY(last-stream-id 0) to every session as it starts: nothing is processed. */
let leaving: http2.Http2Server;
let leavingPort: number;
let leavingSessions = 0;
/** Paths refused once (REFUSED_STREAM) before being served. */
const refusedOnce = new Set<string>();
/** `/open-body*` streams by path: settles with the stream's RST_STREAM code once it closes. */
const openBodies = new Map<string, Promise<number>>();

function handler(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on('error', () => {});
  const path = String(headers[':path']);
  if (path === '/hang') return;
  if (path.startsWith('/open-body')) {
    // A head and a first DATA frame, then nothing: the body stays open until the client lets go.
    openBodies.set(path, new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode))));
    stream.respond({ ':status': 200 });
    stream.write('x');
    return;
  }
  if (path.startsWith('/refuse-once') && !refusedOnce.has(path)) {
    refusedOnce.add(path);
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    return;
  }
  stream.respond({ ':status': 200 });
  stream.end(`${headers[':method']} ${path} ${headers[':authority']}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'loch-h2-connector-'));
  const p = pki(dir);
  caFile = p.caFile;
  plain = http2.createServer({ settings: { maxConcurrentStreams: 8 } });
  plain.on('stream', handler);
  plain.on('session', (session) => {
    sessions++;
    live.add(session);
    session.on('close', () => live.delete(session));
  });
  secure = http2.createSecureServer({ cert: p.cert, key: p.key, allowHTTP1: true });
  secure.on('stream', handler);
  secure.on('request', (req, res) => {
    // An HTTP/1.1 client (ALPN http/1.1) lands here.
    if (req.httpVersion !== '2.0') res.end('h1');
  });
  leaving = http2.createServer();
  leaving.on('session', (session) => {
    leavingSessions++;
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0);
  });
  leaving.on('stream', (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
  await new Promise<void>((r) => leaving.listen(0, '127.0.0.1', r));
  leavingPort = (leaving.address() as AddressInfo).port;
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  plainPort = (plain.address() as AddressInfo).port;
  securePort = (secure.address() as AddressInfo).port;
});

afterAll(() => {
  plain.close();
  secure.close();
  leaving.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(drivers)('H2Connector on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: H2Connector | undefined;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });
  afterEach(async () => {
    connector?.close();
    connector = undefined;
    await runtime.close();
  });

  function make(options = {}): H2Connector {
    connector = new H2Connector(new TlsConnector(new UnifiedL4Connector({ runtime })), options);
    return connector;
  }

  run('h2c: 50 concurrent requests share one session', async () => {
    const c = make();
    const key = endpoint({ host: '127.0.0.1', port: plainPort });
    const before = sessions;
    const texts = await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        readText((await c.request(key, createRequest('GET', `/r${i}`))).body),
      ),
    );
    expect(texts).toEqual(Array.from({ length: 50 }, (_, i) => `GET /r${i} 127.0.0.1:${plainPort}`));
    expect(sessions - before).toBe(1);
    expect(c.stats().streams).toBe(0);
  });

  run('h2 by ALPN over TLS', async () => {
    const c = make();
    const key = endpoint({
      scheme: 'https',
      host: '127.0.0.1',
      port: securePort,
      serverName: 'localhost',
      alpn: ['h2'],
      ca: caFile,
    });
    const res = await c.request(key, createRequest('GET', '/tls'));
    expect(res.version).toBe('2');
    expect(await readText(res.body)).toBe(`GET /tls 127.0.0.1:${securePort}`);
  });

  run('an https upstream that does not pick h2 is a ConnectError', async () => {
    const c = make();
    const key = endpoint({
      scheme: 'https',
      host: '127.0.0.1',
      port: securePort,
      serverName: 'localhost',
      alpn: ['http/1.1'],
      ca: caFile,
    });
    const err = await c.request(key, createRequest('GET', '/x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).cause).toBeInstanceOf(H2NotNegotiatedError);
    expect(((err as ConnectError).cause as H2NotNegotiatedError).alpnProtocol).toBe('http/1.1');
  });

  run('a REFUSED_STREAM request is sent again', async () => {
    const c = make();
    const key = endpoint({ host: '127.0.0.1', port: plainPort });
    const res = await c.request(key, createRequest('GET', `/refuse-once-${name}`));
    expect(await readText(res.body)).toContain('/refuse-once');
    expect(c.stats().retried).toBe(1);
  });

  run(
    'a request above a GOAWAY last-stream-id is retried on a new session, then fails as retryable',
    async () => {
      const c = make({ maxRetries: 1 });
      const key = endpoint({ host: '127.0.0.1', port: leavingPort });
      const before = leavingSessions;
      const err = await c.request(key, createRequest('GET', '/goaway')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReadError);
      expect((err as ReadError).retryable).toBe(true);
      expect(c.stats().retried).toBe(1);
      expect(leavingSessions - before).toBe(2);
    },
  );

  run('a session the upstream closes leaves the pool; the next request opens a new one', async () => {
    const c = make();
    const key = endpoint({ host: '127.0.0.1', port: plainPort });
    const res = await c.request(key, createRequest('GET', '/first'));
    await readText(res.body);
    expect(c.stats().connections).toBe(1);
    for (const s of live) s.destroy();
    expect(await eventually(() => c.stats().connections === 0)).toBe(true);
    const again = await c.request(key, createRequest('GET', '/second'));
    expect(await readText(again.body)).toContain('/second');
    expect(c.stats().connections).toBe(1);
  });

  run(
    'an onResponse hook that throws: the caller gets its error, the stream is reset and its slot free',
    async () => {
      const c = make();
      const key = endpoint({ host: '127.0.0.1', port: plainPort });
      const path = `/open-body-${name}`;
      const boom = new Error('hook failed');
      const err = await c
        .request(key, createRequest('GET', path), {
          onResponse: () => {
            throw boom;
          },
        })
        .catch((e: unknown) => e);
      // The hook's own error, not a ReadError "before the response" a proxy would send again.
      expect(err).toBe(boom);
      // The slot is back at once (it was held until the 60 s body deadline), and the server saw
      // the stream reset with CANCEL.
      expect(c.stats().streams).toBe(0);
      expect(await openBodies.get(path)).toBe(http2.constants.NGHTTP2_CANCEL);
      // The session goes on serving.
      const res = await c.request(key, createRequest('GET', '/after-hook'));
      expect(await readText(res.body)).toBe(`GET /after-hook 127.0.0.1:${plainPort}`);
      expect(c.stats().connections).toBe(1);
    },
  );

  run('a read timeout is a ReadError ERR_TRANSPORT_READ_TIMEOUT', async () => {
    const c = make();
    const key = endpoint({ host: '127.0.0.1', port: plainPort });
    const err = await c
      .request(key, createRequest('GET', '/hang'), { readTimeout: 50 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReadError);
    expect((err as ReadError).code).toBe('ERR_TRANSPORT_READ_TIMEOUT');
  });
});
