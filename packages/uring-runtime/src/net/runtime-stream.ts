/**
 * The base of the public stream and listener classes: thin wrappers over a driver's ByteStream
 * and StreamListener that count what is open in their runtime (for graceful stop). Not for I/O
 * logic: every call goes straight to the driver's object.
 */
import type { Runtime } from '../runtime.js';
import {
  type ByteStream,
  type ConnectionFacts,
  type IoOptions,
  type IoResult,
  isLayeredStream,
  type LayeredStream,
  type RecvChunk,
  type RecvTarget,
  type SocketAddress,
  type StreamListener,
  type WriteTarget,
} from '../stream.js';

/** Choosing a runtime other than the thread's current one (tests, several drivers in one thread). */
export interface RuntimeOption {
  readonly runtime?: Runtime | undefined;
}

/** The driver's own stream behind a public wrapper (itself when it is not a wrapper). */
export function driverStream(stream: ByteStream): ByteStream {
  return RuntimeStream.innerOf(stream);
}

/**
 * Received bytes `stream` holds now against its receive budget (queued, or lent and not
 * released; see `runtime.bufferStats()`), or 0 for stream kinds that keep no count.
 */
export function heldBytes(stream: ByteStream): number {
  const held = (RuntimeStream.innerOf(stream) as { readonly heldBytes?: unknown }).heldBytes;
  return typeof held === 'number' ? held : 0;
}

/**
 * Write progress of `stream` (see ByteStream.sentBytes): its own count (a RuntimeStream's is its
 * driver stream's), else that of the stream it frames (a LayeredStream such as a PROXY-header layer, whose
 * writes go to the stream below), else 0 (no count kept: it never seems to move).
 */
export function sentBytes(stream: Pick<ByteStream, 'sentBytes'>): number {
  const sent = stream.sentBytes;
  if (typeof sent === 'number') return sent;
  return isLayeredStream(stream as ByteStream) ? sentBytes((stream as LayeredStream).below) : 0;
}

/**
 * A closed RuntimeStream's runtime: the stream no longer counts as open work of it. A stream keeps
 * its runtime, or once closed one of these, in one field: a server holds a stream per idle
 * connection, and a flag of its own was 8 B more per connection (Node 20: no pointer compression).
 * The price is one small allocation per closed stream (32 B, short-lived), paid at close.
 */
class Uncounted {
  constructor(readonly runtime: Runtime) {}
}

/** A connected stream of a runtime; every method delegates to the driver's stream. */
export class RuntimeStream implements ByteStream {
  readonly #inner: ByteStream;
  /** The runtime while the stream counts as open in it; an Uncounted once closed. */
  #runtime: Runtime | Uncounted;

  /** @internal Wraps a driver stream; use the classes' connect() or a listener's accept(). */
  constructor(inner: ByteStream, runtime: Runtime) {
    this.#inner = inner;
    this.#runtime = runtime;
    runtime.activity.streamOpened();
  }

  /** The runtime serving this stream. */
  get runtime(): Runtime {
    const r = this.#runtime;
    return r instanceof Uncounted ? r.runtime : r;
  }

  /**
   * True when `stream`'s facts are `plainFacts(stream.remoteAddress)` by construction: a runtime's
   * own TCP or Unix stream (a TLS or PROXY layer is another object, wrapping it). A server asks
   * this before `facts`, so that a plain stream it holds never makes its facts object (64 B per
   * idle connection on Node 20): false only means "read the facts".
   */
  static hasPlainFacts(stream: object): boolean {
    return stream instanceof RuntimeStream;
  }

  /**
   * The client of `stream` (`facts.clientAddress`: a PROXY header's source, else the peer),
   * without making a plain stream's facts object (see hasPlainFacts).
   */
  static clientAddressOf(stream: Pick<ByteStream, 'facts' | 'remoteAddress'>): SocketAddress {
    return RuntimeStream.hasPlainFacts(stream) ? stream.remoteAddress : stream.facts.clientAddress;
  }

  /**
   * @internal The driver stream behind `stream` when it is a wrapper, else `stream` (a private
   * field instead of a WeakMap: no ephemeron entry per connection for the GC to trace).
   */
  static innerOf(stream: ByteStream): ByteStream {
    return #inner in stream ? (stream as RuntimeStream).#inner : stream;
  }

  get remoteAddress(): SocketAddress {
    return this.#inner.remoteAddress;
  }
  get localAddress(): SocketAddress {
    return this.#inner.localAddress;
  }
  get driver() {
    return this.#inner.driver;
  }
  get facts(): ConnectionFacts {
    return this.#inner.facts;
  }
  get closed(): boolean {
    return this.#inner.closed;
  }
  /** The driver stream's write progress (see ByteStream.sentBytes). */
  get sentBytes(): number {
    return sentBytes(this.#inner);
  }
  read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    return this.#inner.read(buf, options);
  }
  recv(options?: IoOptions): Promise<RecvChunk | null> {
    return this.#inner.recv(options);
  }
  recvTo(target: RecvTarget): void {
    this.#inner.recvTo(target);
  }
  write<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    return this.#inner.write(buf, options);
  }
  writeAll<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<B> {
    return this.#inner.writeAll(buf, options);
  }
  writev(bufs: readonly Uint8Array[], options?: IoOptions): Promise<number> {
    return this.#inner.writev(bufs, options);
  }
  writeTo(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    this.#inner.writeTo(data, target);
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
  /** Closes the stream; it stops counting as open work of its runtime. */
  close(): Promise<void> {
    const r = this.#runtime;
    if (!(r instanceof Uncounted)) {
      this.#runtime = new Uncounted(r);
      r.activity.streamClosed();
    }
    return this.#inner.close();
  }
  setNoDelay(enabled: boolean): void {
    this.#inner.setNoDelay(enabled);
  }
  setRecvLowWater(bytes: number): boolean {
    return this.#inner.setRecvLowWater?.(bytes) ?? false;
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.#inner[Symbol.asyncIterator]();
  }
}

/** A listener of a runtime; accept() wraps each driver stream with `wrap`. */
export class RuntimeListener<S extends RuntimeStream> implements StreamListener<S> {
  readonly #inner: StreamListener;
  readonly #wrap: (inner: ByteStream, runtime: Runtime) => S;
  #closing: Promise<void> | undefined;
  /** The runtime serving this listener. */
  readonly runtime: Runtime;

  /** @internal Wraps a driver listener; use the classes' bind(). */
  constructor(inner: StreamListener, runtime: Runtime, wrap: (inner: ByteStream, runtime: Runtime) => S) {
    this.#inner = inner;
    this.#wrap = wrap;
    this.runtime = runtime;
    runtime.activity.listeners.add(this);
  }

  get localAddress(): SocketAddress {
    return this.#inner.localAddress;
  }
  get driver() {
    return this.#inner.driver;
  }

  async accept(options?: IoOptions): Promise<S> {
    return this.#wrap(await this.#inner.accept(options), this.runtime);
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.runtime.activity.listeners.delete(this);
      this.#closing = this.#inner.close();
    }
    return this.#closing;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<S, void, undefined> {
    for (;;) {
      let inner: ByteStream;
      try {
        inner = await this.#inner.accept();
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (this.#closing !== undefined && (code === 'ECANCELED' || code === 'EBADF')) return;
        throw error;
      }
      yield this.#wrap(inner, this.runtime);
    }
  }
}
