/**
 * The admin listener of `loch run` end to end (issue 17): /healthz, /readyz, /config (the same
 * text `loch check` prints, secrets redacted, its version hash), /metrics (accepted by promtool
 * and parse-prometheus-text-format; counters that stay monotonic across a worker crashed on
 * purpose and across reloads), /stats; the listener warns off loopback and a taken port stops
 * loch. A node:http upstream; fresh connections per request so both workers serve.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  curl,
  freePort,
  httpUpstream,
  type Loch,
  lochArgs,
  PROXY_DIR,
  rawExchange,
  startLoch,
  tempDir,
} from './harness.js';

interface Answer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** One request on a new connection. */
function fetchOnce(port: number, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A counter's value in a /metrics text (0 when the series is absent), through the npm parser. */
function counter(text: string, name: string, labels: Record<string, string> = {}): number {
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? 0 : Number(sample.value);
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

function config(port: number, admin: number, upstream: number, routes = ['/']): string {
  return `
[runtime]
workers = 2

[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { shutdown_grace = "2s" }
${routes
  .map(
    (path) => `
[[servers.web.routes]]
path = "${path}"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
`,
  )
  .join('')}`;
}

describe('admin listener', () => {
  const dir = tempDir('loch-admin-');
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let loch: Loch;
  let port: number;
  let admin: number;
  /** Answers to /hold requests, held until the test ends them. */
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    upstream = await httpUpstream((req, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end(`upstream ${req.url}`);
    });
    // WebSocket upgrades on the same upstream: an echo.
    new WebSocketServer({ server: upstream.server }).on('connection', (socket) =>
      socket.on('message', (data, binary) => socket.send(data, { binary })),
    );
    port = await freePort();
    admin = await freePort();
    loch = await startLoch(dir, config(port, admin, upstream.port), { LOCH_DEBUG_CRASH_WORKER: '0' });
  }, 60_000);

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
  });

  const scrape = async () => {
    const answer = await fetchOnce(admin, '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    return answer.body;
  };
  const requests = (text: string, route: string, code = '2xx') =>
    counter(text, 'loch_http_requests_total', { server: 'web', route, code });

  it('answers /healthz and /readyz, 404 elsewhere and 405 to other methods', async () => {
    expect(await fetchOnce(admin, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await fetchOnce(admin, '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    expect((await fetchOnce(admin, '/nope')).status).toBe(404);
    expect((await fetchOnce(admin, '/metrics', 'POST')).status).toBe(405);
  });

  it('serves /config as `loch check` prints it, with its version hash', async () => {
    const answer = await fetchOnce(admin, '/config');
    expect(answer.status).toBe(200);
    const checked = execFileSync(process.execPath, lochArgs('check', '-c', loch.configPath), {
      cwd: PROXY_DIR,
      encoding: 'utf8',
    });
    expect(`${answer.body}${loch.configPath}: ok\n`).toBe(checked);
    expect(answer.headers['x-loch-config-version']).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.parse(answer.body).admin).toEqual({
      listen: { kind: 'tcp', host: '127.0.0.1', port: admin },
    });
  });

  it('counts requests by route and status class, and promtool accepts /metrics', async () => {
    const before = await scrape();
    for (let i = 0; i < 6; i++) expect((await fetchOnce(port, `/r${i}`)).status).toBe(200);
    const after = await scrape();
    expect(requests(after, '/') - requests(before, '/')).toBe(6);
    expect(after).toMatch(
      new RegExp(
        `^loch_upstream_duration_seconds_count\\{server="web",upstream="http://127.0.0.1:${upstream.port}"\\} ([6-9]|\\d\\d+)$`,
        'm',
      ),
    );
    expect(counter(after, 'loch_workers_running')).toBe(2);
    // HTTP/2 (h2c by prior knowledge) requests count on the same series.
    const h2 = await curl([
      '-s',
      '--http2-prior-knowledge',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      `http://127.0.0.1:${port}/h2`,
    ]);
    expect(h2.out).toBe('2 200');
    expect(requests(await scrape(), '/')).toBe(requests(after, '/') + 1);
    if (hasPromtool)
      expect(execFileSync('promtool', ['check', 'metrics'], { input: after, encoding: 'utf8' })).toBe('');
  });

  it('keeps counters monotonic when a worker crashes and is replaced', async () => {
    for (let i = 0; i < 20; i++) expect((await fetchOnce(port, '/spread')).status).toBe(200);
    const before = await scrape();
    const counted = requests(before, '/');
    const from = loch.stderr().length;
    loch.child.kill('SIGURG');
    await loch.waitFor(/worker 0 restarted/, from, 60_000);
    const afterCrash = await scrape();
    // Worker 0's share (20 fresh connections: it served some) is still counted.
    expect(requests(afterCrash, '/')).toBe(counted);
    expect(counter(afterCrash, 'loch_worker_restarts_total')).toBe(1);
    for (let i = 0; i < 10; i++) expect((await fetchOnce(port, '/more')).status).toBe(200);
    expect(requests(await scrape(), '/')).toBe(counted + 10);
  }, 90_000);

  it('keeps the series of a kept route across a reload and counts reload outcomes', async () => {
    const before = await scrape();
    const counted = requests(before, '/');
    let from = loch.stderr().length;
    writeFileSync(loch.configPath, config(port, admin, upstream.port, ['/', '/b/']));
    loch.child.kill('SIGHUP');
    await loch.waitFor(/reloaded .* \(generation \d+\)/, from);
    expect((await fetchOnce(port, '/b/x')).status).toBe(200);
    expect((await fetchOnce(port, '/x')).status).toBe(200);
    const after = await scrape();
    expect(requests(after, '/')).toBe(counted + 1);
    expect(requests(after, '/b/')).toBe(1);
    expect(counter(after, 'loch_reloads_total', { outcome: 'ok' })).toBe(
      counter(before, 'loch_reloads_total', { outcome: 'ok' }) + 1,
    );
    from = loch.stderr().length;
    writeFileSync(loch.configPath, 'this is not toml [');
    loch.child.kill('SIGHUP');
    await loch.waitFor(/reload \(SIGHUP\) failed/, from);
    // The edit itself may start a reload too (the file watch): each failed one is counted once
    // (a reload is counted before its line is written out: read again until they agree).
    const failedBefore = counter(before, 'loch_reloads_total', { outcome: 'failed' });
    let failed = 0;
    let logged = -1;
    for (let i = 0; i < 100 && failed !== logged; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      failed = counter(await scrape(), 'loch_reloads_total', { outcome: 'failed' }) - failedBefore;
      logged =
        loch
          .stderr()
          .slice(from)
          .match(/reload \([^)]*\) failed/g)?.length ?? 0;
    }
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(failed).toBe(logged);
    writeFileSync(loch.configPath, config(port, admin, upstream.port, ['/', '/b/']));
  }, 60_000);

  it('counts tunnels opened and open (a WebSocket through loch)', async () => {
    const before = await scrape();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    socket.send('ping');
    await new Promise((resolve) => socket.once('message', resolve));
    const open = await scrape();
    expect(counter(open, 'loch_tunnels_total') - counter(before, 'loch_tunnels_total')).toBe(1);
    expect(counter(open, 'loch_tunnels_active')).toBe(1);
    socket.close();
    await new Promise((resolve) => socket.once('close', resolve));
    let active = 1;
    for (let i = 0; i < 250 && active !== 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      active = counter(await scrape(), 'loch_tunnels_active');
    }
    expect(active).toBe(0);
  });

  it('counts client connections between requests as idle (HTTP/1.1 keep-alive, HTTP/2 without streams)', async () => {
    /** Scrapes until active and idle connections are as expected (closes are seen a little late). */
    const settle = async (active: number, idle: number) => {
      let seen: [number, number] = [-1, -1];
      for (let i = 0; i < 250; i++) {
        const text = await scrape();
        seen = [counter(text, 'loch_connections_active'), counter(text, 'loch_connections_idle')];
        if (seen[0] === active && seen[1] === idle) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toEqual([active, idle]);
    };
    await settle(0, 0);
    // HTTP/1.1, answered and kept alive.
    const h1 = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      h1.once('error', reject);
      h1.on('data', (d: Buffer) => {
        if (d.toString('latin1').includes('upstream /a')) resolve();
      });
      h1.write('GET /a HTTP/1.1\r\nHost: t\r\n\r\n');
    });
    // HTTP/2 (h2c), its one stream ended.
    const h2 = http2.connect(`http://127.0.0.1:${port}`);
    await new Promise<void>((resolve, reject) => {
      const req = h2.request({ ':path': '/b' });
      req.on('error', reject);
      req.resume();
      req.on('end', () => resolve());
    });
    // HTTP/1.1 whose request waits for the upstream: not idle.
    const busy = net.connect(port, '127.0.0.1');
    busy.on('error', () => {});
    busy.write('GET /hold HTTP/1.1\r\nHost: t\r\n\r\n');
    for (let i = 0; i < 250 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(held).toHaveLength(1);
    await settle(3, 2);
    held.shift()!.end('done');
    await settle(3, 3);
    h1.destroy();
    busy.destroy();
    await new Promise<void>((resolve) => h2.close(() => resolve()));
    await settle(0, 0);
  });

  it('reports per-worker runtime stats as JSON', async () => {
    const answer = await fetchOnce(admin, '/stats');
    expect(answer.status).toBe(200);
    const stats = JSON.parse(answer.body) as {
      ready: boolean;
      workers: { worker: number; status: string; connections: number; upstream: Record<string, unknown> }[];
    };
    expect(stats.ready).toBe(true);
    expect(stats.workers.map((w) => [w.worker, w.status])).toEqual([
      [0, 'running'],
      [1, 'running'],
    ]);
    expect(stats.workers[0]!.upstream.web).toMatchObject({ idle: expect.any(Number) });
    expect(stats.workers[0]).toMatchObject({
      runtime: {
        openStreams: expect.any(Number),
        buffers: { held: expect.any(Number), buffersInUse: expect.any(Number) },
        // No wave of connections has closed here: the counts are there, at 0.
        waves: { collections: 0, freedBytes: 0, lastCallMs: 0 },
      },
    });
    // The same counts reach /metrics through the admin listener's per-worker mapping (REVIEW F203:
    // without it the families are not rendered at all).
    const text = (await fetchOnce(admin, '/metrics')).body;
    for (const [family, type] of [
      ['loch_wave_collections_total', 'counter'],
      ['loch_wave_collect_freed_bytes_total', 'counter'],
      ['loch_wave_collect_last_call_seconds', 'gauge'],
    ])
      expect(text).toMatch(
        new RegExp(`^# TYPE ${family} ${type}\n(?:# .*\n)*${family}(?:\\{[^}]*\\})? 0$`, 'm'),
      );
    // runtime.worker_young_generation_bytes' default reached the worker's isolate (V8's own: 48).
    expect(stats.workers[0]).toMatchObject({ heapLimits: { maxYoungGenerationSizeMb: 24 } });
  });
});

