/**
 * Request and connection limits of `loch run`, on every available driver, with raw sockets and
 * node:http2 as clients and a node:http upstream that records what reached it:
 * max_body_size per server and per route (413 before the body for a Content-Length above it;
 * a chunked or length-less HTTP/2 body cut where it crosses it, the upstream never seeing the
 * excess), max_header_size and max_header_count (431, HTTP/1.1 and HTTP/2), and
 * runtime.max_connections_per_worker (accepting pauses at the limit and resumes when a
 * connection closes), and the process's descriptor limit itself (accept fails with EMFILE: loch
 * keeps running, backs off, and serves again once descriptors come back; fds and RSS checked).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableDrivers,
  freePort,
  httpUpstream,
  type Loch,
  rawExchange,
  startLoch,
  tempDir,
} from './harness.js';

const drivers = availableDrivers();

/** What the upstream saw of each request: target and body bytes received (until the end or an abort). */
interface Seen {
  target: string;
  bytes: number;
  complete: boolean;
}

/** One request over HTTP/2 (h2c by prior knowledge); the body is written in `parts` chunks. */
function h2Post(
  port: number,
  path: string,
  body: Buffer,
  parts: number,
  withLength: boolean,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': path };
    if (withLength) headers['content-length'] = String(body.length);
    const req = session.request(headers);
    let status = 0;
    let text = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      text += d;
    });
    const done = () => {
      session.close();
      resolve({ status, text });
    };
    req.on('end', done);
    req.on('error', () => done());
    const size = Math.ceil(body.length / parts);
    for (let i = 0; i < body.length; i += size) req.write(body.subarray(i, i + size));
    req.end();
  });
}

