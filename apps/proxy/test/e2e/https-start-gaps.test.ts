/**
 * `pnpm start` answers HTTPS out of the box, on every runtime driver (issue 13's audit): the
 * root's `pnpm start` is run as a user runs it (pnpm, the root script, @loch/proxy's `start`:
 * src/demo.ts on config/default.toml), and `curl -k https://localhost:8443/` and
 * `curl http://localhost:8080/` are answered by the demo upstream through loch; the certificate
 * presented is the one made at start in config/.demo-tls/ (and verifies for localhost against
 * itself); Ctrl-C (SIGINT to the process group) stops it (loch drains and logs "stopped"). The
 * ports are the default config's own (8080, 8443, the demo upstream's 18081): a test that moved
 * them would test another config. If something else holds them for 45 s (a `pnpm start` of your
 * own), the test says so instead of starting.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { availableDrivers, curl, PROXY_DIR } from './harness.js';

const drivers = availableDrivers();
const ROOT = join(PROXY_DIR, '../..');
const PORTS = [8080, 8443, 18081];
/** How long the test waits for the default config's ports to free before it says who holds them. */
const PORTS_WAIT_MS = 45_000;
const CERT = join(PROXY_DIR, 'config/.demo-tls/localhost.pem');

/** Whether something accepts on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * The default config's ports something holds, after waiting up to PORTS_WAIT_MS for them to free:
 * another suite on this machine (a second checkout's apps/proxy tests) runs this same test on the
 * same ports for a few seconds; a `pnpm start` of the user's own holds them for good.
 */
async function busyPorts(): Promise<number[]> {
  const deadline = Date.now() + PORTS_WAIT_MS;
  for (;;) {
    const busy = [];
    for (const port of PORTS) if (await listening(port)) busy.push(port);
    if (busy.length === 0 || Date.now() >= deadline) return busy;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The SHA-256 fingerprint of the certificate on 127.0.0.1:8443 for SNI localhost. */
function presented(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: 8443,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    s.once('secureConnect', () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

/** `pnpm start` from the repository root, in its own process group; stderr collected. */
function pnpmStart(driver: string): { child: ChildProcess; stderr: () => string; exited: Promise<void> } {
  const child = spawn('pnpm', ['start'], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, LOCH_DRIVER: driver },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  // 'close': every holder of the stderr pipe (pnpm, sh, node) is gone, not only pnpm.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { child, stderr: () => err, exited };
}

describe.each(drivers)('pnpm start on the %s driver', (driver) => {
  it('answers curl -k https://localhost:8443/ and curl http://localhost:8080/', async () => {
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    expect(root.scripts.start).toBe('pnpm --filter @loch/proxy start');
    const busy = await busyPorts();
    expect(busy, `ports of the default config in use (a pnpm start running?): ${busy.join(', ')}`).toEqual(
      [],
    );
    const run = pnpmStart(driver);
    try {
      const deadline = Date.now() + 90_000;
      while (!/info started \d+ worker/.test(run.stderr()) && Date.now() < deadline) {
        if (run.child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(run.stderr()).toMatch(/info started 2 worker\(s\), driver (uring|legacy)/);
      expect(run.stderr()).toContain(`driver ${driver}`);
      const secure = await curl(['-k', 'https://localhost:8443/']);
      expect(secure.err).toBe('');
      // curl picks h2 by ALPN over TLS.
      expect(secure.out).toMatch(
        /^hello from the demo upstream: GET \/\nvia: 2 loch, x-forwarded-for: 127\.0\.0\.1\n$/,
      );
      const plain = await curl(['http://localhost:8080/']);
      expect(plain.out).toMatch(
        /^hello from the demo upstream: GET \/\nvia: 1\.1 loch, x-forwarded-for: 127\.0\.0\.1\n$/,
      );
      // The certificate made at start, and it verifies for localhost against itself.
      expect(await presented()).toBe(new X509Certificate(readFileSync(CERT)).fingerprint256);
      const verified = await curl(['--cacert', CERT, 'https://localhost:8443/verified']);
      expect(verified.out).toMatch(/^hello from the demo upstream: GET \/verified\n/);
    } finally {
      // Ctrl-C: the whole group (pnpm, sh, node) gets SIGINT; SIGKILL if it has not gone in 30 s.
      if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGINT');
      const killer = setTimeout(() => process.kill(-run.child.pid!, 'SIGKILL'), 30_000);
      await run.exited;
      clearTimeout(killer);
    }
    // loch drained and stopped (pnpm itself dies of the SIGINT, as in a terminal).
    expect(run.stderr()).toMatch(/info SIGINT: stopping/);
    expect(run.stderr()).toMatch(/info stopped\n/);
    for (const port of PORTS) expect(await listening(port)).toBe(false);
  }, 200_000);
});