describe('admin listener: upstream health and retries', () => {
  it('counts retries per upstream group and shows the active checks verdicts', async () => {
    const dir = tempDir('loch-admin-health-');
    const good = await httpUpstream((_req, res) => res.end('ok'));
    const dead = await freePort();
    const port = await freePort();
    const admin = await freePort();
    const upstreams = `upstreams = [{ endpoint = "http://127.0.0.1:${dead}" }, { endpoint = "http://127.0.0.1:${good.port}" }]`;
    const loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[[servers.web.routes]]
path = "/r/"
load_balancer = "round_robin"
retries = { max_retries = 1 }
${upstreams}
[[servers.web.routes]]
path = "/h/"
health_check = { path = "/", interval = "200ms", unhealthy_threshold = 1 }
${upstreams}
`,
    );
    try {
      // Round robin: every other request goes to the dead upstream first, and is retried.
      for (let i = 0; i < 4; i++) expect((await fetchOnce(port, '/r/x')).status).toBe(200);
      const group = { upstreams: `http://127.0.0.1:${dead},http://127.0.0.1:${good.port}` };
      let text = (await fetchOnce(admin, '/metrics')).body;
      expect(counter(text, 'loch_upstream_retries_total', group)).toBeGreaterThanOrEqual(2);
      const verdict = (upstream: number) =>
        counter(text, 'loch_upstream_healthy', { upstream: `http://127.0.0.1:${upstream}`, path: '/' });
      for (let i = 0; i < 250 && verdict(dead) !== 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        text = (await fetchOnce(admin, '/metrics')).body;
      }
      expect(verdict(dead)).toBe(0);
      expect(verdict(good.port)).toBe(1);
      expect(
        counter(text, 'loch_health_check_failures_total', { upstream: `http://127.0.0.1:${dead}` }),
      ).toBeGreaterThan(0);
      if (hasPromtool)
        expect(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })).toBe('');
    } finally {
      await loch.stop();
      await good.close();
    }
  }, 60_000);
});

