/**
 * TlsStream: a ByteStream that speaks TLS over any other ByteStream (TCP or Unix, on the io_uring
 * or the legacy driver). Two record layers behind one API:
 * - In the ring (a uring driver stream, when `ring` is on): the ring carries the session
 *   (RingTlsPort.attachTls). Ciphertext is decrypted in the completion drain and readers get
 *   plaintext chunks of the ring's plaintext pool; writes are encrypted and sent by the ring;
 *   handshake flights and alerts go out without JavaScript. JavaScript hears of the handshake's
 *   end, close_notify and failures once each. No crossing beyond a plain stream's per request.
 * - Fed from JavaScript (legacy driver, wrapped streams, `ring` off): each received chunk of
 *   ciphertext crosses into the engine once (feed: plaintext out and anything to send back,
 *   together); each write or writev is encrypted in one crossing and sent as one write below.
 * Not for the handshake's policy (deadline, plain-HTTP hand-over, session cache): handshake.ts
 * decides those and calls openTlsStream.
 *
 * Reading is on demand: after the handshake, ciphertext is read from below only while a reader
 * waits, so a slow consumer stops the socket instead of buffering plaintext. Writes go out in
 * encryption order, one write below at a time (everything queued meanwhile goes as one writev).
 */
import { constants } from 'node:os';
import type { NativeTls, NativeTlsSession, TlsNegotiated } from '@loch/native';
import { pendingPromise, takeReject, takeResolve } from '@loch/service-async';
import {
  type ByteStream,
  type ConnectionFacts,
  type DriverName,
  deliverRecv,
  deliverWritten,
  type IoOptions,
  type IoResult,
  isLayeredStream,
  type RecvChunk,
  type RecvTarget,
  type RingTlsEvents,
  type RingTlsPort,
  RuntimeError,
  ringTlsPort,
  type SocketAddress,
  StreamForms,
  sentBytes,
  type WriteTarget,
} from '@loch/uring-runtime';
import {
  TlsAlertError,
  TlsCertificateError,
  type TlsError,
  TlsHandshakeError,
  TlsPlainHttpError,
  TlsProtocolError,
} from './errors.js';
import { HandshakeDeadline } from './internal/handshake-deadline.js';

const { ECANCELED, EPROTO } = constants.errno;

function ignoreWritten(): void {}
const IGNORE_WRITTEN: WriteTarget = { onWritten: ignoreWritten };

/** Plaintext buffer size: two full records. */
const PLAIN_SIZE = 32 * 1024;
/** Free plaintext buffers kept per thread. */
const PLAIN_KEEP = 64;
const freePlain: Uint8Array[] = [];

function takePlain(): Uint8Array {
  return freePlain.pop() ?? new Uint8Array(PLAIN_SIZE);
}

function givePlain(buf: Uint8Array): void {
  if (freePlain.length < PLAIN_KEEP) freePlain.push(buf);
}

/**
 * The JavaScript record layer's receive budget (legacy driver, issue 16): the ciphertext chunk
 * some plaintext chunks were decrypted from, given back to the stream below only once every one
 * of them was released. The runtime counts what a stream holds by the chunks it handed out, so
 * ciphertext released at once left the plaintext counted nowhere, and a stream whose reader keeps
 * its chunks read on without end (a flood held hundreds of MiB). Held this way, the socket below
 * pauses at the stream and worker caps as a plain one does; plaintext is never longer than its
 * ciphertext.
 */
class CipherHold {
  constructor(
    readonly chunk: RecvChunk,
    public pending: number,
  ) {}
  drop(): void {
    if (--this.pending === 0) this.chunk.release();
  }
}

