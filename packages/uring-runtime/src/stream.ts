/**
 * The stream and listener contracts that every driver (io_uring, legacy node:net) implements
 * and that every protocol package (http, thrift, tls, transports) is written against.
 * Not for driver internals: those live in src/uring/ and src/legacy/.
 *
 * One I/O contract: a stream's own operations are the promise-free pair `recvTo`/`writeTo`
 * (plus `read(buf)`, close, shutdown, setNoDelay, addresses); the promise forms — `recv()`,
 * iteration, `write`, `writeAll`, `writev` — are built once on the pair for every stream kind
 * (src/internal/stream-forms.ts), so they behave alike on every driver.
 *
 * Connection facts (`facts`: TLS, ALPN, SNI, the client behind a PROXY header) travel on the
 * stream, so protocol code reads them without importing the layer that found them.
 *
 * Writes keep call order on every driver: a write (writeTo, write, writeAll, writev) or a
 * shutdown() started while another write of the stream is still in flight waits behind it and
 * goes out after its last byte, so the peer reads each write whole, in call order. Queued, not
 * refused with an error: node:net queues its writes, so the legacy driver always did this, and
 * pipelining callers (several requests on one connection) would otherwise work on one driver
 * and fail on the other. Awaiting each write before the next is still the way to feel
 * backpressure; the queue itself holds whatever is written into it. A write that fails after
 * part of it went out (an abort, a reset) leaves the write side unusable: the writes behind it
 * and later ones fail with EPIPE, on both drivers, so the peer never reads past the cut.
 *
 * Buffer ownership follows monoio's "rent" model: a buffer passed to `read` or `write` belongs
 * to the runtime until the returned promise settles, and comes back in the result, even when
 * the operation was cancelled or failed (the error carries it as `buffer`). Callers must not
 * touch a buffer while it is lent.
 */
import type { RuntimeError } from './errors.js';

/** Address of a stream endpoint or listener. */
export type SocketAddress =
  | { readonly family: 'ipv4' | 'ipv6'; readonly address: string; readonly port: number }
  | { readonly family: 'unix'; readonly path: string };

/** Result of a read or write: bytes transferred and the buffer handed back to its owner. */
export type IoResult<B extends Uint8Array> = [n: number, buf: B];

/** Per-operation options. `signal` cancels the operation; the buffer still comes back. */
export interface IoOptions {
  readonly signal?: AbortSignal | undefined;
}

/**
 * A chunk of received bytes that lives in runtime-owned pooled memory (on io_uring, a slot of
 * the provided-buffer ring). `bytes` is valid until `release()`; release exactly once, as soon
 * as the bytes are consumed or copied, so the slot returns to the kernel.
 */
export interface RecvChunk {
  readonly bytes: Uint8Array;
  release(): void;
}

/**
 * Receives the outcome of one `recvTo()`: a chunk (release it as with recv()), or `null` at end
 * of stream (`error` undefined) or on failure (`error` set: ECANCELED when the stream was closed
 * while the receive was pending). Called exactly once per recvTo(), never from inside recvTo()
 * or close() (results are delivered at the next microtask checkpoint, like a promise reaction).
 * A server that parks thousands of idle connections implements this once on its connection
 * class: the pending receive then costs no promise, reaction or closure.
 */
export interface RecvTarget {
  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void;
}

/**
 * Receives the outcome of one `writeTo()`: `error` is undefined once every byte was handed to
 * the kernel, else the failure (ECANCELED when the stream was closed meanwhile; for a single
 * buffer the error carries it as `buffer`). Called exactly once per writeTo(), never from inside
 * writeTo() or close(): results are delivered at the next microtask checkpoint, and it should not
 * throw (a throw surfaces as an uncaught exception). A connection class implements this once: a
 * write then costs no promise, reaction or closure.
 *
 * Order: on the io_uring driver the recvTo() and writeTo() results of a stream reach their
 * targets in the order the kernel completed them, so bytes received before a write completed
 * are reported before that write (how a pooled connection tells bytes that predate its request
 * from the answer). The legacy driver keeps each direction in order, not the two together.
 */
