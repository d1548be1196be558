/**
 * StreamListener on the io_uring ring: one multishot accept per listener, armed while someone
 * accepts and kept armed while connections flow; accepted descriptors queue up to
 * ACCEPT_HIGH_WATER with no acceptor, then the multishot is cancelled and the kernel's backlog
 * holds the rest. With the ring's direct descriptor table (RingOptions.directFiles), a TCP
 * listener accepts into it instead: DIRECT_ACCEPTS one-shot accepts armed at once, each with a
 * sockaddr buffer the peer's address lands in (a slot has no getpeername), re-armed from their
 * completions, and none armed past the thread's maxConnections. Not for socket creation (native
 * listenTcp/listenUnix, called by driver.ts).
 */
import { unlink } from 'node:fs/promises';
import { constants } from 'node:os';
import { RuntimeError } from '../errors.js';
import { ipv4Text, ipv6Text } from '../ip-text.js';
import type { IoOptions, SocketAddress, StreamListener } from '../stream.js';
import { CQE_F_MORE, FIXED_FILE_OP, OP_ACCEPT_DIRECT, OP_ACCEPT_MULTI, OP_CLOSE } from './records.js';
import { type CompletionFn, type CompletionTarget, TARGET_LISTENER } from './ring.js';
import { cancelledError, type StreamHost, toSocketAddress, UringStream } from './stream.js';

const { ECANCELED, ECONNABORTED } = constants.errno;
const ACCEPT_HIGH_WATER = 64;
/**
 * One-shot direct accepts armed at once per listener (the page's K): a burst of connections is
 * taken this many per completion batch, as a multishot would, while each accept still brings
 * its own peer address.
 */
