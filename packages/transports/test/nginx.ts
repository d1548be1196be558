/**
 * Starts nginx as a child of the test (`nginx -p <tmpdir> -c <conf> -g 'daemon off;'`) with
 * every path (pid, logs, temp dirs) in a temporary directory and a free port (freePort). Not a
 * test itself; also used by the benchmark.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort as freePortIn } from '../../http/test/free-port.js';

/** A running nginx. */
export interface Nginx {
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * A port nobody listens on right now, for nginx: below the ephemeral range, in this package's
 * band of packages/http/test/free-port.ts (which says why).
 */
export function freePort(): Promise<number> {
  return freePortIn('packages/transports');
}

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