/** Decrypted bytes in a pooled plaintext buffer; release() gives the buffer back. */
class PlainChunk implements RecvChunk {
  bytes: Uint8Array;
  #buf: Uint8Array | undefined;
  /** The ciphertext this came from, on the JavaScript record layer (CipherHold). */
  hold: CipherHold | undefined = undefined;
  constructor(bytes: Uint8Array, buf: Uint8Array) {
    this.bytes = bytes;
    this.#buf = buf;
  }
  release(): void {
    const buf = this.#buf;
    if (buf === undefined) return;
    this.#buf = undefined;
    givePlain(buf);
    const hold = this.hold;
    this.hold = undefined;
    hold?.drop();
  }
}

/** A TLS stream's facts: the stream sets closeNotified when the peer's close_notify arrives. */
type TlsFacts = { -readonly [K in keyof ConnectionFacts]-?: ConnectionFacts[K] };

/** What openTlsStream needs besides the stream and the session. */
export interface OpenOptions {
  readonly server: boolean;
  readonly handshakeTimeout: number;
  /** Server: leave the raw stream open on a plain-HTTP request (TlsPlainHttpError.stream). */
  readonly handOverPlainHttp: boolean;
  /** Client: called with each new session (ticket) the server sends. */
  readonly onSession: ((session: Uint8Array) => void) | undefined;
  /** Builds the timeout error for `handshakeTimeout` (handshake.ts owns the error's wording). */
  readonly timeoutError: (timeout: number, address: SocketAddress | undefined) => TlsError;
  /** Let the ring carry the session when the stream is a uring one (in-ring TLS). */
  readonly ring: boolean;
}

/**
 * In-ring TLS: what the ring tells a TlsStream. One small object per connection (its methods are
 * the prototype's), where an object literal of two arrow functions made three.
 */
