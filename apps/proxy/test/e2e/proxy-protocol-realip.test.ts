/**
 * `trusted_proxies` and `send_proxy_protocol` together, end to end through `loch run` on every
 * available driver: when loch takes the client from X-Forwarded-For behind a trusted proxy, the
 * PROXY header it sends upstream names that client (as nginx's realip changes $remote_addr for
 * `proxy_protocol` upstreams), v1 and v2; a peer that is not trusted is named itself whatever
 * X-Forwarded-For it sends. The upstream reads the header with @loch/transports' decoder and
 * answers with the source it names.
 */
import * as net from 'node:net';
import { decodeProxyHeader } from '@loch/transports';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** An HTTP/1.1 upstream behind a PROXY header: answers each request with the header's source. */
async function proxyReadingUpstream() {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let source: string | null = null;
    socket.on('data', (b: Buffer) => {
      buffered = Buffer.concat([buffered, b]);
      if (source === null) {
        const decoded = decodeProxyHeader(buffered);
        if (decoded === null) return;
        const h = decoded.header;
        source =
          h.command === 'proxy' && h.source.family !== 'unix'
            ? `${h.source.address} ${h.source.port}`
            : h.command;
        buffered = buffered.subarray(decoded.length);
      }
      let text = buffered.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        text = text.slice(end + 4);
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${source.length}\r\n\r\n${source}`);
      }
      buffered = Buffer.from(text, 'latin1');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** One GET from `localAddress` with these extra header lines; the answer's body. */
function get(port: number, localAddress: string, path: string, extra: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
    });
    s.on('error', reject);
    s.on('close', () => resolve(got.slice(got.indexOf('\r\n\r\n') + 4)));
    s.write(`GET ${path} HTTP/1.1\r\nHost: loch.test\r\n${extra}Connection: close\r\n\r\n`);
  });
}

describe.each(drivers)('PROXY header sent upstream behind trusted_proxies on the %s driver', (driver) => {
  let loch: Loch;
  let up: Awaited<ReturnType<typeof proxyReadingUpstream>>;
  let port: number;

  beforeAll(async () => {
    up = await proxyReadingUpstream();
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-pp-realip-'),
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]

[[servers.web.routes]]
path = "/v1/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}", send_proxy_protocol = "v1" }]

[[servers.web.routes]]
path = "/v2/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}", send_proxy_protocol = "v2" }]
`,
      { LOCH_DRIVER: driver },
    );
  });
  afterAll(async () => {
    await loch?.stop();
    await up?.close();
  });

  for (const version of ['v1', 'v2']) {
    it(`${version}: a trusted proxy's X-Forwarded-For client is the header's source (port 0)`, async () => {
      expect(await get(port, '127.0.0.1', `/${version}/a`, 'X-Forwarded-For: 203.0.113.7\r\n')).toBe(
        '203.0.113.7 0',
      );
      // Trusted hops are walked from the right (nginx's real_ip_recursive).
      expect(
        await get(port, '127.0.0.1', `/${version}/b`, 'X-Forwarded-For: 198.51.100.9, 10.1.2.3\r\n'),
      ).toBe('198.51.100.9 0');
      // IPv6 clients in an IPv4 connection's header: the addresses go as IPv6.
      expect(await get(port, '127.0.0.1', `/${version}/c`, 'X-Forwarded-For: 2001:db8::5\r\n')).toBe(
        '2001:db8::5 0',
      );
    });

    it(`${version}: without X-Forwarded-For, or from a peer that is not trusted, the peer is the source`, async () => {
      expect(await get(port, '127.0.0.1', `/${version}/d`, '')).toMatch(/^127\.0\.0\.1 \d+$/);
      expect(await get(port, '127.0.0.2', `/${version}/e`, 'X-Forwarded-For: 203.0.113.7\r\n')).toMatch(
        /^127\.0\.0\.2 \d+$/,
      );
    });
  }

  it('two clients behind one trusted proxy never share an upstream connection', async () => {
    const before = up.connections();
    expect(await get(port, '127.0.0.1', '/v2/f', 'X-Forwarded-For: 203.0.113.8\r\n')).toBe('203.0.113.8 0');
    expect(await get(port, '127.0.0.1', '/v2/g', 'X-Forwarded-For: 203.0.113.9\r\n')).toBe('203.0.113.9 0');
    expect(up.connections() - before).toBe(2);
  });
});
