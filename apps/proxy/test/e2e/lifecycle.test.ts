/**
 * `loch run` over its lifetime, against nginx: hot reload while wrk runs (zero failed or
 * non-2xx requests), reloads that must be refused (bad file, runtime change, a listener that
 * cannot bind) and leave the old config serving, listeners added and removed by a reload, and
 * SIGTERM with a request in flight (it completes, then loch exits 0).
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { Client, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableDrivers,
  curl,
  freePort,
  httpUpstream,
  type Loch,
  type Nginx,
  startLoch,
  startNginx,
  tempDir,
} from './harness.js';

function config(port: number, upstream: number, extra = '', workers = 2): string {
  return `
[runtime]
workers = ${workers}

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { shutdown_grace = "5s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
${extra}`;
}

/** Runs wrk and returns its output. */
function wrk(url: string, seconds: number): Promise<string> {
  return new Promise((resolve) => {
    const w = spawn('wrk', ['-t2', '-c16', `-d${seconds}s`, '--latency', url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    w.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    w.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    w.on('exit', () => resolve(out));
  });
}

const drivers = availableDrivers();

describe.each(drivers)('reload and shutdown (driver %s)', (driver) => {
  let nginx: Nginx;
  let loch: Loch;
  let port: number;
  let dir: string;
  let A: number;
  let B: number;

  beforeAll(async () => {
    dir = tempDir('loch-proxy-reload-');
    nginx = await startNginx(['A', 'B']);
    [A, B] = nginx.ports as [number, number];
    port = await freePort();
    loch = await startLoch(dir, config(port, A), { LOCH_DRIVER: driver });
  }, 60_000);

  afterAll(async () => {
    try {
      await loch?.stop();
    } finally {
      await nginx?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  const write = (text: string) => writeFileSync(loch.configPath, text);
  const reloaded = async (kick: () => void) => {
    const from = loch.stderr().length;
    kick();
    await loch.waitFor(/reloaded .*generation \d+|reload .*(failed|refused|aborted)/, from);
    return loch.stderr().slice(from);
  };

  it('reloads under wrk load with zero failed requests, then serves the new routes', async () => {
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^A /);
    const load = wrk(`http://127.0.0.1:${port}/x`, 3);
    await new Promise((r) => setTimeout(r, 1200));
    const log = await reloaded(() => {
      write(config(port, B));
      loch.child.kill('SIGHUP');
    });
    expect(log).toMatch(/reloaded/);
    const out = await load;
    const total = /(\d+) requests in/.exec(out);
    expect(total, out).not.toBeNull();
    expect(Number(total![1])).toBeGreaterThan(100);
    expect(out, out).not.toMatch(/Socket errors/);
    expect(out, out).not.toMatch(/Non-2xx/);
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^B /);
  }, 30_000);

  it('keeps the running config when the new file is invalid, and says why', async () => {
    const log = await reloaded(() =>
      write('[servers.web]\nlistener = { type = "socket", value = "nope" }\nbogus = 1\n'),
    );
    expect(log).toMatch(/failed, keeping the running config/);
    expect(log).toMatch(/servers\.web\.listener\.value/);
    expect(log).toMatch(/unknown key "bogus"/);
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^B /);
  });

  it('refuses a [runtime] change by name', async () => {
    const log = await reloaded(() => write(config(port, A, '', 3)));
    expect(log).toMatch(/refused.*runtime\.workers/);
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^B /);
  });

  it('opens a listener a reload adds and closes one it removes; a listener that cannot bind aborts on every worker', async () => {
    const extraPort = await freePort();
    const extra = `
[servers.extra]
listener = { type = "socket", value = "127.0.0.1:${extraPort}" }

[[servers.extra.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${A}" }]
`;
    expect(await reloaded(() => write(config(port, B, extra)))).toMatch(/reloaded/);
    expect((await curl([`http://127.0.0.1:${extraPort}/e`])).out).toMatch(/^A \/e /);
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^B /);

    // a port someone else holds: precommit fails to bind, every worker aborts
    const taken = nginx.ports[1]!;
    const clash = extra.replace(`127.0.0.1:${extraPort}`, `127.0.0.1:${taken}`);
    const log = await reloaded(() => write(config(port, A, clash)));
    expect(log).toMatch(/aborted on every worker.*EADDRINUSE/);
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^B /);
    expect((await curl([`http://127.0.0.1:${extraPort}/e`])).out).toMatch(/^A /);

    // a client kept alive on the server about to be removed
    const kept = new Client(`http://127.0.0.1:${extraPort}`, { connections: 1 } as Client.Options);
    expect(await (await kept.request({ method: 'GET', path: '/k' })).body.text()).toMatch(/^A \/k /);
    expect(await reloaded(() => write(config(port, A)))).toMatch(/reloaded/);
    // its next request is still answered, with connection: close (its listener is gone)
    const last = await kept.request({ method: 'GET', path: '/k2' });
    expect(last.statusCode).toBe(200);
    expect(last.headers.connection).toBe('close');
    expect(await last.body.text()).toMatch(/^A \/k2 /);
    await kept.close();
    const gone = await curl([`http://127.0.0.1:${extraPort}/e`]);
    expect(gone.code).toBe(7); // curl: could not connect
    expect((await curl([`http://127.0.0.1:${port}/x`])).out).toMatch(/^A /);
  }, 30_000);

  it('moves a server to a new address and applies new server timeouts; kept-alive clients finish on the old listener', async () => {
    const kept = new Client(`http://127.0.0.1:${port}`, { connections: 1 } as Client.Options);
    expect(await (await kept.request({ method: 'GET', path: '/k' })).body.text()).toMatch(/^[AB] /);
    const moved = await freePort();
    const text = config(moved, B).replace(
      'shutdown_grace = "5s"',
      'shutdown_grace = "5s", server_keepalive = "30s"',
    );
    expect(await reloaded(() => write(text))).toMatch(
      new RegExp(`reloaded .*web=tcp:127\\.0\\.0\\.1:${moved}`),
    );
    expect((await curl([`http://127.0.0.1:${moved}/m`])).out).toMatch(/^B \/m /);
    expect((await curl([`http://127.0.0.1:${port}/m`])).code).toBe(7);
    // the connection accepted on the old address is still served (with the new routes)
    expect(await (await kept.request({ method: 'GET', path: '/k2' })).body.text()).toMatch(/^B \/k2 /);
    await kept.close();
    // back to the original address for the tests that follow
    expect(await reloaded(() => write(config(port, B)))).toMatch(/reloaded/);
  });
});

