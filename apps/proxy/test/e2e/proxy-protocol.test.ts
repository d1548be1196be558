/**
 * PROXY protocol end to end, with haproxy on both sides of loch, on every driver:
 * - haproxy as the sender (`send-proxy`, `send-proxy-v2`, v2 with a CRC32C TLV) in front of a
 *   loch listener with `proxy_protocol = true`, plain and HTTPS (the header before TLS): the
 *   upstream's X-Forwarded-For and loch's access log name the original client (curl bound to
 *   127.0.0.2/127.0.0.3), not haproxy;
 * - a connection without a header (an HTTP request, garbage, silence) is closed unanswered;
 * - `proxy_protocol_from`: listed peers must send a header, others are served without one;
 * - haproxy as the receiver (`accept-proxy`) behind loch upstreams with `send_proxy_protocol`
 *   v1 and v2: haproxy's %[src] is the client loch served, and two clients one after the other
 *   never share an upstream connection (the header is per client).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  curl,
  freePort,
  httpUpstream,
  type Loch,
  rawExchange,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const drivers = availableDrivers();

/** Resolves with true once the server closes a connection that sent nothing (false after `ms`). */
function closedWhenSilent(port: number, ms = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, ms);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Sends `bytes` from `localAddress` and collects the answer until the server closes. */
function exchangeFrom(localAddress: string, port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let got = '';
    const timer = setTimeout(() => s.destroy(), 5000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('connect', () => s.write(bytes));
  });
}

