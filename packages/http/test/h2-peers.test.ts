/**
 * Real HTTP/2 clients against HttpServer on loopback, on every driver this process loads:
 * node:http2 (nghttp2: many concurrent streams, large bodies both ways, trailers both ways,
 * resets, GOAWAY on close), curl --http2-prior-knowledge, nghttp and h2load (nghttp2-client),
 * plus the ALPN path (a stream whose facts say `h2`, as the TLS layer reports it).
 */
import { execFile } from 'node:child_process';
import * as http2 from 'node:http2';
import { promisify } from 'node:util';
import { TcpListener } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpServer } from '../src/server.js';
import type { HttpStream } from '../src/transport.js';
import { availableDrivers, demoHandler, type InProcess, runtimeFor, startServer } from './server-harness.js';

const run = promisify(execFile);
const drivers = await availableDrivers();

async function has(tool: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
}
const tools = { curl: await has('curl'), nghttp: await has('nghttp'), h2load: await has('h2load') };

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

/** One request on a node:http2 session. */
function request(
  session: http2.ClientHttp2Session,
  path: string,
  init: { method?: string; body?: Buffer; trailers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(
      { ':method': init.method ?? 'GET', ':path': path },
      init.trailers ? { waitForTrailers: true } : {},
    );
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    req.on('response', (h) => {
      headers = h;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () =>
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(parts), trailers }),
    );
    req.on('error', reject);
    if (init.trailers) req.on('wantTrailers', () => req.sendTrailers(init.trailers!));
    if (init.body) req.end(init.body);
    else req.end();
  });
}

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (const x of b) sum = (sum + x) % 65521;
  return sum;
}

