/**
 * The PROXY-protocol step of the accept order (docs/DESIGN.md: PROXY header -> TLS -> ALPN or
 * preface sniff -> h1 or h2): `proxyProtocolAccept` reads the header a load balancer (haproxy's
 * `send-proxy`, AWS NLB, ...) puts before the client's first byte, under a deadline, and hands
 * back a ByteStream over the same connection whose `facts.clientAddress` is the header's source.
 * Any Loch server runs it on an accepted stream before whatever comes next (tlsAccept,
 * HttpServer.attach, a Thrift server). Not for deciding whom to trust: run it only on listeners
 * whose peers are the balancers (a header from anyone else would let them choose their address).
 *
 * A missing, malformed, oversized or too slow header closes the connection and rejects with a
 * ProxyProtocolError: the bytes are never handed on (an HTTP request sent without a header is
 * refused, not parsed). Bytes that arrived behind the header in the same read are kept and are
 * the first bytes the next layer reads.
 */
import type {
  ByteStream,
  ConnectionFacts,
  DriverName,
  IoOptions,
  IoResult,
  LayeredStream,
  RecvChunk,
  RecvTarget,
  RuntimeError,
  SocketAddress,
  WriteTarget,
} from '@loch/uring-runtime';
import {
  DEFAULT_MAX_V2_LENGTH,
  decodeProxyHeader,
  type ProxyHeader,
  ProxyProtocolError,
} from './proxy-protocol.js';

/** proxyProtocolAccept options. */
export interface ProxyProtocolAcceptOptions {
  /** Deadline for the whole header in ms (ERR_PROXY_PROTOCOL_TIMEOUT). Default 5 s; 0 disables. */
  readonly timeout?: number | undefined;
  /** Largest v2 header accepted, TLVs included (ERR_PROXY_PROTOCOL_TOO_LONG). Default 4096. */
  readonly maxV2Length?: number | undefined;
}

/**
 * Reads a PROXY protocol header (v1 or v2) from the start of `stream`. Resolves with a
 * ProxyProtocolStream over it; rejects with a ProxyProtocolError, having closed `stream`, when
 * the header is missing, bad, too long, too slow, or the peer goes away first.
 */
export function proxyProtocolAccept(
  stream: ByteStream,
  options: ProxyProtocolAcceptOptions = {},
): Promise<ProxyProtocolStream> {
  return new Promise((resolve, reject) => {
    new HeaderReader(stream, options, resolve, reject).start();
  });
}

/** Reads chunks until the header is complete (one receive at a time, no promise per chunk). */
class HeaderReader implements RecvTarget {
  readonly #stream: ByteStream;
  readonly #maxV2: number;
  readonly #timeout: number;
  readonly #resolve: (s: ProxyProtocolStream) => void;
  readonly #reject: (e: ProxyProtocolError) => void;
  #buffer: Uint8Array = new Uint8Array(0);
  #timer: NodeJS.Timeout | undefined;
  #done = false;

