/**
 * HTTP/2 `:path` values are normalized before route matching exactly as HTTP/1.1 request
 * targets are (src/routing/path-normalizer.ts), over h2c (prior knowledge) and h2 (TLS, ALPN),
 * on every available driver. Two routes: `/api/` to upstream A (public) and `/admin/` to
 * upstream B (internal). Matched on the raw `:path`, `/api/%2e%2e/admin/x` would take the /api/
 * route and reach A, which resolves it to /admin/x: the /admin/ route's rule bypassed. Loch
 * must route it to B as `/admin/x`, refuse what HTTP/1.1 refuses (a path above the root, an
 * encoded slash or NUL, a malformed escape) with the same 400, and forward the same bytes.
 * node:http2 sends `:path` as given (curl and browsers would normalize it first). Descriptors
 * and RSS are read from /proc before and after 40 sessions (and 180 HTTP/1.1 connections)
 * sending every such path.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, type Loch, rawExchange, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 102.4) / 10;
}

/** A new h2c or h2 (TLS, ALPN) session to loch. */
async function connect(
  protocol: 'h2c' | 'h2',
  plainPort: number,
  tlsPort: number,
): Promise<http2.ClientHttp2Session> {
  const session =
    protocol === 'h2c'
      ? http2.connect(`http://127.0.0.1:${plainPort}`)
      : http2.connect(`https://127.0.0.1:${tlsPort}`, { rejectUnauthorized: false, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return session;
}

/** Every path the tests below send: rewritten, routed elsewhere, refused. */
const ABUSIVE = [
  '/api/%2e%2e/admin/x',
  '/api/.%2e/admin/x',
  '/api/./%2e/y/../z',
  '/api/%7euser/caf%c3%a9/%41%2d%5F/%3a?q=%2e%2e/%7e',
  '/%2e%2e/admin/x',
  '/api/../../admin/x',
  '/api/..%2F..%2Fadmin',
  '/api/a%00',
  '/api/a%zz',
];

/** A node:http upstream answering `<name> <url>`. */
function namedUpstream(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name} ${req.url}`);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

function get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path });
    let status = 0;
    const parts: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve({ status, body: Buffer.concat(parts).toString() }));
    req.on('error', reject);
    req.end();
  });
}

describe.each(drivers)('HTTP/2 :path normalization before routing on the %s driver', (driver) => {
  let loch: Loch;
  let a: { server: Server; port: number };
  let b: { server: Server; port: number };
  let plainPort: number;
  let tlsPort: number;

  beforeAll(async () => {
    a = await namedUpstream('A');
    b = await namedUpstream('B');
    const dir = tempDir('loch-h2-path-');
    selfSignedCertificate(dir, 'localhost', ['localhost']);
    plainPort = await freePort();
    tlsPort = await freePort();
    const routes = (server: string) => `
[[servers.${server}.routes]]
path = "/api/"
upstreams = [{ endpoint = "http://127.0.0.1:${a.port}" }]

[[servers.${server}.routes]]
path = "/admin/"
upstreams = [{ endpoint = "http://127.0.0.1:${b.port}" }]
`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.plain]
listener = { type = "socket", value = "127.0.0.1:${plainPort}" }
${routes('plain')}
[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${tlsPort}" }

[servers.secure.tls]
certificates = [{ chain = "localhost.pem", key = "localhost.key" }]
${routes('secure')}`,
      { LOCH_DRIVER: driver },
    );
  });

  afterAll(async () => {
    await loch?.stop();
    a?.server.close();
    b?.server.close();
  });

  describe.each(['h2c', 'h2'] as const)('over %s', (protocol) => {
    let session: http2.ClientHttp2Session;

    beforeAll(async () => {
      session = await connect(protocol, plainPort, tlsPort);
      if (protocol === 'h2') expect((session.socket as import('node:tls').TLSSocket).alpnProtocol).toBe('h2');
    });

    afterAll(() => {
      session?.close();
    });

    it('the routes work as written', async () => {
      expect(await get(session, '/api/x')).toEqual({ status: 200, body: 'A /api/x' });
      expect(await get(session, '/admin/x')).toEqual({ status: 200, body: 'B /admin/x' });
    });

    it('encoded dot segments cannot reach /admin/ through the /api/ route', async () => {
      for (const dots of ['%2e%2e', '%2E%2E', '.%2e', '%2e.', '..']) {
        expect(await get(session, `/api/${dots}/admin/x`), dots).toEqual({ status: 200, body: 'B /admin/x' });
      }
      expect(await get(session, '/api/./%2e/y/../z')).toEqual({ status: 200, body: 'A /api/z' });
    });

    it('unreserved escapes are decoded, the others uppercased, the query untouched, as over HTTP/1.1', async () => {
      expect(await get(session, '/api/%7euser/caf%c3%a9/%41%2d%5F/%3a?q=%2e%2e/%7e')).toEqual({
        status: 200,
        body: 'A /api/~user/caf%C3%A9/A-_/%3A?q=%2e%2e/%7e',
      });
    });

    it('refuses with 400 what HTTP/1.1 refuses: above the root, encoded slash or NUL, bad escape', async () => {
      for (const [path, code] of [
        ['/%2e%2e/admin/x', 'ERR_LOCH_BAD_PATH'],
        ['/api/../../admin/x', 'ERR_LOCH_BAD_PATH'],
        ['/api/..%2F..%2Fadmin', 'ERR_LOCH_ENCODED_SLASH'],
        ['/api/a%2fb', 'ERR_LOCH_ENCODED_SLASH'],
        ['/api/a%00', 'ERR_LOCH_BAD_PATH'],
        ['/api/a%zz', 'ERR_LOCH_BAD_PATH'],
      ] as const) {
        const r = await get(session, path);
        expect(r, path).toEqual({ status: 400, body: `400 ${code}\n` });
      }
    });
  });

  it('40 sessions and 180 HTTP/1.1 connections sending every such path, then closed, leave no descriptor behind and RSS bounded', async () => {
    const pid = loch.child.pid!;
    const round = async (protocol: 'h2c' | 'h2' | 'http/1.1') => {
      if (protocol === 'http/1.1') {
        // The same paths as HTTP/1.1 request targets, a connection each.
        for (const path of ABUSIVE) {
          const answer = await rawExchange(
            plainPort,
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          );
          expect(answer).toMatch(/^HTTP\/1\.1 (200|400) /);
        }
        return;
      }
      const session = await connect(protocol, plainPort, tlsPort);
      for (const path of ABUSIVE) expect((await get(session, path)).status).toBeGreaterThanOrEqual(200);
      await new Promise<void>((resolve) => session.close(() => resolve()));
    };
    // Warm: upstream connections pooled, TLS session caches filled.
    await round('h2c');
    await round('h2');
    await round('http/1.1');
    await new Promise((r) => setTimeout(r, 300));
    const fdsBefore = loch.fdCount();
    const rssBefore = rssMiB(pid);
    for (let i = 0; i < 20; i++) await Promise.all([round('h2c'), round('h2'), round('http/1.1')]);
    const settle = performance.now();
    while (loch.fdCount() > fdsBefore && performance.now() - settle < 10_000)
      await new Promise((r) => setTimeout(r, 100));
    const fdsAfter = loch.fdCount();
    const rssAfter = rssMiB(pid);
    console.log(`[${driver}] h2 paths: fds ${fdsBefore} -> ${fdsAfter}, RSS ${rssBefore} -> ${rssAfter} MiB`);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    expect(rssAfter - rssBefore).toBeLessThan(64);
  }, 60_000);
});
