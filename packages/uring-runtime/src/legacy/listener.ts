/**
 * StreamListener on a listening node:net Server, for the legacy driver. Node accepts on its own
 * as connections arrive; each accepted socket is wrapped at once (so an early reset is observed,
 * never an uncaught 'error') and queued until accept() takes it. Not for binding: driver.ts
 * creates the Server (plain, or SO_REUSEPORT through reuse-port.ts).
 *
 * Node cannot stop accepting (a listening libuv handle has no read stop, and closing it drops
 * the kernel's backlog), so while nobody accepts (a server paused at its connection limit) the
 * queue would take a descriptor per arriving connection up to the process's fd limit. The queue
 * stands in for the kernel's backlog instead: it keeps at most the listen backlog (default 1024)
 * and closes connections beyond that as they arrive (the client sees the connection closed, as
 * when a kernel backlog overflows; on io_uring the listener keeps 64 and the kernel's backlog
 * the rest). `droppedAccepts` counts them.
 */
import type { Server, Socket } from 'node:net';
import type { RuntimeError } from '../errors.js';
import type { IoOptions, SocketAddress, StreamListener } from '../stream.js';
import { cancelled, closedError, toRuntimeError } from './node-errors.js';
import { LegacyStream, type StreamRegistry } from './stream.js';

interface AcceptWaiter {
  resolve(stream: LegacyStream): void;
  reject(error: RuntimeError): void;
}

/** Registry the driver uses to close every listener on driver.close(). */
export interface ListenerRegistry {
  add(listener: LegacyListener): void;
  delete(listener: LegacyListener): void;
}

/** A listening node:net Server behind the StreamListener contract. */
export class LegacyListener implements StreamListener<LegacyStream> {
  readonly driver = 'legacy' as const;
  readonly localAddress: SocketAddress;
  readonly #server: Server;
  readonly #listeners: ListenerRegistry;
  readonly #ready: LegacyStream[] = [];
  #waiters: AcceptWaiter[] = [];
  #closePromise: Promise<void> | undefined;
  /** Connections closed on arrival because ACCEPT_HIGH_WATER were already waiting. */
  droppedAccepts = 0;

  constructor(
    server: Server,
    localAddress: SocketAddress,
    streams: StreamRegistry,
    listeners: ListenerRegistry,
    /** Accepted connections queued with no acceptor at most; more are closed at once (above). */
    private readonly maxQueued: number,
  ) {
    this.#server = server;
    this.localAddress = localAddress;
    this.#listeners = listeners;
    const unixPath = localAddress.family === 'unix' ? { local: localAddress.path, remote: '' } : undefined;
    server.on('connection', (socket: Socket) => {
      if (this.#ready.length >= this.maxQueued) {
        this.droppedAccepts++;
        socket.on('error', () => undefined);
        socket.destroy();
        return;
      }
      const stream = new LegacyStream(socket, streams, unixPath);
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter.resolve(stream);
      else this.#ready.push(stream);
    });
    // After listen() succeeded, errors are accept failures (EMFILE, ENFILE...): the next
    // acceptor learns about them; the server keeps listening.
    server.on('error', (error) => {
      const waiter = this.#waiters.shift();
      waiter?.reject(toRuntimeError(error, 'accept', this.localAddress));
    });
    listeners.add(this);
  }

  accept(options?: IoOptions): Promise<LegacyStream> {
    if (this.#closePromise !== undefined) return Promise.reject(closedError('accept', this.localAddress));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(cancelled('accept', this.localAddress));
    const ready = this.#ready.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise<LegacyStream>((resolve, reject) => {
      const waiter: AcceptWaiter = { resolve, reject };
      if (signal !== undefined) {
        const onAbort = () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(cancelled('accept', this.localAddress));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.resolve = (stream) => {
          signal.removeEventListener('abort', onAbort);
          resolve(stream);
        };
        waiter.reject = (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        };
      }
      this.#waiters.push(waiter);
    });
  }

  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(cancelled('accept', this.localAddress));
    // Accepted but never taken: nobody owns them, so they go.
    for (const stream of this.#ready.splice(0)) void stream.close();
    this.#listeners.delete(this);
    // server.close() waits for open connections; streams already handed out stay open and are
    // owned by their acceptor, so settle once the listening socket itself is closed.
    this.#closePromise = new Promise<void>((resolve) => {
      this.#server.close();
      this.#server.unref();
      setImmediate(resolve);
    });
    return this.#closePromise;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LegacyStream, void, undefined> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (error) {
        if ((error as RuntimeError).code === 'ECANCELED' || (error as RuntimeError).code === 'EBADF') return;
        throw error;
      }
    }
  }
}
