/**
 * Test support for the transport suites: the runtime drivers this machine offers (as the
 * runtime's conformance suite), open-descriptor counting, and small real peers (node:http,
 * raw node:net servers that misbehave on purpose), stream doubles (promise operations only, a
 * write failure on demand). Not a test itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { HttpStream } from '@loch/http';
import type { Connector } from '@loch/transports';
import { createRuntime, type DriverName, RuntimeError } from '@loch/uring-runtime';

/** A driver under test and why it is skipped (undefined when it runs). */
export interface DriverCase {
  readonly name: DriverName;
  readonly skip: string | undefined;
}

/** Every driver, probed once; unavailable ones carry the reason. */
export async function driverCases(): Promise<DriverCase[]> {
  const cases: DriverCase[] = [];
  for (const name of ['legacy', 'uring'] as const) {
    let skip: string | undefined;
    try {
      const runtime = await createRuntime({ driver: name, log: () => undefined });
      await runtime.close();
    } catch (error) {
      skip = error instanceof Error ? error.message : String(error);
      console.warn(`transports: skipping the ${name} driver: ${skip}`);
    }
    cases.push({ name, skip });
  }
  return cases;
}

/** Open descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Polls `check` until it returns true or `ms` pass (for asynchronous closes); returns the last value. */
export async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) {
      // Timers run before the poll phase: after a stall longer than `ms` (a loaded CI machine),
      // the completions of that stall are still undelivered here. Let them in, then decide.
      await new Promise((r) => setImmediate(r));
      return check();
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until the descriptor count is back to `baseline` (bounded); returns the final count. */
export async function fdsBackTo(baseline: number): Promise<number> {
  await eventually(() => fdCount() <= baseline);
  return fdCount();
}

/** A node:http server on 127.0.0.1 (or a Unix path) that tracks its sockets. */
export class HttpPeer {
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  /** Remote ports of every connection accepted, in order. */
  readonly connections: Socket[] = [];

  constructor(handler: (req: IncomingMessage, res: ServerResponse) => void) {
    this.server = createHttpServer(handler);
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      this.connections.push(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(path?: string): Promise<this> {
    await new Promise<void>((resolve) =>
      path === undefined ? this.server.listen(0, '127.0.0.1', resolve) : this.server.listen(path, resolve),
    );
    return this;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A raw TCP server whose behaviour per connection is scripted. */
export class RawPeer {
  readonly server: NetServer;
  readonly sockets = new Set<Socket>();
  accepted = 0;

  constructor(onConnection: (socket: Socket, index: number) => void) {
    this.server = createNetServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
      onConnection(s, this.accepted++);
      // Read (and drop) whatever the script does not consume, so the peer sees our close.
      s.resume();
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Calls `onRequest` for every complete request head read from `socket` (no bodies). */
export function onRequestHeads(socket: Socket, onRequest: (head: string, n: number) => void): void {
  let buf = '';
  let n = 0;
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
      const head = buf.slice(0, i);
      buf = buf.slice(i + 4);
      onRequest(head, n++);
    }
  });
}

/**
 * A listener that never accepts, with a full backlog (python3: listen(0) and no accept), so a
 * connect to it can only end by its deadline. Returns the port and a stop function.
 */
export async function blackholeListener(): Promise<{ port: number; stop: () => void }> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString())));
  });
  return { port, stop: () => void child.kill() };
}

/**
 * The streams of `l4`, whose next writeTo fails with EPIPE (without writing) while
 * `failWrites.next` is set (it is cleared by the failure): a write failure on demand.
 */
export function failingWriteStreams<K>(
  l4: Connector<K, HttpStream>,
  failWrites: { next: boolean },
): Connector<K, HttpStream> {
  return {
    async connect(key, options) {
      const inner = await l4.connect(key, options);
      const writeTo = inner.writeTo.bind(inner);
      inner.writeTo = (data, target) => {
        if (!failWrites.next) return writeTo(data, target);
        failWrites.next = false;
        queueMicrotask(() => target.onWritten(new RuntimeError('EPIPE', 'write', { errno: 32 })));
      };
      return inner;
    },
  };
}

/** A CA and a server certificate for localhost / 127.0.0.1 signed by it, made with the openssl CLI in `dir`. */
export function pki(dir: string): { caFile: string; cert: string; key: string } {
  const run = (args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=loch test CA',
  ]);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  return {
    caFile: join(dir, 'ca.pem'),
    cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
  };
}
