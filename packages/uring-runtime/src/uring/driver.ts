/**
 * The io_uring Driver: listeners, connects (with a linked timeout as deadline), sleep on
 * IORING_OP_TIMEOUT and splice through a pipe pair, over one Ring per JS thread shared by every
 * driver instance of that thread. Not for the public runtime API or driver selection: those
 * belong to the runtime (src/index.ts and friends), which calls createUringDriver().
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { loadNative, type NativeBinding, type NativeFailure } from '@loch/native';
import type {
  Driver,
  TcpConnectOptions,
  TcpListenOptions,
  UnixConnectOptions,
  UnixListenOptions,
} from '../driver.js';
import { RuntimeError } from '../errors.js';
import type { BufferBudgetOptions, BufferStats } from '../internal/buffer-budget.js';
import { resolveHost } from '../internal/resolve-host.js';
import { removeStaleSocket } from '../internal/stale-socket.js';
import type { ByteStream, IoOptions, SocketAddress } from '../stream.js';
import { resolveHeapPoolBytes } from './heap-buffers.js';
import { listenerCompletion, UringListener } from './listener.js';
import { SplicePump } from './pump.js';
import { OP_CONNECT, OP_TIMEOUT } from './records.js';
import { type CompletionTarget, type FlushMode, Ring } from './ring.js';
import { IPPROTO_TCP, TCP_NODELAY } from './sockopt.js';
import {
  cancelledError,
  type StreamHost,
  streamCompletions,
  toSocketAddress,
  UringStream,
} from './stream.js';

const { ECANCELED, EINVAL, EOPNOTSUPP, ETIME, ETIMEDOUT } = constants.errno;
const MAX_TIMER_MS = 0x7fffffff;
/** Pipe size asked for splice (F_SETPIPE_SZ); 0 keeps the kernel's default 64 KiB (16 slots). */
const PIPE_BYTES = 0;

/** Options of createUringDriver. */
export interface UringDriverOptions {
  /** Submission queue entries of this thread's ring (the CQ gets 4x). Default 1024. */
  readonly entries?: number | undefined;
  /**
   * Provided buffers for recv() (power of two, at most 32768). Default 512 (x 64 KiB = 32 MiB of
   * address space; pages are touched only as bytes land in them, and the kernel's ring holds at
   * most the receive budget's share of them at once). Not 256: a proxied request pins about two
   * buffers while in flight, and 64 concurrent ones kept half of 256 out, where the pool rules
   * (one buffer per recv for growing streams) cost a re-armed recv per request.
   */
  readonly bufferCount?: number | undefined;
  /**
   * Bytes per provided buffer. Default 65536: a large body arrives in few completions, so fewer
   * sends and fewer JS steps per byte (a 64 KiB proxied body costs ~25% less CPU than with 16 KiB).
   */
  readonly bufferSize?: number | undefined;
  /** Kernel SQ polling thread (IORING_SETUP_SQPOLL). Default false; costs a kernel thread per ring. */
  readonly sqpoll?: boolean | undefined;
  /**
   * When queued ops are flushed: 'immediate' (once per event-loop turn, in the check phase: every op
   * of the turn in one submit), 'tick' (process.nextTick: once the tick's promise jobs are done)
   * or 'microtask' (queueMicrotask). Default 'immediate' (env LOCH_URING_FLUSH overrides).
   */
  readonly flushMode?: FlushMode | undefined;
  /**
   * In-ring TLS (@loch/tls on this driver): plaintext buffers the ring decrypts into (at most
   * 65535; 0 turns in-ring TLS off). Default 256 (x 32 KiB = 8 MiB of address space, touched only
   * by TLS streams). When readers hold them all, a TLS stream waits (its ciphertext kept in the
   * session, its recv stopped by the usual high-water mark) until one comes back.
   */
  readonly plainCount?: number | undefined;
  /** Bytes per plaintext buffer. Default 32768 (two full TLS records). */
  readonly plainSize?: number | undefined;
  /**
   * Receive budgets: bytes one stream and all streams of the thread may hold before they stop
   * reading (internal/buffer-budget.ts). Taken by the thread's ring when it is created.
   */
  readonly buffers?: BufferBudgetOptions | undefined;
  /**
   * Most bytes of free heap receive buffers the thread keeps for reuse (the 1 KiB and 16 KiB
   * buffers a stream within its receive base reads into while the provided-buffer ring is nearly
   * out): default 4 MiB, at most 8 MiB, 0 turns the reuse off (env LOCH_HEAP_POOL_BYTES). The
   * idle trim empties it. Taken by the thread's ring when it is created.
   */
  readonly heapPoolBytes?: number | undefined;
  /**
   * Most provided buffers in the kernel's ring at once, below what the receive budget allows:
   * receives then cycle through this many buffers (the kernel takes them in FIFO order, and
   * released ones go back most recent first), whose memory stays in cache. Default 32 (env
   * LOCH_URING_WARM_BUFFERS); doubles while bursts find the ring empty, back at the idle trim.
   * Taken by the thread's ring when it is created.
   */
  readonly warmBuffers?: number | undefined;
  /**
   * Direct (registered) descriptors (issue 18): slots of a table in this thread's ring that TCP
   * listeners accept into, so accepted connections are not in the process's fd table and each
   * worker thread holds up to the soft RLIMIT_NOFILE of them (the kernel checks the limit per
   * table). A number of slots, 'auto' (the soft RLIMIT_NOFILE, at most 1,048,576) or 0 (off).
   * Default 0 (env LOCH_URING_DIRECT_FILES). A table the kernel refuses (larger than the soft
   * limit, a kernel before 5.19) leaves the ring on descriptors: ringInfo.directFilesError. What
   * a direct stream does differently: README.md, "Direct descriptors". Taken by the thread's ring
   * when it is created.
   */
  readonly directFiles?: number | 'auto' | undefined;
  /**
   * With direct descriptors, most accepted connections open at once on this thread (the fd
   * limit no longer caps them): past it the listeners stop accepting (connections wait in the
   * kernel's backlog) until one closes. Default: the table's size (env LOCH_URING_MAX_CONNECTIONS).
   */
  readonly maxConnections?: number | undefined;
}

