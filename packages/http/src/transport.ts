/**
 * The stream and listener shapes the server and client need from the runtime: a structural
 * subset of @loch/uring-runtime's ByteStream/StreamListener (src/stream.ts), so TcpStream,
 * UnixStream, TLS streams and test adapters all fit without wrapping.
 *
 * INTEGRATION(uring-runtime): these mirror the runtime's contracts because its package index did
 * not export them yet when this was written; once it does, replace the bodies with
 * `Pick<ByteStream, ...>` imports. Not a transport implementation.
 */

/** Address of a stream endpoint (same shape as the runtime's SocketAddress). */
export type SocketAddress =
  | { readonly family: 'ipv4' | 'ipv6'; readonly address: string; readonly port: number }
  | { readonly family: 'unix'; readonly path: string };

/** Which I/O driver serves a stream. */
export type DriverName = 'uring' | 'legacy';

/** Per-operation options; `signal` cancels the operation. */
export interface StreamIoOptions {
  readonly signal?: AbortSignal | undefined;
}

/** Received bytes in pooled memory, valid until `release()`. */
export interface StreamChunk {
  readonly bytes: Uint8Array;
  release(): void;
}

/** What HTTP/1.1 needs from a connected byte stream. */
export interface HttpStream {
  readonly remoteAddress: SocketAddress;
  readonly localAddress: SocketAddress;
  readonly driver: DriverName;
  /** Next pooled chunk, or null at end of stream. */
  recv(options?: StreamIoOptions): Promise<StreamChunk | null>;
  /** Writes all of `buf`; the buffer is lent until the promise settles. */
  writeAll<B extends Uint8Array>(buf: B, options?: StreamIoOptions): Promise<B>;
  /** Writes every buffer in order, all of it. */
  writev(bufs: readonly Uint8Array[], options?: StreamIoOptions): Promise<number>;
  /** Half-closes the write side. */
  shutdown(): Promise<void>;
  /** Closes the stream; pending operations fail. */
  close(): Promise<void>;
  /** TCP_NODELAY. */
  setNoDelay(enabled: boolean): void;
  readonly closed: boolean;
}

/** What the server needs from a listener. */
export interface HttpListener<S extends HttpStream = HttpStream> {
  readonly localAddress: SocketAddress;
  accept(options?: StreamIoOptions): Promise<S>;
  close(): Promise<void>;
}
