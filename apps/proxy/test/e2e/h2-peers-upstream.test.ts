/**
 * Real HTTP/2 servers as loch's upstreams (`upstream_http_version = "http2"`), on every
 * available driver: nghttpd (nghttp2's server, Debian nghttp2-server) over h2c by prior
 * knowledge (`--no-tls`) and over TLS (h2 by ALPN), and nginx 1.22 with `listen ... http2`
 * (h2c by prior knowledge), each serving a directory of static files of several sizes (1 B to
 * 2 MiB, past the 64 KiB default windows). HTTP/1.1 and h2c clients fetch them through loch one
 * by one and 30 at once; every body must be byte-exact, nginx's access log must show HTTP/2
 * requests on one upstream connection (the shared session). Not for loch's own HTTP/2 server
 * (h2c.test.ts, h2-conformance.test.ts) nor for a node:http2 upstream (h2-upstream.test.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/demo-certificate.js';
import {
  availableDrivers,
  freePort,
  type Loch,
  runNginx,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

const drivers = availableDrivers();

/** Static files served by every upstream: name -> content (random, so a misplaced byte shows). */
const SIZES = [1, 128, 11_268, 65_535, 70_000, 165_854, 1_048_576, 2_097_152];
const files = new Map<string, Buffer>(SIZES.map((n) => [`/f${n}.bin`, randomBytes(n)] as const));

/** Spawns a server child; `stop` ends it (SIGTERM) and waits for its exit. */
function child(cmd: string, args: readonly string[]): { proc: ChildProcess; stop(): Promise<void> } {
  const proc = spawn(cmd, args, { stdio: 'ignore' });
  return {
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

function h1get(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function h2get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ':authority': 'peers.test' });
    let status = 0;
    const parts: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve({ status, body: Buffer.concat(parts) }));
    req.on('error', reject);
    req.end();
  });
}

/** Asserts a fetched answer is the file's exact bytes (without printing megabytes on failure). */
function expectExact(path: string, got: { status: number; body: Buffer }): void {
  const want = files.get(path)!;
  expect({ path, status: got.status, length: got.body.length }).toEqual({
    path,
    status: 200,
    length: want.length,
  });
  expect(got.body.equals(want), `${path} differs from the file`).toBe(true);
}

/** Writes every file into `dir`/www, readable by nginx's www-data worker; returns that root. */
function serveFiles(dir: string): string {
  const root = join(dir, 'www');
  mkdirSync(root);
  for (const [path, content] of files) writeFileSync(join(root, path), content, { mode: 0o644 });
  chmodSync(dir, 0o755);
  chmodSync(root, 0o755);
  return root;
}

/**
 * nginx 1.22 serving `root` over h2c (`listen ... http2`, prior knowledge) on `port`; its access
 * log (`dir`/access.log) has `protocol connection uri status bytes-sent` per request. Resolves
 * once it accepts.
 */
function startNginxH2c(dir: string, root: string, port: number): Promise<{ stop(): Promise<void> }> {
  return runNginx(
    dir,
    `log_format peers '$server_protocol $connection $request_uri $status $body_bytes_sent';
  server {
    listen 127.0.0.1:${port} http2;
    root ${root};
    access_log ${dir}/access.log peers;
  }`,
    [port],
  );
}

