/**
 * Operating `loch run` (issue 17), end to end against a real loch process: the access log in a
 * file as JSON lines, renamed away and reopened on SIGUSR1 (the logrotate convention); the
 * client read from X-Forwarded-For behind `trusted_proxies`; per-module log levels; every
 * signal `loch --help` lists doing what it says; and tunnels (real `ws` client and server)
 * given `timeouts.tunnel_drain` on a graceful stop, a close handshake during the drain passed
 * through, then the rest closed long before `shutdown_grace`. No timing assertion beyond
 * generous bounds.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type * as net from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import { SIGNALS } from '../../src/cli.js';
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

/** Rejects after `ms`: a generous bound, so a hang fails the case instead of the whole run. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Polls `check` until it holds (file contents appear after the log's flush tick). */
async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function lines(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('access log file, SIGUSR1, trusted_proxies, module levels, signals', () => {
  let dir: string;
  let loch: Loch;
  let port: number;
  let ppPort: number;
  let upstream: Awaited<ReturnType<typeof httpUpstream>>;
  let log: string;

  beforeAll(async () => {
    dir = tempDir('loch-ops-');
    log = join(dir, 'access.json');
    upstream = await httpUpstream((_req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end('made');
    });
    port = await freePort();
    ppPort = await freePort();
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 2

[log]
level = "info"
modules = { proxy_protocol = "debug" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = { path = "access.json", format = "json" }
trusted_proxies = ["127.0.0.0/8"]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]

[servers.pp]
listener = { type = "socket", value = "127.0.0.1:${ppPort}" }
proxy_protocol = true

[[servers.pp.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: drivers[drivers.length - 1]! },
    );
  }, 60_000);

  afterAll(async () => {
    try {
      await loch?.stop();
    } finally {
      await upstream?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('writes one JSON line per request to the file, nothing to stdout', async () => {
    const res = await request(`http://127.0.0.1:${port}/first?x=1`, {
      headers: { 'x-request-id': 'req-1', 'x-forwarded-for': '198.51.100.23, 127.0.0.9' },
    });
    expect(res.statusCode).toBe(201);
    await res.body.text();
    await eventually(() => lines(log).length === 1, 'the access line');
    const [line] = lines(log);
    expect(line).toMatchObject({
      server: 'web',
      method: 'GET',
      path: '/first?x=1',
      status: 201,
      bytes: 4,
      upstream: `http://127.0.0.1:${upstream.port}`,
      upstream_status: 201,
      request_id: 'req-1',
      // 127.0.0.1 (the peer) and 127.0.0.9 are trusted: the client is the first untrusted from the right.
      client: '198.51.100.23',
      peer: '127.0.0.1',
    });
    expect(typeof line!.upstream_ms).toBe('number');
    expect(typeof line!.duration_ms).toBe('number');
    expect(loch.stdout()).toBe('');
  });

  it('reopens the file on SIGUSR1 after a rename (logrotate): old lines stay, new ones go to a new file', async () => {
    const rotated = `${log}.1`;
    renameSync(log, rotated);
    // Still written to the renamed file until the signal (the workers hold it open).
    const before = await request(`http://127.0.0.1:${port}/before-signal`);
    await before.body.text();
    await eventually(
      () => lines(rotated).some((l) => l.path === '/before-signal'),
      'line in the renamed file',
    );
    const from = loch.stderr().length;
    loch.child.kill('SIGUSR1');
    await loch.waitFor(/\[access_log\] SIGUSR1: access logs reopened by 2 worker\(s\)/, from);
    expect(existsSync(log)).toBe(true);
    // New connections each, so that both workers are likely to serve some (the kernel spreads them).
    for (let i = 0; i < 6; i++) {
      const res = await request(`http://127.0.0.1:${port}/after-signal-${i}`, { reset: true });
      await res.body.text();
    }
    await eventually(() => lines(log).length === 6, 'six lines in the new file');
    // Each worker appends its own lines: the order across workers is the order of their writes.
    expect(
      lines(log)
        .map((l) => l.path)
        .sort(),
    ).toEqual(Array.from({ length: 6 }, (_, i) => `/after-signal-${i}`));
    expect(lines(rotated).map((l) => l.path)).toEqual(['/first?x=1', '/before-signal']);
    // The Node inspector did not take SIGUSR1.
    expect(loch.stderr()).not.toMatch(/Debugger listening/);
  });

  it('logs a module at its own level: proxy_protocol at debug while the rest is at info', async () => {
    const from = loch.stderr().length;
    // A request the codec refuses (400; its reason is a debug line of the http module).
    expect(await rawExchange(port, 'GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 400/,
    );
    // Not a PROXY header: the connection is closed unanswered, and the reason logged at debug.
    expect(await rawExchange(ppPort, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n')).toBe('');
    await loch.waitFor(
      /debug worker \d: \[proxy_protocol\] pp: PROXY protocol header from 127\.0\.0\.1/,
      from,
    );
    // No other module writes debug lines.
    expect(loch.stderr().slice(from)).not.toMatch(/ debug worker \d: (?!\[proxy_protocol\])/);
  });

  it('refuses a reload whose access-log file cannot be opened; the running log goes on', async () => {
    const good = readFileSync(loch.configPath, 'utf8');
    const from = loch.stderr().length;
    writeFileSync(loch.configPath, good.replace('path = "access.json"', 'path = "no-such-dir/access.json"'));
    await loch.waitFor(
      /reload \(.*\) aborted on every worker: worker \d: .*ERR_LOCH_ACCESS_LOG_FILE: access log .*no-such-dir\/access\.json: ENOENT/,
      from,
    );
    const res = await request(`http://127.0.0.1:${port}/after-refused-reload`);
    await res.body.text();
    await eventually(
      () => lines(log).some((l) => l.path === '/after-refused-reload'),
      'line in the running file',
    );
    const back = loch.stderr().length;
    writeFileSync(loch.configPath, good);
    await loch.waitFor(/info reloaded /, back);
  });

  it('acts on every signal `loch --help` lists: SIGHUP reloads, SIGUSR2 logs stats, SIGTERM stops', async () => {
    expect(SIGNALS.map(([s]) => s)).toEqual([
      'SIGHUP',
      'SIGTERM, SIGINT',
      'SIGUSR1',
      'SIGUSR2',
      'SIGURG',
      'SIGQUIT',
    ]);
    let from = loch.stderr().length;
    loch.child.kill('SIGHUP');
    await loch.waitFor(/info reloaded .* \(generation \d+\)/, from);
    const res = await request(`http://127.0.0.1:${port}/after-hup`);
    expect(res.statusCode).toBe(201);
    await res.body.text();
    from = loch.stderr().length;
    loch.child.kill('SIGUSR2');
    await loch.waitFor(/info stats \{"worker":1,/, from);
    // SIGUSR1 was checked above. SIGTERM: a graceful stop, exit 0.
    from = loch.stderr().length;
    expect(await loch.stop('SIGTERM')).toBe(0);
    expect(loch.stderr().slice(from)).toMatch(/info SIGTERM: stopping[\s\S]*info stopped/);
  });
});

describe('[log] error_log', () => {
  it('moves the operational log to a file on reload, reopens it on SIGUSR1, and writes the stop there', async () => {
    const dir = tempDir('loch-error-log-');
    const upstream = await httpUpstream((_req, res) => res.end('ok'));
    const port = await freePort();
    const server = `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
access_log = false

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`;
    const loch = await startLoch(dir, `[runtime]\nworkers = 1\n${server}`, {
      LOCH_DRIVER: drivers[0]!,
    });
    const file = join(dir, 'error.log');
    const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
    try {
      writeFileSync(
        loch.configPath,
        `[runtime]\nworkers = 1\n[log]\nerror_log = { path = "error.log" }\n${server}`,
      );
      await eventually(() => /info reloaded /.test(read(file)), 'the reload line in the error log');
      renameSync(file, `${file}.1`);
      loch.child.kill('SIGUSR1');
      await eventually(
        () => /SIGUSR1: access logs reopened by 1 worker/.test(read(file)),
        'the new error log',
      );
      expect(await loch.stop('SIGTERM')).toBe(0);
      expect(read(file)).toMatch(/info SIGTERM: stopping[\s\S]*info stopped\n$/);
      expect(read(`${file}.1`)).toMatch(/info reloaded /);
      expect(read(`${file}.1`)).not.toMatch(/stopping/);
      // Before the reload the lines went to stderr.
      expect(loch.stderr()).toMatch(/info started /);
      expect(loch.stderr()).not.toMatch(/info stopped/);
    } finally {
      await loch.stop('SIGKILL');
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** A `ws` echo server; `/close-on-drain` sockets are closed by the server with 4002 on request. */
async function wsUpstream(): Promise<{
  port: number;
  closed(id: string): Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}> {
  const closes = new Map<string, { code: number; reason: string }>();
  const waiters = new Map<string, (c: { code: number; reason: string }) => void>();
  const http: Server = createServer((_req, res) => res.end('no'));
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => {});
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      ws.on('close', (code, reason) => {
        const c = { code, reason: reason.toString() };
        closes.set(id, c);
        waiters.get(id)?.(c);
      });
      ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data as Buffer, { binary: isBinary }));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    port: (http.address() as net.AddressInfo).port,
    closed: (id) => {
      const seen = closes.get(id);
      return seen !== undefined ? Promise.resolve(seen) : new Promise((r) => waiters.set(id, r));
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

describe.each(drivers)('tunnel_drain on a graceful stop (driver %s)', (driver) => {
  it('passes a close handshake made during the drain, then closes the rest at tunnel_drain, not shutdown_grace', async () => {
    const upstream = await wsUpstream();
    const port = await freePort();
    const loch = await startLoch(
      tempDir('loch-tunnel-drain-'),
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { shutdown_grace = "120s", tunnel_drain = "1s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
    try {
      const polite = await openWs(`ws://127.0.0.1:${port}/?id=polite`);
      const stubborn = await openWs(`ws://127.0.0.1:${port}/?id=stubborn`);
      const politeClosed = closeOf(polite);
      const stubbornClosed = closeOf(stubborn);
      const from = loch.stderr().length;
      const exited = loch.stop();
      await loch.waitFor(/stopping/, from);
      // During the drain: the close handshake goes through both ways with its code and reason.
      polite.close(1000, 'bye during drain');
      expect(await within(upstream.closed('polite'), 10_000, 'server saw the close frame')).toEqual({
        code: 1000,
        reason: 'bye during drain',
      });
      expect(await within(politeClosed, 10_000, 'client close')).toEqual({
        code: 1000,
        reason: 'bye during drain',
      });
      // The other one is closed by loch at tunnel_drain (no close frame: 1006 on both sides)...
      expect((await within(stubbornClosed, 30_000, 'stubborn client closed')).code).toBe(1006);
      expect((await within(upstream.closed('stubborn'), 30_000, 'stubborn server closed')).code).toBe(1006);
      // ... and loch exits then, long before the 120 s shutdown grace.
      expect(await within(exited, 30_000, 'loch exit')).toBe(0);
      expect(loch.stderr()).toMatch(/\[tunnel\] tunnel_drain over: closed 1 tunnel\(s\)/);
    } finally {
      await loch.stop('SIGKILL');
      await upstream.close();
    }
  }, 90_000);
});
