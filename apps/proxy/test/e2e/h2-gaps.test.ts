/**
 * HTTP/2 <-> HTTP/1.1 mapping details through `loch run`, end to end on every available driver
 * (issue 14's smaller gaps): trailers both ways across the boundary (an h2 client's request
 * trailers reach an HTTP/1.1 upstream as chunked trailers; an HTTP/1.1 upstream's chunked
 * trailers reach the h2 client as a trailing HEADERS frame; a request framed by content-length
 * cannot carry them; the same from an HTTP/1.1 client to an h2 upstream and back), cookies
 * (several h2 `cookie` fields reach an HTTP/1.1 upstream as one field joined with "; ", RFC 9113
 * §8.2.3; an HTTP/1.1 Cookie sent to an h2 upstream is split into one field per cookie), and `http2 = false` on a TLS listener (ALPN offers only http/1.1: openssl s_client
 * and node:tls asking for h2 get http/1.1, HTTPS/1.1 is served).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const run = promisify(execFile);
const drivers = availableDrivers();

/** What the HTTP/1.1 upstream saw of a request. */
interface Seen {
  version: string;
  /** Field names and values as they came on the wire (node:http joins repeated cookies). */
  rawHeaders: string[];
  /** Trailer fields as they came on the wire, after the last chunk. */
  rawTrailers: string[];
  length: number;
}

/**
 * An HTTP/1.1 upstream: `/echo` answers what it saw as JSON; `/trailers-out` answers a chunked
 * body with trailers declared in `Trailer`.
 */
function h1Upstream(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      if (req.url === '/trailers-out') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, x-count' });
        res.write('abc');
        res.addTrailers({ 'x-checksum': 'e80b5017098950fc', 'x-count': '6' });
        res.end('def');
        return;
      }
      const seen: Seen = {
        version: req.httpVersion,
        rawHeaders: req.rawHeaders,
        rawTrailers: req.rawTrailers,
        length: Buffer.concat(parts).length,
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

/**
 * An HTTP/2 upstream: answers what it saw as JSON (the request's fields as they came, one entry
 * per field, its trailers and body length); `/trailers-out` answers with trailers.
 */
function h2Upstream(): Promise<{ server: http2.Http2Server; port: number }> {
  const server = http2.createServer();
  // node passes the fields as they came (one entry per field) as a fourth argument, untyped.
  server.on('stream', ((
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    _f: unknown,
    rawHeaders: string[],
  ) => {
    stream.on('error', () => {});
    let trailers: http2.IncomingHttpHeaders = {};
    let length = 0;
    stream.on('trailers', (t: http2.IncomingHttpHeaders) => {
      trailers = t;
    });
    stream.on('data', (b: Buffer) => {
      length += b.length;
    });
    stream.on('end', () => {
      if (headers[':path'] === '/trailers-out') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () =>
          stream.sendTrailers({ 'x-checksum': 'e80b5017098950fc', 'x-count': '6' }),
        );
        stream.write('abc');
        stream.end('def');
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ rawHeaders, trailers, length }));
    });
  }) as (stream: http2.ServerHttp2Stream) => void);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

/** The values of every field named `name` (lowercase) in a flat [name, value, ...] list. */
function fieldValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

interface H2Answer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | null;
  /** HEADERS frames after the response head (0 or 1), and whether the last carried END_STREAM. */
  trailerFrames: number;
  trailersEndStream: boolean;
}

/** One request over `session`; `trailers` are sent after `body` (waitForTrailers). */
function h2request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
  trailers?: http2.OutgoingHttpHeaders,
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, trailers ? { waitForTrailers: true } : {});
    if (trailers) req.on('wantTrailers', () => req.sendTrailers(trailers));
    let h: http2.IncomingHttpHeaders = {};
    let t: http2.IncomingHttpHeaders | null = null;
    let trailerFrames = 0;
    let trailersEndStream = false;
    const parts: Buffer[] = [];
    req.on('response', (r) => {
      h = r;
    });
    req.on('trailers', (r, flags: number) => {
      t = r;
      trailerFrames++;
      trailersEndStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () =>
      resolve({ headers: h, body: Buffer.concat(parts), trailers: t, trailerFrames, trailersEndStream }),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One HTTP/1.1 request; a `body` is sent chunked with `trailers` after it. Resolves with the
 * answer, its trailers and its raw head fields.
 */
function h1request(
  port: number,
  options: http.RequestOptions,
  body?: Buffer,
  trailers?: Record<string, string>,
): Promise<{ status: number; body: Buffer; rawHeaders: string[]; rawTrailers: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...options }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          body: Buffer.concat(parts),
          rawHeaders: res.rawHeaders,
          rawTrailers: res.rawTrailers,
        }),
      );
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    if (trailers !== undefined) req.addTrailers(trailers);
    req.end();
  });
}

