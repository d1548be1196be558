/**
 * The legacy Driver: the runtime's contracts on node:net, for machines where io_uring is
 * missing or denied (old kernels, seccomp, io_uring_disabled) and as the reference the io_uring
 * driver is tested against. Not for the public API: users reach it through createRuntime().
 */
import { createServer, isIPv6, connect as netConnect, type Server, type Socket } from 'node:net';
import type {
  Driver,
  TcpConnectOptions,
  TcpListenOptions,
  UnixConnectOptions,
  UnixListenOptions,
} from '../driver.js';
import type { RuntimeError } from '../errors.js';
import { BufferBudget, type BufferBudgetOptions, type BufferStats } from '../internal/buffer-budget.js';
import { removeStaleSocket } from '../internal/stale-socket.js';
import type { IoOptions, SocketAddress } from '../stream.js';
import { LegacyListener } from './listener.js';
import { cancelled, errnoError, toRuntimeError } from './node-errors.js';
import { nodeHasReusePort, openReusePortSocket } from './reuse-port.js';
import { LegacyStream, LegacyStreamSet, toSocketAddress } from './stream.js';

const DEFAULT_BACKLOG = 1024;
const MAX_TIMER_MS = 0x7fffffff;

function tcpAddress(host: string, port: number): SocketAddress {
  return { family: isIPv6(host) ? 'ipv6' : 'ipv4', address: host, port };
}

/** Waits for a server's 'listening' or its first 'error'. */
function listening(server: Server, address: SocketAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(toRuntimeError(error, 'bind', address));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
  });
}

/** The node:net Driver. One per JS thread, like every driver. */
export class LegacyDriver implements Driver {
  readonly name = 'legacy' as const;
  readonly #streams: LegacyStreamSet;
  readonly #listeners = new Set<LegacyListener>();
  readonly #timers = new Set<() => void>();
  #closed = false;

  constructor(options: LegacyDriverOptions = {}) {
    this.#streams = new LegacyStreamSet(new BufferBudget(options.buffers));
  }

  /** The receive budgets' numbers (the streams' queued bytes; no provided buffers here). */
  bufferStats(): BufferStats {
    return this.#streams.budget.stats();
  }

  /** Streams opened and chunks received so far (for the runtime's idle-trim policy). */
  activityCount(): number {
    return this.#streams.activity;
  }

  /** Open streams of this driver (accepted or connected, not yet closed). */
  get openStreams(): number {
    return this.#streams.size;
  }

  async listenTcp(options: TcpListenOptions): Promise<LegacyListener> {
    this.#assertOpen('bind');
    const { host, port } = options;
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    const ipv6Only = options.ipv6Only ?? false;
    const address = tcpAddress(host, port);
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    if (options.reusePort === true && !nodeHasReusePort) {
      // Node 20 cannot set SO_REUSEPORT: @loch/native makes the listening socket, Node adopts it.
      const fd = await openReusePortSocket({ host, port, backlog, ipv6Only, address });
      const ready = listening(server, address);
      server.listen({ fd, backlog });
      await ready;
    } else {
      const ready = listening(server, address);
      server.listen({
        host,
        port,
        backlog,
        ipv6Only,
        exclusive: true,
        reusePort: options.reusePort === true,
      });
      await ready;
    }
    const bound = server.address();
    const local =
      bound !== null && typeof bound === 'object'
        ? toSocketAddress(bound.address, bound.family, bound.port)
        : address;
    return new LegacyListener(server, local, this.#streams, this.#listeners, backlog);
  }

  async listenUnix(options: UnixListenOptions): Promise<LegacyListener> {
    this.#assertOpen('bind');
    const address: SocketAddress = { family: 'unix', path: options.path };
    if (options.removeStale === true) await removeStaleSocket(options.path);
    const server = createServer({ allowHalfOpen: true });
    const ready = listening(server, address);
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    server.listen({ path: options.path, backlog, exclusive: true });
    await ready;
    return new LegacyListener(server, address, this.#streams, this.#listeners, backlog);
  }

  connectTcp(options: TcpConnectOptions): Promise<LegacyStream> {
    const address = tcpAddress(options.host, options.port);
    return this.#connect(
      () =>
        netConnect({
          host: options.host,
          port: options.port,
          allowHalfOpen: true,
          noDelay: options.noDelay ?? true,
        }),
      address,
      options,
      undefined,
    );
  }

  connectUnix(options: UnixConnectOptions): Promise<LegacyStream> {
    const address: SocketAddress = { family: 'unix', path: options.path };
    return this.#connect(() => netConnect({ path: options.path, allowHalfOpen: true }), address, options, {
      local: '',
      remote: options.path,
    });
  }

  #connect(
    open: () => Socket,
    address: SocketAddress,
    options: IoOptions & { readonly timeout?: number | undefined },
    unixPath: { local: string; remote: string } | undefined,
  ): Promise<LegacyStream> {
    this.#assertOpen('connect');
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(cancelled('connect', address));
    return new Promise<LegacyStream>((resolve, reject) => {
      const socket = open();
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        socket.off('connect', onConnect);
      };
      const fail = (error: RuntimeError) => {
        finish();
        socket.destroy();
        reject(error);
      };
      const onError = (error: Error) => {
        const raw = error as Error & { address?: string; port?: number };
        const where =
          unixPath === undefined && typeof raw.address === 'string' && typeof raw.port === 'number'
            ? tcpAddress(raw.address, raw.port)
            : address;
        fail(toRuntimeError(error, 'connect', where));
      };
      const onAbort = () => fail(cancelled('connect', address));
      const onConnect = () => {
        finish();
        resolve(new LegacyStream(socket, this.#streams, unixPath));
      };
      socket.once('error', onError);
      socket.once('connect', onConnect);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeout !== undefined && options.timeout > 0) {
        timer = setTimeout(
          () => fail(errnoError('ETIMEDOUT', 'connect', address)),
          Math.min(options.timeout, MAX_TIMER_MS),
        );
      }
    });
  }

  sleep(ms: number, options?: IoOptions): Promise<void> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(cancelled('sleep'));
    return new Promise<void>((resolve, reject) => {
      const cancel = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#timers.delete(cancel);
        reject(cancelled('sleep'));
      };
      const onAbort = cancel;
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          this.#timers.delete(cancel);
          resolve();
        },
        Math.max(0, Math.min(ms, MAX_TIMER_MS)),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.add(cancel);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const cancel of [...this.#timers]) cancel();
    await Promise.all([...this.#listeners].map((listener) => listener.close()));
    await Promise.all([...this.#streams].map((stream) => stream.close()));
  }

  #assertOpen(syscall: string): void {
    if (this.#closed) throw errnoError('EBADF', syscall);
  }
}

/** Options of the node:net driver. */
export interface LegacyDriverOptions {
  /** Receive budgets (internal/buffer-budget.ts): the streams pause at them. */
  readonly buffers?: BufferBudgetOptions | undefined;
}

/** Creates the node:net driver for the calling thread. */
export function createLegacyDriver(options: LegacyDriverOptions = {}): LegacyDriver {
  return new LegacyDriver(options);
}
