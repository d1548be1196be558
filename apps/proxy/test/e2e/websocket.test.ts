/**
 * WebSocket through `loch run`, end to end: a real `ws` server behind loch and real `ws` clients
 * in front, on every available driver. Text and binary messages both ways, 1 MB messages, many
 * concurrent sockets that never see each other's bytes, close frames with code and reason from
 * either side, a server or a client that vanishes (the other side sees the close), the tunnel
 * idle timeout, an upstream that answers the upgrade with 200 or 400 (relayed as HTTP: no
 * tunnel, the connection stays HTTP), an Upgrade token not on the allow-list and h2c (forwarded
 * without the upgrade), and a tunnel drained by a graceful stop. No timing assertion beyond
 * generous bounds. Also, without I/O: the config keys (allow_upgrades, timeouts.tunnel_idle) and
 * which requests keep their upgrade.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import * as net from 'node:net';
import { createRequest, fixedBody } from '@loch/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { upgradeToForward } from '../../src/proxy/header-hygiene.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir } from './harness.js';

const drivers = availableDrivers();

/** A `ws` server on a node:http server, with the behaviours the cases need, by path. */
interface WsUpstream {
  readonly port: number;
  /** Close events the server saw, by the `id` query parameter of the socket. */
  readonly closes: Map<string, { code: number; reason: string }>;
  /** Resolves when the server saw the socket `id` close. */
  closed(id: string): Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

async function wsUpstream(): Promise<WsUpstream> {
  const closes = new Map<string, { code: number; reason: string }>();
  const waiters = new Map<string, (c: { code: number; reason: string }) => void>();
  const http: Server = createServer((req, res) => {
    // Plain HTTP (an upgrade that was not let through lands here): what arrived.
    const body = JSON.stringify({
      url: req.url,
      upgrade: req.headers.upgrade ?? null,
      connection: req.headers.connection ?? null,
      settings: req.headers['http2-settings'] ?? null,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
  http.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/answer-200') {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nno websocket');
      return;
    }
    if (url.pathname === '/answer-400') {
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad upgrade',
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const id = url.searchParams.get('id') ?? '';
      ws.on('close', (code, reason) => {
        const c = { code, reason: reason.toString() };
        closes.set(id, c);
        waiters.get(id)?.(c);
      });
      ws.on('error', () => {});
      if (url.pathname === '/hello') ws.send('hello from upstream');
      ws.on('message', (data: RawData, isBinary: boolean) => {
        const text = isBinary ? '' : data.toString();
        if (text === 'close-me') ws.close(4001, 'server says bye');
        else if (text === 'vanish') ws.terminate();
        else ws.send(data as Buffer, { binary: isBinary });
      });
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    port: (http.address() as net.AddressInfo).port,
    closes,
    closed(id) {
      const seen = closes.get(id);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.set(id, resolve));
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

/**
 * A raw upstream for `Upgrade: x-shout`: answers 101 with `welcome;` in the same write, shouts
 * back what it receives, and when the client side ends (half-close) still writes `bye after
 * your end;` before ending its own side.
 */
async function shoutUpstream(): Promise<{ port: number; ended: Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let sawEnd: () => void = () => {};
  const ended = new Promise<void>((r) => {
    sawEnd = r;
  });
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let head = '';
    let switched = false;
    s.on('data', (d: Buffer) => {
      if (switched) {
        s.write(d.toString('latin1').toUpperCase());
        return;
      }
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      switched = true;
      const rest = head.slice(end + 4);
      s.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-shout\r\n\r\nwelcome;${rest.toUpperCase()}`,
      );
    });
    s.on('end', () => {
      sawEnd();
      s.end('bye after your end;');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    ended,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A rogue upstream: answers every request with a 101 that switches to `x-rogue` (asked for or
 * not) followed by bytes that must never reach a client.
 */
async function rogueUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.once('data', () =>
      s.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-rogue\r\n\r\nLEAKED BYTES',
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Opens a `ws` client; resolves once open (rejects on an error or an unexpected response). */
function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 8 * 1024 * 1024, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}

/** The next message of `ws`. */
function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) =>
    ws.once('message', (data: RawData, isBinary: boolean) => resolve({ data: data as Buffer, isBinary })),
  );
}

/** Resolves with the close code and reason `ws` saw. */
function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: 1006, reason: '' });
  return new Promise((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

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

/** Sends raw bytes and reads until `done(text)` says enough (or the peer closes). */
function rawUntil(
  port: number,
  bytes: string,
  done: (text: string) => boolean,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(finish, 5000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      text += d;
      if (done(text)) finish();
    });
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      finish();
    });
    s.on('connect', () => s.write(bytes));
  });
}

const upgradeHead = (path: string, token = 'websocket', extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: ${token}\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

describe.each(drivers)('WebSocket through loch (driver %s)', (driver) => {
  let upstream: WsUpstream;
  let shout: Awaited<ReturnType<typeof shoutUpstream>>;
  let rogue: Awaited<ReturnType<typeof rogueUpstream>>;
  let loch: Loch;
  let port: number;
  let idlePort: number;
  const url = (path: string, p = port) => `ws://127.0.0.1:${p}${path}`;

  beforeAll(async () => {
    upstream = await wsUpstream();
    shout = await shoutUpstream();
    rogue = await rogueUpstream();
    port = await freePort();
    idlePort = await freePort();
    loch = await startLoch(
      tempDir('loch-ws-'),
      `
[runtime]
workers = 2

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_read = "5s", tunnel_idle = "30s" }
allow_upgrades = ["websocket", "x-shout"]

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]

[[servers.web.routes]]
path = "/raw/{*rest}"
upstreams = [{ endpoint = "http://127.0.0.1:${shout.port}" }]

[[servers.web.routes]]
path = "/rogue/{*rest}"
upstreams = [{ endpoint = "http://127.0.0.1:${rogue.port}" }]

[servers.idle]
listener = { type = "socket", value = "127.0.0.1:${idlePort}" }
timeouts = { tunnel_idle = "300ms" }

[[servers.idle.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
  });

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
    await shout?.close();
    await rogue?.close();
  });

  it('opens no tunnel for a 101 the client did not ask for, or one naming another protocol (502)', async () => {
    for (const request of [
      // Asked for websocket, the upstream switched to something else.
      upgradeHead('/rogue/a'),
      // A token off the allow-list: forwarded without the upgrade, so the 101 is unsolicited.
      upgradeHead('/rogue/b', 'x-other'),
      // No upgrade at all.
      'GET /rogue/c HTTP/1.1\r\nHost: ws.test\r\n\r\n',
    ]) {
      const { text } = await rawUntil(port, request, (t) => t.includes('\r\n\r\n') && t.includes('ERR_'));
      expect(text).toMatch(/^HTTP\/1\.1 502 /);
      expect(text).toContain('ERR_LOCH_UPSTREAM_PROTOCOL');
      expect(text).not.toContain('LEAKED');
    }
  });

  it('relays the bytes behind each head first, and a half-close both ways', async () => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let text = '';
    const waiters: (() => void)[] = [];
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      text += d;
      for (const w of waiters.splice(0)) w();
    });
    const ended = new Promise<void>((r) => s.once('end', () => r()));
    const until = (what: string) =>
      within(
        (async () => {
          while (!text.includes(what)) await new Promise<void>((r) => waiters.push(r));
        })(),
        5000,
        what,
      );
    await new Promise<void>((r) => s.once('connect', () => r()));
    // The new protocol's first bytes ride in the same write as the upgrade request.
    s.write(`GET /raw/x HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: x-shout\r\n\r\nhello;`);
    await until('HELLO;');
    expect(text).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    const head = text.slice(0, text.indexOf('\r\n\r\n') + 4).toLowerCase();
    expect(head).toContain('\r\nupgrade: x-shout\r\n');
    expect(head).toContain('\r\nconnection: upgrade\r\n');
    expect(text.slice(head.length)).toBe('welcome;HELLO;');
    s.write('more;');
    await until('MORE;');
    // The client ends its side; the upstream sees the end and may still answer.
    s.end();
    await within(shout.ended, 5000, 'upstream saw the end');
    await until('bye after your end;');
    await within(ended, 5000, 'client saw the end');
    expect(text.endsWith('welcome;HELLO;MORE;bye after your end;')).toBe(true);
    s.destroy();
  });

  it('relays the 101 and text and binary messages both ways', async () => {
    let upgradeHeaders: IncomingMessage['headers'] = {};
    const ws = new WebSocket(url('/hello?id=basic'));
    ws.once('upgrade', (res) => {
      upgradeHeaders = res.headers;
    });
    const hello = nextMessage(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    // The 101 came through with its WebSocket fields (ws checked Sec-WebSocket-Accept) and Via.
    expect(upgradeHeaders.upgrade?.toLowerCase()).toBe('websocket');
    expect(upgradeHeaders.connection?.toLowerCase()).toBe('upgrade');
    expect(upgradeHeaders['sec-websocket-accept']).toBeTruthy();
    expect(upgradeHeaders.via).toContain('loch');
    // Upstream -> client right after the switch (possibly in the 101's own segment).
    const first = await within(hello, 5000, 'hello');
    expect(first.isBinary).toBe(false);
    expect(first.data.toString()).toBe('hello from upstream');
    // Client -> upstream -> client, text then binary.
    let reply = nextMessage(ws);
    ws.send('ünïcode text');
    expect((await reply).data.toString()).toBe('ünïcode text');
    const bin = randomBytes(1000);
    reply = nextMessage(ws);
    ws.send(bin, { binary: true });
    const echoed = await reply;
    expect(echoed.isBinary).toBe(true);
    expect(Buffer.compare(echoed.data, bin)).toBe(0);
    ws.close(1000, 'done');
    expect(await within(closeOf(ws), 5000, 'close')).toEqual({ code: 1000, reason: 'done' });
  });

  it('carries 1 MB messages both ways intact', async () => {
    const ws = await open(url('/echo?id=large'));
    for (const binary of [true, false]) {
      const payload = binary ? randomBytes(1024 * 1024) : Buffer.from('x'.repeat(1024 * 1024));
      const reply = nextMessage(ws);
      ws.send(payload, { binary });
      const got = await within(reply, 15_000, '1 MB echo');
      expect(got.isBinary).toBe(binary);
      expect(got.data.length).toBe(payload.length);
      expect(createHash('sha256').update(got.data).digest('hex')).toBe(
        createHash('sha256').update(payload).digest('hex'),
      );
    }
    ws.close();
    await closeOf(ws);
  });

  it('keeps many concurrent sockets apart', async () => {
    const n = 40;
    const sockets = await Promise.all(Array.from({ length: n }, (_, i) => open(url(`/echo?id=many-${i}`))));
    await Promise.all(
      sockets.map(async (ws, i) => {
        for (let k = 0; k < 5; k++) {
          const msg = `socket ${i} message ${k} ${'#'.repeat((i * 37 + k * 11) % 500)}`;
          const reply = nextMessage(ws);
          ws.send(msg);
          expect((await within(reply, 10_000, `echo ${i}/${k}`)).data.toString()).toBe(msg);
        }
      }),
    );
    for (const ws of sockets) ws.close(1000, 'bye');
    const closes = await Promise.all(sockets.map((ws) => within(closeOf(ws), 10_000, 'close')));
    expect(closes.every((c) => c.code === 1000)).toBe(true);
  });

  it('passes close frames with code and reason from the client', async () => {
    const ws = await open(url('/echo?id=client-close'));
    const closed = closeOf(ws);
    ws.close(4000, 'client says bye');
    const server = await within(upstream.closed('client-close'), 5000, 'server close');
    expect(server).toEqual({ code: 4000, reason: 'client says bye' });
    expect((await within(closed, 5000, 'client close')).code).toBe(4000);
  });

  it('passes close frames with code and reason from the server', async () => {
    const ws = await open(url('/echo?id=server-close'));
    const closed = closeOf(ws);
    ws.send('close-me');
    expect(await within(closed, 5000, 'client close')).toEqual({ code: 4001, reason: 'server says bye' });
    expect((await within(upstream.closed('server-close'), 5000, 'server close')).code).toBe(4001);
  });

  it('a server that vanishes: the client sees the close', async () => {
    const ws = await open(url('/echo?id=server-vanishes'));
    const closed = closeOf(ws);
    ws.send('vanish');
    // No close frame: the connection just ended (1006).
    expect((await within(closed, 5000, 'client close')).code).toBe(1006);
  });

  it('a client that vanishes: the server sees the close', async () => {
    const ws = await open(url('/echo?id=client-vanishes'));
    const reply = nextMessage(ws);
    ws.send('still here');
    await reply;
    ws.terminate();
    expect((await within(upstream.closed('client-vanishes'), 5000, 'server close')).code).toBe(1006);
  });

  it('closes a tunnel idle past tunnel_idle, both sides', async () => {
    const ws = await open(url('/echo?id=idle', idlePort));
    // Traffic keeps it open...
    const reply = nextMessage(ws);
    ws.send('ping');
    await reply;
    // ...silence closes it (300 ms configured; generous bound).
    expect((await within(closeOf(ws), 10_000, 'idle close')).code).toBe(1006);
    expect((await within(upstream.closed('idle'), 10_000, 'server close')).code).toBe(1006);
  });

  it('relays an upstream 200 to an upgrade as HTTP (no tunnel)', async () => {
    const { text } = await rawUntil(port, upgradeHead('/answer-200'), (t) => t.includes('no websocket'));
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.toLowerCase()).not.toContain('upgrade');
    expect(text).toContain('\r\n\r\nno websocket');
  });

  it('relays an upstream 400 to an upgrade as HTTP, and the connection stays HTTP', async () => {
    const { text } = await rawUntil(
      port,
      `${upgradeHead('/answer-400')}GET /next HTTP/1.1\r\nHost: ws.test\r\n\r\n`,
      (t) => t.includes('"url":"/next"'),
    );
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(text).toContain('bad upgrade');
    // The client's connection stays HTTP: the request pipelined behind it is answered (the
    // upstream closed its connection after the 400, so on a new one).
    expect(text).toMatch(/HTTP\/1\.1 200 OK\r\n[\s\S]*"url":"\/next"/);
  });

  it('forwards an Upgrade token not on the allow-list without the upgrade', async () => {
    const { text } = await rawUntil(port, upgradeHead('/plain', 'x-other'), (t) => t.includes('}'));
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const seen = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(seen.upgrade).toBeNull();
    expect(seen.connection).toBeNull();
  });

  it('never tunnels h2c, even when asked with HTTP2-Settings', async () => {
    const { text } = await rawUntil(
      port,
      `GET /h2c HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
      (t) => t.includes('}'),
    );
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const seen = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(seen).toMatchObject({ url: '/h2c', upgrade: null, connection: null, settings: null });
  });

  it('lets a second allowed token through to the upstream (which declines it over HTTP)', async () => {
    // x-shout is on this server's allow-list; the ws upstream answers a non-WebSocket upgrade
    // with a 400 (its handleUpgrade refuses), relayed as HTTP.
    const { text } = await rawUntil(port, upgradeHead('/echo', 'x-shout'), (t) => t.includes('\r\n\r\n'));
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
  });
});

describe.each(drivers)('a tunnel on a graceful stop (driver %s)', (driver) => {
  it('keeps tunnelling through the shutdown grace, then closes both sides and exits', async () => {
    const upstream = await wsUpstream();
    const port = await freePort();
    const loch = await startLoch(
      tempDir('loch-ws-drain-'),
      `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { shutdown_grace = "1500ms" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream.port}" }]
`,
      { LOCH_DRIVER: driver },
    );
    try {
      const ws = await open(`ws://127.0.0.1:${port}/echo?id=drain`);
      const closed = closeOf(ws);
      const exited = loch.stop();
      // The tunnel still carries messages while the worker drains.
      const reply = nextMessage(ws);
      ws.send('during drain');
      expect((await within(reply, 5000, 'echo while draining')).data.toString()).toBe('during drain');
      // Then the grace ends: both sides see the close and loch exits.
      await within(closed, 15_000, 'client close');
      await within(upstream.closed('drain'), 15_000, 'server close');
      expect(await within(exited, 15_000, 'loch exit')).toBe(0);
    } finally {
      await loch.stop();
      await upstream.close();
    }
  });
});

describe('allow_upgrades and tunnel_idle (config)', () => {
  const server = (extra: string) => `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
${extra}

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`;

  it('defaults to websocket and 60 s', () => {
    const s = parseConfig(server('')).servers[0]!;
    expect(s.allowUpgrades).toEqual(['websocket']);
    expect(s.timeouts.tunnelIdle).toBe(60_000);
  });

  it('reads a list (lowercased; empty turns upgrades off) and a duration', () => {
    const s = parseConfig(
      server('allow_upgrades = ["WebSocket", "x-shout"]\ntimeouts = { tunnel_idle = "2m" }'),
    ).servers[0]!;
    expect(s.allowUpgrades).toEqual(['websocket', 'x-shout']);
    expect(s.timeouts.tunnelIdle).toBe(120_000);
    expect(parseConfig(server('allow_upgrades = []')).servers[0]!.allowUpgrades).toEqual([]);
  });

  it('refuses h2c and a value that is not a token, naming the key', () => {
    for (const [value, where] of [
      ['["websocket", "H2C"]', 'servers.web.allow_upgrades[1]'],
      ['["web socket"]', 'servers.web.allow_upgrades[0]'],
    ] as const) {
      let error: unknown;
      try {
        parseConfig(server(`allow_upgrades = ${value}`));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path)).toContain(where);
    }
  });
});

describe('which requests keep their upgrade', () => {
  const allowed = new Set(['websocket']);
  const request = (
    headers: [string, string][],
    init: { method?: string; version?: '1.0' | '1.1'; body?: boolean } = {},
  ) =>
    createRequest(init.method ?? 'GET', '/ws', {
      headers,
      version: init.version ?? '1.1',
      ...(init.body ? { body: fixedBody('x') } : {}),
    });
  const ws: [string, string][] = [
    ['connection', 'keep-alive, Upgrade'],
    ['upgrade', 'WebSocket'],
  ];

  it('an allowed protocol with Connection: upgrade, HTTP/1.1, no body', () => {
    expect(upgradeToForward(request(ws), allowed)).toBe('WebSocket');
  });

  it('not without Connection: upgrade, not in HTTP/1.0, not with a body, not for CONNECT', () => {
    expect(upgradeToForward(request([['upgrade', 'websocket']]), allowed)).toBeNull();
    expect(upgradeToForward(request(ws, { version: '1.0' }), allowed)).toBeNull();
    expect(upgradeToForward(request(ws, { method: 'POST', body: true }), allowed)).toBeNull();
    expect(upgradeToForward(request(ws, { method: 'CONNECT' }), allowed)).toBeNull();
  });

  it('not when any protocol listed is off the list, never h2c, not with two Upgrade fields', () => {
    const up = (value: string): [string, string][] => [
      ['connection', 'upgrade'],
      ['upgrade', value],
    ];
    expect(upgradeToForward(request(up('websocket, foo/2')), allowed)).toBeNull();
    expect(upgradeToForward(request(up('h2c')), new Set(['h2c']))).toBeNull();
    expect(upgradeToForward(request([...up('websocket'), ['upgrade', 'websocket']]), allowed)).toBeNull();
    expect(upgradeToForward(request(up('websocket')), new Set())).toBeNull();
  });
});
