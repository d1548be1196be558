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
  /**
   * Optional: sets the socket's receive low-water mark (SO_RCVLOWAT), the bytes a waiting receive
   * needs before it completes (a peer's end completes it whatever the mark); false where the
   * stream cannot (@loch/uring-runtime's legacy driver, a TLS layer). Used at frame boundaries
   * (RecvLowWater).
   */
  setRecvLowWater?(bytes: number): boolean;
}

/**
 * Receives the outcome of one `recvTo()`: a chunk (release it), `null` at end of stream
 * (`error` undefined) or on failure (`error` set). As @loch/uring-runtime's RecvTarget: called
 * exactly once per recvTo(), never from inside it.
 */
export interface ThriftRecvTarget {
  onRecv(chunk: ThriftRecvChunk | null, error: unknown): void;
}

/**
 * Receives the outcome of one `writeTo()`: `error` undefined once every byte was handed to the
 * kernel. As @loch/uring-runtime's WriteTarget: called exactly once per writeTo().
 */
export interface ThriftWriteTarget {
  onWritten(error: unknown): void;
}

/**
 * What a server connection needs beyond ThriftStream: the runtime's promise-free pair, so that
 * serving a call costs no promise per receive or write (a @loch/uring-runtime ByteStream has it).
 */
export interface ThriftServerStream extends ThriftStream {
  /** The next chunk, end or failure goes to `target.onRecv`, exactly once. */
  recvTo(target: ThriftRecvTarget): void;
  /**
   * Writes the buffer, or every buffer in order, completely; then `target.onWritten`, exactly
   * once. A single buffer comes as itself (a reply relayed as it came), not in an array.
   */
  writeTo(data: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void;
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
