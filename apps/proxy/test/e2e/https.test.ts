/**
 * HTTPS end to end: loch terminating TLS (the OpenSSL engine of @loch/native through @loch/tls)
 * in front of nginx, on every runtime driver, with real clients (node:tls/https, curl): the
 * certificate chosen by SNI (exact name, wildcard, default), TLS 1.2 and 1.3, X-Forwarded-Proto
 * https upstream, keep-alive over one TLS connection, session resumption across the workers
 * (shared ticket keys), plain HTTP to the TLS port answered 400, garbage and a silent client
 * ending only their own connection, and certificate errors caught by `loch check`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  curl,
  freePort,
  type Loch,
  lochArgs,
  type Nginx,
  PROXY_DIR,
  rawExchange,
  startLoch,
  startNginx,
  tempDir,
} from './harness.js';

const drivers = availableDrivers();

/** Certificates: one for a.example.com, a wildcard for *.wild.example.com, a default for localhost. */
function certificates(dir: string) {
  return {
    exact: selfSignedCertificate(dir, 'exact', ['a.example.com']),
    wildcard: selfSignedCertificate(dir, 'wildcard', ['*.wild.example.com']),
    fallback: selfSignedCertificate(dir, 'default', ['localhost']),
  };
}

/** The subject CN of the certificate the server sent for `servername`, and the TLS version. */
function handshake(
  port: number,
  servername: string | undefined,
  options: tls.ConnectionOptions = {},
): Promise<{ cn: string; version: string; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ...(servername === undefined ? {} : { servername }),
      rejectUnauthorized: false,
      ...options,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      resolve({ cn: String(cert.subject?.CN ?? ''), version: socket.getProtocol() ?? '', socket });
    });
    socket.once('error', reject);
  });
}

