/**
 * StreamListener on the io_uring ring: one multishot accept per listener, armed while someone
 * accepts and kept armed while connections flow; accepted descriptors queue up to
 * ACCEPT_HIGH_WATER with no acceptor, then the multishot is cancelled and the kernel's backlog
 * holds the rest. Not for socket creation (native listenTcp/listenUnix, called by driver.ts).
 */
import { unlink } from 'node:fs/promises';
import { constants } from 'node:os';
import { RuntimeError } from '../errors.js';
import type { IoOptions, SocketAddress, StreamListener } from '../stream.js';
import { CQE_F_MORE, OP_ACCEPT_MULTI, OP_CLOSE } from './records.js';
import { type CompletionFn, type CompletionTarget, TARGET_LISTENER } from './ring.js';
import { cancelledError, type StreamHost, UringStream } from './stream.js';

const { ECANCELED, ECONNABORTED } = constants.errno;
const ACCEPT_HIGH_WATER = 64;

interface AcceptWaiter {
  resolve(stream: UringStream): void;
  reject(error: RuntimeError): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * The local address every connection accepted by a listener bound to `bound` has: the same
 * object for all of them (one fewer getsockname and address object per connection), or
 * undefined for a wildcard bind (0.0.0.0, ::), where it depends on the interface reached.
 */
function sharedLocalAddress(bound: SocketAddress): SocketAddress | undefined {
  if (bound.family === 'unix') return bound;
  if (bound.address === '0.0.0.0' || bound.address === '::' || bound.port === 0) return undefined;
  return bound;
}

/** Completion target that ignores the result (closing descriptors nobody will use). */
const IGNORE: CompletionTarget = { onCompletion: () => undefined };

/** A TCP or Unix listener served by the ring. */
export class UringListener implements StreamListener<UringStream>, CompletionTarget {
  readonly driver = 'uring' as const;
  private armedSlot = -1;
  private cancelRequested = false;
  private readonly ready: number[] = [];
  private readonly waiters: AcceptWaiter[] = [];
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private finishClose: (() => void) | undefined;
  /** Local address of every accepted stream, when it is the listener's own (see sharedLocalAddress). */
  private readonly streamLocal: SocketAddress | undefined;

  constructor(
    private readonly host: StreamHost,
    readonly fd: number,
    readonly kind: 'tcp' | 'unix',
    readonly localAddress: SocketAddress,
    private readonly listeners: Set<UringListener>,
  ) {
    listeners.add(this);
    this.streamLocal = sharedLocalAddress(localAddress);
  }

  accept(options?: IoOptions): Promise<UringStream> {
    if (this.closing) return Promise.reject(cancelledError('accept', this.localAddress));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(cancelledError('accept', this.localAddress));
    const fd = this.ready.shift();
    if (fd !== undefined) return Promise.resolve(this.wrap(fd));
    return new Promise<UringStream>((resolve, reject) => {
      const waiter: AcceptWaiter = { resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          reject(cancelledError('accept', this.localAddress));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.arm();
    });
  }

  close(): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => {
      this.finishClose = resolve;
    });
    for (const w of this.waiters.splice(0)) {
      if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(cancelledError('accept', this.localAddress));
    }
    for (const fd of this.ready.splice(0)) this.closeQuietly(fd);
    if (this.armedSlot >= 0) this.host.ring.cancel(this.armedSlot);
    else this.closeSocket();
    return this.closePromise;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<UringStream> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (error) {
        if (this.closing && error instanceof RuntimeError && error.errno === ECANCELED) return;
        throw error;
      }
    }
  }

  /** Multishot accept completions. */
  onCompletion(res: number, flags: number, slot: number): void {
    const more = (flags & CQE_F_MORE) !== 0;
    if (!more) {
      this.armedSlot = -1;
      this.cancelRequested = false;
    }
    if (res >= 0) {
      if (this.closing) this.closeQuietly(res);
      else {
        const w = this.waiters.shift();
        if (w !== undefined) {
          if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
          w.resolve(this.wrap(res));
        } else {
          this.ready.push(res);
          if (more && this.ready.length >= ACCEPT_HIGH_WATER && !this.cancelRequested) {
            this.cancelRequested = true;
            this.host.ring.cancel(slot);
          }
        }
      }
    } else if (res !== -ECANCELED && res !== -ECONNABORTED && !this.closing) {
      // EMFILE, ENFILE, ENOMEM...: the next acceptor hears about it; the listener stays usable.
      const w = this.waiters.shift();
      if (w !== undefined) {
        if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
        w.reject(RuntimeError.fromErrno(res, 'accept', this.localAddress));
      }
    }
    if (!more) {
      if (this.closing) this.closeSocket();
      else if (this.waiters.length > 0) this.arm();
    }
  }

  private arm(): void {
    if (this.armedSlot >= 0 || this.closing) return;
    this.armedSlot = this.host.ring.alloc(this, TARGET_LISTENER);
    this.host.ring.push(OP_ACCEPT_MULTI, this.fd, this.armedSlot, 0, undefined, 0);
  }

  private wrap(fd: number): UringStream {
    const stream = new UringStream(this.host, fd, this.kind, undefined, this.streamLocal);
    // No setsockopt here: native listenTcp set TCP_NODELAY on the listener, and an accepted
    // socket inherits it (one syscall fewer per connection; no-delay.test.ts checks the kernel's).
    if (this.kind === 'tcp') stream.markNoDelay();
    return stream;
  }

  private closeQuietly(fd: number): void {
    const ring = this.host.ring;
    ring.push(OP_CLOSE, fd, ring.alloc(IGNORE), 0, undefined, 0);
  }

  private closeSocket(): void {
    const done = this.finishClose;
    if (done === undefined) return;
    this.finishClose = undefined;
    this.listeners.delete(this);
    const ring = this.host.ring;
    const path = this.localAddress.family === 'unix' ? this.localAddress.path : undefined;
    const target: CompletionTarget = {
      onCompletion: () => {
        // Like libuv, a Unix listener removes its socket file when it closes.
        if (path === undefined) done();
        else unlink(path).then(done, done);
      },
    };
    ring.push(OP_CLOSE, this.fd, ring.alloc(target), 0, undefined, 0);
  }
}

const listenerOnCompletion = UringListener.prototype.onCompletion;
/** The ring's completion function of a listener's accept (RingOptions.completions, TARGET_LISTENER). */
export const listenerCompletion: CompletionFn = (target, res, flags, slot) =>
  listenerOnCompletion.call(target as UringListener, res, flags, slot);