describe.each(drivers)(
  'h2c client -> loch -> HTTP/1.1 upstream: trailers and cookies, on the %s driver',
  (driver) => {
    let loch: Loch;
    let up: Awaited<ReturnType<typeof h1Upstream>>;
    let port: number;
    let session: http2.ClientHttp2Session;
    beforeAll(async () => {
      up = await h1Upstream();
      port = await freePort();
      loch = await startLoch(
        tempDir('loch-h2-gaps-'),
        `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}" }]
`,
        { LOCH_DRIVER: driver },
      );
      session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => {});
    });
    afterAll(async () => {
      session?.close();
      await loch?.stop();
      up?.server.closeAllConnections();
      await new Promise((r) => up?.server.close(r));
    });

    it("the client's request trailers reach the upstream as chunked trailers", async () => {
      const payload = Buffer.alloc(40_000, 0x71);
      const r = await h2request(
        session,
        { ':method': 'POST', ':path': '/echo', ':authority': 'gaps.test', te: 'trailers' },
        payload,
        { 'x-checksum': '3a7bd3e2360a3d29', 'x-parts': '1' },
      );
      expect(r.headers[':status']).toBe(200);
      const seen = JSON.parse(r.body.toString()) as Seen;
      expect(seen.version).toBe('1.1');
      expect(seen.length).toBe(payload.length);
      // Chunked: the only HTTP/1.1 framing that carries trailers.
      expect(fieldValues(seen.rawHeaders, 'transfer-encoding')).toEqual(['chunked']);
      expect(fieldValues(seen.rawHeaders, 'content-length')).toEqual([]);
      expect(fieldValues(seen.rawTrailers, 'x-checksum')).toEqual(['3a7bd3e2360a3d29']);
      expect(fieldValues(seen.rawTrailers, 'x-parts')).toEqual(['1']);
      expect(seen.rawTrailers.length).toBe(4);
    });

    it("the upstream's chunked trailers reach the client as one trailing HEADERS frame with END_STREAM", async () => {
      const r = await h2request(session, {
        ':path': '/trailers-out',
        ':authority': 'gaps.test',
        te: 'trailers',
      });
      expect(r.headers[':status']).toBe(200);
      expect(r.body.toString()).toBe('abcdef');
      // Transfer-Encoding is connection-specific (RFC 9113 §8.2.2): not in an h2 head.
      expect(r.headers['transfer-encoding']).toBeUndefined();
      expect(r.trailerFrames).toBe(1);
      expect(r.trailersEndStream).toBe(true);
      expect(r.trailers?.['x-checksum']).toBe('e80b5017098950fc');
      expect(r.trailers?.['x-count']).toBe('6');
    });

    it('request trailers of a body framed by content-length cannot be carried: the upstream gets the body, no trailers', async () => {
      const payload = Buffer.from('0123456789');
      const r = await h2request(
        session,
        {
          ':method': 'POST',
          ':path': '/echo',
          ':authority': 'gaps.test',
          'content-length': String(payload.length),
        },
        payload,
        { 'x-late': 'dropped' },
      );
      expect(r.headers[':status']).toBe(200);
      const seen = JSON.parse(r.body.toString()) as Seen;
      expect(seen.length).toBe(10);
      expect(fieldValues(seen.rawHeaders, 'content-length')).toEqual(['10']);
      expect(fieldValues(seen.rawHeaders, 'transfer-encoding')).toEqual([]);
      expect(seen.rawTrailers).toEqual([]);
    });

    it('several cookie fields reach the upstream as one Cookie field joined with "; " (RFC 9113 8.2.3)', async () => {
      const r = await h2request(session, {
        ':path': '/echo',
        ':authority': 'gaps.test',
        cookie: ['a=1', 'session=abcdefghijklmnopqrstuvwxyz', 'c=3'],
      });
      const seen = JSON.parse(r.body.toString()) as Seen;
      expect(fieldValues(seen.rawHeaders, 'cookie')).toEqual([
        'a=1; session=abcdefghijklmnopqrstuvwxyz; c=3',
      ]);
    });
  },
);

