/**
 * What issue 13's audit (session 36) found untested in loch's TLS keys, on every runtime driver:
 * Loch's own spelling of the server policy reaches the listener (`min_version`, `max_version`,
 * `ciphers`, `ciphersuites`: a client outside the policy fails its handshake, one inside gets
 * the configured version and suite); a listener's client-certificate policy holds for every
 * certificate SNI can choose (the README's reason why nginx's 421 for an SNI/Host mismatch
 * cannot arise: a client naming the other certificate's name is refused without a certificate
 * too); and session resumption to an `https://` upstream (the issue's client feature): a new
 * connection to an upstream that closes each one resumes an earlier session.
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, curl, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** A finished handshake's version and suite, or the error that ended it. */
function handshake(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ version: string; cipher: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ...options,
    });
    socket.once('secureConnect', () => {
      resolve({ version: socket.getProtocol() ?? '', cipher: socket.getCipher().standardName });
      socket.destroy();
    });
    socket.once('error', (e: Error) => resolve({ error: e.message }));
  });
}

/** A GET over a new TLS connection: the body, or the error that ended it. */
function get(port: number, options: https.RequestOptions): Promise<string> {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false, ...options },
      (res) => {
        let t = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          t += d;
        });
        res.on('end', () => resolve(t));
        res.on('error', (e: Error) => resolve(`error: ${e.message}`));
      },
    );
    req.on('error', (e: Error) => resolve(`error: ${e.message}`));
  });
}

describe.each(drivers)('TLS policy keys and upstream resumption on the %s driver', (driver) => {
  let loch: Loch;
  let upstream: https.Server;
  const ports = { modern: 0, tls12: 0, suites: 0, mtls: 0, edge: 0 };
  let client: { cert: Buffer; key: Buffer };

  beforeAll(async () => {
    const dir = tempDir('loch-https-policy-gaps-');
    selfSignedCertificate(dir, 'server', ['localhost']);
    selfSignedCertificate(dir, 'other', ['b.test']);
    const c = selfSignedCertificate(dir, 'client', ['loch-client']);
    client = { cert: readFileSync(c.chain), key: readFileSync(c.key) };
    const up = selfSignedCertificate(dir, 'upstream', ['localhost']);
    // Closes every connection after its answer: each request is a new handshake to it.
    upstream = https.createServer({ cert: readFileSync(up.chain), key: readFileSync(up.key) }, (req, res) => {
      const body = `resumed=${(req.socket as tls.TLSSocket).isSessionReused()}`;
      res.writeHead(200, { 'content-length': body.length, connection: 'close' });
      res.end(body);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as AddressInfo).port;
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    const server = (key: keyof typeof ports, tlsTable: string) => `
[servers.${key}]
listener = { type = "socket", value = "127.0.0.1:${ports[key]}" }
${tlsTable}
[[servers.${key}.routes]]
path = "/"
upstreams = [{ endpoint = "https://localhost:${upPort}", tls = { ca = "upstream.pem" } }]
`;
    loch = await startLoch(
      dir,
      `
log = { access = false }
[runtime]
workers = 1
${server('modern', 'tls = { chain = "server.pem", key = "server.key", min_version = "TLSv1.3" }')}
${server('tls12', 'tls = { chain = "server.pem", key = "server.key", max_version = "TLSv1.2", ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305" }')}
${server('suites', 'tls = { chain = "server.pem", key = "server.key", ciphersuites = "TLS_CHACHA20_POLY1305_SHA256" }')}
${server(
  'mtls',
  `[servers.mtls.tls]
certificates = [
  { chain = "server.pem", key = "server.key", default = true },
  { chain = "other.pem", key = "other.key" },
]
client_ca = "client.pem"`,
)}
${server('edge', '')}
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it('min_version = "TLSv1.3" refuses a TLS 1.2 client and serves TLS 1.3', async () => {
    expect(await handshake(ports.modern, { maxVersion: 'TLSv1.2' })).toHaveProperty('error');
    expect(await handshake(ports.modern, {})).toMatchObject({ version: 'TLSv1.3' });
  });

  it('max_version = "TLSv1.2" with ciphers serves only that TLS 1.2 suite', async () => {
    expect(await handshake(ports.tls12, {})).toEqual({
      version: 'TLSv1.2',
      cipher: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
    });
    expect(await handshake(ports.tls12, { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).toHaveProperty(
      'error',
    );
    expect(await handshake(ports.tls12, { minVersion: 'TLSv1.3' })).toHaveProperty('error');
  });

  it('ciphersuites chooses the TLS 1.3 suite', async () => {
    expect(await handshake(ports.suites, {})).toEqual({
      version: 'TLSv1.3',
      cipher: 'TLS_CHACHA20_POLY1305_SHA256',
    });
    expect(await handshake(ports.suites, { ciphers: 'TLS_AES_128_GCM_SHA256' })).toHaveProperty('error');
  });

  it('requires the client certificate whichever certificate SNI chose', async () => {
    for (const servername of ['localhost', 'b.test']) {
      expect(await get(ports.mtls, { servername, ...client }), servername).toMatch(/^resumed=/);
      expect(await get(ports.mtls, { servername }), servername).toMatch(/^error: /);
    }
  });

  it('resumes the TLS session of an https upstream on its next connection', async () => {
    const first = await curl([`http://127.0.0.1:${ports.edge}/`]);
    expect(first.out).toMatch(/^resumed=(true|false)$/);
    // The first may already resume a session an earlier test's request left; this one must.
    const second = await curl([`http://127.0.0.1:${ports.edge}/`]);
    expect(second.out).toBe('resumed=true');
  });
});