export interface WriteTarget {
  onWritten(error: RuntimeError | undefined): void;
}

/**
 * What a connection is, beyond its bytes: what protocol code (HTTP's X-Forwarded-*, a handler's
 * client certificate check) needs to know about the layers below it, so that it never imports
 * the TLS or PROXY-protocol packages. Each layer of the accept order (PROXY header, TLS, ALPN or
 * preface sniff) is a ByteStream that wraps the one below and refines these; a plain TCP or
 * Unix stream has `plainFacts(remoteAddress)`.
 */
export interface ConnectionFacts {
  /** True when the bytes travel under TLS (set by the TLS layer). */
  readonly secure: boolean;
  /** The protocol ALPN agreed on ('h2', 'http/1.1'), or null when none was negotiated. */
  readonly alpnProtocol: string | null;
  /** The server name (SNI) the client asked for, or null. */
  readonly servername: string | null;
  /** The client's certificate (DER) when it presented one, else null. */
  readonly peerCertificate: Uint8Array | null;
  /**
   * The client: the PROXY-protocol source address when a PROXY header was read, else the
   * stream's remoteAddress.
   */
  readonly clientAddress: SocketAddress;
  /**
   * Whether the peer's end of data is authenticated, read once a recv gave the end (null): under
   * TLS, true when its close_notify arrived and false when the connection was cut without it;
   * absent where the transport has no such signal (TCP, Unix: a FIN is all there is). A body
   * delimited by the connection's close that ends on `false` may be truncated (RFC 8446 §6.1).
   */
  readonly closeNotified?: boolean;
}

/**
 * The facts of a plain TCP or Unix connection: not secure, nothing negotiated, the client is
 * `remote`. For wrapper streams (TLS, PROXY) to build on: `{ ...plainFacts(a), secure: true }`
 * keeps one object shape for every layer.
 */
export function plainFacts(remote: SocketAddress): ConnectionFacts {
  return {
    secure: false,
    alpnProtocol: null,
    servername: null,
    peerCertificate: null,
    clientAddress: remote,
  };
}

/** A connected, bidirectional byte stream (TCP or Unix). */
export interface ByteStream {
  /**
   * Address of the remote peer. Equal on every read, not always the same object: an io_uring
   * stream keeps an IP peer as text and a port and builds the object when asked (compare by value).
   */
  readonly remoteAddress: SocketAddress;
  /** Address of this end. */
  readonly localAddress: SocketAddress;
  /**
   * What the layers below know about the connection (TLS, ALPN, SNI, the PROXY-protocol
   * client). The same object on every read; a plain stream makes it on first use, so a stream
   * that is never asked costs nothing for it.
   */
  readonly facts: ConnectionFacts;
  /** Name of the driver that serves this stream ('uring' or 'legacy'). */
  readonly driver: DriverName;

  /**
   * Reads into `buf` (up to `buf.byteLength` bytes). Resolves `[0, buf]` at end of stream.
   * Owned-buffer semantics: `buf` is lent until the promise settles. Takes its turn behind the
   * readers already waiting (read, recv, recvTo): every reader gets its bytes in call order.
   */
  read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>>;

  /**
   * Receives the next chunk from the runtime's buffer pool without a caller buffer: no memory is
   * held for an idle stream. Resolves `null` at end of stream. recvTo() with a promise; an
   * aborted recv() gives up its place in the reader queue, so the next reader gets the bytes.
   */
  recv(options?: IoOptions): Promise<RecvChunk | null>;

  /**
   * recv() without a promise: the next chunk (or end of stream, or the failure) goes to
   * `target.onRecv`, exactly once; close() settles a pending one with ECANCELED. Receives
   * queue in order with recv() and read() waiters. No AbortSignal: close() is the way out.
   */
  recvTo(target: RecvTarget): void;

  /**
   * Writes `buf`; resolves with the count and the buffer. Built on writeTo(), so the count is
   * always the whole buffer (the monoio-style result shape, without short writes).
   */
  write<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>>;

  /** Writes all of `buf`, looping on short writes. */
  writeAll<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<B>;