describe.each(drivers)('real HTTP/2 upstreams through loch on the %s driver', (driver) => {
  let dir: string;
  let loch: Loch;
  const peers: { stop(): Promise<void> }[] = [];
  /** loch's listener for each upstream. */
  const port = {} as Record<'nghttpdH2c' | 'nghttpdTls' | 'nginxH2c', number>;

  beforeAll(async () => {
    dir = tempDir('loch-h2-peers-');
    const root = serveFiles(dir);
    // up.pem and up.key in dir (for 127.0.0.1): nghttpd's certificate, loch's `ca` for it.
    selfSignedCertificate(dir, 'up');

    const nghttpdH2c = await freePort();
    const nghttpdTls = await freePort();
    const nginxH2c = await freePort();
    peers.push(child('nghttpd', ['--no-tls', '-d', root, String(nghttpdH2c)]));
    peers.push(child('nghttpd', ['-d', root, String(nghttpdTls), join(dir, 'up.key'), join(dir, 'up.pem')]));
    peers.push(await startNginxH2c(dir, root, nginxH2c));
    for (const p of [nghttpdH2c, nghttpdTls]) await waitConnectable({ port: p });

    for (const key of Object.keys({ nghttpdH2c, nghttpdTls, nginxH2c }) as (keyof typeof port)[])
      port[key] = await freePort();
    const server = (key: keyof typeof port, endpoint: string, tls = '') => `
[servers.${key}]
listener = { type = "socket", value = "127.0.0.1:${port[key]}" }
upstream_http_version = "http2"

[[servers.${key}.routes]]
path = "/"
upstreams = [{ endpoint = "${endpoint}"${tls} }]
`;
    loch = await startLoch(
      dir,
      `
[runtime]
workers = 1
${server('nghttpdH2c', `http://127.0.0.1:${nghttpdH2c}`)}
${server('nghttpdTls', `https://127.0.0.1:${nghttpdTls}`, ', tls = { ca = "up.pem" }')}
${server('nginxH2c', `http://127.0.0.1:${nginxH2c}`)}
`,
      { LOCH_DRIVER: driver },
    );
  });

  afterAll(async () => {
    await loch?.stop();
    for (const p of peers.splice(0)) await p.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const upstreams = [
    ['nghttpd over h2c', 'nghttpdH2c'],
    ['nghttpd over TLS (h2 by ALPN)', 'nghttpdTls'],
    ['nginx over h2c', 'nginxH2c'],
  ] as const;

  it.each(upstreams)(
    '%s: HTTP/1.1 clients get every size byte-exact, one by one and 30 at once',
    async (_name, key) => {
      for (const path of files.keys()) expectExact(path, await h1get(port[key], path));
      const paths = Array.from({ length: 30 }, (_, i) => [...files.keys()][i % files.size]!);
      const answers = await Promise.all(paths.map((p) => h1get(port[key], p)));
      for (const [i, a] of answers.entries()) expectExact(paths[i]!, a);
    },
  );

  it.each(upstreams)(
    '%s: an h2c client gets every size byte-exact over 30 concurrent streams',
    async (_name, key) => {
      const session = http2.connect(`http://127.0.0.1:${port[key]}`);
      session.on('error', () => {});
      try {
        const paths = Array.from({ length: 30 }, (_, i) => [...files.keys()][(i * 3) % files.size]!);
        const answers = await Promise.all(paths.map((p) => h2get(session, p)));
        for (const [i, a] of answers.entries()) expectExact(paths[i]!, a);
        // A missing file is the upstream's 404, relayed.
        expect((await h2get(session, '/missing.bin')).status).toBe(404);
      } finally {
        session.close();
      }
    },
  );

  it('nginx saw every request over HTTP/2, all on one connection (the shared upstream session)', () => {
    const lines = readFileSync(join(dir, 'access.log'), 'utf8').trim().split('\n');
    // Two tests' requests: 8 + 30 by HTTP/1.1 clients, 30 + 1 by the h2c client.
    expect(lines.length).toBe(files.size + 30 + 30 + 1);
    expect(new Set(lines.map((l) => l.split(' ')[0]))).toEqual(new Set(['HTTP/2.0']));
    expect(new Set(lines.map((l) => l.split(' ')[1])).size).toBe(1);
    const full = lines.filter((l) => l.endsWith(` 200 ${2_097_152}`));
    expect(full.length).toBeGreaterThan(0);
  });
});

describe.each(drivers)(
  'a shared HTTP/2 upstream session outlives clients that let go (%s driver)',
  (driver) => {
    let dir: string;
    let loch: Loch;
    let nginx: { stop(): Promise<void> } | undefined;
    let lochPort: number;

    beforeAll(async () => {
      dir = tempDir('loch-h2-letgo-');
      const nginxPort = await freePort();
      nginx = await startNginxH2c(dir, serveFiles(dir), nginxPort);
      lochPort = await freePort();
      loch = await startLoch(
        dir,
        `
[runtime]
workers = 1

[servers.h2]
listener = { type = "socket", value = "127.0.0.1:${lochPort}" }
upstream_http_version = "http2"

[[servers.h2.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${nginxPort}" }]
`,
        { LOCH_DRIVER: driver },
      );
    });

    afterAll(async () => {
      await loch?.stop();
      await nginx?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('40 streams reset after their upstream answers arrived whole (6.6 MB, over the 4 MiB connection window): the next request is answered', async () => {
      // The client's 16 KiB stream window holds loch's relay back, so each 165,854 B answer
      // arrives whole at loch's upstream session and waits there unread; the client resets each
      // stream once nginx logged its answer as sent whole. Unread bytes that were never given
      // back to the upstream connection's window would exhaust it after ~25 such streams: nginx
      // could not finish the others, and every later request on the shared session would hang.
      const log = join(dir, 'access.log');
      const sentWhole = (i: number): boolean => {
        try {
          return readFileSync(log, 'utf8').includes(`/f165854.bin?i=${i} 200 165854\n`);
        } catch {
          return false;
        }
      };
      const session = http2.connect(`http://127.0.0.1:${lochPort}`, {
        settings: { initialWindowSize: 16_384 },
      });
      session.on('error', () => {});
      try {
        const resets = Array.from(
          { length: 40 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const req = session.request({ ':path': `/f165854.bin?i=${i}`, ':authority': 'peers.test' });
              req.on('error', () => {});
              req.pause();
              req.on('response', () => {
                // Reset once nginx sent the whole answer (or after 5 s: it never will when the
                // window is spent).
                const since = Date.now();
                const poll = setInterval(() => {
                  if (!sentWhole(i) && Date.now() - since < 5_000) return;
                  clearInterval(poll);
                  req.close(http2.constants.NGHTTP2_CANCEL);
                  resolve();
                }, 20);
              });
              req.on('close', () => resolve());
              req.end();
            }),
        );
        await Promise.all(resets);
      } finally {
        session.close();
      }
      // Every answer went out whole: loch gave the window back as each unread body was let go.
      const whole = Array.from({ length: 40 }, (_, i) => i).filter(sentWhole);
      expect(whole.length).toBe(40);
      const fresh = http2.connect(`http://127.0.0.1:${lochPort}`);
      fresh.on('error', () => {});
      try {
        for (const path of ['/f128.bin', '/f165854.bin']) {
          const answer = await Promise.race([
            h2get(fresh, path),
            new Promise<never>((_, reject) =>
              setTimeout(
                () => reject(new Error(`${path}: no answer within 5 s (upstream session stalled)`)),
                5_000,
              ).unref(),
            ),
          ]);
          expectExact(path, answer);
        }
      } finally {
        fresh.close();
      }
    });
  },
);
