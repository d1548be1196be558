/**
 * The contract between the runtime's public API and an I/O driver. Two drivers implement it:
 * `uring` (src/uring/, on @loch/native) and `legacy` (src/legacy/, on node:net). The public
 * TcpListener/TcpStream/UnixListener/UnixStream API, timers and workers are built on this and
 * never reach into a driver's internals. One Driver instance per JS thread.
 */
import type { BufferStats } from './internal/buffer-budget.js';
import type { ByteStream, DriverName, IoOptions, StreamListener } from './stream.js';

/** Options for a TCP listener. */
export interface TcpListenOptions {
  /** Host to bind; '0.0.0.0', '::', '127.0.0.1', '::1'... */
  readonly host: string;
  /** Port; 0 picks a free one (read it back from `localAddress`). */
  readonly port: number;
  /** listen(2) backlog. Default 1024. */
  readonly backlog?: number | undefined;
  /** SO_REUSEPORT, so several workers can listen on one port. Default false. */
  readonly reusePort?: boolean | undefined;
  /** IPV6_V6ONLY for '::'. Default false (dual stack). */
  readonly ipv6Only?: boolean | undefined;
}

/** Options for a Unix listener. */
export interface UnixListenOptions {
  readonly path: string;
  readonly backlog?: number | undefined;
  /**
   * When the path exists and nothing listens on it (connect is refused), unlink it and bind.
   * Default false: an existing path fails with EADDRINUSE, as nginx does.
   */
  readonly removeStale?: boolean | undefined;
}

/** Options for a TCP connect. */
export interface TcpConnectOptions extends IoOptions {
  readonly host: string;
  readonly port: number;
  /** Connect deadline in milliseconds; the attempt fails with ETIMEDOUT. */
  readonly timeout?: number | undefined;
  /** TCP_NODELAY on the new stream. Default true. */
  readonly noDelay?: boolean | undefined;
}

/** Options for a Unix connect. */
export interface UnixConnectOptions extends IoOptions {
  readonly path: string;
  readonly timeout?: number | undefined;
}

/** An I/O driver serving one JS thread. */
export interface Driver {
  readonly name: DriverName;
  listenTcp(options: TcpListenOptions): Promise<StreamListener>;
  listenUnix(options: UnixListenOptions): Promise<StreamListener>;
  connectTcp(options: TcpConnectOptions): Promise<ByteStream>;
  connectUnix(options: UnixConnectOptions): Promise<ByteStream>;
  /** Resolves after `ms` milliseconds; rejects with an AbortError-like RuntimeError (ECANCELED) on abort. */
  sleep(ms: number, options?: IoOptions): Promise<void>;
  /**
   * Moves up to `len` bytes from `from` to `to` without copying through JS, when both streams
   * belong to this driver and it can (splice through a pipe on io_uring). Resolves with the
   * byte count (0 at end of stream). Undefined when the driver cannot, and callers fall back
   * to read/write.
   */
  readonly splice?:
    | ((from: ByteStream, to: ByteStream, len: number, options?: IoOptions) => Promise<number>)
    | undefined;
  /**
   * Moves every byte of `from` into `to` until end of stream without copying through JS (on
   * io_uring: splice through a pipe kept for the stream's life), without half-closing `to`;
   * resolves with the byte count. Bytes a recv() already took from `from` are written first.
   * Undefined when the driver cannot; zeroCopy() then loops over `splice`, or copies.
   */
  readonly spliceAll?:
    | ((from: ByteStream, to: ByteStream, options?: IoOptions) => Promise<number>)
    | undefined;
  /**
   * A number that changes whenever the driver does I/O (the runtime's idle-trim policy compares
   * readings taken on a timer). Must be cheap: no allocation, no syscall.
   */
  activityCount?(): number;
  /**
   * A timer of the driver for the workers' watchdog that does not count as activity (io_uring:
   * a ring timeout whose submit activityCount() leaves out). Without it, sleep(0) serves.
   */
  heartbeat?(): Promise<void>;
  /** The receive budgets' numbers of this thread (internal/buffer-budget.ts). */
  bufferStats?(): BufferStats;
  /**
   * Lets go of receive buffers the driver keeps free for reuse (io_uring: its heap receive
   * buffers); the runtime's idle trim calls it before giving memory back.
   */
  trimBuffers?(): void;
  /** Releases the driver's resources (ring, buffers, fds). Open streams are closed. */
  close(): Promise<void>;
}