describe('admin listener: thrift servers', () => {
  it('counts thrift calls by outcome class with their duration', async () => {
    const dir = tempDir('loch-admin-thrift-');
    const dead = await freePort();
    const port = await freePort();
    const admin = await freePort();
    const loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
route = { upstreams = [{ endpoint = "127.0.0.1:${dead}" }] }
`,
    );
    try {
      // A framed binary CALL of "ping" with no arguments; the upstream is down: an exception (502).
      const name = Buffer.from('ping');
      const message = Buffer.concat([
        Buffer.from([0x80, 0x01, 0x00, 0x01]),
        Buffer.from([0, 0, 0, name.length]),
        name,
        Buffer.from([0, 0, 0, 1, 0]),
      ]);
      const frame = Buffer.concat([Buffer.from([0, 0, 0, message.length]), message]);
      const reply = await rawExchange(port, frame, 2000);
      expect(reply).toContain('ping');
      const text = (await fetchOnce(admin, '/metrics')).body;
      expect(counter(text, 'loch_thrift_calls_total', { server: 'rpc', code: '5xx' })).toBe(1);
      expect(text).toMatch(/^loch_thrift_call_duration_seconds_count\{server="rpc"\} 1$/m);
      if (hasPromtool)
        expect(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })).toBe('');
    } finally {
      await loch.stop();
    }
  }, 60_000);
});

describe('admin listener address', () => {
  it('warns when it is not on loopback, redacts the TLS key in /config, counts TLS handshakes', async () => {
    const dir = tempDir('loch-admin-tls-');
    const { chain, key } = selfSignedCertificate(dir, 'localhost', ['localhost']);
    const port = await freePort();
    const admin = await freePort();
    const loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
[admin]
listener = { type = "socket", value = "0.0.0.0:${admin}" }
[servers.tls]
listener = { type = "socket", value = "127.0.0.1:${port}" }
tls = { certificates = [{ chain = "${chain}", key = "${key}" }] }
[[servers.tls.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
`,
    );
    try {
      expect(loch.stderr()).toMatch(/admin listener on 0\.0\.0\.0:\d+ is reachable from other hosts/);
      const body = (await fetchOnce(admin, '/config')).body;
      expect(body).not.toMatch(/PRIVATE KEY/);
      expect(body).toContain('<redacted>');
      // One handshake that completes (the upstream is down: 502), one that fails (not TLS).
      const ok = await curl(['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/`]);
      expect(ok.out).toBe('502');
      await rawExchange(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
      const text = (await fetchOnce(admin, '/metrics')).body;
      expect(counter(text, 'loch_tls_handshakes_total', { server: 'tls' })).toBe(1);
      expect(counter(text, 'loch_tls_handshake_failures_total', { server: 'tls' })).toBe(1);
    } finally {
      await loch.stop();
    }
  }, 60_000);

  it('listens on a Unix socket (a stale one is replaced) and moves to a TCP port on reload', async () => {
    const dir = tempDir('loch-admin-unix-');
    const path = join(dir, 'admin.sock');
    // A socket file left by a process that is gone.
    execFileSync('python3', [
      '-c',
      `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`,
    ]);
    const port = await freePort();
    const admin = await freePort();
    const text = (listener: string) => `
[runtime]
workers = 1
[admin]
listener = ${listener}
[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
`;
    const loch = await startLoch(dir, text(`{ type = "unix", value = "${path}" }`));
    try {
      const overUnix = await new Promise<string>((resolve, reject) => {
        request({ socketPath: path, path: '/healthz' }, (res) => {
          res.setEncoding('utf8');
          let body = '';
          res.on('data', (d: string) => {
            body += d;
          });
          res.on('end', () => resolve(body));
        })
          .on('error', reject)
          .end();
      });
      expect(overUnix).toBe('ok\n');
      const from = loch.stderr().length;
      writeFileSync(loch.configPath, text(`{ type = "socket", value = "127.0.0.1:${admin}" }`));
      loch.child.kill('SIGHUP');
      await loch.waitFor(/reloaded .* \(generation \d+\)/, from);
      await loch.waitFor(new RegExp(`admin listener on 127\\.0\\.0\\.1:${admin}`), from);
      expect(await fetchOnce(admin, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
      expect(existsSync(path)).toBe(false);
    } finally {
      await loch.stop();
    }
  }, 60_000);

  it('stops loch when its port is taken', async () => {
    const dir = tempDir('loch-admin-taken-');
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const admin = (taken.address() as net.AddressInfo).port;
    const port = await freePort();
    try {
      const started = startLoch(
        dir,
        `
[runtime]
workers = 1
[admin]
listener = { type = "socket", value = "127.0.0.1:${admin}" }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9" }]
`,
      );
      await expect(started).rejects.toThrow(/cannot start: admin listener: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  }, 60_000);
});