describe.each(drivers)('HTTP/2 peers against HttpServer on the %s driver', (driver) => {
  let srv: InProcess;
  let session: http2.ClientHttp2Session | null = null;
  beforeEach(async () => {
    srv = await startServer(driver);
  });
  afterEach(async () => {
    session?.destroy();
    session = null;
    await srv.stop();
  });

  function connect(): http2.ClientHttp2Session {
    session = http2.connect(`http://127.0.0.1:${srv.port}`);
    session.on('error', () => {});
    return session;
  }

  describe('node:http2 client (h2c prior knowledge)', () => {
    it('serves 300 concurrent streams on one connection (more than SETTINGS_MAX_CONCURRENT_STREAMS)', async () => {
      const s = connect();
      const answers = await Promise.all(Array.from({ length: 300 }, () => request(s, '/hello')));
      for (const a of answers) expect([a.status, a.body.toString()]).toEqual([200, 'hello world']);
      expect(srv.errors).toEqual([]);
    });

    it('downloads a 4 MiB body and uploads an 8 MiB one (flow control both ways)', async () => {
      const s = connect();
      const down = await request(s, '/big');
      expect(down.body.length).toBe(4 * 1024 * 1024);
      expect(down.headers['content-length']).toBe(String(4 * 1024 * 1024));
      const payload = Buffer.alloc(8 * 1024 * 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
      const up = await request(s, '/len', { method: 'POST', body: payload });
      expect(up.body.toString()).toBe(`${payload.length} ${checksum(payload)}`);
      const echo = await request(s, '/echo', { method: 'PUT', body: payload.subarray(0, 3_000_000) });
      expect(echo.body.equals(payload.subarray(0, 3_000_000))).toBe(true);
      expect(echo.headers['x-method']).toBe('PUT');
    });

    it('carries trailers both ways', async () => {
      const s = connect();
      const a = await request(s, '/len', {
        method: 'POST',
        body: Buffer.from('abc'),
        trailers: { 'x-checksum': 'c1' },
      });
      expect(a.body.toString()).toBe(`3 ${checksum(Buffer.from('abc'))} c1`);
      const b = await request(s, '/stream');
      expect(b.body.toString()).toBe('part0;part1;part2;part3;part4;');
      expect(b.trailers['x-trailer']).toBe('done');
    });

    it('a stream the client cancels ends its endless body; the connection goes on', async () => {
      const s = connect();
      await new Promise<void>((resolve) => {
        const req = s.request({ ':path': '/forever' });
        let got = 0;
        req.on('data', (b: Buffer) => {
          got += b.length;
          if (got > 256 * 1024) req.close(http2.constants.NGHTTP2_CANCEL);
        });
        req.on('close', () => resolve());
        req.on('error', () => {});
      });
      expect((await request(s, '/hello')).body.toString()).toBe('hello world');
    });

    it('answers handler failures and unknown paths per stream', async () => {
      const s = connect();
      const [a, b, c] = await Promise.all([
        request(s, '/throw'),
        request(s, '/nope'),
        request(s, '/nocontent'),
      ]);
      expect([a.status, b.status, c.status]).toEqual([500, 404, 204]);
      expect(c.body.length).toBe(0);
    });

    it('server.close() sends GOAWAY; the stream in flight completes', async () => {
      const s = connect();
      const goaway = new Promise<number>((resolve) => s.on('goaway', (code) => resolve(code)));
      await request(s, '/hello');
      const slow = request(s, '/slow');
      await new Promise((r) => setTimeout(r, 10));
      const stopping = srv.server.close();
      expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
      expect((await slow).body.toString()).toBe('slow');
      await stopping;
    });

    it('the handler sees version 2 and the connection context', async () => {
      const s = connect();
      const a = await request(s, '/peer');
      const peer = JSON.parse(a.body.toString());
      expect(peer.driver).toBe(driver);
      expect(peer.peer.port).toBeGreaterThan(0);
    });
  });

  describe.runIf(tools.curl)('curl --http2-prior-knowledge', () => {
    it('GET and POST', async () => {
      const url = `http://127.0.0.1:${srv.port}`;
      const a = await run('curl', [
        '-s',
        '--http2-prior-knowledge',
        '-w',
        ' %{http_version}',
        `${url}/hello`,
      ]);
      expect(a.stdout).toBe('hello world 2');
      const b = await run('curl', ['-s', '--http2-prior-knowledge', '--data-binary', 'xyz', `${url}/echo`]);
      expect(b.stdout).toBe('xyz');
    });
  });

  describe.runIf(tools.nghttp)('nghttp', () => {
    it('fetches several paths on one connection, trailers included', async () => {
      const url = `http://127.0.0.1:${srv.port}`;
      const { stdout } = await run('nghttp', ['-v', `${url}/hello`, `${url}/stream`, `${url}/nope`]);
      expect(stdout).toContain('hello world');
      expect(stdout).toContain('x-trailer: done');
      expect(stdout).toContain(':status: 404');
      // Two 4 MiB bodies on one connection, discarded (-n): flow control with nghttp2's windows.
      const big = await run('nghttp', ['-n', '-v', `${url}/big?a`, `${url}/big?b`], { maxBuffer: 64 << 20 });
      expect(big.stdout.match(/content-length: 4194304/g)).toHaveLength(2);
      expect(big.stdout).not.toContain('RST_STREAM');
      expect(stdout).not.toMatch(/GOAWAY[^\n]*\n[^\n]*error_code=(?!NO_ERROR)/);
    });
  });

  describe.runIf(tools.h2load)('h2load', () => {
    it('h2load -n 1000 -c 4 -m 10 completes with no error', async () => {
      const { stdout } = await run('h2load', [
        '-n',
        '1000',
        '-c',
        '4',
        '-m',
        '10',
        `http://127.0.0.1:${srv.port}/hello`,
      ]);
      expect(stdout).toMatch(
        /requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed, 0 errored/,
      );
      expect(stdout).toMatch(/status codes: 1000 2xx/);
    });

    it('h2load with request bodies (-d) and 100 streams per connection', async () => {
      const { stdout } = await run('sh', [
        '-c',
        `head -c 20000 /dev/zero > /tmp/loch-h2load-body.$$ && h2load -n 400 -c 2 -m 100 -d /tmp/loch-h2load-body.$$ http://127.0.0.1:${srv.port}/len; rm -f /tmp/loch-h2load-body.$$`,
      ]);
      expect(stdout).toMatch(/400 succeeded, 0 failed, 0 errored/);
    });
  });
});

describe.each(drivers)('h2 by ALPN on the %s driver', (driver) => {
  it('a stream whose facts say alpnProtocol h2 is served as HTTP/2 without sniffing', async () => {
    const listener = await TcpListener.bind({
      host: '127.0.0.1',
      port: 0,
      runtime: await runtimeFor(driver),
    });
    const server = new HttpServer(demoHandler);
    const port = (listener.localAddress as { port: number }).port;
    const accepting = listener.accept().then((stream) => {
      // What the TLS layer would report after ALPN picked h2 (the bytes stay plain here).
      const facts = { ...stream.facts, secure: true, alpnProtocol: 'h2' };
      const wrapped: HttpStream = {
        facts,
        get remoteAddress() {
          return stream.remoteAddress;
        },
        get localAddress() {
          return stream.localAddress;
        },
        get driver() {
          return stream.driver;
        },
        get closed() {
          return stream.closed;
        },
        recvTo: (target) => stream.recvTo(target),
        writeTo: (data, target) => stream.writeTo(data, target),
        shutdown: () => stream.shutdown(),
        close: () => stream.close(),
        setNoDelay: (on) => stream.setNoDelay(on),
      };
      return server.serveConnection(wrapped);
    });
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    const a = await request(s, '/hello');
    expect(a.body.toString()).toBe('hello world');
    s.close();
    await accepting;
    await server.close();
    await listener.close();
  });

  it('ALPN http/1.1 on a secure stream is never sniffed for the preface', async () => {
    const server = new HttpServer(demoHandler);
    const fake = { facts: { secure: true, alpnProtocol: 'http/1.1' } } as unknown as HttpStream;
    expect(server.sniffsPreface(fake)).toBe(false);
    const plain = { facts: { secure: false, alpnProtocol: null } } as unknown as HttpStream;
    expect(server.sniffsPreface(plain)).toBe(true);
    expect(new HttpServer(demoHandler, { http2: false }).sniffsPreface(plain)).toBe(false);
  });
});
