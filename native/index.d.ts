/**
 * Types of @loch/native: the io_uring binding with batched crossings, and the calls that need no
 * io_uring (loadPlatform: SO_REUSEPORT listeners for node:net, thread affinity). The record
 * format is documented in README.md. Users of the runtime never touch this directly; the drivers
 * and workers of @loch/uring-runtime do.
 */

/** A socket address as reported by getsockname/getpeername. */
export type NativeAddress =
  | { readonly family: 'ipv4' | 'ipv6'; readonly address: string; readonly port: number }
  | { readonly family: 'unix'; readonly path: string };

/** A failed synchronous syscall. */
export interface NativeFailure {
  readonly errno: number;
  readonly syscall: string;
}

/** What the kernel supports, from a throwaway ring. */
export interface NativeProbe {
  readonly ok: true;
  readonly setupFlags: number;
  readonly features: number;
  readonly nodrop: boolean;
  readonly ops: Readonly<
    Record<
      | 'accept'
      | 'connect'
      | 'recv'
      | 'send'
      | 'sendmsg'
      | 'splice'
      | 'shutdown'
      | 'close'
      | 'timeout'
      | 'linkTimeout'
      | 'asyncCancel'
      | 'socket'
      | 'sendZc',
      boolean
    >
  >;
  /** Every op the driver needs is there (socket and sendZc are optional). */
  readonly allRequiredOps: boolean;
  readonly multishotRecv: boolean;
  readonly bufRing: boolean;
}

/** Description of a live ring. */
export interface RingInfo {
  readonly setupFlags: number;
  readonly features: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  readonly singleIssuer: boolean;
  readonly coopTaskrun: boolean;
  readonly sqpoll: boolean;
  /** DEFER_TASKRUN with a registered eventfd (the LOCH_URING_DEFER_TASKRUN=1 experiment). */
  readonly deferTaskrun: boolean;
  readonly nodrop: boolean;
  /** The provided-buffer ring was registered (multishot recv available). */
  readonly bufRing: boolean;
}

/** Options of `init`. */
export interface RingInit {
  readonly entries: number;
  readonly sqpoll?: boolean;
  /** Memory of the provided-buffer ring: bufferCount * bufferSize bytes, pinned until destroy(). */
  readonly pool?: Uint8Array;
  /** Power of two, at most 32768. */
  readonly bufferCount?: number;
  readonly bufferSize?: number;
  /**
   * The caller keeps every buffer a record uses reachable until that op's final completion was
   * dispatched (and through destroy()), so native takes no napi reference per op. Default false:
   * native pins each buffer with a reference from submit to the final CQE.
   */
  readonly callerPins?: boolean;
}

/** The addon. One ring per JS thread (napi_env). */
export interface NativeBinding {
  probe(): NativeProbe | { readonly ok: false; readonly errno: number; readonly reason: string };
  /**
   * Creates this thread's ring. `sq` holds submission records (8 int32 each), `cq` receives
   * completions (3 int32 each: slot, res, flags); `onComplete(n)` is called once per drain.
   * Throws (with `errno`) when the ring cannot be created.
   */
  init(sq: Int32Array, cq: Int32Array, onComplete: (count: number) => void, options: RingInit): RingInfo;
  /**
   * Submits the first `n` records of `sq`; `bufs` holds the buffers the records index. With
   * `drainInline`, completions already available are written to `cq` and their count returned.
   * Negative: -errno (no ring).
   */
  submit(n: number, bufs: readonly Uint8Array[] | undefined, drainInline: boolean): number;
  /** Cancels in-flight ops, unpins buffers and closes the ring. Idempotent. */
  destroy(): void;
  listenTcp(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    ipv6Only: boolean,
  ): number | NativeFailure;
  /**
   * Like listenTcp, but the descriptor is the caller's, not this environment's (teardown does not
   * close it): for `net.Server.listen({ fd })`, after which libuv owns it. See NativePlatform.
   */
  openTcpListener(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    ipv6Only: boolean,
  ): number | NativeFailure;
  /** See NativePlatform.setThreadAffinity. */
  setThreadAffinity(cpus: readonly number[]): number;
  /** See NativePlatform.threadAffinity. */
  threadAffinity(): number[] | number;
  listenUnix(path: string, backlog: number): number | NativeFailure;
  /** 4, 6, or 0 for a Unix socket. */
  socket(family: 4 | 6 | 0): number | NativeFailure;
  /** sockaddr bytes for an IP literal, or null when `host` is not one. */
  encodeIp(host: string, port: number): Uint8Array | null;
  encodeUnix(path: string): Uint8Array | null;
  address(fd: number, peer: boolean): NativeAddress | NativeFailure;
  setNoDelay(fd: number, enabled: boolean): number;
  /** A pipe pair, both ends O_NONBLOCK; `sizeBytes` > 0 asks F_SETPIPE_SZ (best effort). */
  pipe(sizeBytes?: number): [number, number] | NativeFailure;
  /**
   * One splice(2) on this thread with SPLICE_F_NONBLOCK | SPLICE_F_MOVE: bytes moved, 0 at end of
   * stream, or -errno (-EAGAIN when the source is empty or the destination full). For O_NONBLOCK
   * fds only (a blocking socket would block the thread).
   */
  spliceNow(fdIn: number, fdOut: number, len: number): number;
  /** Sets or clears O_NONBLOCK on `fd`; 0 or -errno. */
  setNonBlocking(fd: number, enabled: boolean): number;
  closeFd(fd: number): number;
  /**
   * Gives free memory back to the OS: V8's low-memory GC (Isolate::LowMemoryNotification: full
   * GCs that shrink new space and unmap empty pages) on this thread's isolate, then malloc_trim(0).
   * Synchronous and slow (milliseconds to tens of them): call it when the thread is idle.
   */
  trimMemory(): { readonly mallocTrimmed: boolean };
  /** How many times submit() ran on this thread; changes while the ring is busy. */
  submitCount(): number;
  readonly layout: { readonly sqStride: number; readonly cqStride: number };
}

