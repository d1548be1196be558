/**
 * `loch run` end to end against real peers, on every available driver: nginx upstreams (TCP and
 * Unix), node:net/node:http upstreams that never answer, reset, or echo; curl, undici and raw
 * sockets as clients. Routing and rewriting, the balancers, header hygiene both ways, the
 * statuses the proxy answers itself (404, 400, 431, 502, 504), clients that abort mid-body,
 * a Unix listener, and the access log.
 */
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableDrivers,
  blackholeUpstream,
  curl,
  freePort,
  httpUpstream,
  type Loch,
  type Nginx,
  rawExchange,
  resettingUpstream,
  silentUpstream,
  startLoch,
  startNginx,
  tempDir,
} from './harness.js';

const drivers = availableDrivers();

describe.each(drivers)('loch run (driver %s)', (driver) => {
  let nginx: Nginx;
  let silent: Awaited<ReturnType<typeof silentUpstream>>;
  let resetting: Awaited<ReturnType<typeof resettingUpstream>>;
  let blackhole: Awaited<ReturnType<typeof blackholeUpstream>>;
  let echo: Awaited<ReturnType<typeof httpUpstream>>;
  let loch: Loch;
  let port: number;
  let connectPort: number;
  let sock: string;
  let dir: string;
  const base = () => `http://127.0.0.1:${port}`;

  beforeAll(async () => {
    dir = tempDir('loch-proxy-e2e-');
    nginx = await startNginx(['A', 'B']);
    silent = await silentUpstream();
    resetting = await resettingUpstream();
    blackhole = await blackholeUpstream();
    echo = await httpUpstream((req, res) => {
      if (req.url?.startsWith('/echo/slow')) {
        setTimeout(() => res.end('x'.repeat(100_000)), 200);
        return;
      }
      if (req.url?.startsWith('/echo/headers')) {
        res.writeHead(200, [
          ['Connection', 'keep-alive, X-Secret'],
          ['X-Secret', '1'],
          ['Keep-Alive', 'timeout=5'],
          ['Proxy-Authenticate', 'Basic'],
          ['Upgrade', 'h2c'],
          ['X-Kept', 'yes'],
          ['Content-Length', '2'],
        ]);
        res.end('ok');
        return;
      }
      const hash = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        hash.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${hash.digest('hex')}`));
      req.on('error', () => {});
    });
    const dead = await freePort();
    port = await freePort();
    connectPort = await freePort();
    sock = join(dir, 'loch.sock');
    const [a, b] = nginx.ports;
    const A = `"http://127.0.0.1:${a}"`;
    const B = `"http://127.0.0.1:${b}"`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 2

[log]
level = "info"

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "800ms", shutdown_grace = "2s" }

[[servers.web.routes]]
path = "/a/"
upstreams = [{ endpoint = ${A} }]

[[servers.web.routes]]
path = "/big"
upstreams = [{ endpoint = ${A} }]

[[servers.web.routes]]
path = "/api/{*rest}"
strip_prefix = "/api"
upstreams = [{ endpoint = ${A} }]

[[servers.web.routes]]
path = "/users/{id}"
upstreams = [{ endpoint = ${A} }]

[[servers.web.routes]]
path = "/"
host = "b.example"
upstreams = [{ endpoint = ${B} }]

[[servers.web.routes]]
path = "/uh/"
host_header = "upstream"
upstreams = [{ endpoint = ${A} }]

[[servers.web.routes]]
path = "/rr/"
load_balancer = "round_robin"
upstreams = [{ endpoint = ${A} }, { endpoint = ${B} }]

[[servers.web.routes]]
path = "/first/"
load_balancer = "first"
upstreams = [{ endpoint = ${A} }, { endpoint = ${B} }]

[[servers.web.routes]]
path = "/random/"
load_balancer = "random"
upstreams = [{ endpoint = ${A} }, { endpoint = ${B} }]

[[servers.web.routes]]
path = "/w01/"
load_balancer = "weighted_random"
upstreams = [{ endpoint = ${A}, weight = 0 }, { endpoint = ${B}, weight = 1 }]

[[servers.web.routes]]
path = "/w31/"
load_balancer = "weighted_random"
upstreams = [{ endpoint = ${A}, weight = 3 }, { endpoint = ${B}, weight = 1 }]

[[servers.web.routes]]
path = "/down/"
upstreams = [{ endpoint = "http://127.0.0.1:${dead}" }]

[[servers.web.routes]]
path = "/slow/"
upstreams = [{ endpoint = "http://127.0.0.1:${silent.port}" }]

[[servers.web.routes]]
path = "/reset/"
upstreams = [{ endpoint = "http://127.0.0.1:${resetting.port}" }]

[[servers.web.routes]]
path = "/echo/"
upstreams = [{ endpoint = "http://127.0.0.1:${echo.port}" }]

[servers.connect]
listener = { type = "socket", value = "127.0.0.1:${connectPort}" }
timeouts = { upstream_connect = "300ms" }

[[servers.connect.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${blackhole.port}" }]

[servers.uds]
listener = { type = "unix", value = "${sock}" }

[[servers.uds.routes]]
path = "/"
upstreams = [{ endpoint = { type = "unix", value = "${nginx.socket}" } }]
`,
      { LOCH_DRIVER: driver },
    );
    expect(loch.stderr()).toContain(`driver ${driver}`);
  }, 60_000);

  afterAll(async () => {
    let code: number | null | undefined;
    try {
      code = await loch?.stop();
    } finally {
      await Promise.all([
        nginx?.stop(),
        silent?.close(),
        resetting?.close(),
        blackhole?.close(),
        echo?.close(),
      ]);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(code).toBe(0);
  }, 30_000);

  it('routes by prefix, catch-all with strip_prefix, parameters and host; normalizes dot segments', async () => {
    expect((await curl([`${base()}/a/x?q=1`])).out).toMatch(/^A \/a\/x\?q=1 /);
    expect((await curl([`${base()}/api/foo/bar?x=1`])).out).toMatch(/^A \/foo\/bar\?x=1 /);
    expect((await curl([`${base()}/api`])).out).toMatch(/^A \/ /);
    expect((await curl([`${base()}/users/42`])).out).toMatch(/^A \/users\/42 /);
    expect((await curl(['-H', 'Host: b.example', `${base()}/anything`])).out).toMatch(/^B \/anything /);
    expect((await curl(['--path-as-is', `${base()}/a/../users/7`])).out).toMatch(/^A \/users\/7 /);
  });

  it('answers HEAD with the length GET would have, and HTTP/1.0 clients with connection: close', async () => {
    const get = await curl(['-s', '-o', '/dev/null', '-w', '%{size_download}', `${base()}/a/len`]);
    const head = await curl(['-sI', `${base()}/a/len`]);
    expect(head.out.toLowerCase()).toContain(`content-length: ${get.out}\r\n`);
    const old = await curl(['-si', '--http1.0', `${base()}/a/v10`]);
    expect(old.out).toMatch(/^HTTP\/1\.1 200/);
    expect(old.out.toLowerCase()).toContain('connection: close');
    expect(old.out).toMatch(/\r\n\r\nA \/a\/v10 /);
  });

  it('answers 404 without a route and 400 for a path above the root, with small bodies', async () => {
    const none = await request(`${base()}/nope`);
    expect(none.statusCode).toBe(404);
    expect(await none.body.text()).toBe('404 ERR_LOCH_NO_ROUTE\n');
    const up = await curl([
      '--path-as-is',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base()}/../etc/passwd`,
    ]);
    expect(up.out).toBe('400');
    const users = await request(`${base()}/users/1/2`);
    expect(users.statusCode).toBe(404);
    await users.body.dump();
  });

  it('removes hop-by-hop request fields and adds X-Forwarded-* and Via (Host preserved)', async () => {
    const r = await curl([
      '-H',
      'Connection: X-Foo',
      '-H',
      'X-Foo: secret',
      '-H',
      'Keep-Alive: timeout=5',
      '-H',
      'TE: trailers',
      '-H',
      'Proxy-Authorization: Basic eA==',
      '-H',
      'X-Forwarded-For: 10.0.0.1',
      `${base()}/a/h`,
    ]);
    expect(r.out).toContain(`host=127.0.0.1:${port} `);
    expect(r.out).toContain('xff=10.0.0.1, 127.0.0.1 ');
    expect(r.out).toContain('xfp=http ');
    expect(r.out).toContain(`xfh=127.0.0.1:${port} `);
    expect(r.out).toContain('via=1.1 loch ');
    expect(r.out).toContain('foo= ');
    expect(r.out).toContain('ka= ');
    expect(r.out).toContain('te= ');
    expect(r.out).toContain('pa=\n');
    expect(r.out).not.toContain('secret');
  });

  it('sets Host to the upstream authority when host_header = "upstream"', async () => {
    const r = await curl([`${base()}/uh/x`]);
    expect(r.out).toContain(`host=127.0.0.1:${nginx.ports[0]} `);
    expect(r.out).toContain(`xfh=127.0.0.1:${port} `);
  });

  it('removes hop-by-hop response fields and adds Via', async () => {
    const r = await curl(['-si', `${base()}/echo/headers`]);
    const head = r.out.split('\r\n\r\n')[0]!.toLowerCase();
    expect(head).toMatch(/^http\/1.1 200/);
    expect(head).toContain('x-kept: yes');
    expect(head).toContain('via: 1.1 loch');
    expect(head).not.toContain('x-secret');
    expect(head).not.toContain('keep-alive: timeout');
    expect(head).not.toContain('proxy-authenticate');
    expect(head).not.toContain('upgrade');
    expect(r.out.endsWith('\r\n\r\nok')).toBe(true);
  });

  it('streams a request body upstream intact (1 MiB, fixed length and chunked)', async () => {
    const body = Buffer.alloc(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const want = `${body.length} ${createHash('sha256').update(body).digest('hex')}`;
    const fixed = await request(`${base()}/echo/up`, { method: 'POST', body });
    expect(await fixed.body.text()).toBe(want);
    async function* chunks() {
      for (let i = 0; i < body.length; i += 100_000) yield body.subarray(i, i + 100_000);
    }
    const chunked = await request(`${base()}/echo/up`, { method: 'PUT', body: Readable.from(chunks()) });
    expect(await chunked.body.text()).toBe(want);
  });

  it('round_robin alternates, first sticks, weighted_random honours weights, random uses both', async () => {
    const client = new Client(base(), { pipelining: 1, connections: 1 } as Client.Options);
    try {
      const get = async (path: string) =>
        (await (await client.request({ method: 'GET', path })).body.text())[0];
      const rr: string[] = [];
      for (let i = 0; i < 10; i++) rr.push((await get('/rr/x'))!);
      expect(rr.join('')).toMatch(/^(AB){5}$|^(BA){5}$/);
      for (let i = 0; i < 10; i++) expect(await get('/first/x')).toBe('A');
      for (let i = 0; i < 20; i++) expect(await get('/w01/x')).toBe('B');
      const random = new Set<string>();
      for (let i = 0; i < 40; i++) random.add((await get('/random/x'))!);
      expect([...random].sort()).toEqual(['A', 'B']);
      let a = 0;
      for (let i = 0; i < 400; i++) if ((await get('/w31/x')) === 'A') a++;
      // 3:1 -> 300 expected; the bounds are ~8 standard deviations wide.
      expect(a).toBeGreaterThan(230);
      expect(a).toBeLessThan(370);
    } finally {
      await client.close();
    }
  });

  it('answers 502 when the upstream refuses or resets, 504 when it does not accept or answer in time', async () => {
    const down = await request(`${base()}/down/x`);
    expect(down.statusCode).toBe(502);
    expect(await down.body.text()).toBe('502 ERR_LOCH_UPSTREAM_REFUSED\n');
    const reset = await request(`${base()}/reset/x`);
    expect(reset.statusCode).toBe(502);
    expect(await reset.body.text()).toMatch(/^502 ERR_LOCH_UPSTREAM_RESET\n$/);
    const slow = await request(`${base()}/slow/x`);
    expect(slow.statusCode).toBe(504);
    expect(await slow.body.text()).toBe('504 ERR_LOCH_UPSTREAM_TIMEOUT\n');
    const connect = await request(`http://127.0.0.1:${connectPort}/x`);
    expect(connect.statusCode).toBe(504);
    expect(await connect.body.text()).toBe('504 ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT\n');
    // logged: a warning per upstream failure on stderr
    await expect
      .poll(() => loch.stderr(), { timeout: 5000 })
      .toMatch(/warn worker \d: \[upstream\] web: GET \/slow\/x -> 504/);
    expect(loch.stderr()).toMatch(
      /warn worker \d: \[upstream\] web: GET \/down\/x -> 502: upstream .*(refused|ECONNREFUSED)/,
    );
  });

  it('answers malformed requests with 400 and oversized heads with 431 (from the proxy)', async () => {
    const smuggle = await rawExchange(
      port,
      'POST /a/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expect(smuggle).toMatch(/^HTTP\/1\.1 400 /);
    const garbage = await rawExchange(port, 'GET /a/x HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    const big = await rawExchange(
      port,
      `GET /a/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(7000)}\r\nX-Big2: ${'b'.repeat(7000)}\r\nX-Big3: ${'c'.repeat(7000)}\r\n\r\n`,
    );
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect((await curl([`${base()}/a/still-fine`])).out).toMatch(/^A /);
  });

  it('survives clients that abort mid request body, before the response head and mid response body, without leaking descriptors', async () => {
    // warm up pools, then measure
    for (let i = 0; i < 5; i++) await (await request(`${base()}/a/warm`)).body.text();
    const before = loch.fdCount();
    const abortUpload = () =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write('POST /echo/up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n');
          s.write(Buffer.alloc(65536, 1), () => setTimeout(() => s.destroy(), 20));
        });
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
    const abortDownload = () =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n'));
        s.once('data', () => s.destroy());
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
    // resets the connection while the upstream is still answering: the head write fails
    const abortBeforeHead = () =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write('GET /echo/slow HTTP/1.1\r\nHost: x\r\n\r\n');
          setTimeout(() => (s as net.Socket & { resetAndDestroy(): void }).resetAndDestroy(), 30);
        });
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
    for (let i = 0; i < 20; i++) await Promise.all([abortUpload(), abortDownload(), abortBeforeHead()]);
    const ok = await request(`${base()}/big`);
    expect(ok.statusCode).toBe(200);
    expect((await ok.body.arrayBuffer()).byteLength).toBe(2_000_000);
    await expect
      .poll(() => loch.fdCount(), { timeout: 10_000, interval: 200 })
      .toBeLessThanOrEqual(before + 6);
  });

  it('listens on a Unix socket and proxies to a Unix-socket upstream', async () => {
    const r = await curl(['--unix-socket', sock, 'http://localhost/via-unix']);
    expect(r.out).toMatch(/^A \/via-unix /);
    expect(r.out).toContain('xff=unix ');
  });

  it('writes one access-log line per request: time server peer method target status bytes upstream ms', async () => {
    await (await request(`${base()}/a/logged?z=9`)).body.text();
    await (await request(`${base()}/nope-logged`)).body.text();
    await expect
      .poll(() => loch.stdout(), { timeout: 5000 })
      .toMatch(
        new RegExp(
          `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z web 127\\.0\\.0\\.1:\\d+ GET /a/logged\\?z=9 200 \\d+ http://127\\.0\\.0\\.1:${nginx.ports[0]} \\d+\\.\\d\\d$`,
          'm',
        ),
      );
    await expect
      .poll(() => loch.stdout(), { timeout: 5000 })
      .toMatch(/ web 127\.0\.0\.1:\d+ GET \/nope-logged 404 22 - \d+\.\d\d$/m);
    // Requests the HTTP/1.1 codec rejects never reach the chain, and are logged all the same.
    expect(
      await rawExchange(port, `GET /a/huge HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    ).toMatch(/^HTTP\/1\.1 431 /);
    expect(
      await rawExchange(port, 'POST /a/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: tea\r\n\r\nx'),
    ).toMatch(/^HTTP\/1\.1 417 /);
    await expect
      .poll(() => loch.stdout(), { timeout: 5000 })
      .toMatch(/ web 127\.0\.0\.1:\d+ - - 431 30 - 0\.00$/m);
    await expect
      .poll(() => loch.stdout(), { timeout: 5000 })
      .toMatch(/ web 127\.0\.0\.1:\d+ POST \/a\/x 417 28 - 0\.00$/m);
  });
});