class RingEvents implements RingTlsEvents {
  readonly #stream: TlsStream;
  constructor(stream: TlsStream) {
    this.#stream = stream;
  }
  onTlsEvent(flags: number): RuntimeError | undefined {
    return ringEvent(this.#stream, flags);
  }
  onTlsTransportEnd(error: RuntimeError | undefined): void {
    ringEnd(this.#stream, error);
  }
}

// TlsStream's private handlers, for RingEvents and the handshake deadline (set in TlsStream's
// static block).
let ringEvent: (stream: TlsStream, flags: number) => RuntimeError | undefined;
let ringEnd: (stream: TlsStream, error: RuntimeError | undefined) => void;
let handshakeExpired: (stream: TlsStream) => void;

let open: (
  inner: ByteStream,
  engine: NativeTls,
  session: NativeTlsSession,
  options: OpenOptions,
) => Promise<TlsStream>;

/**
 * Runs the handshake of `session` over `inner` and resolves with the TlsStream once it is done;
 * rejects with a typed TlsError (and closes `inner`, unless a plain-HTTP request is handed over).
 * For handshake.ts.
 */
export function openTlsStream(
  inner: ByteStream,
  engine: NativeTls,
  session: NativeTlsSession,
  options: OpenOptions,
): Promise<TlsStream> {
  return open(inner, engine, session, options);
}

/** A TLS connection over a ByteStream, itself a ByteStream. Made by tlsAccept and tlsConnect. */
export class TlsStream extends StreamForms {
  readonly #inner: ByteStream;
  readonly #engine: NativeTls;
  #session: NativeTlsSession | undefined;
  readonly #options: OpenOptions;
  /**
   * The JavaScript record layer's targets below (made on its first read and write: in the ring,
   * where the ring reads and writes, a connection never needs them).
   */
  #reader: RecvTarget | undefined = undefined;
  #writer: WriteTarget | undefined = undefined;

  /** Decrypted chunks not handed out yet, in order. */
  readonly #ready: PlainChunk[] = [];
  /** recvTo() targets waiting for plaintext, in call order. */
  readonly #waiting: RecvTarget[] = [];
  #innerReading = false;
  /** The peer sent close_notify, or the stream below ended after the handshake. */
  #ended = false;
  #closeNotifyReceived = false;
  #failure: RuntimeError | undefined = undefined;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;

  /** Ciphertext queued for the stream below, and the write target completed by each (or null). */
  #queued: Uint8Array[] = [];
  #queuedTargets: (WriteTarget | null)[] = [];
  /** Targets of the write in flight below. */
  #flightTargets: (WriteTarget | null)[] = [];
  /** An empty array to take #flightTargets' place when a write completes (three rotate). */
  #spareTargets: (WriteTarget | null)[] = [];
  #writing = false;

  /** The handshake promise's settlers until it settles (#settle). */
  #resolveHandshake: ((stream: TlsStream) => void) | undefined = undefined;
  #rejectHandshake: ((reason: unknown) => void) | undefined = undefined;
  #deadline: HandshakeDeadline<TlsStream> | undefined = undefined;
  #handshakeDone = false;
  /** What the handshake settled on (the engine's own object), for the getters. */
  #negotiated: TlsNegotiated | undefined = undefined;
  #facts: ConnectionFacts | undefined = undefined;
  /** #facts once the handshake made it: closeNotified is set here when close_notify arrives. */
  #tlsFacts: TlsFacts | undefined = undefined;
  /** In-ring TLS: the uring stream carrying the session (reads and writes go straight to it). */
  #port: RingTlsPort | undefined = undefined;

  static {
    open = (inner, engine, session, options) => {
      const stream = new TlsStream(inner, engine, session, options);
      // Its settlers parked, not closed over: a handshake allocates no executor or settle closure.
      const handshake = pendingPromise<TlsStream>();
      stream.#resolveHandshake = takeResolve<TlsStream>();
      stream.#rejectHandshake = takeReject();
      try {
        stream.#start();
      } catch (error) {
        // The handshake could not start: it fails now (rejected, deadline cancelled, the stream
        // below closed and the session freed) rather than when its deadline would have fired.
        stream.#fail(error as RuntimeError);
      }
      return handshake;
    };
    ringEvent = (stream, flags) => stream.#onRingEvent(flags);
    ringEnd = (stream, error) => stream.#onCiphertext(null, error);
    handshakeExpired = (stream) =>
      stream.#fail(stream.#options.timeoutError(stream.#options.handshakeTimeout, stream.#address()));
  }

  /** Use tlsAccept or tlsConnect. */
  private constructor(inner: ByteStream, engine: NativeTls, session: NativeTlsSession, options: OpenOptions) {
    super();
    this.#inner = inner;
    this.#engine = engine;
    this.#session = session;
    this.#options = options;
  }

  /** Starts the handshake under its deadline; #settle tells its outcome once. */
  #start(): void {
    this.#deadline = new HandshakeDeadline<TlsStream>(this, this.#options.handshakeTimeout, handshakeExpired);
    let port = this.#options.ring ? ringTlsPort(this.#inner) : undefined;
    // Behind a layer that framed the connection's start (a PROXY header): the ring can carry the
    // session on the socket below once this stream took the bytes that came behind the header.
    // Those are ciphertext (a ClientHello, whole or in part), fed here first; any answer is
    // ciphertext too and goes out raw, ahead of everything the ring sends.
    if (port === undefined && this.#options.ring && isLayeredStream(this.#inner)) {
      port = ringTlsPort(this.#inner.below);
      const received = port === undefined ? null : this.#inner.takeReceived();
      if (received !== null) {
        this.#process(received);
        if (this.#failure !== undefined || this.#closed) return;
      }
    }
    if (port !== undefined) {
      const attached = port.attachTls(this.#session!, new RingEvents(this));
      if (attached === 0) {
        // The ring drives the handshake (a client's ClientHello is already queued).
        this.#port = port;
        return;
      }
      if (attached === -EPROTO) {
        this.#fail(this.#engineError(null));
        return;
      }
      // Not possible on this stream (already read from, no plaintext pool): fed from JavaScript.
    }
    // A client speaks first (ClientHello); feeding nothing drives the handshake.
    if (!this.#options.server) this.#process(null);
    this.#pumpRead();
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

  /**
   * The stream below's facts with what TLS negotiated: secure, ALPN, SNI and the peer's
   * certificate (DER). The client address stays what the layer below found (e.g. PROXY).
   */
  get facts(): ConnectionFacts {
    return (this.#facts ??= this.#inner.facts);
  }

  /**
   * Where the records are processed: 'ring' when the io_uring ring carries the session (in-ring
   * TLS: decrypted in the completion drain, encrypted in the flush), 'javascript' when the engine
   * is fed from JavaScript (legacy driver, wrapped streams, `ring: false`).
   */
  get recordLayer(): 'ring' | 'javascript' {
    return this.#port !== undefined ? 'ring' : 'javascript';
  }

  /** 'TLSv1.2' or 'TLSv1.3'. */
  get protocol(): string {
    return this.#negotiated?.version ?? '';
  }

  /** The cipher suite's OpenSSL name. */
  get cipher(): string {
    return this.#negotiated?.cipher ?? '';
  }

  /** True when the handshake resumed an earlier session (ticket). */
  get sessionReused(): boolean {
    return this.#negotiated?.sessionReused ?? false;
  }

  /** The agreed ALPN protocol, or null. */
  get alpnProtocol(): string | null {
    return this.facts.alpnProtocol;
  }

  /** The server name the client sent (SNI), or null. */
  get servername(): string | null {
    return this.facts.servername;
  }

  /** The peer's certificate (DER), or null. */
  get peerCertificate(): Uint8Array | null {
    return this.facts.peerCertificate;
  }

  /**
   * True once the peer's close_notify arrived. An end of stream without it (a false here when
   * recv() gave null) means the peer or a middlebox cut the connection: a close-delimited body
   * read to that end may be truncated.
   */
  get closeNotifyReceived(): boolean {
    return this.#closeNotifyReceived;
  }

  get closed(): boolean {
    return this.#closed || this.#failure !== undefined;
  }

  /**
   * Write progress (ByteStream.sentBytes) is the stream below's: the ciphertext the kernel took
   * (fed from JavaScript, through the stream below's writes; in the ring, the ring's own count).
   */
  get sentBytes(): number {
    return sentBytes(this.#inner);
  }

  setNoDelay(enabled: boolean): void {
    this.#inner.setNoDelay(enabled);
  }

  // ---- receiving -------------------------------------------------------------------------

  recvTo(target: RecvTarget): void {
    if (this.#port !== undefined) {
      this.#port.recvTo(target);
      return;
    }
    if (this.#closed && this.#failure === undefined) {
      deliverRecv(target, null, this.#cancelled('recv'));
      return;
    }
    if (this.#waiting.length === 0 && this.#ready.length > 0) {
      deliverRecv(target, this.#ready.shift()!, undefined);
      return;
    }
    if (this.#failure !== undefined) {
      deliverRecv(target, null, this.#failure);
      return;
    }
    if (this.#closed) {
      deliverRecv(target, null, this.#cancelled('recv'));
      return;
    }
    if (this.#ended && this.#ready.length === 0) {
      deliverRecv(target, null, undefined);
      return;
    }
    this.#waiting.push(target);
    this.#pumpRead();
  }

  /** In the ring the uring stream's own recv() serves (its fast path); else StreamForms' over recvTo. */
  override recv(options?: IoOptions): Promise<RecvChunk | null> {
    if (this.#port !== undefined) return this.#port.recv(options);
    return super.recv(options);
  }

  /** StreamForms: plaintext already decrypted, when no reader waits before. */
  protected override takeReady(): RecvChunk | undefined {
    return !this.#closed && this.#waiting.length === 0 && this.#ready.length > 0
      ? this.#ready.shift()
      : undefined;
  }

  /** StreamForms: an aborted recv() takes its target back while no result is on the way. */
  protected withdrawRecv(target: RecvTarget): boolean {
    const i = this.#waiting.indexOf(target);
    if (i < 0) return false;
    this.#waiting.splice(i, 1);
    return true;
  }

  async read<B extends Uint8Array>(buf: B, options?: IoOptions): Promise<IoResult<B>> {
    if (this.#port !== undefined) return this.#port.read(buf, options);
    const chunk =
      !this.#closed && this.#waiting.length === 0 && this.#ready.length > 0
        ? this.#ready.shift()!
        : await this.recv(options);
    if (chunk === null) return [0, buf];
    const n = Math.min(buf.byteLength, chunk.bytes.byteLength);
    buf.set(chunk.bytes.subarray(0, n));
    if (n < chunk.bytes.byteLength) {
      // The rest stays first in line.
      (chunk as PlainChunk).bytes = chunk.bytes.subarray(n);
      this.#ready.unshift(chunk as PlainChunk);
    } else chunk.release();
    return [n, buf];
  }

  /** Asks the stream below for ciphertext when the handshake or a reader needs it. */
  #pumpRead(): void {
    if (this.#innerReading || this.#closed || this.#failure !== undefined || this.#ended) return;
    if (this.#handshakeDone && this.#waiting.length === 0) return;
    this.#innerReading = true;
    this.#inner.recvTo((this.#reader ??= { onRecv: (chunk, error) => this.#onCiphertext(chunk, error) }));
  }

  #onCiphertext(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    this.#innerReading = false;
    if (this.#closed || this.#failure !== undefined) {
      chunk?.release();
      return;
    }
    if (error !== undefined) {
      this.#fail(
        this.#handshakeDone
          ? error
          : new TlsHandshakeError(`the connection failed during the handshake: ${error.message}`, {
              address: this.#address(),
              cause: error,
            }),
      );
      return;
    }
    if (chunk === null) {
      if (!this.#handshakeDone) {
        this.#fail(
          new TlsHandshakeError('the peer closed the connection during the handshake', {
            address: this.#address(),
          }),
        );
        return;
      }
      this.#ended = true;
      this.#deliverReady();
      return;
    }
    const ready = this.#ready;
    const first = ready.length;
    this.#process(chunk.bytes);
    // The ciphertext stays held while plaintext made from it is (CipherHold).
    if (ready.length > first) {
      const hold = new CipherHold(chunk, ready.length - first);
      for (let i = first; i < ready.length; i++) ready[i]!.hold = hold;
    } else chunk.release();
    this.#deliverReady();
  }

  /** One crossing per chunk: feed it, keep the plaintext, queue what must be sent back. */
  #process(ciphertext: Uint8Array | null): void {
    const session = this.#session!;
    const info = this.#engine.info;
    const flags = this.#engine.flags;
    let input = ciphertext;
    for (;;) {
      const buf = takePlain();
      const out = session.feed(input, buf);
      input = null;
      const n = info[0]!;
      const state = info[1]!;
      if (out !== undefined) this.#queue(out, null);
      if (n > 0) this.#ready.push(new PlainChunk(buf.subarray(0, n), buf));
      else givePlain(buf);
      if ((state & flags.failed) !== 0) {
        this.#fail(this.#engineError(ciphertext));
        return;
      }
      if ((state & flags.newSession) !== 0) {
        const bytes = session.session();
        if (bytes !== undefined) this.#options.onSession?.(bytes);
      }
      if ((state & flags.handshakeJustDone) !== 0) this.#onHandshakeDone();
      if ((state & flags.peerClosed) !== 0) this.#onCloseNotify();
      if ((state & flags.morePlaintext) === 0) break;
    }
    this.#pumpWrite();
  }

  /**
   * In-ring TLS: a state change the ring reported. Returns the error the stream's readers get (a
   * failure after the handshake); the stream below then closes on a later turn, after they got it.
   */
  #onRingEvent(state: number): RuntimeError | undefined {
    if (this.#closed || this.#failure !== undefined) return undefined;
    const session = this.#session!;
    const flags = this.#engine.flags;
    if ((state & flags.failed) !== 0) {
      const error = this.#engineError(null);
      const handedOver = error instanceof TlsPlainHttpError && error.stream !== undefined;
      if (this.#handshakeDone) {
        this.#failure = error;
        this.#stopDeadline();
        this.#closed = true;
        this.#closing = new Promise<void>((resolve) => setImmediate(resolve))
          .then(() => this.#closeInner())
          .catch(() => undefined);
        return error;
      }
      this.#fail(error);
      return handedOver ? undefined : error;
    }
    if ((state & flags.newSession) !== 0) {
      const bytes = session.session();
      if (bytes !== undefined) this.#options.onSession?.(bytes);
    }
    if ((state & flags.handshakeJustDone) !== 0) {
      this.#port!.tlsHandshakeDone();
      this.#onHandshakeDone();
    }
    if ((state & flags.peerClosed) !== 0) this.#onCloseNotify();
    return undefined;
  }

  /** The peer's close_notify: the end of its data, authenticated. */
  #onCloseNotify(): void {
    this.#closeNotifyReceived = true;
    this.#ended = true;
    if (this.#tlsFacts !== undefined) this.#tlsFacts.closeNotified = true;
  }

  #onHandshakeDone(): void {
    this.#handshakeDone = true;
    this.#stopDeadline();
    const n = this.#session!.negotiated();
    this.#negotiated = n;
    const below = this.#inner.facts;
    // Same key order as the runtime's plainFacts: one object shape for every layer. closeNotified
    // is live, not a snapshot (HTTP reads it when a close-delimited body ends, without importing
    // tls), and a data property that #onCloseNotify sets, never a getter: an accessor in an
    // object literal gives every connection a hidden class of its own, allocated in V8's old
    // space, and through it the getter's closure kept the whole connection (TlsStream, the
    // stream below, their promises) alive through every scavenge until a full GC: ~2.4 KB
    // promoted per handshake and a major GC every few thousand handshakes.
    const facts: TlsFacts = {
      secure: true,
      alpnProtocol: n.alpnProtocol === '' ? null : n.alpnProtocol,
      servername: n.servername === '' ? null : n.servername,
      peerCertificate: n.peerCertificate ?? null,
      clientAddress: below.clientAddress,
      closeNotified: this.#closeNotifyReceived,
    };
    this.#tlsFacts = facts;
    this.#facts = facts;
    this.#settle(undefined);
  }

  /** Settles the handshake promise (once): with this stream, or rejected with `error`. */
  #settle(error: TlsError | RuntimeError | undefined): void {
    const resolve = this.#resolveHandshake;
    const reject = this.#rejectHandshake;
    if (resolve === undefined || reject === undefined) return;
    this.#resolveHandshake = this.#rejectHandshake = undefined;
    if (error === undefined) resolve(this);
    else reject(error);
  }

  /** Hands ready plaintext (or the end) to waiting readers; reads on if some still wait. */
  #deliverReady(): void {
    const waiting = this.#waiting;
    const ready = this.#ready;
    while (waiting.length > 0 && ready.length > 0) deliverRecv(waiting.shift()!, ready.shift()!, undefined);
    if (waiting.length > 0 && this.#ended) {
      while (waiting.length > 0) deliverRecv(waiting.shift()!, null, undefined);
    }
    this.#pumpRead();
  }

  // ---- writing ---------------------------------------------------------------------------

  /**
   * StreamForms' write primitive (writeTo, write, writeAll, writev build on it). An abort while
   * the write is queued or in flight closes the stream: a TLS record stream cannot drop an
   * encrypted record and go on.
   */
  protected sendTo(
    data: Uint8Array | readonly Uint8Array[],
    target: WriteTarget,
    signal: AbortSignal | undefined,
  ): void {
    if (signal === undefined) {
      this.#send(data, target);
      return;
    }
    const onAbort = () => void this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#send(data, {
      onWritten(error) {
        signal.removeEventListener('abort', onAbort);
        target.onWritten(error);
      },
    });
  }

  #send(data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void {
    if (this.#failure !== undefined) {
      deliverWritten(target, this.#failure);
      return;
    }
    if (this.#closed) {
      deliverWritten(target, this.#cancelled('write'));
      return;
    }
    if (this.#port !== undefined) {
      // Encrypted and sent by the ring, in order with everything written before.
      this.#port.writeTo(data, target);
      return;
    }
    const out = this.#session!.encrypt(data);
    if ((this.#engine.info[1]! & this.#engine.flags.failed) !== 0) {
      this.#fail(this.#engineError(null));
      deliverWritten(target, this.#failure);
      return;
    }
    if (out === undefined) {
      // Nothing to send (empty data): done once what is queued before it is.
      if (!this.#writing && this.#queued.length === 0) deliverWritten(target, undefined);
      else this.#queue(new Uint8Array(0), target);
      return;
    }
    this.#queue(out, target);
    this.#pumpWrite();
  }

  #queue(bytes: Uint8Array, target: WriteTarget | null): void {
    this.#queued.push(bytes);
    this.#queuedTargets.push(target);
  }

  /** Sends everything queued as one write below, if none is in flight. */
  #pumpWrite(): void {
    if (this.#writing || this.#queued.length === 0 || this.#closed) return;
    const batch = this.#queued;
    const targets = this.#queuedTargets;
    this.#queued = [];
    this.#queuedTargets = this.#flightTargets;
    this.#flightTargets = targets;
    this.#writing = true;
    this.#inner.writeTo(
      batch.length === 1 ? batch[0]! : batch,
      (this.#writer ??= { onWritten: (error) => this.#onFlushed(error) }),
    );
  }

  #onFlushed(error: RuntimeError | undefined): void {
    // Detach the completed write's targets first: a target may write again from onWritten, and
    // that write must queue behind (or start) the next batch, never join this list.
    const done = this.#flightTargets;
    this.#flightTargets = this.#spareTargets;
    this.#spareTargets = done;
    this.#writing = false;
    if (error === undefined) this.#pumpWrite();
    for (let i = 0; i < done.length; i++) {
      const target = done[i];
      if (target === null || target === undefined) continue;
      try {
        target.onWritten(error);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
    done.length = 0;
    if (error !== undefined && !this.#closed) this.#fail(error);
  }

  // ---- ending ----------------------------------------------------------------------------

  /**
   * Sends close_notify after every queued write, then half-closes the stream below (the peer
   * reads end of stream); reading still works.
   */
  shutdown(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const port = this.#port;
    if (port !== undefined) {
      return new Promise<void>((resolve, reject) => {
        port.tlsCloseNotify({
          onWritten: (error) => {
            if (error !== undefined) reject(error);
            else this.#inner.shutdown().then(resolve, reject);
          },
        });
      });
    }
    const notify = this.#session!.shutdown();
    if (notify === undefined) return this.#inner.shutdown();
    return new Promise<void>((resolve, reject) => {
      this.#queue(notify, {
        onWritten: (error) => {
          if (error !== undefined) reject(error);
          else this.#inner.shutdown().then(resolve, reject);
        },
      });
      this.#pumpWrite();
    });
  }

  /**
   * Closes: sends close_notify when nothing else is being written (a peer that stopped reading
   * never holds close() up), then closes the stream below. Pending receives and queued writes
   * fail with ECANCELED. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const port = this.#port;
    if (port !== undefined) {
      // close_notify goes out behind the queued writes; the close that follows does not wait for
      // it (a peer that stopped reading never holds close() up).
      if (this.#handshakeDone && this.#failure === undefined) port.tlsCloseNotify(IGNORE_WRITTEN);
      this.#closed = true;
      this.#stopDeadline();
      if (this.#rejectHandshake !== undefined) this.#settle(this.#cancelled('close'));
      this.#closing = this.#closeInner();
      return this.#closing;
    }
    const notify =
      this.#handshakeDone && this.#failure === undefined && !this.#writing && this.#session !== undefined
        ? this.#session.shutdown()
        : undefined;
    this.#closed = true;
    this.#stopDeadline();
    this.#cancelPending(this.#cancelled('close'));
    this.#closing =
      notify === undefined
        ? this.#closeInner()
        : new Promise<void>((resolve) => {
            this.#inner.writeTo(notify, { onWritten: () => resolve() });
          }).then(() => this.#closeInner());
    return this.#closing;
  }

  async #closeInner(): Promise<void> {
    try {
      await this.#inner.close();
    } finally {
      this.#session?.destroy();
      this.#session = undefined;
      const ready = this.#ready;
      for (let i = 0; i < ready.length; i++) ready[i]!.release();
      ready.length = 0;
    }
  }

  #stopDeadline(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
  }

  /** Settles waiting readers and queued writers with `error`. */
  #cancelPending(error: RuntimeError): void {
    for (const target of this.#waiting.splice(0)) deliverRecv(target, null, error);
    const targets = this.#queuedTargets;
    this.#queued = [];
    this.#queuedTargets = [];
    for (const target of targets) if (target !== null) deliverWritten(target, error);
  }

  /**
   * Fails the connection: readers, queued writers and a pending handshake hear `error`; an alert
   * the engine queued is sent when the stream below is free; then it is closed (unless a
   * plain-HTTP request is handed over).
   */
  #fail(error: RuntimeError): void {
    if (this.#failure !== undefined || this.#closed) return;
    this.#failure = error;
    this.#stopDeadline();
    const alert = this.#queued.length > 0 && !this.#writing ? this.#queued : [];
    const handOver = error instanceof TlsPlainHttpError && error.stream !== undefined;
    // In the ring, a handed-over stream is plain again; the ring already sent any alert.
    if (handOver) this.#port?.tlsDetach();
    this.#cancelPending(error);
    this.#settle(error);
    if (handOver) return;
    this.#closed = true;
    // The alert the engine queued (if the stream below is free), then the close.
    this.#closing = (
      alert.length > 0
        ? new Promise<void>((resolve) => this.#inner.writeTo(alert, { onWritten: () => resolve() }))
        : Promise.resolve()
    )
      .then(() => this.#closeInner())
      .catch(() => undefined);
  }

  /** The typed error for the engine's failure. */
  #engineError(input: Uint8Array | null): TlsError {
    const e = this.#session!.error();
    const options = { address: this.#address() };
    if (e === undefined) return new TlsProtocolError('TLS failure', options);
    switch (e.kind) {
      case 2:
        return new TlsCertificateError(e.message, options);
      case 3:
        return new TlsAlertError(e.alert, e.message, options);
      case 4:
        return new TlsPlainHttpError(
          input === null ? this.#takeRawBytes() : input.slice(),
          this.#options.handOverPlainHttp ? this.#inner : undefined,
          options,
        );
      default:
        return this.#handshakeDone
          ? new TlsProtocolError(e.message, options)
          : new TlsHandshakeError(e.message, options);
    }
  }

  /** In-ring TLS: the bytes the ring passed through raw (a plain-HTTP request), copied. */
  #takeRawBytes(): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let chunk = this.#port?.takeQueued(); chunk !== undefined; chunk = this.#port?.takeQueued()) {
      parts.push(chunk.bytes.slice());
      total += chunk.bytes.byteLength;
      chunk.release();
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    return out;
  }

  #cancelled(syscall: string): RuntimeError {
    return RuntimeError.fromErrno(-ECANCELED, syscall, this.#address());
  }

  #address(): SocketAddress | undefined {
    try {
      return this.#inner.remoteAddress;
    } catch {
      return undefined;
    }
  }
}
