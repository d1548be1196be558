/**
 * Client certificates that are optional (`client_certificate = "optional"`), on every runtime
 * driver (issue 13's audit; the required case is in https.test.ts): a client without a
 * certificate is served and its claimed `x-forwarded-client-cert` never reaches the upstream, a
 * client with one that chains to `client_ca` has it forwarded, and a client with a certificate
 * from another issuer fails the handshake, on an optional server as on a required one.
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();
const forged = { 'x-forwarded-client-cert': 'Hash=forged;Subject="CN=admin"' };

/** A GET over a new TLS connection; resolves with the body. */
function get(port: number, options: https.RequestOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: 'localhost',
        rejectUnauthorized: false,
        agent: false,
        headers: forged,
        ...options,
      },
      (res) => {
        let t = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          t += d;
        });
        res.on('end', () => resolve(t));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

describe.each(drivers)('optional client certificates on the %s driver', (driver) => {
  let loch: Loch;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let optional: number;
  let required: number;
  let client: { cert: Buffer; key: Buffer };
  let stranger: { cert: Buffer; key: Buffer };

  beforeAll(async () => {
    const dir = tempDir('loch-https-mtls-gaps-');
    selfSignedCertificate(dir, 'server', ['localhost']);
    const c = selfSignedCertificate(dir, 'client', ['loch-client']);
    const s = selfSignedCertificate(tempDir('loch-https-mtls-gaps-other-'), 'stranger', ['loch-client']);
    client = { cert: readFileSync(c.chain), key: readFileSync(c.key) };
    stranger = { cert: readFileSync(s.chain), key: readFileSync(s.key) };
    upstream = await httpUpstream((req, res) =>
      res.end(`xfcc=${req.headers['x-forwarded-client-cert'] ?? '-'}`),
    );
    optional = await freePort();
    required = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.optional]
listener = { type = "socket", value = "127.0.0.1:${optional}" }
tls = { chain = "server.pem", key = "server.key", client_ca = "client.pem", client_certificate = "optional", forward_client_certificate = true }
[[servers.optional.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]

[servers.required]
listener = { type = "socket", value = "127.0.0.1:${required}" }
tls = { chain = "server.pem", key = "server.key", client_ca = "client.pem", client_certificate = "required", forward_client_certificate = true }
[[servers.required.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  it('serves a client without a certificate, never passing on its claimed identity', async () => {
    expect(await get(optional)).toBe('xfcc=-');
  });

  it('forwards the identity of a client whose certificate verifies', async () => {
    expect(await get(optional, client)).toMatch(/^xfcc=Hash=[0-9a-f]{64};Subject="CN=loch-client"$/);
  });

  it('refuses a certificate from another issuer, optional or required', async () => {
    await expect(get(optional, stranger)).rejects.toThrow();
    await expect(get(required, stranger)).rejects.toThrow();
    await expect(get(required)).rejects.toThrow();
    // The server is still there for the next client.
    expect(await get(required, client)).toMatch(/^xfcc=Hash=[0-9a-f]{64};Subject="CN=loch-client"$/);
  });
});