const stops: [string, NodeJS.Signals][] = [
  ...drivers.map((d): [string, NodeJS.Signals] => [d, 'SIGTERM']),
  [drivers[drivers.length - 1]!, 'SIGINT'],
];

describe.each(stops)('graceful stop (driver %s, %s)', (driver, signal) => {
  it('lets an in-flight request finish, refuses new connections, and exits 0', async () => {
    const dir = tempDir('loch-proxy-term-');
    let arrived!: () => void;
    const inFlight = new Promise<void>((r) => {
      arrived = r;
    });
    const slow = await httpUpstream((_req, res) => {
      arrived();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first half, ');
      setTimeout(() => res.end('second half'), 1000);
    });
    const port = await freePort();
    const loch = await startLoch(dir, config(port, slow.port), { LOCH_DRIVER: driver });
    try {
      const pending = request(`http://127.0.0.1:${port}/slow`);
      await inFlight;
      loch.child.kill(signal);
      await loch.waitFor(new RegExp(`${signal}: stopping`));
      const res = await pending;
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('first half, second half');
      expect(await loch.exited).toBe(0);
      expect(loch.stderr()).toMatch(/info stopped/);
      expect((await curl([`http://127.0.0.1:${port}/`])).code).toBe(7);
    } finally {
      await loch.stop();
      await slow.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe.each(drivers)('graceful stop past the grace period (driver %s)', (driver) => {
  it('closes what is still open after shutdown_grace and exits 0', async () => {
    const dir = tempDir('loch-proxy-grace-');
    let arrived!: () => void;
    const inFlight = new Promise<void>((r) => {
      arrived = r;
    });
    const stuck = await httpUpstream((_req, res) => {
      arrived();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('never finished');
    });
    const port = await freePort();
    const text = config(port, stuck.port).replace('shutdown_grace = "5s"', 'shutdown_grace = "300ms"');
    const loch = await startLoch(dir, text, { LOCH_DRIVER: driver });
    try {
      const pending = request(`http://127.0.0.1:${port}/stuck`);
      await inFlight;
      const res = await pending;
      expect(res.statusCode).toBe(200);
      const body = res.body.text();
      loch.child.kill('SIGTERM');
      await expect(body).rejects.toThrow();
      expect(await loch.exited, loch.stderr()).toBe(0);
      expect(loch.stderr()).toMatch(/shutdown grace \(300 ms\) over: closing 1 connection/);
    } finally {
      await loch.stop();
      await stuck.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
