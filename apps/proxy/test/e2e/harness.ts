/**
 * End-to-end test harness: real peers on loopback. Starts nginx as a child (temp prefix, free
 * ports, `daemon off`), small node:net/node:http upstreams for what nginx cannot do on demand
 * (never answer, reset, echo, slow), and `loch run` as a child process built from the
 * TypeScript sources (lochArgs: the run's bundle of them, loch-bundle.ts, else under tsx), with
 * its stdout (access log) and stderr (operational log) captured. Not a test file.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
} from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { freePort as freePortIn } from '../../../../packages/http/test/free-port.js';
import { BUNDLE_ENV } from './loch-bundle.js';

export const PROXY_DIR = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Node's arguments that run the `loch` CLI from this working tree with `args`: the bundle this
 * test run built from the sources (loch-bundle.ts, the package's globalSetup), or, when there is
 * none (LOCH_E2E_TSX=1, a test file run without the config), the sources under tsx.
 */
export function lochArgs(...args: string[]): string[] {
  const bundle = process.env[BUNDLE_ENV];
  if (bundle !== undefined && bundle !== '') return [bundle, ...args];
  return ['--conditions=@loch/source', '--import', 'tsx', join(PROXY_DIR, 'src/bin.ts'), ...args];
}

/** A temp directory removed by `cleanup`. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A port that was free a moment ago, for a server the test starts later (loch, nginx): below the
 * ephemeral range, in this package's band of packages/http/test/free-port.ts (which says why).
 */
export function freePort(): Promise<number> {
  return freePortIn('apps/proxy');
}

/** Resolves once something accepts on the address. */
export async function waitConnectable(
  target: { port: number } | { path: string },
  tries = 200,
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = 'port' in target ? net.connect(target.port, '127.0.0.1') : net.connect(target.path);
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing accepts on ${JSON.stringify(target)}`);
}

/**
 * Resolves when `ready()` holds (checked every 25 ms), or after `ms`: the caller asserts what it
 * waited for, so a deadline passed fails on that assertion, not here.
 */
export async function until(ready: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

/** A running nginx. */
export interface Nginx {
  readonly dir: string;
  readonly ports: readonly number[];
  readonly socket: string;
  stop(): Promise<void>;
}

/**
 * Starts nginx with one server per body prefix in `names` (each on its own free port, answering
 * `<name> <uri> <request facts>\n`) plus the same first server on a Unix socket.
 */
export async function startNginx(names: readonly string[]): Promise<Nginx> {
  const dir = tempDir('loch-proxy-nginx-');
  const ports: number[] = [];
  for (const _ of names) ports.push(await freePort());
  const socket = join(dir, 'up.sock');
  const facts =
    'host=$http_host xff=$http_x_forwarded_for xfp=$http_x_forwarded_proto xfh=$http_x_forwarded_host via=$http_via conn=$http_connection foo=$http_x_foo ka=$http_keep_alive te=$http_te pa=$http_proxy_authorization';
  const servers = names
    .map(
      (name, i) => `
    server {
      listen 127.0.0.1:${ports[i]};${i === 0 ? `\n      listen unix:${socket};` : ''}
      keepalive_requests 1000000;
      location / { return 200 "${name} $request_uri ${facts}\\n"; }
      location /big { alias ${dir}/big.bin; }
    }`,
    )
    .join('\n');
  writeFileSync(join(dir, 'big.bin'), Buffer.alloc(2_000_000, 0x61));
  const nginx = await runNginx(dir, servers, ports);
  return {
    dir,
    ports,
    socket,
    async stop() {
      await nginx.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * nginx as this user in `dir` (no master, `daemon off`, temp paths and logs in `dir`) with the
 * http block's `servers`; resolves once every port of `ports` accepts. stop() ends it and waits.
 */
export async function runNginx(
  dir: string,
  servers: string,
  ports: readonly number[],
): Promise<{ stop(): Promise<void> }> {
  writeFileSync(
    join(dir, 'nginx.conf'),
    `error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  ${servers}
}
`,
  );
  const child = spawn(
    'nginx',
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'],
    {
      stdio: 'ignore',
    },
  );
  const nginx = {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
  try {
    for (const port of ports) await waitConnectable({ port });
  } catch (error) {
    // A port that never accepts (a bad config, a port taken meanwhile): no nginx left behind.
    await nginx.stop();
    throw error;
  }
  return nginx;
}

/** A running `loch run`. */
export interface Loch {
  readonly child: ChildProcess;
  readonly configPath: string;
  /** Everything written to stdout (the access log) so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves when stderr matches `pattern` (checked against output after `from` chars). */
  waitFor(pattern: RegExp, from?: number, timeoutMs?: number): Promise<void>;
  /** Open descriptors of the process. */
  fdCount(): number;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Writes `config` (TOML) to `dir` and starts `loch run -c` on it; resolves once it listens. */
export async function startLoch(
  dir: string,
  config: string,
  env: Record<string, string> = {},
  name = 'loch.toml',
): Promise<Loch> {
  const configPath = join(dir, name);
  writeFileSync(configPath, config);
  const child = spawn(process.execPath, lochArgs('run', '-c', configPath), {
    cwd: PROXY_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const loch: Loch = {
    child,
    configPath,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, from = 0, timeoutMs = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(err.slice(from))) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern} in loch's stderr:\n${err}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then(() => {
          if (waiters.has(check)) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`loch exited before ${pattern}:\n${err}`));
          }
        });
        check();
      });
    },
    fdCount: () => readdirSync(`/proc/${child.pid}/fd`).length,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  try {
    // Liveness, not speed: in the clean-clone CI every suite runs at once on 2 cores, and a start
    // there has taken longer than waitFor's default 15 s.
    await loch.waitFor(/info started \d+ worker/, 0, 45_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return loch;
}

/** A node:net upstream that accepts and never answers (for 504). */
export async function silentUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
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

/** A node:net upstream that resets every connection once the request arrives (for 502). */
export async function resettingUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s: net.Socket) => {
    s.on('error', () => {});
    s.once('data', () => (s as net.Socket & { resetAndDestroy(): void }).resetAndDestroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A node:http upstream with a request handler (echo bodies, custom response headers, slow answers). */
export async function httpUpstream(
  handler: Parameters<typeof createHttpServer>[1] & {},
): Promise<{ port: number; server: HttpServer; close(): Promise<void> }> {
  const server = createHttpServer(handler);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Sends raw bytes and collects everything the proxy answers until it closes (or `ms` passes). */
export function rawExchange(port: number, bytes: string | Buffer, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
    });
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => s.write(bytes));
  });
}

/** The SHA-256 fingerprint of the certificate loch hands a new TLS connection (SNI localhost). */
export function certificateFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** Runs curl; resolves with stdout (and the exit code). */
export function curl(args: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sS', '--max-time', '10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

/** Environment variable in which drivers-setup.ts hands every test file the probe's answer. */
export const DRIVERS_ENV = 'LOCH_E2E_DRIVERS';

/**
 * Which drivers to run on: legacy always, uring where the kernel grants it. Probed once per test
 * run (drivers-setup.ts, the package's globalSetup), else here (a file run without the config).
 */
export function availableDrivers(): ('legacy' | 'uring')[] {
  const known = process.env[DRIVERS_ENV];
  if (known === 'legacy,uring' || known === 'legacy') return known.split(',') as ('legacy' | 'uring')[];
  return probeDrivers();
}

/** availableDrivers()'s probe: a child process that tries to start an io_uring runtime. */
export function probeDrivers(): ('legacy' | 'uring')[] {
  const probe = spawnSync(
    process.execPath,
    [
      '--conditions=@loch/source',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      "const m = await import('@loch/uring-runtime'); try { const r = await m.createRuntime({ driver: 'uring' }); await r.close(); process.stdout.write('uring'); } catch { process.stdout.write('none'); }",
    ],
    { cwd: PROXY_DIR, encoding: 'utf8', timeout: 20_000 },
  );
  return probe.stdout === 'uring' ? ['legacy', 'uring'] : ['legacy'];
}

/**
 * An upstream that never completes a TCP handshake: a listener with backlog 0 that never
 * accepts, its queue filled by connections of its own, so further SYNs are dropped and a
 * connect attempt hangs until its deadline (for the connect-timeout 504). Needs python3.
 */
export async function blackholeUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const py = spawn(
    'python3',
    [
      '-c',
      `import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    fill.append(c)