/** Result of `loadNative()`. */
export type LoadResult =
  | { readonly binding: NativeBinding; readonly probe: NativeProbe }
  | { readonly error: string };

/** The addon's calls that need no io_uring; available whenever the .node file loads. */
export interface NativePlatform {
  /**
   * A listening TCP socket: SO_REUSEADDR, SO_REUSEPORT when `reusePort`, IPV6_V6ONLY on or off
   * for an IPv6 `host` (an IP literal: resolve names first), bound and listening with `backlog`.
   * Returns the descriptor (SOCK_CLOEXEC), which belongs to the caller: hand it to
   * `net.Server.listen({ fd })`, which then owns and closes it. For SO_REUSEPORT on Node versions
   * whose net.Server cannot set it. Failures: `{ errno, syscall }` (EINVAL/'bind' for a host that
   * is no IP literal, EADDRINUSE/'bind' for a taken port).
   */
  openTcpListener(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    ipv6Only: boolean,
  ): number | NativeFailure;
  /**
   * Pins the calling OS thread (the worker_thread that calls it; no thread id needed) to exactly
   * `cpus` with sched_setaffinity. 0, or -errno: -EINVAL for an empty list, a CPU out of range
   * (negative, >= 65536) or none that is online and allowed; -EPERM when the policy forbids it.
   */
  setThreadAffinity(cpus: readonly number[]): number;
  /** The CPUs the calling thread may run on (sched_getaffinity), ascending; or -errno. */
  threadAffinity(): number[] | number;
}

/** Result of `loadPlatform()`. */
export type PlatformLoadResult = { readonly platform: NativePlatform } | { readonly error: string };

/** Loads the addon once per thread and probes io_uring; never throws. */
export function loadNative(): LoadResult;

/**
 * The calls of NativePlatform when the .node file loads, whether or not the kernel allows
 * io_uring; otherwise `{ error }` saying why. Never throws; cached per thread.
 */
export function loadPlatform(): PlatformLoadResult;

/**
 * The addon's trimMemory when the .node file loads (even when the kernel refuses io_uring, so the
 * legacy driver can use it); undefined when it does not.
 */
export function memoryTrimmer(): (() => { readonly mallocTrimmed: boolean }) | undefined;

/** Opcodes of the submission record format. */
export declare const Op: Readonly<{
  NOP: 0;
  ACCEPT_MULTI: 1;
  CONNECT: 2;
  RECV_MULTI: 3;
  RECV: 4;
  SEND: 5;
  WRITEV: 6;
  SPLICE: 7;
  SHUTDOWN: 8;
  CLOSE: 9;
  TIMEOUT: 10;
  CANCEL: 11;
  CANCEL_FD: 12;
  PROVIDE: 13;
  POLL: 14;
}>;
