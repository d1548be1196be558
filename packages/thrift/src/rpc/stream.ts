/**
 * The slice of @loch/uring-runtime's stream and listener contracts (src/stream.ts there) that
 * the Thrift server and client use, declared structurally so that this package works with any
 * driver's TcpStream/UnixStream, a TLS stream, or a test double, and can be used without the
 * runtime at all. Not an I/O implementation.
 */

/** A chunk of received bytes in runtime-owned memory; release it once consumed. */
export interface ThriftRecvChunk {
  readonly bytes: Uint8Array;
  release(): void;
}

/** The stream operations Thrift needs (a @loch/uring-runtime ByteStream has all of them). */
export interface ThriftStream {
  /** Next chunk of received bytes; null at end of stream. */
  recv(): Promise<ThriftRecvChunk | null>;
  /** Writes every buffer, in order, completely. */
  writev(bufs: readonly Uint8Array[]): Promise<number>;
  /** Closes the stream; pending operations fail. */
  close(): Promise<void>;
  /** True once closed. */
  readonly closed: boolean;
}

/**
 * The part of an AbortSignal that request handlers get (declared here so that this package's
 * types need neither DOM nor @types/node; at run time it is an AbortSignal).
 */
export interface ThriftAbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** The listener operations the server needs (a @loch/uring-runtime StreamListener has them). */
export interface ThriftListener<S extends ThriftStream = ThriftStream> {
  accept(): Promise<S>;
  close(): Promise<void>;
}