/** GET over a TLS socket with a session to resume; resolves with the body and whether it resumed. */
function getResumed(
  port: number,
  session: Buffer | undefined,
): Promise<{ body: string; reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ...(session === undefined ? {} : { session }),
    });
    socket.on('session', (s: Buffer) => {
      latest = s;
    });
    let text = '';
    socket.once('secureConnect', () => {
      socket.write('GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.setEncoding('latin1').on('data', (d: string) => {
      text += d;
    });
    socket.once('end', () => {
      resolve({ body: text, reused: socket.isSessionReused(), session: latest });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe.each(drivers)('HTTPS through loch on the %s driver', (driver) => {
  let nginx: Nginx;
  let loch: Loch;
  let port: number;
  let dir: string;

  beforeAll(async () => {
    nginx = await startNginx(['A']);
    dir = tempDir('loch-https-');
    const c = certificates(dir);
    port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 2

[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "5s" }

[servers.secure.tls]
certificates = [
  { chain = "default.pem", key = "default.key", default = true },
  { chain = "exact.pem", key = "exact.key", names = ["a.example.com"] },
  { chain = "wildcard.pem", key = "wildcard.key", names = ["*.wild.example.com"] },
]
handshake_timeout = "1s"

[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${nginx.ports[0]}" }]
`,
      { LOCH_DRIVER: driver },
    );
    void c;
  });
  afterAll(async () => {
    await loch?.stop();
    await nginx?.stop();
  });

  it('proxies over HTTPS with X-Forwarded-Proto https', async () => {
    const r = await curl(['-k', `https://127.0.0.1:${port}/hello`]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('A /hello ');
    expect(r.out).toContain('xfp=https ');
  });

  it('chooses the certificate by SNI: exact, wildcard, default', async () => {
    const exact = await handshake(port, 'a.example.com');
    const wild = await handshake(port, 'x.wild.example.com');
    const other = await handshake(port, 'unknown.example.org');
    const none = await handshake(port, undefined);
    for (const h of [exact, wild, other, none]) h.socket.destroy();
    expect(exact.cn).toBe('a.example.com');
    expect(wild.cn).toBe('*.wild.example.com');
    expect(other.cn).toBe('localhost');
    expect(none.cn).toBe('localhost');
  });

  it('speaks TLS 1.2 and 1.3', async () => {
    const v12 = await handshake(port, 'localhost', { maxVersion: 'TLSv1.2' });
    const v13 = await handshake(port, 'localhost', { minVersion: 'TLSv1.3' });
    v12.socket.destroy();
    v13.socket.destroy();
    expect(v12.version).toBe('TLSv1.2');
    expect(v13.version).toBe('TLSv1.3');
  });

  it('keeps one TLS connection alive across requests', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const sockets = new Set<unknown>();
    for (let i = 0; i < 20; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        const req = https.get(
          { host: '127.0.0.1', port, path: `/n${i}`, agent, servername: 'localhost' },
          (res) => {
            sockets.add(res.socket);
            let t = '';
            res.setEncoding('utf8').on('data', (d: string) => {
              t += d;
            });
            res.on('end', () => resolve(t));
          },
        );
        req.on('error', reject);
      });
      expect(body).toContain(`A /n${i} `);
    }
    agent.destroy();
    expect(sockets.size).toBe(1);
  });

  it('resumes sessions (tickets shared by the workers)', async () => {
    const first = await getResumed(port, undefined);
    expect(first.body).toMatch(/^HTTP\/1\.1 200 /);
    expect(first.session).toBeDefined();
    let reused = 0;
    // Connections land on either worker (SO_REUSEPORT): every resumption must succeed.
    for (let i = 0; i < 6; i++) {
      const again = await getResumed(port, first.session);
      expect(again.body).toMatch(/^HTTP\/1\.1 200 /);
      if (again.reused) reused++;
    }
    expect(reused).toBe(6);
  });

  it('speaks h2 to clients that choose it by ALPN, http/1.1 to the others', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      rejectUnauthorized: false,
      servername: 'localhost',
    });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/over-h2', ':method': 'GET' });
        let status = 0;
        let body = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.setEncoding('utf8').on('data', (d: string) => {
          body += d;
        });
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        req.end();
      });
      expect((session.socket as tls.TLSSocket).alpnProtocol).toBe('h2');
      expect(status).toBe(200);
      expect(body).toContain('A /over-h2 ');
      expect(body).toContain('xfp=https ');
    } finally {
      session.close();
    }
    const h1 = await handshake(port, 'localhost', { ALPNProtocols: ['http/1.1'] });
    h1.socket.destroy();
    expect(h1.socket.alpnProtocol).toBe('http/1.1');
  });

  it('answers plain HTTP on the TLS port with 400 and closes', async () => {
    const text = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('plain HTTP request was sent to HTTPS port');
  });

  it('ends a garbage handshake and a silent client without disturbing others', async () => {
    // Garbage that is not TLS and not HTTP: the connection is closed.
    const garbage = await rawExchange(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7]));
    expect(garbage.startsWith('HTTP/')).toBe(false);
    // A client that connects and says nothing is cut at the handshake deadline (1 s).
    const silent = net.connect(port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    silent.on('error', () => {});
    const r = await curl(['-k', `https://127.0.0.1:${port}/still`]);
    expect(r.out).toContain('A /still ');
    await closed;
  });
});