describe.each(drivers)('PROXY protocol with haproxy on the %s driver', (driver) => {
  let loch: Loch;
  let haproxy: ChildProcess;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    const dir = tempDir('loch-e2e-proxy-protocol-');
    upstream = await httpUpstream((req, res) => {
      const body = [
        `xff=${req.headers['x-forwarded-for'] ?? '-'}`,
        `proto=${req.headers['x-forwarded-proto'] ?? '-'}`,
        `hsrc=${req.headers['x-haproxy-src'] ?? '-'}`,
      ].join(' ');
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    for (const name of [
      'pp',
      'ppfrom',
      'pps',
      'send1',
      'send2',
      'send3',
      'h1',
      'h2',
      'h2crc',
      'htls',
      'r1',
      'r2',
      'r3',
    ])
      ports[name] = await freePort();
    const cert = selfSignedCertificate(dir, 'localhost', ['localhost']);
    const route = `[[servers.%s.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]\n`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1

[servers.pp]
listener = { type = "socket", value = "127.0.0.1:${ports.pp}" }
proxy_protocol = true
proxy_protocol_timeout = "300ms"
${route.replace('%s', 'pp')}
[servers.ppfrom]
listener = { type = "socket", value = "127.0.0.1:${ports.ppfrom}" }
proxy_protocol = true
proxy_protocol_from = ["127.0.0.2/32", "10.0.0.0/8"]
${route.replace('%s', 'ppfrom')}
[servers.pps]
listener = { type = "socket", value = "127.0.0.1:${ports.pps}" }
proxy_protocol = true
tls = { chain = "${cert.chain}", key = "${cert.key}" }
${route.replace('%s', 'pps')}
[servers.send1]
listener = { type = "socket", value = "127.0.0.1:${ports.send1}" }
[[servers.send1.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${ports.r1}", send_proxy_protocol = "v1" }]

[servers.send2]
listener = { type = "socket", value = "127.0.0.1:${ports.send2}" }
[[servers.send2.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${ports.r2}", send_proxy_protocol = "v2" }]

[servers.send3]
listener = { type = "socket", value = "127.0.0.1:${ports.send3}" }
upstream_http_version = "http2"
[[servers.send3.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${ports.r3}", send_proxy_protocol = "v2" }]
`,
      { LOCH_DRIVER: driver },
    );
    const conf = `global
  maxconn 200

defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s

frontend h1
  mode tcp
  bind 127.0.0.1:${ports.h1}
  default_backend loch_v1
backend loch_v1
  mode tcp
  server loch 127.0.0.1:${ports.pp} send-proxy

frontend h2
  mode tcp
  bind 127.0.0.1:${ports.h2}
  default_backend loch_v2
backend loch_v2
  mode tcp
  server loch 127.0.0.1:${ports.pp} send-proxy-v2

frontend h2crc
  mode tcp
  bind 127.0.0.1:${ports.h2crc}
  default_backend loch_v2crc
backend loch_v2crc
  mode tcp
  server loch 127.0.0.1:${ports.pp} send-proxy-v2 proxy-v2-options crc32c

frontend htls
  mode tcp
  bind 127.0.0.1:${ports.htls}
  default_backend loch_tls
backend loch_tls
  mode tcp
  server loch 127.0.0.1:${ports.pps} send-proxy-v2

frontend r1
  mode http
  bind 127.0.0.1:${ports.r1} accept-proxy
  http-request set-header x-haproxy-src %[src]
  default_backend echo
frontend r2
  mode http
  bind 127.0.0.1:${ports.r2} accept-proxy
  http-request set-header x-haproxy-src %[src]
  default_backend echo
frontend r3
  mode http
  bind 127.0.0.1:${ports.r3} accept-proxy proto h2
  http-request set-header x-haproxy-src %[src]
  default_backend echo
backend echo
  mode http
  server echo 127.0.0.1:${upstream.port}
`;
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    haproxy = spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let herr = '';
    haproxy.stderr!.setEncoding('utf8').on('data', (d: string) => {
      herr += d;
    });
    try {
      for (const name of ['h1', 'h2', 'h2crc', 'htls', 'r1', 'r2', 'r3'])
        await waitConnectable({ port: ports[name]! });
    } catch (error) {
      throw new Error(`haproxy did not start: ${herr}`, { cause: error });
    }
  });

  afterAll(async () => {
    haproxy?.kill('SIGTERM');
    await loch?.stop();
    await upstream?.close();
  });

  it.each([
    ['send-proxy (v1)', 'h1', '127.0.0.2'],
    ['send-proxy-v2', 'h2', '127.0.0.3'],
    ['send-proxy-v2 with a CRC32C', 'h2crc', '127.0.0.4'],
  ])('haproxy %s: X-Forwarded-For and the access log show the client', async (_, via, client) => {
    const path = `/${via}-${driver}`;
    const r = await curl(['--interface', client, `http://127.0.0.1:${ports[via]}${path}`]);
    expect(r.err).toBe('');
    expect(r.out).toBe(`xff=${client} proto=http hsrc=-`);
    await expect
      .poll(() => loch.stdout(), { timeout: 5000 })
      .toMatch(new RegExp(` pp ${client.replaceAll('.', '\\.')}:\\d+ GET ${path} 200 `));
  });

  it('h2c by prior knowledge behind the header (the preface sniff reads the bytes kept after it)', async () => {
    const r = await curl([
      '--http2-prior-knowledge',
      '--interface',
      '127.0.0.7',
      `http://127.0.0.1:${ports.h2}/h2c`,
    ]);
    expect(r.err).toBe('');
    expect(r.out).toBe('xff=127.0.0.7 proto=http hsrc=-');
    await expect.poll(() => loch.stdout(), { timeout: 5000 }).toMatch(/ pp 127\.0\.0\.7:\d+ GET \/h2c 200 /);
  });

  it('reads the header before TLS on an HTTPS listener', async () => {
    const r = await curl(['-k', '--interface', '127.0.0.5', `https://localhost:${ports.htls}/tls`]);
    expect(r.err).toBe('');
    expect(r.out).toBe('xff=127.0.0.5 proto=https hsrc=-');
    await expect.poll(() => loch.stdout(), { timeout: 5000 }).toMatch(/ pps 127\.0\.0\.5:\d+ GET \/tls 200 /);
  });

  it('closes a connection without a valid header, unanswered: HTTP, garbage, silence', async () => {
    expect(await rawExchange(ports.pp!, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n')).toBe('');
    expect(await rawExchange(ports.pp!, 'PROXY TCP4 1.2.3.4 nonsense\r\nGET / HTTP/1.1\r\n\r\n')).toBe('');
    expect(await rawExchange(ports.pp!, `PROXY UNKNOWN ${'x'.repeat(200)}`)).toBe('');
    expect(await closedWhenSilent(ports.pp!)).toBe(true);
    // The HTTPS listener too: a TLS ClientHello without a header is not a header.
    expect(await rawExchange(ports.pps!, Buffer.from('160301', 'hex'))).toBe('');
    // A valid header: served, and the client is the header's.
    expect(
      await rawExchange(
        ports.pp!,
        'PROXY TCP6 2001:db8::9 ::1 4000 80\r\nGET /raw HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
      ),
    ).toMatch(/^HTTP\/1\.1 200 [\s\S]*xff=2001:db8::9 /);
  });

  it('proxy_protocol_from: a listed peer must send a header, any other is served without one', async () => {
    const request = 'GET /from HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n';
    // 127.0.0.2 is listed: its header is read and its client used; without one it is closed.
    expect(
      await exchangeFrom('127.0.0.2', ports.ppfrom!, `PROXY TCP4 192.0.2.44 127.0.0.1 5 6\r\n${request}`),
    ).toMatch(/^HTTP\/1\.1 200 [\s\S]*xff=192\.0\.2\.44 /);
    expect(await exchangeFrom('127.0.0.2', ports.ppfrom!, request)).toBe('');
    // 127.0.0.3 is not: served as a plain listener (its own address), a header it sends is not honoured.
    expect(await exchangeFrom('127.0.0.3', ports.ppfrom!, request)).toMatch(
      /^HTTP\/1\.1 200 [\s\S]*xff=127\.0\.0\.3 /,
    );
    expect(
      await exchangeFrom('127.0.0.3', ports.ppfrom!, `PROXY TCP4 192.0.2.44 127.0.0.1 5 6\r\n${request}`),
    ).toMatch(/^HTTP\/1\.1 400 /);
  });

  it.each([
    ['v1', 'send1'],
    ['v2', 'send2'],
    ['v2 over HTTP/2 (h2c sessions)', 'send3'],
  ])(
    'send_proxy_protocol = "%s": haproxy (accept-proxy) sees each client, never a shared connection',
    async (_, server) => {
      for (const client of ['127.0.0.2', '127.0.0.3', '127.0.0.2']) {
        const r = await curl(['--interface', client, `http://127.0.0.1:${ports[server]}/up`]);
        expect(r.err).toBe('');
        expect(r.out).toMatch(
          new RegExp(
            `^xff=${client.replaceAll('.', '\\.')} proto=http hsrc=${client.replaceAll('.', '\\.')}$`,
          ),
        );
      }
      // Two requests on one client connection (curl keeps it alive) reuse the upstream connection.
      const r = await curl([
        '--interface',
        '127.0.0.6',
        `http://127.0.0.1:${ports[server]}/a`,
        `http://127.0.0.1:${ports[server]}/b`,
      ]);
      expect(r.out).toBe('xff=127.0.0.6 proto=http hsrc=127.0.0.6xff=127.0.0.6 proto=http hsrc=127.0.0.6');
    },
  );
});
