/**
 * HTTP/2 upstreams through `loch run` (`upstream_http_version = "http2"`), end to end on every
 * available driver: an HTTP/1.1 client (node:http) and an h2c client (node:http2) -> loch -> a
 * node:http2 h2c upstream. The upstream sees HTTP/2 with :authority from Host (or the client's
 * :authority), no connection-specific fields, the body and trailers; the clients see its answer,
 * trailers included over h2; many requests share one upstream session. `"auto"` speaks h2 to an
 * https upstream that picks it by ALPN and HTTP/1.1 to one that picks http/1.1.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

interface Seen {
  method: string;
  path: string;
  authority: string;
  headers: http2.IncomingHttpHeaders;
  length: number;
  trailers: http2.IncomingHttpHeaders;
}

function upstream(): Promise<{ server: http2.Http2Server; port: number; sessions: () => number }> {
  let sessions = 0;
  const server = http2.createServer();
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const parts: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('data', (b: Buffer) => parts.push(b));
    stream.on('end', () => {
      const path = String(headers[':path']);
      if (path === '/big') {
        stream.respond({ ':status': 200, 'content-length': String(2 * 1024 * 1024) });
        stream.end(Buffer.alloc(2 * 1024 * 1024, 0x41));
        return;
      }
      const seen: Seen = {
        method: String(headers[':method']),
        path,
        authority: String(headers[':authority']),
        headers,
        length: Buffer.concat(parts).length,
        trailers,
      };
      if (path === '/trailers') {
        stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-status': 'done' }));
        stream.end(JSON.stringify(seen));
        return;
      }
      stream.respond({ ':status': 201, 'content-type': 'application/json', 'x-up': 'h2' });
      stream.end(JSON.stringify(seen));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port, sessions: () => sessions }),
    ),
  );
}

function h1request(
  port: number,
  options: http.RequestOptions,
  body?: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...options }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

function h2request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let h: http2.IncomingHttpHeaders = {};
    let t: http2.IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    req.on('response', (r) => {
      h = r;
    });
    req.on('trailers', (r) => {
      t = r;
    });
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve({ headers: h, body: Buffer.concat(parts), trailers: t }));
    req.on('error', reject);
    req.end(body);
  });
}

describe.each(drivers)('clients -> loch -> HTTP/2 upstream (h2c) on the %s driver', (driver) => {
  let loch: Loch;
  let up: Awaited<ReturnType<typeof upstream>>;
  let port: number;
  beforeAll(async () => {
    up = await upstream();
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-h2-upstream-'),
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
upstream_http_version = "http2"

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    up?.server.close();
  });

  it('HTTP/1.1 client: Host becomes :authority, connection fields are dropped, the body goes up', async () => {
    const payload = Buffer.alloc(200_000, 0x62);
    const res = await h1request(
      port,
      {
        method: 'POST',
        path: '/h1?x=1',
        headers: {
          host: 'example.test',
          connection: 'keep-alive',
          'keep-alive': 'timeout=5',
          'x-foo': 'bar',
        },
      },
      payload,
    );
    expect(res.status).toBe(201);
    expect(res.headers['x-up']).toBe('h2');
    const seen = JSON.parse(res.body.toString()) as Seen;
    expect(seen).toMatchObject({
      method: 'POST',
      path: '/h1?x=1',
      authority: 'example.test',
      length: payload.length,
    });
    expect(seen.headers['x-foo']).toBe('bar');
    expect(seen.headers.connection).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers.host).toBeUndefined();
  });

  it('HTTP/1.1 client: a 2 MiB answer', async () => {
    const res = await h1request(port, { path: '/big' });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(2 * 1024 * 1024);
  });

  it('h2c client: :authority kept, request trailers and response trailers relayed, many streams on one upstream session', async () => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    try {
      const before = up.sessions();
      const t = await new Promise<{
        headers: http2.IncomingHttpHeaders;
        body: Buffer;
        trailers: http2.IncomingHttpHeaders;
      }>((resolve, reject) => {
        const req = s.request(
          { ':method': 'POST', ':path': '/trailers', ':authority': 'h2.example', te: 'trailers' },
          { waitForTrailers: true },
        );
        req.on('wantTrailers', () => req.sendTrailers({ 'x-sum': '7' }));
        let h: http2.IncomingHttpHeaders = {};
        let tr: http2.IncomingHttpHeaders = {};
        const parts: Buffer[] = [];
        req.on('response', (r) => {
          h = r;
        });
        req.on('trailers', (r) => {
          tr = r;
        });
        req.on('data', (b: Buffer) => parts.push(b));
        req.on('end', () => resolve({ headers: h, body: Buffer.concat(parts), trailers: tr }));
        req.on('error', reject);
        req.end('payload');
      });
      expect(t.headers[':status']).toBe(200);
      expect(t.trailers['x-status']).toBe('done');
      const seen = JSON.parse(t.body.toString()) as Seen;
      expect(seen).toMatchObject({ authority: 'h2.example', length: 7 });
      expect(seen.trailers['x-sum']).toBe('7');
      const all = await Promise.all(
        Array.from({ length: 30 }, (_, i) => h2request(s, { ':path': `/n${i}`, ':authority': 'h2.example' })),
      );
      for (const [i, r] of all.entries()) expect((JSON.parse(r.body.toString()) as Seen).path).toBe(`/n${i}`);
      expect(up.sessions() - before).toBeLessThanOrEqual(1);
    } finally {
      s.close();
    }
  });
});

/** A self-signed certificate for 127.0.0.1 (up.pem, up.key in dir): its PEM texts. */
function selfSigned(dir: string): { cert: string; key: string } {
  const files = selfSignedCertificate(dir, 'up');
  return { cert: readFileSync(files.chain, 'utf8'), key: readFileSync(files.key, 'utf8') };
}

describe.each(drivers)('upstream_http_version = "auto" on the %s driver', (driver) => {
  let loch: Loch;
  let h2up: http2.Http2SecureServer;
  let h1up: https.Server;
  let port: number;
  beforeAll(async () => {
    const dir = tempDir('loch-h2-auto-');
    const pki = selfSigned(dir);
    h2up = http2.createSecureServer({ ...pki, allowHTTP1: true }, (req, res) => {
      res.end(`h2up ${req.httpVersion} ${req.url}`);
    });
    h1up = https.createServer(pki, (req, res) => {
      res.end(`h1up ${req.httpVersion} ${req.url}`);
    });
    await new Promise<void>((r) => h2up.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => h1up.listen(0, '127.0.0.1', r));
    const h2port = (h2up.address() as { port: number }).port;
    const h1port = (h1up.address() as { port: number }).port;
    port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
upstream_http_version = "auto"

[[servers.web.routes]]
path = "/two/"
upstreams = [{ endpoint = "https://127.0.0.1:${h2port}", tls = { ca = "up.pem" } }]

[[servers.web.routes]]
path = "/one/"
upstreams = [{ endpoint = "https://127.0.0.1:${h1port}", tls = { ca = "up.pem" } }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    h2up?.close();
    h1up?.close();
  });

  it('h2 to the upstream that picks it by ALPN, HTTP/1.1 to the one that does not (also after it learned)', async () => {
    for (let i = 0; i < 2; i++) {
      const two = await h1request(port, { path: `/two/${i}` });
      expect(two.body.toString()).toBe(`h2up 2.0 /two/${i}`);
      const one = await h1request(port, { path: `/one/${i}` });
      expect(one.body.toString()).toBe(`h1up 1.1 /one/${i}`);
    }
  });
});