describe.each(drivers)('https upstreams on the %s driver', (driver) => {
  let upstream: https.Server;
  let upstreamPort: number;
  let loch: Loch;
  let port: number;

  beforeAll(async () => {
    const dir = tempDir('loch-https-up-');
    const cert = selfSignedCertificate(dir, 'upstream', ['localhost']);
    upstream = https.createServer(
      { cert: readFileSync(cert.chain), key: readFileSync(cert.key) },
      (req, res) => {
        const body = `secure upstream ${req.url} sni=${(req.socket as tls.TLSSocket).servername} host=${req.headers.host}`;
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    );
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as net.AddressInfo).port;
    port = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.edge]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "5s" }

[[servers.edge.routes]]
path = "/verified"
upstreams = [{ endpoint = "https://localhost:${upstreamPort}", tls = { ca = "upstream.pem" } }]

[[servers.edge.routes]]
path = "/untrusted"
upstreams = [{ endpoint = "https://localhost:${upstreamPort}" }]

[[servers.edge.routes]]
path = "/unverified"
upstreams = [{ endpoint = "https://127.0.0.1:${upstreamPort}", tls = { verify = false } }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it('verifies the upstream against the configured CA, sends SNI, and reuses the connection', async () => {
    let connections = 0;
    const count = () => connections++;
    upstream.on('secureConnection', count);
    for (let i = 0; i < 3; i++) {
      const r = await curl([`http://127.0.0.1:${port}/verified?i=${i}`]);
      expect(r.out).toBe(`secure upstream /verified?i=${i} sni=localhost host=127.0.0.1:${port}`);
    }
    upstream.off('secureConnection', count);
    expect(connections).toBe(1);
  });

  it('answers 502 when the upstream certificate does not verify', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/untrusted`]);
    expect(r.out).toBe('502');
  });

  it('connects without verification only where the config says verify = false', async () => {
    const r = await curl([`http://127.0.0.1:${port}/unverified`]);
    expect(r.out).toMatch(/^secure upstream \/unverified /);
  });
});

describe.each(drivers)('client certificates (mTLS) on the %s driver', (driver) => {
  it('requires one, and forwards the verified one upstream; inbound copies never pass', async () => {
    const dir = tempDir('loch-https-mtls-');
    // Written where the config names them (server.pem, server.key).
    selfSignedCertificate(dir, 'server', ['localhost']);
    const client = selfSignedCertificate(dir, 'client', ['loch-client']);
    const up = createHttpServer((req, res) =>
      res.end(`xfcc=${req.headers['x-forwarded-client-cert'] ?? '-'}`),
    );
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    const upPort = (up.address() as net.AddressInfo).port;
    const mtls = await freePort();
    const plain = await freePort();
    const loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.mtls]
listener = { type = "socket", value = "127.0.0.1:${mtls}" }
tls = { chain = "server.pem", key = "server.key", client_ca = "client.pem", forward_client_certificate = true }
[[servers.mtls.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]

[servers.plain]
listener = { type = "socket", value = "127.0.0.1:${plain}" }
[[servers.plain.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upPort}" }]
`,
      { LOCH_DRIVER: driver },
    );
    const get = (options: https.RequestOptions) =>
      new Promise<string>((resolve, reject) => {
        const req = https.get(
          { host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ...options },
          (res) => {
            let t = '';
            res.setEncoding('utf8').on('data', (d: string) => {
              t += d;
            });
            res.on('end', () => resolve(t));
          },
        );
        req.on('error', reject);
      });
    try {
      const forged = { 'x-forwarded-client-cert': 'Hash=forged;Subject="CN=admin"' };
      const body = await get({
        port: mtls,
        path: '/',
        cert: readFileSync(client.chain),
        key: readFileSync(client.key),
        headers: forged,
      });
      expect(body).toMatch(/^xfcc=Hash=[0-9a-f]{64};Subject="CN=loch-client"$/);
      // Without a certificate the handshake fails (client_certificate defaults to required).
      await expect(get({ port: mtls, path: '/' })).rejects.toThrow();
      // A server without mTLS strips what a client claims.
      const r = await curl(['-H', 'x-forwarded-client-cert: Hash=forged', `http://127.0.0.1:${plain}/`]);
      expect(r.out).toBe('xfcc=-');
    } finally {
      await loch.stop();
      up.closeAllConnections();
      await new Promise((r) => up.close(r));
    }
  });
});