describe.each(drivers)('limits (driver %s)', (driver) => {
  let loch: Loch;
  let port: number;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  const seen: Seen[] = [];

  beforeAll(async () => {
    upstream = await httpUpstream((req, res) => {
      const s: Seen = { target: req.url ?? '', bytes: 0, complete: false };
      seen.push(s);
      req.on('data', (d: Buffer) => {
        s.bytes += d.length;
      });
      req.on('error', () => {});
      req.on('end', () => {
        s.complete = true;
        res.end(`got ${s.bytes}\n`);
      });
    });
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-limits-'),
      `
[runtime]
workers = 1
max_connections_per_worker = 4

[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
max_body_size = "1k"
max_header_size = "2k"
max_header_count = 10
timeouts = { server_keepalive = "60s", upstream_read = "5s" }

[[servers.web.routes]]
path = "/big/"
max_body_size = "64k"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]

[[servers.web.routes]]
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

  const post = (target: string, fields: string, body: string | Buffer) =>
    rawExchange(
      port,
      Buffer.concat([
        Buffer.from(`POST ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${fields}\r\n`),
        Buffer.from(body),
      ]),
    );

  it('a Content-Length above max_body_size is answered 413 before its body, and never forwarded', async () => {
    const before = seen.length;
    const answer = await post('/over', 'Content-Length: 2000\r\n', 'x'.repeat(2000));
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('ERR_HTTP_BODY_TOO_LARGE');
    expect(seen.length).toBe(before);
  });

  it('a body within the limit is forwarded; a route raises the server limit', async () => {
    expect(await post('/ok', 'Content-Length: 1000\r\n', 'x'.repeat(1000))).toMatch(
      /^HTTP\/1\.1 200 [\s\S]*got 1000\n$/,
    );
    expect(await post('/big/x', 'Content-Length: 2000\r\n', 'x'.repeat(2000))).toMatch(
      /^HTTP\/1\.1 200 [\s\S]*got 2000\n$/,
    );
  });

  it('a chunked body crossing max_body_size is answered 413 and the upstream never sees the excess', async () => {
    const before = seen.length;
    const chunk = `200\r\n${'y'.repeat(0x200)}\r\n`;
    const answer = await post('/chunked', 'Transfer-Encoding: chunked\r\n', `${chunk.repeat(6)}0\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('ERR_HTTP_BODY_TOO_LARGE');
    // the exchange may have started upstream: it got at most the limit, never the whole body
    await new Promise((r) => setTimeout(r, 200));
    for (const s of seen.slice(before)) {
      expect(s.bytes).toBeLessThanOrEqual(1024);
      expect(s.complete).toBe(false);
    }
    // within the limit, chunked goes through
    expect(await post('/chunked', 'Transfer-Encoding: chunked\r\n', `${chunk}0\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 200 [\s\S]*got 512\n$/,
    );
  });

  it('HTTP/2: content-length above the limit is 413; a body without one is cut at the limit with 413', async () => {
    const body = Buffer.alloc(3000, 'z');
    const before = seen.length;
    expect((await h2Post(port, '/h2', body, 1, true)).status).toBe(413);
    expect(seen.length).toBe(before);
    const cut = await h2Post(port, '/h2', body, 6, false);
    expect(cut.status).toBe(413);
    expect(cut.text).toContain('ERR_HTTP_BODY_TOO_LARGE');
    for (const s of seen.slice(before)) expect(s.bytes).toBeLessThanOrEqual(1024);
    expect(await h2Post(port, '/big/h2', body, 3, false)).toEqual({ status: 200, text: 'got 3000\n' });
  });

  it('max_header_size and max_header_count answer 431 (HTTP/1.1)', async () => {
    const big = await rawExchange(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    const fields = Array.from({ length: 12 }, (_, i) => `X-F${i}: v\r\n`).join('');
    const many = await rawExchange(port, `GET / HTTP/1.1\r\nHost: x\r\n${fields}\r\n`);
    expect(many).toMatch(/^HTTP\/1\.1 431 /);
    const fine = await rawExchange(port, 'GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(fine).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('max_header_size answers 431 on an HTTP/2 stream', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', reject);
      const req = session.request({ ':path': '/', 'x-big': 'a'.repeat(3000) });
      req.on('response', (h) => {
        resolve(Number(h[':status']));
        session.close();
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
  });

  it('max_connections_per_worker: at the limit accepting pauses; a close lets the waiting client in', async () => {
    const from = loch.stderr().length;
    const idle: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      idle.push(s);
    }
    await loch.waitFor(/max_connections_per_worker \(4\) reached: accepting paused/, from);
    // a fifth client connects (the kernel's backlog takes it) but is not served while four are open
    let answered = false;
    const fifth = rawExchange(
      port,
      'GET /fifth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      10_000,
    ).then((a) => {
      answered = true;
      return a;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(answered).toBe(false);
    idle[0]!.destroy();
    expect(await fifth).toMatch(/^HTTP\/1\.1 200 /);
    for (const s of idle) s.destroy();
  });
});

/** Resident set of a process in MiB (/proc/<pid>/status VmRSS). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 102.4) / 10;
}

describe.each(drivers)('at the process descriptor limit (driver %s)', (driver) => {
  let loch: Loch;
  let port: number;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;

  beforeAll(async () => {
    upstream = await httpUpstream((_req, res) => res.end('ok\n'));
    port = await freePort();
    loch = await startLoch(
      tempDir('loch-fd-limit-'),
      `
[runtime]
workers = 1

[log]
access = false

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { server_keepalive = "60s" }

[[servers.web.routes]]
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

  it('more clients than descriptors: accept fails with EMFILE, loch keeps running and serves again once they leave', async () => {
    const pid = loch.child.pid!;
    expect(await rawExchange(port, 'GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 200 /,
    );
    const fdsBefore = loch.fdCount();
    const rssBefore = rssMiB(pid);
    // Room for 100 more descriptors (below max_connections_per_worker's 10,000): the limit is
    // the kernel's, not loch's.
    const limit = fdsBefore + 100;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
    const clients: net.Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      clients.push(s);
    }
    // Every descriptor loch may open is taken by an accepted client; the rest wait in the backlog.
    const start = performance.now();
    while (loch.fdCount() < limit - 2 && performance.now() - start < 10_000)
      await new Promise((r) => setTimeout(r, 50));
    const atLimit = loch.fdCount();
    await new Promise((r) => setTimeout(r, 1000)); // accept keeps failing meanwhile
    expect(loch.child.exitCode).toBeNull();
    for (const s of clients) s.destroy();
    // Descriptors come back, and a new client is served.
    const settle = performance.now();
    while (loch.fdCount() > fdsBefore + 2 && performance.now() - settle < 15_000)
      await new Promise((r) => setTimeout(r, 100));
    const answer = await rawExchange(
      port,
      'GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      10_000,
    );
    const rssAfter = rssMiB(pid);
    console.log(
      `[${driver}] fd limit ${limit}: fds ${fdsBefore} -> ${atLimit} at the limit -> ${loch.fdCount()}; RSS ${rssBefore} -> ${rssAfter} MiB`,
    );
    expect(atLimit).toBeGreaterThanOrEqual(limit - 2);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(loch.child.exitCode).toBeNull();
    expect(loch.fdCount()).toBeLessThanOrEqual(fdsBefore + 2);
    expect(rssAfter - rssBefore).toBeLessThan(64);
    // No worker crashed on the way.
    expect(loch.stderr()).not.toMatch(/uncaught|crashed/i);
  }, 60_000);
});