  /** Writes every buffer in order, all of it (gathered into as few syscalls as the driver can). */
  writev(bufs: readonly Uint8Array[], options?: IoOptions): Promise<number>;

  /**
   * writeAll() (one buffer) or writev() (an array) without a promise: writes all of `data`, then
   * calls `target.onWritten` exactly once. The buffers are lent until then. No AbortSignal:
   * close() is the way out (it settles a pending one with ECANCELED). A write started while
   * another is in flight waits for it (see the module comment): the bytes go out in call order.
   */
  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void;

  /**
   * Half-closes the write side (the peer reads end of stream) after the writes started before
   * it went out; reading still works.
   */
  shutdown(): Promise<void>;

  /** Closes the stream. Pending operations fail with ECANCELED and return their buffers. */
  close(): Promise<void>;

  /** Sets TCP_NODELAY (no-op on Unix streams). */
  setNoDelay(enabled: boolean): void;

  /**
   * Sets the receive low-water mark (SO_RCVLOWAT): a receive waiting on the stream completes
   * once `bytes` are queued (or at end of stream), not on every segment that arrives, so a reader
   * that knows how much it needs (a framed protocol's next frame) takes fewer, larger chunks.
   * Only the wake-up waits: bytes already queued when a receive starts are taken even if fewer.
   * `bytes` is a whole number from 1 (1: the kernel's default, no mark); a call with the value
   * already set makes no syscall. True when applied; false where the stream cannot: the legacy
   * driver (Node's net.Socket has no SO_RCVLOWAT), a Unix stream, a closing one, a TLS stream fed
   * from JavaScript. Optional: a wrapper that does not pass it on has none, so call it as
   * `stream.setRecvLowWater?.(n) === true`.
   */
  setRecvLowWater?(bytes: number): boolean;

  /** True once close() was called or the stream failed fatally. */
  readonly closed: boolean;

  /**
   * Write progress: bytes of this stream's writes the kernel has taken so far (grows during a
   * write, not only when it completes), for deadlines that cut a stalled writer rather than a
   * slow one (nginx's send_timeout). Absent on stream kinds that keep no count; read it with
   * `sentBytes(stream)`, which follows wrappers and layers. A count to compare, not an
   * exact payload total: io_uring, each send completion's count (in-ring TLS adds the ciphertext
   * the ring sent); legacy, what libuv handed to the kernel (the handle's bytes written less its
   * write queue size); TLS fed from JavaScript, the ciphertext the stream below took.
   */
  readonly sentBytes?: number;

  /**
   * Iterates incoming data as pooled chunks' bytes. Each yielded view is valid until the next
   * iteration step; copy what must outlive it. Ends at end of stream.
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
}

/**
 * A thin layer over another stream that framed the start of the connection (a PROXY-protocol
 * header) and is plain from then on. The layer above it (TLS) may step past it to reach the
 * stream below, e.g. to let the io_uring ring carry a TLS session (`ringTlsPort(below)`), once
 * it took the bytes this layer read past its framing: from then on it reads `below` itself,
 * while facts and addresses still come from this layer.
 */
export interface LayeredStream extends ByteStream {
  /** The stream this layer reads from. */
  readonly below: ByteStream;
  /**
   * The bytes read from `below` past this layer's framing (the next layer's first bytes), or
   * null when none; once: afterwards this layer has none to hand out.
   */
  takeReceived(): Uint8Array | null;
}

/** Whether `stream` is a LayeredStream (see there). */
export function isLayeredStream(stream: ByteStream): stream is LayeredStream {
  return typeof (stream as Partial<LayeredStream>).takeReceived === 'function' && 'below' in stream;
}

/** A listening socket that yields connected streams. */
export interface StreamListener<S extends ByteStream = ByteStream> {
  readonly localAddress: SocketAddress;
  readonly driver: DriverName;
  /** Accepts the next connection. Rejects with a RuntimeError (ECANCELED after close()). */
  accept(options?: IoOptions): Promise<S>;
  /** Stops listening. Pending accepts reject with ECANCELED. */
  close(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<S>;
}

/** Which I/O driver serves a runtime. */
export type DriverName = 'uring' | 'legacy';
