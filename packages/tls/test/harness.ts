/**
 * Test support for the TLS suites: the runtime drivers this machine offers, a Loch TLS server on
 * a runtime (accepts, handshakes, hands each TlsStream to a handler and records every outcome),
 * node:tls peers, and byte helpers. Not a test itself.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { type ConnectionOptions, connect as nodeConnect, type TLSSocket } from 'node:tls';
import { type TlsAcceptOptions, TlsServerContext, type TlsStream, tlsAccept } from '@loch/tls';
import { createRuntime, type DriverName, type Runtime, TcpListener } from '@loch/uring-runtime';
import { it } from 'vitest';
import type { RuntimeScope } from '../../uring-runtime/test/runtime-scope.js';
import type { TestPki } from './certs.js';

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
      console.warn(`tls: skipping the ${name} driver: ${skip}`);
    }
    cases.push({ name, skip });
  }
  return cases;
}

/** `it` where the uring driver serves on this machine, `it.skip` elsewhere: for io_uring-only suites. */
export async function uringTest(): Promise<typeof it | typeof it.skip> {
  const uring = (await driverCases()).find((d) => d.name === 'uring')!;
  return uring.skip === undefined ? it : it.skip;
}

/** Open descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Polls `check` until it returns true or `ms` pass. */
export async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The outcome of one accepted connection: the handshake's stream, or its error. */
export type Outcome = { readonly stream: TlsStream } | { readonly error: unknown };

/** A Loch TLS server on 127.0.0.1 that hands each handshaken stream to `handler`. */
export class LochTlsServer {
  readonly outcomes: Outcome[] = [];
  #waiters: ((o: Outcome) => void)[] = [];
  #next = 0;
  #listener: TcpListener | undefined;
  readonly #tasks: Promise<void>[] = [];

  constructor(
    readonly runtime: Runtime,
    readonly context: TlsServerContext,
    readonly handler: (stream: TlsStream) => Promise<void>,
    readonly options: TlsAcceptOptions = {},
  ) {}

  get port(): number {
    const a = this.#listener!.localAddress;
    return a.family === 'unix' ? 0 : a.port;
  }

  async listen(): Promise<this> {
    this.#listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: this.runtime });
    void this.#acceptLoop();
    return this;
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let raw: Awaited<ReturnType<TcpListener['accept']>>;
      try {
        raw = await this.#listener!.accept();
      } catch {
        return;
      }
      this.#tasks.push(this.#serve(raw));
    }
  }

  async #serve(raw: Awaited<ReturnType<TcpListener['accept']>>): Promise<void> {
    let outcome: Outcome;
    let stream: TlsStream | undefined;
    try {
      stream = await tlsAccept(raw, this.context, this.options);
      outcome = { stream };
    } catch (error) {
      outcome = { error };
    }
    this.#record(outcome);
    if (stream === undefined) return;
    try {
      await this.handler(stream);
    } catch {
      // the client's side of each test says what went wrong
    } finally {
      await stream.close();
    }
  }

  #record(outcome: Outcome): void {
    this.outcomes.push(outcome);
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      this.#next++;
      waiter(outcome);
    }
  }

  /** The next connection's outcome, in accept order. */
  next(): Promise<Outcome> {
    if (this.#next < this.outcomes.length) return Promise.resolve(this.outcomes[this.#next++]!);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The next connection's error (fails when it handshook). */
  async nextError(): Promise<unknown> {
    const o = await this.next();
    if ('stream' in o) throw new Error('the handshake succeeded');
    return o.error;
  }

  async close(): Promise<void> {
    await this.#listener?.close();
    await Promise.allSettled(this.#tasks);
  }
}

/**
 * The in-ring TLS tests' server: a LochTlsServer for `localhost` (ALPN http/1.1 unless given) on
 * a uring runtime that `scope` owns, closed after the test (the runtime last).
 */
export async function ringServer(
  scope: RuntimeScope,
  pki: TestPki,
  handler: (stream: TlsStream) => Promise<void>,
  options: { uring?: Record<string, unknown>; alpn?: string[]; ring?: boolean } = {},
): Promise<LochTlsServer> {
  const runtime = scope.use(
    await createRuntime({ driver: 'uring', log: () => undefined, uring: options.uring ?? {} }),
  );
  const context = new TlsServerContext({
    certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    alpn: options.alpn ?? ['http/1.1'],
  });
  const server = await new LochTlsServer(runtime, context, handler, {
    ...(options.ring === undefined ? {} : { ring: options.ring }),
  }).listen();
  scope.defer(() => server.close());
  return server;
}

/** A node:tls client of `server` that trusts the test CA, destroyed after the test. */
export async function ringClient(
  scope: RuntimeScope,
  pki: TestPki,
  server: LochTlsServer,
): Promise<TLSSocket> {
  const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
  scope.defer(() => socket.destroy());
  return socket;
}

/** Echoes every chunk back until end of stream. */
export async function echo(stream: TlsStream): Promise<void> {
  for (;;) {
    const chunk = await stream.recv();
    if (chunk === null) break;
    const copy = chunk.bytes.slice();
    chunk.release();
    await stream.writeAll(copy);
  }
  await stream.shutdown();
}

/** A node:tls client connected (handshake done) to 127.0.0.1:port. */
export async function nodeClient(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  const socket = nodeConnect({ host: '127.0.0.1', port, ...options });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

/** The error a node:tls client gets (or 'closed' when the socket just closed). */
export async function nodeClientFailure(port: number, options: ConnectionOptions): Promise<Error | 'closed'> {
  const socket = nodeConnect({ host: '127.0.0.1', port, ...options });
  return new Promise((resolve) => {
    socket.once('error', (e) => resolve(e));
    socket.once('secureConnect', () => {
      // TLS 1.3: a refusal may come after the handshake, as the first read.
      socket.once('data', () => resolve(new Error('unexpected data')));
      socket.once('end', () => resolve('closed'));
    });
    socket.once('close', () => resolve('closed'));
  });
}

/** Writes `data` to a node socket, half-closes, and reads everything back. */
export async function roundTrip(socket: TLSSocket, data: Uint8Array): Promise<Buffer> {
  const parts: Buffer[] = [];
  socket.on('data', (b: Buffer) => parts.push(b));
  const ended = once(socket, 'end');
  socket.end(data);
  await ended;
  return Buffer.concat(parts);
}

/** `n` random bytes. */
export function bytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** Reads a TlsStream to its end, concatenated. */
export async function readAll(stream: TlsStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of stream) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

/** Reads `stream` to its end (the peer's close_notify) and closes it. */
export async function drain(stream: TlsStream): Promise<void> {
  for (;;) {
    const chunk = await stream.recv();
    if (chunk === null) break;
    chunk.release();
  }
  await stream.close();
}
