/**
 * HTTP/2 downstream through `loch run`, end to end: an h2c client (node:http2 by prior
 * knowledge, curl --http2-prior-knowledge, h2load) -> loch -> an HTTP/1.1 upstream (node:http),
 * on every available driver. The proxy chain is protocol-neutral: the upstream sees an
 * HTTP/1.1 request with Host from :authority, no HTTP/2 pseudo-headers, forwarded bodies and
 * trailers; the client sees the upstream's answer as HTTP/2 with connection-specific fields
 * dropped.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDrivers, freePort, type Loch, rawExchange, startLoch, tempDir } from './harness.js';

const run = promisify(execFile);
const drivers = availableDrivers();

/** What the upstream saw of a request, as JSON. */
interface Seen {
  method: string;
  url: string;
  version: string;
  headers: Record<string, string | string[] | undefined>;
  length: number;
  trailers: NodeJS.Dict<string>;
}

function upstream(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      if (req.url === '/big') {
        const body = Buffer.alloc(2 * 1024 * 1024, 0x41);
        res.writeHead(200, {
          'content-length': body.length,
          connection: 'keep-alive',
          'keep-alive': 'timeout=5',
        });
        res.end(body);
        return;
      }
      const seen: Seen = {
        method: req.method!,
        url: req.url!,
        version: req.httpVersion,
        headers: req.headers,
        length: Buffer.concat(parts).length,
        trailers: req.trailers,
      };
      const body = JSON.stringify(seen);
      res.writeHead(200, { 'content-type': 'application/json', 'x-up': 'yes', 'keep-alive': 'timeout=5' });
      res.end(body);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

function h2request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let h: http2.IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    req.on('response', (r) => {
      h = r;
    });
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve({ headers: h, body: Buffer.concat(parts) }));
    req.on('error', reject);
    req.end(body);
  });
}

describe.each(drivers)('h2c client -> loch -> HTTP/1.1 upstream on the %s driver', (driver) => {
  let loch: Loch;
  let up: { server: Server; port: number };
  let port: number;
  beforeAll(async () => {
    up = await upstream();
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-h2c-'),
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
  });
  afterAll(async () => {
    await loch?.stop();
    await new Promise((r) => up?.server.close(r));
  });

  it('forwards GET and POST as HTTP/1.1 with Host from :authority, and answers as HTTP/2', async () => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    try {
      const get = await h2request(s, { ':path': '/a?b=1', ':authority': 'example.test', 'x-foo': 'bar' });
      expect(get.headers[':status']).toBe(200);
      expect(get.headers['x-up']).toBe('yes');
      expect(get.headers['keep-alive']).toBeUndefined();
      const seen = JSON.parse(get.body.toString()) as Seen;
      expect(seen).toMatchObject({ method: 'GET', url: '/a?b=1', version: '1.1' });
      expect(seen.headers.host).toBe('example.test');
      expect(seen.headers['x-foo']).toBe('bar');
      expect(Object.keys(seen.headers).some((k) => k.startsWith(':'))).toBe(false);
      const payload = Buffer.alloc(300_000, 0x7a);
      const post = await h2request(
        s,
        { ':method': 'POST', ':path': '/up', ':authority': 'example.test' },
        payload,
      );
      expect(JSON.parse(post.body.toString())).toMatchObject({ method: 'POST', length: payload.length });
    } finally {
      s.close();
    }
  });

  it('many concurrent streams and a 2 MiB answer', async () => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    try {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) => h2request(s, { ':path': `/n${i}`, ':authority': 'x' })),
      );
      for (const [i, a] of answers.entries())
        expect((JSON.parse(a.body.toString()) as Seen).url).toBe(`/n${i}`);
      const big = await h2request(s, { ':path': '/big', ':authority': 'x' });
      expect(big.body.length).toBe(2 * 1024 * 1024);
      expect(big.headers.connection).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it('curl --http2-prior-knowledge and h2load through loch', async () => {
    const { stdout } = await run('curl', [
      '-s',
      '--http2-prior-knowledge',
      '-w',
      ' %{http_version}',
      `http://127.0.0.1:${port}/curl`,
    ]);
    expect(stdout).toMatch(/"url":"\/curl".* 2$/);
    const load = await run('h2load', ['-n', '500', '-c', '2', '-m', '10', `http://127.0.0.1:${port}/load`]);
    expect(load.stdout).toMatch(/500 succeeded, 0 failed, 0 errored/);
  });
});

describe('http2 = false', () => {
  it('keeps a listener HTTP/1.1 only: a prior-knowledge preface is not HTTP/2 there', async () => {
    const up = await upstream();
    const port = await freePort();
    const loch = await startLoch(
      tempDir('loch-h2c-off-'),
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
http2 = false

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${up.port}" }]
`,
    );
    try {
      const text = await rawExchange(port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      expect(text).toMatch(/^HTTP\/1\.1 (400|505) /);
      const r = await run('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_version}',
        `http://127.0.0.1:${port}/`,
      ]);
      expect(r.stdout).toBe('1.1');
    } finally {
      await loch.stop();
      await new Promise((r) => up.server.close(r));
    }
  });
});
