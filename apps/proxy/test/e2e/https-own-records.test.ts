/**
 * Loch's own TLS 1.3 record layer (@loch/tls `records: 'loch'`, loch's default; named here with
 * LOCH_TLS_RECORDS=loch so the file tests it whatever the environment says) behind loch's HTTPS
 * listener, on every runtime driver (the record layer applies to both: io_uring, where the ring
 * carries the session; legacy, the engine fed from node:net chunks): TLS 1.3 connections are
 * really taken over (admin /stats `tlsRecords` and the loch_tls_record_takeovers_total series
 * count them), what they carry is intact both ways (2 MB down, 1 MB up, keep-alive), TLS 1.2 stays
 * on OpenSSL and is counted in neither; the same loch with the opt-out LOCH_TLS_RECORDS=openssl
 * counts no take-over; a server's `tls.records` key wins over the variable.
 */
import { createHash } from 'node:crypto';
import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  freePort,
  adminGet as get,
  httpUpstream,
  type Loch,
  type Nginx,
  startLoch,
  startNginx,
  type TakeoverCounts,
  tempDir,
  tlsTakeovers,
} from './harness.js';

const drivers = availableDrivers();

/** nginx's /big: 2,000,000 bytes of 'a' (harness.ts). */
const BIG_SHA = createHash('sha256').update(Buffer.alloc(2_000_000, 0x61)).digest('hex');

type Counts = TakeoverCounts;

interface Answer {
  status: number;
  length: number;
  sha: string;
  /** The body as text when short (the echo upstream's digest). */
  text: string;
  protocol: string | null;
}