/** Most slots 'auto' asks for (the kernel's own cap on a table is 1 << 20 as well). */
const MAX_DIRECT_FILES = 1 << 20;

/** The soft RLIMIT_NOFILE of this process (from /proc/self/limits), or undefined. */
function softNofile(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return MAX_DIRECT_FILES;
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Slots of the direct descriptor table to ask for: UringDriverOptions.directFiles, else env
 * LOCH_URING_DIRECT_FILES; 'auto' is the soft RLIMIT_NOFILE. 0: none.
 */
export function resolveDirectFiles(option: number | 'auto' | undefined): number {
  const value = option ?? process.env.LOCH_URING_DIRECT_FILES;
  if (value === undefined || value === '' || value === 0 || value === '0') return 0;
  if (value === 'auto') return Math.min(softNofile() ?? 0, MAX_DIRECT_FILES);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `directFiles must be a whole number of slots or 'auto', got ${JSON.stringify(value)}`,
    );
  }
  return Math.min(n, MAX_DIRECT_FILES);
}

/** UringDriverOptions.maxConnections, else env LOCH_URING_MAX_CONNECTIONS; undefined: the table's size. */
function resolveMaxConnections(option: number | undefined): number | undefined {
  const value = option ?? process.env.LOCH_URING_MAX_CONNECTIONS;
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(`maxConnections must be a positive whole number, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Thrown by createUringDriver when io_uring cannot serve on this machine or thread. */
export class UringUnavailableError extends RuntimeError {
  /** Why: build failure, addon load failure, or the kernel's refusal (ENOSYS, EPERM, sysctl). */
  readonly reason: string;
  constructor(reason: string) {
    super('ERR_LOCH_URING_UNAVAILABLE', 'io_uring_setup');
    this.message = `io_uring unavailable: ${reason}`;
    this.reason = reason;
  }
}

/** The ring of this JS thread and how many drivers use it. */
interface ThreadRing {
  readonly binding: NativeBinding;
  readonly ring: Ring;
  users: number;
}
let threadRing: ThreadRing | undefined;

/**
 * @internal Fault injection (workers' 'drop-completions'): this thread's ring drops every
 * completion from now on. False when the thread has no ring.
 */
export function dropThreadCompletions(): boolean {
  if (threadRing === undefined || threadRing.ring.isDestroyed) return false;
  threadRing.ring.dropCompletions();
  return true;
}

function acquireRing(options: UringDriverOptions): ThreadRing {
  if (threadRing !== undefined && !threadRing.ring.isDestroyed) {
    threadRing.users++;
    return threadRing;
  }
  const loaded = loadNative();
  if ('error' in loaded) throw new UringUnavailableError(loaded.error);
  const bufferCount = options.bufferCount ?? 512;
  if (bufferCount <= 0 || bufferCount > 32768 || (bufferCount & (bufferCount - 1)) !== 0) {
    throw new RangeError(`bufferCount must be a power of two up to 32768, got ${bufferCount}`);
  }
  const heapPoolBytes = resolveHeapPoolBytes(options.heapPoolBytes);
  const directFiles = resolveDirectFiles(options.directFiles);
  const maxConnections = resolveMaxConnections(options.maxConnections);
  const envFlush = process.env.LOCH_URING_FLUSH;
  const flushMode: FlushMode =
    options.flushMode ??
    (envFlush === 'microtask' || envFlush === 'immediate' || envFlush === 'tick' ? envFlush : 'immediate');
  let ring: Ring;
  try {
    ring = new Ring(loaded.binding, {
      entries: options.entries ?? 1024,
      bufferCount,
      bufferSize: options.bufferSize ?? 65536,
      sqpoll: options.sqpoll ?? false,
      flushMode,
      plainCount: options.plainCount ?? 256,
      plainSize: options.plainSize ?? 32 * 1024,
      buffers: options.buffers,
      heapPoolBytes,
      warmBuffers: options.warmBuffers,
      directFiles,
      maxConnections,
      completions: { ...streamCompletions, listener: listenerCompletion },
    });
  } catch (error) {
    throw new UringUnavailableError(error instanceof Error ? error.message : String(error));
  }
  if (!ring.info.bufRing) {
    // recv() depends on the provided-buffer ring; without it the driver cannot serve.
    ring.destroy();
    throw new UringUnavailableError('the provided-buffer ring could not be registered');
  }
  threadRing = { binding: loaded.binding, ring, users: 1 };
  return threadRing;
}

function failure(result: NativeFailure, address: SocketAddress | undefined): RuntimeError {
  return RuntimeError.fromErrno(-result.errno, result.syscall, address);
}

/** An in-flight connect: resolves with the fd's stream or fails with the mapped errno. */
class ConnectOp implements CompletionTarget {
  onAbort: (() => void) | undefined = undefined;
  constructor(
    private readonly driver: UringDriver,
    private readonly fd: number,
    private readonly kind: 'tcp' | 'unix',
    private readonly address: SocketAddress,
    private readonly timeout: number,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (stream: UringStream) => void,
    private readonly reject: (error: RuntimeError) => void,
  ) {}
  onCompletion(res: number, _flags: number, slot: number): void {
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    if (res >= 0) {
      this.resolve(new UringStream(this.driver.host, this.fd, this.kind, this.address));
      return;
    }
    this.driver.host.binding.closeFd(this.fd);
    const aborted = this.driver.host.ring.isCancelling(slot);
    if (aborted) this.reject(cancelledError('connect', this.address));
    else if (res === -ECANCELED && this.timeout > 0)
      this.reject(RuntimeError.fromErrno(-ETIMEDOUT, 'connect', this.address));
    else this.reject(RuntimeError.fromErrno(res, 'connect', this.address));
  }
}

/** The Driver on io_uring. Create with createUringDriver(). */
export class UringDriver implements Driver {
  readonly name = 'uring' as const;
  readonly host: StreamHost;
  private readonly listeners = new Set<UringListener>();
  private readonly addressCache = new Map<string, Uint8Array>();
  private closed = false;
  private readonly thread: ThreadRing;

  constructor(options: UringDriverOptions = {}) {
    this.thread = acquireRing(options);
    this.host = { binding: this.thread.binding, ring: this.thread.ring };
  }

  /** Submits of this thread's ring so far (native counter; changes while the ring is busy). */
  activityCount(): number {
    return this.thread.binding.submitCount() - this.heartbeats;
  }

  /** Heartbeats completed: their submits are not activity (an idle thread still beats). */
  private heartbeats = 0;

  /**
   * The watchdog's heartbeat: a ring timeout of 0 ms, so it completes only while the ring
   * delivers completions; its submit is left out of activityCount(), or a thread beating every
   * second would never look idle to the idle-trim policy.
   */
  heartbeat(): Promise<void> {
    return this.sleep(0).then(() => {
      this.heartbeats++;
    });
  }

  /** The thread's receive budgets and buffers in use (shared by every driver of the thread's ring). */
  bufferStats(): BufferStats {
    return this.host.ring.bufferStats();
  }

  /**
   * Lets go of the thread's free heap receive buffers (the runtime's idle trim, before V8's
   * low-memory GC collects them).
   */
  trimBuffers(): void {
    this.host.ring.trimBuffers();
  }

  /** Description of this thread's ring (setup flags, features, whether the buffer ring is registered). */
  get ringInfo(): Ring['info'] {
    return this.host.ring.info;
  }

  readonly splice = (from: ByteStream, to: ByteStream, len: number, options?: IoOptions): Promise<number> =>
    this.spliceStreams(from, to, len, options);

  readonly spliceAll = (from: ByteStream, to: ByteStream, options?: IoOptions): Promise<number> =>
    this.spliceAllStreams(from, to, options);

  async listenTcp(options: TcpListenOptions): Promise<UringListener> {
    this.assertOpen();
    const { ip } = await resolveHost(options.host, options.port, 'bind');
    const fd = this.host.binding.listenTcp(
      ip,
      options.port,
      options.backlog ?? 1024,
      options.reusePort ?? false,
      options.ipv6Only ?? false,
    );
    const wanted: SocketAddress = {
      family: isIP(ip) === 6 ? 'ipv6' : 'ipv4',
      address: ip,
      port: options.port,
    };
    if (typeof fd !== 'number') throw failure(fd, wanted);
    const local = toSocketAddress(this.host.binding.address(fd, false));
    return new UringListener(this.host, fd, 'tcp', local, this.listeners);
  }

  async listenUnix(options: UnixListenOptions): Promise<UringListener> {
    this.assertOpen();
    if (options.removeStale === true) await removeStaleSocket(options.path);
    const fd = this.host.binding.listenUnix(options.path, options.backlog ?? 1024);
    const address: SocketAddress = { family: 'unix', path: options.path };
    if (typeof fd !== 'number') throw failure(fd, address);
    return new UringListener(this.host, fd, 'unix', address, this.listeners);
  }

  async connectTcp(options: TcpConnectOptions): Promise<UringStream> {
    this.assertOpen();
    const { ip, family } = await resolveHost(options.host, options.port, 'connect');
    const address: SocketAddress = {
      family: family === 6 ? 'ipv6' : 'ipv4',
      address: ip,
      port: options.port,
    };
    const key = `${ip}|${options.port}`;
    let sockaddr = this.addressCache.get(key);
    if (sockaddr === undefined) {
      const encoded = this.host.binding.encodeIp(ip, options.port);
      if (encoded === null) throw RuntimeError.fromErrno(-EINVAL, 'connect', address);
      sockaddr = encoded;
      if (this.addressCache.size >= 1024) this.addressCache.clear();
      this.addressCache.set(key, sockaddr);
    }
    const fd = this.host.binding.socket(family);
    if (typeof fd !== 'number') throw failure(fd, address);
    const noDelay = options.noDelay ?? true;
    if (noDelay) this.host.binding.setSockOpt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    const stream = await this.connectFd(fd, 'tcp', sockaddr, address, options.timeout, options.signal);
    // The stream's record of TCP_NODELAY, so that its setNoDelay() asks only for a change.
    if (noDelay) stream.markNoDelay();
    return stream;
  }

  async connectUnix(options: UnixConnectOptions): Promise<UringStream> {
    this.assertOpen();
    const address: SocketAddress = { family: 'unix', path: options.path };
    const sockaddr = this.host.binding.encodeUnix(options.path);
    if (sockaddr === null) throw RuntimeError.fromErrno(-constants.errno.ENAMETOOLONG, 'connect', address);
    const fd = this.host.binding.socket(0);
    if (typeof fd !== 'number') throw failure(fd, address);
    return this.connectFd(fd, 'unix', sockaddr, address, options.timeout, options.signal);
  }

  sleep(ms: number, options?: IoOptions): Promise<void> {
    const signal = options?.signal;
    if (this.closed || signal?.aborted) return Promise.reject(cancelledError('sleep', undefined));
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(Number.isFinite(ms) ? ms : 0)));
    const ring = this.host.ring;
    return new Promise<void>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const target: CompletionTarget = {
        onCompletion: (res, _flags, slot) => {
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
          if (res === -ETIME || res >= 0) resolve();
          else if (res === -ECANCELED || ring.isCancelling(slot)) reject(cancelledError('sleep', undefined));
          else reject(RuntimeError.fromErrno(res, 'sleep'));
        },
      };
      const slot = ring.alloc(target);
      ring.push(OP_TIMEOUT, -1, slot, 0, undefined, delay);
      if (signal !== undefined) {
        onAbort = () => ring.cancel(slot);
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending: Promise<void>[] = [];
    for (const l of this.listeners) pending.push(l.close());
    // The ring's registry holds the streams of every driver of this thread: this one's are closed.
    for (const s of this.host.ring.streams.values() as UringStream[])
      if (s.servedBy(this.host)) pending.push(s.close());
    for (const s of this.host.ring.directStreams.values() as UringStream[])
      if (s.servedBy(this.host)) pending.push(s.close());
    await Promise.all(pending);
    this.thread.users--;
    if (this.thread.users === 0) {
      this.host.ring.destroy();
      if (threadRing === this.thread) threadRing = undefined;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new RuntimeError('ERR_LOCH_DRIVER_CLOSED', 'driver');
  }

  private connectFd(
    fd: number,
    kind: 'tcp' | 'unix',
    sockaddr: Uint8Array,
    address: SocketAddress,
    timeout: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<UringStream> {
    if (signal?.aborted) {
      this.host.binding.closeFd(fd);
      return Promise.reject(cancelledError('connect', address));
    }
    const ms = timeout === undefined || timeout <= 0 ? 0 : Math.min(MAX_TIMER_MS, Math.ceil(timeout));
    const ring = this.host.ring;
    return new Promise<UringStream>((resolve, reject) => {
      const op = new ConnectOp(this, fd, kind, address, ms, signal, resolve, reject);
      const slot = ring.alloc(op);
      ring.push(OP_CONNECT, fd, slot, sockaddr.length, sockaddr, ms);
      if (signal !== undefined) {
        op.onAbort = () => ring.cancel(slot);
        signal.addEventListener('abort', op.onAbort, { once: true });
      }
    });
  }

  /**
   * Checks both streams, hands over what a recv() already took from `from` (the one-reader rule:
   * its multishot recv is cancelled and the queued chunks are written to `to` first), and returns
   * a pump over `from`'s pipe, or the bytes handed over when `from` already ended.
   */
  private async startPump(
    from: ByteStream,
    to: ByteStream,
    len: number,
    once: boolean,
    options: IoOptions | undefined,
  ): Promise<{ handedOver: number; pump: SplicePump | undefined }> {
    if (!(from instanceof UringStream) || !(to instanceof UringStream) || from.ring !== this.host.ring) {
      throw new RuntimeError('ERR_LOCH_SPLICE_FOREIGN', 'splice');
    }
    // A direct stream (a slot, no descriptor) cannot be spliced yet: the pump's synchronous
    // splice(2) and O_NONBLOCK need a real fd (FIXED_FD_INSTALL, a later slice). EOPNOTSUPP is
    // what zeroCopy() answers with a plain copy.
    if (from.direct || to.direct) throw RuntimeError.fromErrno(-EOPNOTSUPP, 'splice');
    if (from.closed || to.closed) throw cancelledError('splice', undefined);
    const signal = options?.signal;
    if (signal?.aborted) throw cancelledError('splice', undefined);
    await from.stopReading();
    let handedOver = 0;
    for (let chunk = from.takeQueued(); chunk !== undefined; chunk = from.takeQueued()) {
      try {
        await to.writeAll(chunk.bytes, options);
        handedOver += chunk.bytes.length;
      } finally {
        chunk.release();
      }
      if (once) return { handedOver, pump: undefined };
    }
    if (from.readFailure !== undefined) throw from.readFailure;
    if (from.readEnded) return { handedOver, pump: undefined };
    if (from.closed || to.closed || signal?.aborted) throw cancelledError('splice', undefined);
    if (from.pipe === undefined) {
      const p = this.host.binding.pipe(PIPE_BYTES);
      if (!Array.isArray(p)) throw failure(p, undefined);
      from.pipe = p;
    }
    const chunk = Math.max(1, Math.min(len, 1 << 20));
    return { handedOver, pump: new SplicePump(this.host, from, to, from.pipe, chunk, once, signal) };
  }

  private async spliceStreams(
    from: ByteStream,
    to: ByteStream,
    len: number,
    options?: IoOptions,
  ): Promise<number> {
    const { handedOver, pump } = await this.startPump(from, to, len, true, options);
    if (handedOver > 0 || pump === undefined) return handedOver;
    return pump.run();
  }

  private async spliceAllStreams(from: ByteStream, to: ByteStream, options?: IoOptions): Promise<number> {
    const { handedOver, pump } = await this.startPump(from, to, 65536, false, options);
    return pump === undefined ? handedOver : handedOver + (await pump.run());
  }
}

/** Creates an io_uring Driver for this JS thread. Throws UringUnavailableError when it cannot. */
export function createUringDriver(options?: UringDriverOptions): UringDriver {
  return new UringDriver(options);
}
