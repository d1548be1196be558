/**
 * Starts nginx as a child of the test (`nginx -p <tmpdir> -c <conf> -g 'daemon off;'`) with
 * every path (pid, logs, temp dirs) in a temporary directory and a free port (freePort). Not a
 * test itself; also used by the benchmark.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running nginx. */
export interface Nginx {
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * A port nobody listens on right now, taken below the kernel's ephemeral range (as apps/proxy's
 * e2e harness does): a port from listen(0) is ephemeral, and before nginx binds it any outgoing
 * connection on the machine may take it as its source port (EADDRINUSE in CI). Only this vitest
 * worker's slice of that range is probed (OWN_SLICE), so no other worker of the run, in this
 * package or in apps/proxy, can take the same port between the probe and nginx's bind.
 */
export async function freePort(): Promise<number> {
  const [low, high] = OWN_SLICE;
  const offset = Math.floor(Math.random() * (high - low));
  for (let i = 0; i < high - low; i++) {
    const port = low + ((offset + i) % (high - low));
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${low}..${high - 1}, this vitest worker's slice`);
}

/** Ports freePort() returned in this process. */
const handedOut = new Set<number>();

/**
 * Port bands of the helpers that pick ports below the ephemeral range, one per helper because
 * turbo runs every package's vitest at once and each numbers its workers from 1: apps/proxy's
 * test/e2e/harness.ts has band 0 (its portSlice() is this one; port-slices.test.ts checks it),
 * this file band 1. A new helper takes the next band and raises PORT_BANDS in both.
 */
const PORT_BAND = 1;
const PORT_BANDS = 2;
/** vitest workers one run may have at once (VITEST_POOL_ID is 1..maxWorkers); each gets a slice. */
const MAX_POOL_ID = 64;
/**
 * The lowest port any band holds: above 10080, the highest port fetch() (undici) refuses to
 * connect to ("bad port", the Fetch standard's port blocking), which a test's fetch would fail on.
 */
const PORT_FLOOR = 10_100;

/** The first port of net.ipv4.ip_local_port_range (32768 unless the machine says otherwise). */
const EPHEMERAL_FLOOR = ((): number => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > PORT_FLOOR + 10_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
})();

/**
 * This worker's ports [low, high): PORT_FLOOR..EPHEMERAL_FLOOR cut into PORT_BANDS * MAX_POOL_ID
 * equal slices, one per (band, pool id); pool id 1 outside vitest (a script runs alone).
 */
const OWN_SLICE = ((): [low: number, high: number] => {
  const poolId = Number(process.env.VITEST_POOL_ID ?? 1);
  if (!Number.isInteger(poolId) || poolId < 1 || poolId > MAX_POOL_ID) {
    throw new Error(
      `VITEST_POOL_ID ${poolId} outside 1..${MAX_POOL_ID}: run with --maxWorkers=${MAX_POOL_ID} at most`,
    );
  }
  const width = Math.floor((EPHEMERAL_FLOOR - PORT_FLOOR) / (PORT_BANDS * MAX_POOL_ID));
  const low = PORT_FLOOR + (PORT_BAND * MAX_POOL_ID + poolId - 1) * width;
  return [low, low + width];
})();

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts nginx serving `/hello` (a short text), `/close` (Connection: close) and static files
 * `/128.txt` and `/100k.bin`, with the given keepalive settings.
 */
export async function startNginx(
  options: { keepaliveTimeout?: string; keepaliveRequests?: number; workers?: number } = {},
): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'loch-nginx-'));
  // Workers run as an unprivileged user when nginx starts as root: they must be able to read html/.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'html'));
  mkdirSync(join(dir, 'logs'));
  writeFileSync(join(dir, 'html', '128.txt'), `${'x'.repeat(127)}\n`);
  writeFileSync(join(dir, 'html', '100k.bin'), Buffer.alloc(100 * 1024, 97));
  const port = await freePort();
  const conf = `
worker_processes ${options.workers ?? 1};
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout ${options.keepaliveTimeout ?? '60s'};
  keepalive_requests ${options.keepaliveRequests ?? 100000};
  server {
    listen 127.0.0.1:${port};
    root ${dir}/html;
    location = /hello { default_type text/plain; return 200 "hello"; }
    location = /close { keepalive_timeout 0; default_type text/plain; return 200 "closing"; }
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(
    'nginx',
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs', 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await accepting(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    dir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
