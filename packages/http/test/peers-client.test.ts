/**
 * HttpClient against real servers on loopback: node:http and nginx (nginx-light, started on a
 * temp prefix and config), plus a raw socket server for close-delimited bodies and stalls.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, readBody, readText, streamBody } from '../src/body.js';
import { HttpClient } from '../src/client.js';
import { HttpHeaders } from '../src/headers.js';
import { createRequest } from '../src/message.js';
import { freePort } from './free-port.js';
import { availableDrivers, connectTo } from './server-harness.js';

const drivers = await availableDrivers();
const clients: HttpClient[] = [];
let driver = drivers[0]!;
async function client(port: number, options = {}): Promise<HttpClient> {
  const c = new HttpClient(await connectTo(driver, port), { authority: `127.0.0.1:${port}`, ...options });
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});

describe.each(drivers)('HttpClient on the %s driver', (d) => {
  beforeAll(() => {
    driver = d;
  });

  describe('HttpClient against node:http', () => {
    let server: http.Server;
    let port: number;
    const seen: {
      method: string;
      url: string;
      body: string;
      trailers: NodeJS.Dict<string>;
      headers: http.IncomingHttpHeaders;
    }[] = [];

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (b: Buffer) => parts.push(b));
        req.on('end', () => {
          const body = Buffer.concat(parts).toString('latin1');
          seen.push({
            method: req.method!,
            url: req.url!,
            body,
            trailers: req.trailers,
            headers: req.headers,
          });
          if (req.url === '/trailers') {
            res.writeHead(200, { Trailer: 'x-sum' });
            res.write('abc');
            res.write('def');
            res.addTrailers({ 'x-sum': '42' });
            res.end();
          } else if (req.url === '/hints') {
            res.writeEarlyHints({ link: '</a.css>; rel=preload' });
            res.end('after hints');
          } else if (req.url === '/close') {
            res.setHeader('connection', 'close');
            res.end('bye');
          } else {
            res.setHeader('content-length', Buffer.byteLength(body) + req.method!.length + 1);
            res.end(`${req.method} ${body}`);
          }
        });
      });
      server.on('checkContinue', (req, res) => {
        if (req.url === '/declined') {
          res.writeHead(417, { 'content-length': 8 });
          res.end('declined');
          return;
        }
        res.writeContinue();
        server.emit('request', req, res);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it('sends several requests over one kept-alive connection', async () => {
      const c = await client(port);
      for (let i = 0; i < 3; i++) {
        const res = await c.send(createRequest('GET', `/n${i}`));
        expect(res.status).toBe(200);
        expect(await readText(res.body)).toBe('GET ');
        expect(c.reusable).toBe(true);
      }
      expect(seen.at(-1)!.headers.host).toBe(`127.0.0.1:${port}`);
    });

    it('sends sized and chunked bodies (with trailers)', async () => {
      const c = await client(port);
      const a = await c.send(createRequest('POST', '/sized', { body: fixedBody('hello') }));
      expect(await readText(a.body)).toBe('POST hello');
      async function* parts() {
        yield Buffer.from('chunk-1;');
        yield Buffer.from('chunk-2');
      }
      const b = await c.send(
        createRequest('PUT', '/chunked', {
          body: streamBody(parts(), { trailers: new HttpHeaders([['x-check', 'ok']]) }),
        }),
      );
      expect(await readText(b.body)).toBe('PUT chunk-1;chunk-2');
      expect(seen.at(-1)!.headers['transfer-encoding']).toBe('chunked');
      expect(seen.at(-1)!.trailers['x-check']).toBe('ok');
      expect(c.reusable).toBe(true);
    });

    it('waits for 100 Continue before sending the body', async () => {
      const c = await client(port);
      const res = await c.send(
        createRequest('POST', '/expect', { headers: { expect: '100-continue' }, body: fixedBody('payload') }),
      );
      expect(await readText(res.body)).toBe('POST payload');
      expect(c.reusable).toBe(true);
    });

    it('does not send the body when the server declines before 100 Continue', async () => {
      const c = await client(port, { expectContinueTimeout: 5000 });
      const before = seen.length;
      const res = await c.send(
        createRequest('POST', '/declined', {
          headers: { expect: '100-continue' },
          body: fixedBody('never sent'),
        }),
      );
      expect(res.status).toBe(417);
      expect(await readText(res.body)).toBe('declined');
      expect(c.reusable).toBe(false);
      expect(seen.length).toBe(before);
    });

    it('reads chunked responses with trailers, skips 103, handles HEAD and Connection: close', async () => {
      const c = await client(port);
      const t = await c.send(createRequest('GET', '/trailers'));
      expect(await readText(t.body)).toBe('abcdef');
      expect(t.body.trailers?.get('x-sum')).toBe('42');
      const h = await c.send(createRequest('GET', '/hints'));
      expect(h.status).toBe(200);
      expect(await readText(h.body)).toBe('after hints');
      const head = await c.send(createRequest('HEAD', '/x'));
      expect(head.headers.get('content-length')).toBe('5');
      expect(await readText(head.body)).toBe('');
      expect(c.reusable).toBe(true);
      const bye = await c.send(createRequest('GET', '/close'));
      expect(await readText(bye.body)).toBe('bye');
      expect(c.reusable).toBe(false);
      await expect(c.send(createRequest('GET', '/'))).rejects.toMatchObject({
        code: 'ERR_HTTP_CONNECTION_CLOSED',
      });
    });

    it('refuses a second request while a body is unread', async () => {
      const c = await client(port);
      const res = await c.send(createRequest('GET', '/trailers'));
      await expect(c.send(createRequest('GET', '/'))).rejects.toMatchObject({
        code: 'ERR_HTTP_CONNECTION_BUSY',
      });
      await c.discard();
      expect(c.reusable).toBe(true);
      void res;
    });
  });

  describe('HttpClient against raw servers', () => {
    let server: net.Server;
    let port: number;
    let behaviour: (s: net.Socket, req: string) => void = () => {};
    beforeAll(async () => {
      server = net.createServer((s) => {
        let buf = '';
        s.on('data', (b) => {
          buf += b.toString('latin1');
          if (buf.includes('\r\n\r\n')) behaviour(s, buf);
        });
        s.on('error', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise((r) => server.close(r));
    });

    it('reads a close-delimited body and reports the connection as spent', async () => {
      behaviour = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
      const c = await client(port);
      const res = await c.send(createRequest('GET', '/'));
      expect(await readText(res.body)).toBe('until the end');
      expect(c.reusable).toBe(false);
    });

    it('rejects a smuggling-shaped response', async () => {
      behaviour = (s) =>
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
      const c = await client(port);
      await expect(c.send(createRequest('GET', '/'))).rejects.toMatchObject({
        code: 'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
      });
      expect(c.reusable).toBe(false);
    });

    it('times out when no response comes', async () => {
      behaviour = () => {};
      const c = await client(port, { responseTimeout: 100 });
      await expect(c.send(createRequest('GET', '/'))).rejects.toMatchObject({
        code: 'ERR_HTTP_TIMEOUT',
        kind: 'response',
      });
      expect(c.reusable).toBe(false);
    });

    it('fails at once with a typed error when the request body source fails mid-upload', async () => {
      behaviour = () => {}; // reads the request, never answers
      const c = await client(port, { responseTimeout: 60_000 });
      const released: string[] = [];
      async function* upload() {
        try {
          yield Buffer.from('first part');
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('client went away');
        } finally {
          released.push('source done');
        }
      }
      const sent = c.send(createRequest('POST', '/', { body: streamBody(upload()) }));
      await expect(sent).rejects.toMatchObject({
        name: 'HttpRequestBodyError',
        code: 'ERR_HTTP_REQUEST_BODY_FAILED',
        cause: expect.objectContaining({ message: 'client went away' }),
      });
      expect(released).toEqual(['source done']);
      expect(c.reusable).toBe(false);
      expect(c.responseBytes).toBe(0);
    }, 10_000);

    it('takes per-request deadlines over the client’s, and aborts through a signal', async () => {
      behaviour = () => {};
      const c = await client(port, { responseTimeout: 60_000 });
      await expect(c.send(createRequest('GET', '/'), { responseTimeout: 50 })).rejects.toMatchObject({
        code: 'ERR_HTTP_TIMEOUT',
        kind: 'response',
        message: 'response timeout after 50 ms',
      });
      expect(c.reusable).toBe(false);

      const a = await client(port, { responseTimeout: 60_000 });
      const ctrl = new AbortController();
      const sent = a.send(createRequest('GET', '/'), { signal: ctrl.signal });
      setTimeout(() => ctrl.abort(new Error('caller gave up')), 20);
      await expect(sent).rejects.toMatchObject({
        code: 'ERR_HTTP_ABORTED',
        cause: expect.objectContaining({ message: 'caller gave up' }),
      });
      expect(a.reusable).toBe(false);
      const b = await client(port);
      await expect(b.send(createRequest('GET', '/'), { signal: AbortSignal.abort() })).rejects.toMatchObject({
        code: 'ERR_HTTP_ABORTED',
      });

      behaviour = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      const d = await client(port, { bodyTimeout: 60_000 });
      const res = await d.send(createRequest('GET', '/'), { bodyTimeout: 50 });
      await expect(readBody(res.body)).rejects.toMatchObject({ code: 'ERR_HTTP_TIMEOUT', kind: 'body' });
      expect(d.reusable).toBe(false);
    }, 10_000);

    it('says how many response bytes arrived in the current exchange', async () => {
      behaviour = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      const c = await client(port);
      expect(c.responseBytes).toBe(0);
      const res = await c.send(createRequest('GET', '/'));
      expect(await readText(res.body)).toBe('ok');
      expect(c.responseBytes).toBe(40);
      behaviour = () => {};
      const silent = await client(port);
      await expect(silent.send(createRequest('GET', '/'), { responseTimeout: 30 })).rejects.toMatchObject({
        kind: 'response',
      });
      expect(silent.responseBytes).toBe(0);
    }, 10_000);

    it('fails cleanly when the peer closes mid-body', async () => {
      behaviour = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      const c = await client(port);
      const res = await c.send(createRequest('GET', '/'));
      await expect(readBody(res.body)).rejects.toMatchObject({ code: 'ERR_HTTP_INCOMPLETE_MESSAGE' });
      expect(c.reusable).toBe(false);
    });
  });

  describe('HttpClient against a peer that stops reading', () => {
    let server: net.Server;
    let port: number;
    const sockets: net.Socket[] = [];
    beforeAll(async () => {
      server = net.createServer((s) => {
        s.pause(); // never reads: the client's writes stall once the socket buffers are full
        s.on('error', () => {});
        sockets.push(s);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    });

    it('enforces writeTimeout (per request over the client’s) and closes the source', async () => {
      const c = await client(port, { writeTimeout: 60_000, responseTimeout: 60_000 });
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let pulled = 0;
      let returned = false;
      const source: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            pulled++;
            return { done: false, value: chunk };
          },
          return: async () => {
            returned = true;
            return { done: true, value: undefined };
          },
        }),
      };
      const size = 256 * chunk.length;
      const sent = c.send(createRequest('PUT', '/', { body: streamBody(source, { length: size }) }), {
        writeTimeout: 100,
      });
      await expect(sent).rejects.toMatchObject({ code: 'ERR_HTTP_TIMEOUT', kind: 'write' });
      expect(pulled).toBeLessThan(256);
      // The aborted write settles right after; then the source is let go.
      for (let n = 0; n < 200 && !returned; n++) await new Promise((r) => setTimeout(r, 10));
      expect(returned).toBe(true);
      expect(c.reusable).toBe(false);
    }, 20_000);
  });

  describe('HttpClient against nginx', () => {
    let dir: string;
    let nginx: ChildProcess;
    let port: number;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'loch-http-nginx-'));
      port = await freePort('packages/http');
      const big = Buffer.alloc(300_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
      writeFileSync(join(dir, 'big.bin'), big);
      writeFileSync(join(dir, 'text.txt'), 'compress me '.repeat(2000));
      writeFileSync(
        join(dir, 'nginx.conf'),
        `error_log ${dir}/error.log warn;
  pid ${dir}/nginx.pid;
  events { worker_connections 64; }
  http {
    access_log off;
    client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
    uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
    server {
      listen 127.0.0.1:${port};
      root ${dir};
      location = /hello { return 200 "hello from nginx"; }
      location = /post { client_max_body_size 10m; return 200 "posted"; }
      location = /close { keepalive_timeout 0; return 200 "closing"; }
      location = /text.txt { gzip on; gzip_min_length 1; gzip_types text/plain; }
    }
  }
  `,
      );
      nginx = spawn(
        'nginx',
        ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'],
        {
          stdio: 'ignore',
        },
      );
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((r) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            r(true);
          });
          s.on('error', () => r(false));
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('nginx did not start');
    });
    afterAll(() => {
      nginx?.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });

    it('GETs, static files and gzip-chunked bodies over one connection', async () => {
      const c = await client(port);
      const hello = await c.send(createRequest('GET', '/hello'));
      expect(await readText(hello.body)).toBe('hello from nginx');
      const big = await c.send(createRequest('GET', '/big.bin'));
      expect(big.body.kind).toBe('fixed');
      const bytes = await readBody(big.body);
      expect(bytes.length).toBe(300_000);
      expect(bytes[12345]).toBe((12345 * 13) & 0xff);
      const gz = await c.send(createRequest('GET', '/text.txt', { headers: { 'accept-encoding': 'gzip' } }));
      expect(gz.headers.get('content-encoding')).toBe('gzip');
      expect(gz.body.kind).toBe('stream');
      const { gunzipSync } = await import('node:zlib');
      expect(gunzipSync(await readBody(gz.body)).toString()).toBe('compress me '.repeat(2000));
      const head = await c.send(createRequest('HEAD', '/big.bin'));
      expect(head.headers.get('content-length')).toBe('300000');
      expect(await readText(head.body)).toBe('');
      const missing = await c.send(createRequest('GET', '/missing'));
      expect(missing.status).toBe(404);
      await readBody(missing.body);
      expect(c.reusable).toBe(true);
    });

    it('POSTs sized and chunked bodies', async () => {
      const c = await client(port);
      const a = await c.send(createRequest('POST', '/post', { body: fixedBody(Buffer.alloc(100_000, 1)) }));
      expect(await readText(a.body)).toBe('posted');
      // The whole body went out in the request's first write: nginx's answer (`return` answers
      // at the head) cannot be early, so the connection is kept.
      expect(c.reusable).toBe(true);
      const b = await c.send(
        createRequest('POST', '/post', { body: streamBody([Buffer.from('a'), Buffer.from('b')]) }),
      );
      expect(await readText(b.body)).toBe('posted');
      // (Whether this answer came before the last chunk was sent depends on timing: an early
      // answer is never followed by reuse, see the transports reuse tests.)
    });

    it('sees Connection: close', async () => {
      const c = await client(port);
      const res = await c.send(createRequest('GET', '/close'));
      expect(await readText(res.body)).toBe('closing');
      expect(c.reusable).toBe(false);
    });
  });
});