/** One HTTPS exchange on `agent` (GET, or POST of `body`). */
function exchange(port: number, agent: https.Agent, path: string, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: body === undefined ? 'GET' : 'POST',
        agent,
        servername: 'localhost',
        rejectUnauthorized: false,
        timeout: 20_000,
      },
      (res) => {
        const protocol = (res.socket as TLSSocket).getProtocol();
        const hash = createHash('sha256');
        const head: Buffer[] = [];
        let length = 0;
        res.on('data', (d: Buffer) => {
          hash.update(d);
          if (length < 256) head.push(d);
          length += d.byteLength;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            length,
            sha: hash.digest('hex'),
            text: length <= 256 ? Buffer.concat(head).toString('latin1') : '',
            protocol,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The workers' take-over counts for `server` (default `secure`), summed, from loch's /stats. */
function takeovers(admin: number, server = 'secure'): Promise<Counts> {
  return tlsTakeovers(admin, server);
}

/** loch_tls_record_takeovers_total{server="secure", outcome} in a /metrics text, or undefined. */
function metric(text: string, outcome: 'loch' | 'declined'): number | undefined {
  const prefix = `loch_tls_record_takeovers_total{server="secure",outcome="${outcome}"} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

interface Secure {
  loch: Loch;
  port: number;
  admin: number;
  /** The port of the second HTTPS server, `keyed`, whose tls table says records = `keyed`. */
  keyedPort: number;
}

/**
 * loch with an HTTPS server `secure` (/ to nginx, /echo to `echoPort`) and a second one, `keyed`,
 * with the `records` key set to `keyed`; LOCH_TLS_RECORDS=`records` when given; two workers, an
 * admin listener.
 */
async function startSecure(
  driver: string,
  nginxPort: number,
  echoPort: number,
  records: string | undefined,
  keyed: 'openssl' | 'loch',
): Promise<Secure> {
  const dir = tempDir('loch-own-records-');
  selfSignedCertificate(dir, 'default', ['localhost']);
  const port = await freePort();
  const keyedPort = await freePort();
  const admin = await freePort();
  const loch = await startLoch(
    dir,
    `
[runtime]
workers = 2

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }

[servers.secure]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "10s" }
tls = { chain = "default.pem", key = "default.key" }

[[servers.secure.routes]]
path = "/echo"
upstreams = [{ endpoint = "http://127.0.0.1:${echoPort}" }]

[[servers.secure.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${nginxPort}" }]

[servers.keyed]
listener = { type = "socket", value = "127.0.0.1:${keyedPort}" }
tls = { chain = "default.pem", key = "default.key", records = "${keyed}" }

[[servers.keyed.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${nginxPort}" }]
`,
    { LOCH_DRIVER: driver, ...(records === undefined ? {} : { LOCH_TLS_RECORDS: records }) },
  );
  return { loch, port, admin, keyedPort };
}

describe.each(drivers)("loch's HTTPS listener on the %s driver", (driver) => {
  let nginx: Nginx;
  let echo: { port: number; close(): Promise<void> };
  let own: Secure;
  let plain: Secure;

  beforeAll(async () => {
    nginx = await startNginx(['A']);
    // Answers each request with the SHA-256 (hex) of the body it received.
    echo = await httpUpstream((req, res) => {
      const hash = createHash('sha256');
      req.on('data', (d: Buffer) => hash.update(d));
      req.on('end', () => res.end(hash.digest('hex')));
    });
    [own, plain] = await Promise.all([
      startSecure(driver, nginx.ports[0]!, echo.port, 'loch', 'openssl'),
      startSecure(driver, nginx.ports[0]!, echo.port, 'openssl', 'loch'),
    ]);
  }, 60_000);
  afterAll(async () => {
    await own?.loch.stop();
    await plain?.loch.stop();
    await echo?.close();
    await nginx?.stop();
  });

  it('with LOCH_TLS_RECORDS=loch takes TLS 1.3 connections over, carrying 2 MB down and 1 MB up intact', async () => {
    const before = await takeovers(own.admin);
    const upload = Buffer.alloc(1 << 20);
    for (let i = 0; i < upload.length; i++) upload[i] = (i * 7919) & 0xff;
    const uploadSha = createHash('sha256').update(upload).digest('hex');
    const connections = 6;
    for (let i = 0; i < connections; i++) {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, minVersion: 'TLSv1.3' });
      try {
        const down = await exchange(own.port, agent, '/big');
        expect(down).toMatchObject({ status: 200, length: 2_000_000, sha: BIG_SHA, protocol: 'TLSv1.3' });
        // The same connection (keep-alive): the upload's records are decrypted by Loch too.
        const up = await exchange(own.port, agent, '/echo', upload);
        expect(up).toMatchObject({ status: 200, text: uploadSha });
      } finally {
        agent.destroy();
      }
    }
    const after = await takeovers(own.admin);
    expect(after.loch - before.loch).toBe(connections);
    expect(after.declined).toBe(before.declined);
    const text = await get(own.admin, '/metrics');
    expect(metric(text, 'loch')).toBe(after.loch);
    expect(metric(text, 'declined')).toBe(after.declined);
  }, 60_000);

  it('with LOCH_TLS_RECORDS=loch leaves TLS 1.2 on OpenSSL, counted in neither', async () => {
    const before = await takeovers(own.admin);
    const agent = new https.Agent({ keepAlive: false, maxVersion: 'TLSv1.2' });
    const down = await exchange(own.port, agent, '/big');
    expect(down).toMatchObject({ status: 200, length: 2_000_000, sha: BIG_SHA, protocol: 'TLSv1.2' });
    expect(await takeovers(own.admin)).toEqual(before);
  });

  it('with LOCH_TLS_RECORDS=openssl (the opt-out) counts no take-over', async () => {
    const agent = new https.Agent({ keepAlive: false, minVersion: 'TLSv1.3' });
    const down = await exchange(plain.port, agent, '/big');
    expect(down).toMatchObject({ status: 200, length: 2_000_000, sha: BIG_SHA, protocol: 'TLSv1.3' });
    expect(await takeovers(plain.admin)).toEqual({ loch: 0, declined: 0 });
    expect(metric(await get(plain.admin, '/metrics'), 'loch')).toBe(0);
  });

  it("the tls table's records key wins over LOCH_TLS_RECORDS, either way", async () => {
    // `records = "loch"` with LOCH_TLS_RECORDS=openssl: taken over.
    const on = new https.Agent({ keepAlive: false, minVersion: 'TLSv1.3' });
    expect(await exchange(plain.keyedPort, on, '/big')).toMatchObject({ status: 200, sha: BIG_SHA });
    expect(await takeovers(plain.admin, 'keyed')).toEqual({ loch: 1, declined: 0 });
    // `records = "openssl"` with LOCH_TLS_RECORDS=loch: stays on OpenSSL.
    const off = new https.Agent({ keepAlive: false, minVersion: 'TLSv1.3' });
    expect(await exchange(own.keyedPort, off, '/big')).toMatchObject({ status: 200, sha: BIG_SHA });
    expect(await takeovers(own.admin, 'keyed')).toEqual({ loch: 0, declined: 0 });
  });
});