const DIRECT_ACCEPTS = 8;
/** Bytes of a direct accept's address buffer: a sockaddr_in6 (28), then its length (4; native writes it there). */
const SOCKADDR_BYTES = 32;
const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The peer address a direct accept wrote (a sockaddr_in or sockaddr_in6), in the form native
 * `address()` gives (inet_ntop's text), or undefined for another family.
 */
export function decodeSockaddr(b: Uint8Array): SocketAddress | undefined {
  const family = b[0]! | (b[1]! << 8);
  const port = (b[2]! << 8) | b[3]!;
  if (family === AF_INET) return toSocketAddress({ family: 'ipv4', address: ipv4Text(b, 4), port });
  if (family !== AF_INET6) return undefined;
  return toSocketAddress({ family: 'ipv6', address: ipv6Text(b, 8), port });
}

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
  /** Direct mode: the peer address of each `ready` slot, in step with it. */
  private readonly readyPeers: (SocketAddress | undefined)[] = [];
  /** Direct mode (TCP with the ring's direct table): one-shot accepts, see DIRECT_ACCEPTS. */
  private readonly direct: boolean;
  /** Direct mode: the ring slots of the accepts in flight and their address buffers, in step. */
  private readonly armedSlots: number[] = [];
  private readonly armedBufs: Uint8Array[] = [];
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
    // A wildcard listener's streams learn their local address from the slot (FIXED_FD_INSTALL,
    // 6.8): without it such a listener stays on descriptors.
    this.direct =
      kind === 'tcp' &&
      host.ring.maxDirect > 0 &&
      (this.streamLocal !== undefined || host.ring.info.directInstall === true);
  }

  accept(options?: IoOptions): Promise<UringStream> {
    if (this.closing) return Promise.reject(cancelledError('accept', this.localAddress));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(cancelledError('accept', this.localAddress));
    const fd = this.ready.shift();
    if (fd !== undefined) {
      const stream = this.wrap(fd, this.direct ? this.readyPeers.shift() : undefined);
      if (this.direct) this.arm(); // the slot it held counted against maxConnections as pending
      return Promise.resolve(stream);
    }
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
    this.readyPeers.length = 0;
    if (this.direct) {
      for (const slot of this.armedSlots) this.host.ring.cancel(slot);
      if (this.armedSlots.length === 0) this.closeSocket();
    } else if (this.armedSlot >= 0) this.host.ring.cancel(this.armedSlot);
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

  /** Multishot accept completions, or a direct accept's (one-shot). */
  onCompletion(res: number, flags: number, slot: number): void {
    if (this.direct) {
      this.onDirectAccept(res, slot);
      return;
    }
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

  /**
   * A direct accept completed: `res` is the slot (its peer's address in the accept's buffer), or
   * -errno. ENFILE (the table is full) and the like go to the next acceptor, as EMFILE does on
   * descriptors (the accept loop backs off, then accept() arms again); such a failure is not
   * re-armed here, which would spin.
   */
  private onDirectAccept(res: number, slot: number): void {
    const at = this.armedSlots.indexOf(slot);
    const buf = at >= 0 ? this.armedBufs[at] : undefined;
    if (at >= 0) {
      this.armedSlots.splice(at, 1);
      this.armedBufs.splice(at, 1);
    }
    let rearm = true;
    if (res >= 0) {
      // The slot this accept held (Ring.takeDirectSlot) stays taken by the socket it accepted.
      const peer = buf === undefined ? undefined : decodeSockaddr(buf);
      if (this.closing) this.closeQuietly(res);
      else {
        const w = this.waiters.shift();
        if (w !== undefined) {
          if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
          w.resolve(this.wrap(res, peer));
        } else {
          this.ready.push(res);
          this.readyPeers.push(peer);
        }
      }
    } else {
      // No connection: the slot this accept held is free again.
      this.host.ring.directSlotFreed();
      if (res === -ECANCELED) rearm = false;
      else if (res !== -ECONNABORTED && !this.closing) {
        rearm = false;
        const w = this.waiters.shift();
        if (w !== undefined) {
          if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
          w.reject(RuntimeError.fromErrno(res, 'accept', this.localAddress));
        }
      }
    }
    if (this.closing) {
      if (this.armedSlots.length === 0) this.closeSocket();
    } else if (rearm) this.arm();
  }

  /**
   * Arms the accept: the multishot, or (direct) one-shot accepts up to DIRECT_ACCEPTS while
   * someone waits or fewer than ACCEPT_HIGH_WATER streams wait for an acceptor, and the thread
   * is under maxConnections (else the ring arms it again once a direct stream leaves).
   */
  arm(): void {
    if (this.closing) return;
    const ring = this.host.ring;
    if (this.direct) {
      while (
        this.armedSlots.length < DIRECT_ACCEPTS &&
        (this.waiters.length > 0 || this.ready.length + this.armedSlots.length < ACCEPT_HIGH_WATER) &&
        ring.takeDirectSlot(this)
      ) {
        const buf = new Uint8Array(SOCKADDR_BYTES);
        const slot = ring.alloc(this, TARGET_LISTENER);
        this.armedSlots.push(slot);
        this.armedBufs.push(buf);
        ring.push(OP_ACCEPT_DIRECT, this.fd, slot, SOCKADDR_BYTES, buf, 0);
      }
      return;
    }
    if (this.armedSlot >= 0) return;
    this.armedSlot = ring.alloc(this, TARGET_LISTENER);
    ring.push(OP_ACCEPT_MULTI, this.fd, this.armedSlot, 0, undefined, 0);
  }

  private wrap(fd: number, peer?: SocketAddress): UringStream {
    const stream = new UringStream(this.host, fd, this.kind, peer, this.streamLocal, this.direct);
    // No setsockopt here: native listenTcp set TCP_NODELAY on the listener, and an accepted
    // socket inherits it (one syscall fewer per connection; no-delay.test.ts checks the kernel's).
    if (this.kind === 'tcp') stream.markNoDelay();
    return stream;
  }

  /** Closes an accepted socket nobody will use (a direct one's slot: close direct, freed once it completed). */
  private closeQuietly(fd: number): void {
    const ring = this.host.ring;
    if (!this.direct) {
      ring.push(OP_CLOSE, fd, ring.alloc(IGNORE), 0, undefined, 0);
      return;
    }
    const freed: CompletionTarget = { onCompletion: () => ring.directSlotFreed() };
    ring.push(OP_CLOSE | FIXED_FILE_OP, fd, ring.alloc(freed), 0, undefined, 0);
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
