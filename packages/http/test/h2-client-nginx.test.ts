/**
 * H2ClientSession against nginx (`listen ... http2`: h2c by prior knowledge), on both drivers:
 * nginx's SETTINGS (MAX_CONCURRENT_STREAMS 128 by default; 8 here) honoured with more exchanges
 * than that at once, a static file larger than the stream window, request bodies, and a
 * keepalive_requests limit answered with GOAWAY, after which the session takes no new streams
 * and the streams above the last-stream-id fail as never processed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, readBody, readText } from '../src/body.js';
import { Http2RequestRefusedError } from '../src/h2/client-errors.js';
import { H2ClientSession } from '../src/h2/client-session.js';
import { createRequest } from '../src/message.js';
import { freePort } from './free-port.js';
import { availableDrivers, connectTo } from './server-harness.js';

const drivers = await availableDrivers();
let dir: string;
let nginx: ChildProcess;
let port: number;
const big = Buffer.alloc(500_000);
for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'loch-h2-client-nginx-'));
  port = await freePort('packages/http');
  writeFileSync(join(dir, 'big.bin'), big);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  http2_max_concurrent_streams 8;
  keepalive_requests 30;
  server {
    listen 127.0.0.1:${port} http2;
    root ${dir};
    location = /hello { return 200 "hello $http2 $host"; }
    location = /post { client_max_body_size 10m; return 200 "posted $content_length"; }
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

const sessions: H2ClientSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
});

describe.each(drivers)('H2ClientSession against nginx (h2c) on the %s driver', (driver) => {
  async function session(): Promise<H2ClientSession> {
    const s = new H2ClientSession(await connectTo(driver, port), { authority: 'nginx.test' });
    sessions.push(s);
    return s;
  }

  it('answers over h2 with :authority as the host; a static file larger than the window; a posted body', async () => {
    const s = await session();
    const hello = await s.send(createRequest('GET', '/hello'));
    expect(hello.status).toBe(200);
    expect(await readText(hello.body)).toBe('hello h2c nginx.test');
    const file = await s.send(createRequest('GET', '/big.bin'));
    expect(Buffer.from(await readBody(file.body)).equals(big)).toBe(true);
    const post = await s.send(createRequest('POST', '/post', { body: fixedBody(new Uint8Array(100_000)) }));
    expect(await readText(post.body)).toBe('posted 100000');
  });

  it("honours nginx's 8 concurrent streams with 20 exchanges at once", async () => {
    const s = await session();
    let peak = 0;
    const all = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await s.send(createRequest('GET', '/big.bin'));
        peak = Math.max(peak, s.activeStreams);
        return (await readBody(res.body)).length;
      }),
    );
    expect(all.every((n) => n === big.length)).toBe(true);
    expect(s.maxConcurrentStreams).toBe(8);
    expect(peak).toBeLessThanOrEqual(8);
  });

  it('keepalive_requests: GOAWAY after 30 requests; the rest fail as never processed', async () => {
    const s = await session();
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        s.send(createRequest('GET', '/hello')).then(
          (r) => readText(r.body),
          (e: unknown) => e,
        ),
      ),
    );
    const ok = results.filter((r) => typeof r === 'string');
    const refused = results.filter((r) => r instanceof Http2RequestRefusedError);
    expect(ok.length).toBe(30);
    expect(refused.length).toBe(10);
    expect(s.accepting).toBe(false);
  });
});