describe.each(drivers)('certificate renewal on the %s driver', (driver) => {
  it('picks up a renewed certificate without a config change', async () => {
    const dir = tempDir('loch-https-renew-');
    const issued = tempDir('loch-https-renew-issued-');
    const first = selfSignedCertificate(issued, 'first', ['first.test']);
    const second = selfSignedCertificate(issued, 'second', ['second.test']);
    copyFileSync(first.chain, join(dir, 'cert.pem'));
    copyFileSync(first.key, join(dir, 'key.pem'));
    const port = await freePort();
    const loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.s]
listener = { type = "socket", value = "127.0.0.1:${port}" }
tls = { chain = "cert.pem", key = "key.pem" }

[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
`,
      { LOCH_DRIVER: driver },
    );
    try {
      const before = await handshake(port, 'x.test');
      before.socket.destroy();
      expect(before.cn).toBe('first.test');
      const session = await getResumed(port, undefined);
      // certbot and friends replace the files: a new inode each, key first.
      const from = loch.stderr().length;
      copyFileSync(second.key, join(dir, 'key.pem.new'));
      renameSync(join(dir, 'key.pem.new'), join(dir, 'key.pem'));
      copyFileSync(second.chain, join(dir, 'cert.pem.new'));
      renameSync(join(dir, 'cert.pem.new'), join(dir, 'cert.pem'));
      await loch.waitFor(/reloaded .*generation/, from);
      const after = await handshake(port, 'x.test');
      after.socket.destroy();
      expect(after.cn).toBe('second.test');
      // The ticket keys outlive the reload: the session issued before it still resumes.
      const resumed = await getResumed(port, session.session);
      expect(resumed.reused).toBe(true);
    } finally {
      await loch.stop();
    }
  });
});

describe('loch check with TLS', () => {
  it('refuses a key that does not match its certificate, and unreadable files, naming the key', () => {
    const dir = tempDir('loch-https-check-');
    const a = selfSignedCertificate(dir, 'a', ['a.test']);
    const b = selfSignedCertificate(dir, 'b', ['b.test']);
    const config = (tlsTable: string) => `
[servers.s]
listener = { type = "socket", value = "127.0.0.1:1" }
tls = ${tlsTable}
[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:2" }]
`;
    const check = (text: string) => {
      const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
      writeFileSync(file, text);
      return spawnSync(process.execPath, lochArgs('check', '-c', file), { cwd: PROXY_DIR, encoding: 'utf8' });
    };
    const ok = check(config(`{ chain = "${a.chain}", key = "${a.key}", stack = "rustls" }`));
    expect(ok.status, ok.stderr).toBe(0);
    // The printed config never shows the private key or the ticket keys.
    expect(ok.stdout).not.toContain('PRIVATE KEY');
    expect(ok.stdout).toContain('"key": "<redacted>"');
    expect(ok.stdout).toContain('"ticketKeys": "<redacted>"');
    // A certificate valid for 30 days is no warning; one that expires tomorrow is.
    expect(ok.stderr).not.toContain('warning');
    const soon = join(dir, 'soon');
    execFileSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${soon}.key`,
      '-out',
      `${soon}.pem`,
      '-days',
      '1',
      '-subj',
      '/CN=soon.test',
    ]);
    const warned = check(config(`{ chain = "${soon}.pem", key = "${soon}.key" }`));
    expect(warned.status).toBe(0);
    expect(warned.stderr).toMatch(/warning: servers\.s\.tls certificate 0 .* expires in 0 day/);
    const mismatch = check(config(`{ chain = "${a.chain}", key = "${b.key}" }`));
    expect(mismatch.status).not.toBe(0);
    expect(mismatch.stderr).toContain('servers.s.tls');
    const missing = check(config(`{ chain = "${a.chain}", key = "nope.key" }`));
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('servers.s.tls.key');
    const half = check(config(`{ chain = "${a.chain}" }`));
    expect(half.status).not.toBe(0);
    expect(half.stderr).toContain('give both "chain" and "key"');
    // Five `loch check` processes (the run's bundle; under LOCH_E2E_TSX=1 tsx compiles the sources
    // in each: seconds each on a busy machine).
  }, 120_000);
});