describe.each(drivers)(
  'HTTP/1.1 client -> loch -> HTTP/2 upstream: trailers and cookies, on the %s driver',
  (driver) => {
    let loch: Loch;
    let up: Awaited<ReturnType<typeof h2Upstream>>;
    let port: number;
    beforeAll(async () => {
      up = await h2Upstream();
      port = await freePort();
      loch = await startLoch(
        tempDir('loch-h2-gaps-up-'),
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
      await new Promise((r) => up?.server.close(r));
    });

    it("the client's chunked trailers reach the h2 upstream as a trailing HEADERS frame", async () => {
      const payload = Buffer.alloc(30_000, 0x77);
      const r = await h1request(
        port,
        { method: 'POST', path: '/up', headers: { 'transfer-encoding': 'chunked', trailer: 'x-checksum' } },
        payload,
        { 'x-checksum': '3a7bd3e2360a3d29' },
      );
      expect(r.status).toBe(200);
      const seen = JSON.parse(r.body.toString()) as { length: number; trailers: Record<string, string> };
      expect(seen.length).toBe(payload.length);
      expect(seen.trailers['x-checksum']).toBe('3a7bd3e2360a3d29');
    });

    it("the h2 upstream's trailers reach the HTTP/1.1 client as chunked trailers", async () => {
      const r = await h1request(port, { path: '/trailers-out', headers: { te: 'trailers' } });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('abcdef');
      expect(fieldValues(r.rawHeaders, 'transfer-encoding')).toEqual(['chunked']);
      expect(fieldValues(r.rawTrailers, 'x-checksum')).toEqual(['e80b5017098950fc']);
      expect(fieldValues(r.rawTrailers, 'x-count')).toEqual(['6']);
    });

    it('the cookies reach the upstream (one field or several, the same pairs in order)', async () => {
      const r = await h1request(port, { path: '/c', headers: { cookie: 'a=1; b=2; c=3' } });
      expect(r.status).toBe(200);
      const raw = (JSON.parse(r.body.toString()) as { rawHeaders: string[] }).rawHeaders;
      expect(fieldValues(raw, 'cookie').join('; ')).toBe('a=1; b=2; c=3');
    });

    // RFC 9113 §8.2.3 allows splitting a Cookie into one field per cookie so that HPACK indexes
    // each (a changing cookie does not re-send the others); empty pieces and the SP/HTAB around
    // a pair go, nothing inside a pair changes.
    it('an HTTP/1.1 Cookie field is split into one cookie field per cookie for HPACK', async () => {
      const r = await h1request(port, { path: '/c', headers: { cookie: 'a=1; b=2;;\tc=x y ; ' } });
      const raw = (JSON.parse(r.body.toString()) as { rawHeaders: string[] }).rawHeaders;
      expect(fieldValues(raw, 'cookie')).toEqual(['a=1', 'b=2', 'c=x y']);
    });
  },
);

describe.each(drivers)('http2 = false on a TLS listener, on the %s driver', (driver) => {
  let loch: Loch;
  let up: Awaited<ReturnType<typeof h1Upstream>>;
  /** The listener with `http2 = false`. */
  let off: number;
  /** The same listener with the default (h2 offered): the control. */
  let on: number;
  let ca: string;
  beforeAll(async () => {
    up = await h1Upstream();
    const dir = tempDir('loch-h2-gaps-tls-');
    const cert = selfSignedCertificate(dir, 'localhost', ['localhost']);
    ca = cert.chain;
    off = await freePort();
    on = await freePort();
    const server = (name: string, p: number, extra: string) => `
[servers.${name}]
listener = { type = "socket", value = "127.0.0.1:${p}" }
tls = { chain = "${cert.chain}", key = "${cert.key}" }${extra}

[[servers.${name}.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}" }]
`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
${server('off', off, '\nhttp2 = false')}
${server('on', on, '')}
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    up?.server.closeAllConnections();
    await new Promise((r) => up?.server.close(r));
  });

  /** What `openssl s_client -alpn h2,http/1.1` reports the server chose. */
  async function opensslAlpn(port: number): Promise<string> {
    const child = run('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-alpn',
      'h2,http/1.1',
    ]);
    child.child.stdin?.end();
    const { stdout, stderr } = await child;
    const text = stdout + stderr;
    const m = /ALPN protocol: (\S+)/.exec(text);
    if (m) return m[1]!;
    if (/No ALPN negotiated/.test(text)) return 'none';
    throw new Error(`openssl s_client: no ALPN line in\n${text}`);
  }

  /** What node:tls offering h2 and http/1.1 was given. */
  function nodeAlpn(port: number): Promise<string | false> {
    return new Promise((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port, servername: 'localhost', ca: pem(ca), ALPNProtocols: ['h2', 'http/1.1'] },
        () => {
          const p = s.alpnProtocol;
          s.destroy();
          resolve(p ?? false);
        },
      );
      s.on('error', reject);
    });
  }

  it('ALPN does not offer h2: openssl s_client and node:tls asking for h2,http/1.1 get http/1.1', async () => {
    expect(await opensslAlpn(on)).toBe('h2');
    expect(await opensslAlpn(off)).toBe('http/1.1');
    expect(await nodeAlpn(on)).toBe('h2');
    expect(await nodeAlpn(off)).toBe('http/1.1');
  });

  it('HTTP/1.1 over TLS is still served, and an h2-only client is refused the protocol', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port: off, servername: 'localhost', ca: pem(ca), path: '/echo', agent: false },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (b: Buffer) => parts.push(b));
          res.on('end', () => resolve(Buffer.concat(parts).toString()));
        },
      );
      req.on('error', reject);
    });
    expect((JSON.parse(body) as Seen).version).toBe('1.1');
    // A client that speaks only h2 gets no protocol it can use.
    const chosen = await new Promise<string | false>((resolve) => {
      const s = tls.connect(
        { host: '127.0.0.1', port: off, servername: 'localhost', ca: pem(ca), ALPNProtocols: ['h2'] },
        () => {
          const p = s.alpnProtocol;
          s.destroy();
          resolve(p ?? false);
        },
      );
      // OpenSSL servers may also end the handshake with no_application_protocol.
      s.on('error', () => resolve(false));
    });
    expect(chosen).not.toBe('h2');
  });
});

/** The text of a PEM file. */
function pem(file: string): string {
  return readFileSync(file, 'utf8');
}