  constructor(
    stream: ByteStream,
    options: ProxyProtocolAcceptOptions,
    resolve: (s: ProxyProtocolStream) => void,
    reject: (e: ProxyProtocolError) => void,
  ) {
    this.#stream = stream;
    this.#maxV2 = options.maxV2Length ?? DEFAULT_MAX_V2_LENGTH;
    this.#timeout = options.timeout ?? 5_000;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  start(): void {
    if (this.#timeout > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#fail(
          new ProxyProtocolError(
            'ERR_PROXY_PROTOCOL_TIMEOUT',
            `no complete PROXY protocol header within ${this.#timeout} ms`,
          ),
        );
      }, this.#timeout);
      this.#timer.unref();
    }
    this.#stream.recvTo(this);
  }

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    if (this.#done) {
      chunk?.release();
      return;
    }
    if (chunk === null) {
      this.#fail(
        new ProxyProtocolError(
          'ERR_PROXY_PROTOCOL_CLOSED',
          error === undefined
            ? 'the peer closed the connection before the PROXY protocol header was complete'
            : `the connection failed before the PROXY protocol header was complete: ${error.message}`,
          { cause: error },
        ),
      );
      return;
    }
    const prev = this.#buffer;
    const joined = new Uint8Array(prev.byteLength + chunk.bytes.byteLength);
    joined.set(prev, 0);
    joined.set(chunk.bytes, prev.byteLength);
    chunk.release();
    this.#buffer = joined;
    let decoded: ReturnType<typeof decodeProxyHeader>;
    try {
      decoded = decodeProxyHeader(joined, this.#maxV2);
    } catch (e) {
      this.#fail(e as ProxyProtocolError);
      return;
    }
    if (decoded === null) {
      this.#stream.recvTo(this);
      return;
    }
    this.#done = true;
    this.#stopTimer();
    const rest = decoded.length < joined.byteLength ? joined.subarray(decoded.length) : null;
    this.#resolve(new ProxyProtocolStream(this.#stream, decoded.header, rest));
  }

  #fail(error: ProxyProtocolError): void {
    if (this.#done) return;
    this.#done = true;
    this.#stopTimer();
    const address = remoteOf(this.#stream);
    const typed =
      address === undefined
        ? error
        : new ProxyProtocolError(error.code, error.message, { address, cause: error.cause });
    void this.#stream.close().catch(() => {});
    this.#reject(typed);
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function remoteOf(stream: ByteStream): SocketAddress | undefined {
  try {
    return stream.remoteAddress;
  } catch {
    return undefined;
  }
}

/** The bytes read past the header, handed out once as the first chunk. */
class RestChunk implements RecvChunk {
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  release(): void {}
}

/**
 * A connection whose PROXY header was read: the stream below, with `facts.clientAddress` the
 * header's source (for a PROXY command; LOCAL and UNKNOWN keep the socket's address) and the
 * header itself in `proxyHeader`. `remoteAddress` and `localAddress` stay the socket's (the
 * balancer and this listener): they name the hop, `facts` the client. A LayeredStream: TLS
 * above it may take the bytes behind the header and read the socket below directly (in-ring TLS).
 */
export class ProxyProtocolStream implements LayeredStream {
  readonly #inner: ByteStream;
  /** The decoded header (source, destination, v2 TLVs). */
  readonly proxyHeader: ProxyHeader;
  #rest: RestChunk | null;
  #facts: ConnectionFacts | undefined;

  /** Use proxyProtocolAccept. */
  constructor(inner: ByteStream, header: ProxyHeader, rest: Uint8Array | null) {
    this.#inner = inner;
    this.proxyHeader = header;
    this.#rest = rest === null ? null : new RestChunk(rest);
  }

  /** The connection below the header (LayeredStream). */
  get below(): ByteStream {
    return this.#inner;
  }

  /** The bytes that arrived behind the header, once (LayeredStream); null when none. */
  takeReceived(): Uint8Array | null {
    const rest = this.#rest;
    this.#rest = null;
    return rest === null ? null : rest.bytes;
  }

  get remoteAddress(): SocketAddress {
    return this.#inner.remoteAddress;
  }

  get localAddress(): SocketAddress {
    return this.#inner.localAddress;
  }

  get driver(): DriverName {
    return this.#inner.driver;
  }

  get closed(): boolean {
    return this.#inner.closed;
  }

  /** The facts below, with the client the header names. */
  get facts(): ConnectionFacts {
    if (this.#facts === undefined) {
      const below = this.#inner.facts;
      const h = this.proxyHeader;
      // Same key order as the runtime's plainFacts: one object shape for every layer.
      this.#facts =
        h.command === 'proxy'
          ? {
              secure: below.secure,
              alpnProtocol: below.alpnProtocol,
              servername: below.servername,
              peerCertificate: below.peerCertificate,
              clientAddress: h.source,
            }
          : below;
    }
    return this.#facts;
  }

  /** Takes the kept bytes, if any (the reader that gets them is the first in line). */
  #takeRest(): RestChunk | null {
    const rest = this.#rest;
    this.#rest = null;
    return this.#inner.closed ? null : rest;
  }

  recvTo(target: RecvTarget): void {
    const rest = this.#takeRest();
    if (rest === null) {
      this.#inner.recvTo(target);
      return;
    }
    // Never from inside recvTo (the contract): at the next microtask, like the runtime.
    queueMicrotask(() => target.onRecv(rest, undefined));
  }

  recv(options?: IoOptions): Promise<RecvChunk | null> {
    const rest = this.#takeRest();
    return rest === null ? this.#inner.recv(options) : Promise.resolve(rest);
  }

  async read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    const rest = this.#takeRest();
    if (rest === null) return this.#inner.read(buf, options);
    const n = Math.min(buf.byteLength, rest.bytes.byteLength);
    buf.set(rest.bytes.subarray(0, n));
    if (n < rest.bytes.byteLength) this.#rest = new RestChunk(rest.bytes.subarray(n));
    return [n, buf];
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const chunk = await this.recv();
      if (chunk === null) return;
      try {
        yield chunk.bytes;
      } finally {
        chunk.release();
      }
    }
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

  close(): Promise<void> {
    this.#rest = null;
    return this.#inner.close();
  }

  setNoDelay(enabled: boolean): void {
    this.#inner.setNoDelay(enabled);
  }
}
