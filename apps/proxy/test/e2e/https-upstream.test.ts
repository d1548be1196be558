/**
 * loch in front of raw HTTPS upstreams (Python's ssl, test/e2e/peers/tls_upstream.py), on every
 * runtime driver, with curl as the client: a close-delimited upstream body that ends with the
 * server's close_notify is relayed whole; one cut without close_notify is a truncation, so the
 * downstream response is aborted (curl sees the transfer cut short), never completed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import { availableDrivers, curl, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();
const BODY_BYTES = 100_000;

/** The Python upstream on `cert`; resolves once it printed its port. */
export async function pythonTlsUpstream(cert: {
  chain: string;
  key: string;
}): Promise<{ port: number; child: ChildProcess; close(): void }> {
  const child = spawn('python3', [join(import.meta.dirname, 'peers/tls_upstream.py'), cert.chain, cert.key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout!.setEncoding('utf8'), 'data')) as [string];
  return { port: Number(line.trim()), child, close: () => child.kill('SIGKILL') };
}

describe.each(drivers)('close-delimited bodies from an HTTPS upstream on the %s driver', (driver) => {
  let upstream: Awaited<ReturnType<typeof pythonTlsUpstream>>;
  let loch: Loch;
  let port: number;

  beforeAll(async () => {
    const dir = tempDir('loch-https-upstream-');
    const cert = selfSignedCertificate(dir, 'upstream', ['localhost']);
    upstream = await pythonTlsUpstream(cert);
    port = await freePort();
    loch = await startLoch(
      dir,
      `
log = { access = false }
[runtime]
workers = 1

[servers.front]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "5s" }

[[servers.front.routes]]
path = "/"
upstreams = [{ endpoint = "https://127.0.0.1:${upstream.port}", tls = { ca = "upstream.pem", server_name = "localhost" } }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    upstream?.close();
  });

  it('relays a body that ends with close_notify in full', async () => {
    const r = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{size_download}',
      `http://127.0.0.1:${port}/notify`,
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`200 ${BODY_BYTES}`);
  });

  it('aborts the downstream response when the body ends without close_notify', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/cut`]);
    // The head went out before the end was known; the chunked response is never terminated:
    // curl 18 "transfer closed with outstanding read data remaining".
    expect(r.out).toBe('200');
    expect(r.code).toBe(18);
    // loch keeps serving.
    const again = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
      `http://127.0.0.1:${port}/notify`,
    ]);
    expect(again.out).toBe(String(BODY_BYTES));
  });
});

describe.each(drivers)('upstream SNI from the Host header on the %s driver', (driver) => {
  let upstream: Awaited<ReturnType<typeof pythonTlsUpstream>>;
  let loch: Loch;
  let port: number;

  beforeAll(async () => {
    const dir = tempDir('loch-https-sni-');
    // One certificate for both names (and 127.0.0.1): verification passes for either, so only
    // the pool key can keep their connections apart.
    const cert = selfSignedCertificate(dir, 'upstream', ['a.example.com', 'b.example.com']);
    upstream = await pythonTlsUpstream(cert);
    port = await freePort();
    const endpoint = `https://127.0.0.1:${upstream.port}`;
    loch = await startLoch(
      dir,
      `
log = { access = false }
[runtime]
workers = 1

[servers.front]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "5s" }

[[servers.front.routes]]
path = "/by-host"
upstreams = [{ endpoint = "${endpoint}", tls = { ca = "upstream.pem", server_name_from = "host" } }]

[[servers.front.routes]]
path = "/by-endpoint"
upstreams = [{ endpoint = "${endpoint}", tls = { ca = "upstream.pem", server_name = "a.example.com" } }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    upstream?.close();
  });

  const get = (path: string, host: string) =>
    curl(['-H', `Host: ${host}`, `http://127.0.0.1:${port}${path}`]).then((r) => {
      const m = /^sni=(\S+) conn=(\d+) /.exec(r.out);
      return m === null ? { sni: '', conn: 0, out: r.out } : { sni: m[1]!, conn: Number(m[2]), out: r.out };
    });

  it('sends the Host as SNI and never carries one name on a connection made for another', async () => {
    const seen: { sni: string; conn: number }[] = [];
    for (const host of ['a.example.com', 'b.example.com', 'A.Example.com:443', 'b.example.com']) {
      seen.push(await get('/by-host', host));
    }
    expect(seen.map((s) => s.sni)).toEqual([
      'a.example.com',
      'b.example.com',
      'a.example.com',
      'b.example.com',
    ]);
    // Pooled per name: a's connection serves a again, b's serves b, and they are not the same.
    expect(seen[2]!.conn).toBe(seen[0]!.conn);
    expect(seen[3]!.conn).toBe(seen[1]!.conn);
    expect(seen[0]!.conn).not.toBe(seen[1]!.conn);
  });

  it('verifies the certificate against the Host: a name it does not cover is a 502', async () => {
    const r = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      'Host: c.example.com',
      `http://127.0.0.1:${port}/by-host`,
    ]);
    expect(r.out).toBe('502');
  });

  it('keeps the endpoint name where the route says so, whatever the Host', async () => {
    const r = await get('/by-endpoint', 'b.example.com');
    expect(r.sni).toBe('a.example.com');
  });
});