time.sleep(0.2)
print(port, flush=True)
sys.stdin.read()`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    py.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number(d.trim())));
    py.once('exit', () => reject(new Error('python3 blackhole exited')));
  });
  return {
    port,
    async close() {
      const exited = new Promise((r) => py.once('exit', r));
      py.stdin!.end();
      py.kill();
      await exited;
    },
  };
}

/**
 * A node:net upstream that answers every request with its head exactly as received (start
 * line and fields, CRLFs as "\n"), keep-alive, Content-Length bodies skipped: for what node:http
 * would refuse or rewrite (extension methods, the forwarded request line and Host as bytes).
 */
export async function headEchoUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    let skip = 0;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, buf.length);
          skip -= n;
          buf = buf.subarray(n);
          if (skip > 0) return;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        skip = length ? Number(length[1]) : 0;
        const body = Buffer.from(`${head.replaceAll('\r\n', '\n')}\n`, 'latin1');
        s.write(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`,
            ),
            body,
          ]),
        );
      }
    });
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

/**
 * `loch run` with one worker (so every request shares one upstream pool) on a free port, routing
 * everything to the upstream on `upstreamPort`, on `driver`. Resolves with loch and its port.
 */
export async function startLochInFrontOf(
  upstreamPort: number,
  driver: string,
  prefix: string,
): Promise<{ loch: Loch; port: number }> {
  const port = await freePort();
  const loch = await startLoch(
    tempDir(prefix),
    `
[runtime]
workers = 1

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
timeouts = { upstream_connect = "2s", upstream_read = "2s" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstreamPort}" }]
`,
    { LOCH_DRIVER: driver },
  );
  return { loch, port };
}

/** A plain GET on a new connection (loch's admin listener): the body. */
export function adminGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** TLS connections of `server` taken over by Loch's record layer / declined, summed over loch's workers (/stats). */
export interface TakeoverCounts {
  loch: number;
  declined: number;
}

/** The take-over counts of TLS server `server`, from the admin listener's /stats. */
export async function tlsTakeovers(admin: number, server: string): Promise<TakeoverCounts> {
  const stats = JSON.parse(await adminGet(admin, '/stats')) as {
    workers: { tlsRecords?: Record<string, TakeoverCounts> }[];
  };
  const sum = { loch: 0, declined: 0 };
  for (const w of stats.workers) {
    sum.loch += w.tlsRecords?.[server]?.loch ?? 0;
    sum.declined += w.tlsRecords?.[server]?.declined ?? 0;
  }
  return sum;
}
