/**
 * One HTTP/1.1 connection of a server: the request loop, request body reads and response
 * writes, as an explicit state machine (H1State below). I/O goes through the stream's
 * promise-free recvTo/writeTo only, with the connection as the target of both: a parked
 * keep-alive connection is one pending recvTo, a response write one writeTo. The promises that
 * callers wait on (a handler's request body read, a streamed response part's write) are built
 * on those two in one place each: recvChunk() and send().
 *
 * The request loop (run) parks between requests (returns, keeping nothing suspended) and is
 * started again by the pending receive's result (wake); a response whose last write is left in
 * flight with its body's end unseen resumes the loop from onWritten. Keep-alive per RFC 9112
 * §9.3, pipelined requests answered in order (answers to requests already buffered go out in
 * one write), Expect: 100-continue, unread body drained up to a budget, lingering close.
 * A 101 answer to a request that asked to upgrade hands the stream to the response's tunnel.
 *
 * The protocol-neutral part (accept, handler, drain, deadline sweep) is the HttpServer
 * (../server.ts); what h1 connections of one server share is H1ServerShared.
 */

import { pendingPromise, takeReject, takeResolve } from '@loch/service-async';
import { EMPTY_BODY, FixedBody, type HttpBody, nextNow } from '../body.js';
import { HttpError, HttpParseError, HttpTimeoutError, type HttpTimeoutKind } from '../errors.js';
import type { HttpHeaders } from '../headers.js';
import { closeBody, plainResponse } from '../internal/answers.js';
import { writeProgressMark, writeProgressSince } from '../internal/write-progress.js';
import { giveBack, lendBytes, lentSlab, type WriteSlab } from '../internal/write-slab.js';
import type { HttpRequest, HttpResponse, HttpServerRequest, HttpTunnel } from '../message.js';
import type { HttpServer, ServedConnection } from '../server.js';
import type { HttpStream, StreamChunk } from '../transport.js';
import { DecodeEvent, type RequestDecoder } from './decoder.js';
import { asksToClose, type ResponseHeadOptions, responseFraming, statusLineBytes } from './encoder.js';
import { IncomingRequestBody, type RequestBodySource } from './request-body.js';
import {
  DEFERRED,
  type ResponseSink,
  returnIterator,
  writeStreamBody,
  writeStreamRest,
} from './response-writer.js';
import type { H1ServerShared } from './server-shared.js';

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
/** The HTTP/2 client preface (RFC 9113 §3.4): a plain connection starting with it is h2c. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const EOF = -1;
/**
 * No deadline armed (in `deadlineAt`): 0, a Smi like the armed values (the server's clock is
 * whole ms), so V8 keeps the field a Smi in the object. +Infinity, or a fractional time, made it a
 * double field, boxed: a 16-byte HeapNumber per connection (readings-2026-12-05b.md, section 3).
 */
const NO_DEADLINE = 0;
/** No held-back answers: shared by every connection (never pushed to), so idle ones hold no array. */
const NO_PENDING: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];
/** Most bytes of responses held back for one batched write to pipelining clients. */
const MAX_PENDING_BYTES = 64 * 1024;
/** Lingering close: how long and how much to read away after the last answer. */
const LINGER_MS = 500;
const LINGER_BYTES = 1024 * 1024;

/** What writeResponse answers: whether the connection stays open, or DEFERRED. */
type ResponseOutcome = boolean | typeof DEFERRED;

/**
 * The states of an HTTP/1.1 server connection. Transitions:
 *   Idle -> Head (a byte of the next request) -> Handling (its head decoded; the handler runs and
 *   may read the body) -> Responding (the answer is written) -> Idle (keep-alive; through Draining
 *   when the body was not read to its end, through Deferred when the answer's last write is in
 *   flight with the body's end unseen) | Tunnel (a 101 answered an upgrade) | Closing -> Closed.
 * Any failure goes to Closing (answered with its status when nothing of a response is out yet).
 */
export const H1State = {
  /** Waiting for the first byte of the next request: parked on one recvTo, or filling a head with nothing buffered. */
  Idle: 0,
  /** Reading a request head. */
  Head: 1,
  /** The handler has the request; its body is read on demand. */
  Handling: 2,
  /** The answer is being written. */
  Responding: 3,
  /** The answer's last write is in flight with its body's end unseen: onWritten resumes the loop. */
  Deferred: 4,
  /** Reading away the rest of a request body the handler left, to keep the connection. */
  Draining: 5,
  /** A 101 answered an upgrade: the stream belongs to the response's tunnel until it ends. */
  Tunnel: 6,
  /** Flushing, lingering and closing. */
  Closing: 7,
  /** Gone; the server forgot it. */
  Closed: 8,
} as const;
export type H1State = (typeof H1State)[keyof typeof H1State];

/** How run() starts: fresh, after an idle recvTo delivered (a chunk or EOF), or after it failed. */
const WAKE_NONE = 0;
const WAKE_CHUNK = 1;
const WAKE_ERROR = 2;
/** run() resumes after a response whose last write was left in flight with its body's end unseen. */
const WAKE_RESUME = 3;
/** loop() starts with a first event the fast lane (run) already decoded (`ev0`). */
const WAKE_EVENT = 4;
/** loop() starts by failing with `error` (thrown in the fast lane): answered, then closed. */
const WAKE_THROW = 5;

/** What the connection's pending recvTo (at most one) is for: see ServerConnection.onRecv. */
const READ_NONE = 0;
/** Parked between requests: the result starts the request loop again (wake). */
const READ_PARKED = 1;
/** A promise waits for it (recvChunk: a head or body wait, the lingering close). */
const READ_AWAITED = 2;
/** Its waiter gave up (a head or body deadline answered 408): the result is dropped. */
const READ_ABANDONED = 3;
/**
 * Armed while a handler works on a bodiless request (the server has onAbandoned): an end of
 * stream or a failure means the client went away; bytes (a pipelined request) are kept. The
 * next read of the loop takes the pending receive (or its result) over: see requestRecv().
 */
const READ_WATCH = 4;

/** H1ServerConnection.flags bits. */
const F_EXPECT_CONTINUE = 1;
const F_CONTINUE_SENT = 2;
const F_BODY_DONE = 4;
const F_RESPONSE_STARTED = 8;
const F_FAILED = 16;
const F_WRITING = 32;
const F_TAIL_KEEP_ALIVE = 64;
const F_ABANDONED = 128;
const F_EARLY = 256;
const F_SNIFFING = 512;
const F_WATCHED = 1024;
/**
 * flags above the F_* bits, each field a fixed-size number (one Smi instead of four fields of
 * 8 bytes on an idle connection): the state (H1State), what the pending receive is for (READ_*),
 * the armed deadline's kind (KINDS), and how many pieces of `lent`'s slab this connection holds.
 */
const STATE_SHIFT = 11;
const STATE_MASK = 0xf << STATE_SHIFT;
const READING_SHIFT = 15;
const READING_MASK = 0x7 << READING_SHIFT;
const KIND_SHIFT = 18;
const KIND_MASK = 0x7 << KIND_SHIFT;
const LENT_SHIFT = 21;
const LENT_ONE = 1 << LENT_SHIFT;
const LENT_BITS = LENT_ONE - 1;
/** Most pieces counted (flags stays a small integer); past it answers get buffers of their own. */
const LENT_MAX = 1023;
/** Deadline kinds by their code in flags. */
const KINDS: readonly HttpTimeoutKind[] = ['idle', 'head', 'body', 'write', 'response'];

function kindCode(kind: HttpTimeoutKind): number {
  switch (kind) {
    case 'idle':
      return 0;
    case 'head':
      return 1;
    case 'body':
      return 2;
    case 'write':
      return 3;
    default:
      return 4;
  }
}

/**
 * What few HTTP/1.1 connections need: failures kept for a later look, the tail of a DEFERRED
 * response, a watch receive's early result, a first read that was a prefix of the HTTP/2
 * preface. Made when a connection sets one of them (a DEFERRED tail: an answer whose body came
 * as one chunk over COALESCE_BYTES, 3.5 KiB), dropped when the connection parks with all of them
 * back to their defaults: an idle connection holds a null. Exported for its test
 * (rare-part.test.ts). @internal
 */
export class H1Rare {
  /** The deadline that expired (the connection ends), or null. */
  expired: HttpTimeoutKind | null = null;
  bodyError: unknown = null;
  writeFailure: unknown = null;
  /**
   * A response whose last write is in flight while its body's end is unseen (DEFERRED): the body's
   * iterator, the body, and a failure of the tail for the resumed loop.
   */
  tail: AsyncIterator<Uint8Array> | null = null;
  tailBody: HttpBody | null = null;
  tailError: unknown = null;
  /** The request and response of that tail, for the body's end (HttpServerOptions.onBodyEnd). */
  tailRequest: HttpRequest | null = null;
  tailResponse: HttpResponse | null = null;
  /** A watch receive's result not taken yet: chunk, error. */
  earlyChunk: StreamChunk | null = null;
  earlyError: unknown = undefined;
  sniffed: Uint8Array | null = null;

  /** Every field is back to its default: the part can go (see park()). */
  get empty(): boolean {
    return (
      this.expired === null &&
      this.bodyError === null &&
      this.writeFailure === null &&
      this.tail === null &&
      this.tailBody === null &&
      this.tailError === null &&
      this.tailRequest === null &&
      this.tailResponse === null &&
      this.earlyChunk === null &&
      this.earlyError === undefined &&
      this.sniffed === null
    );
  }
}

/**
 * The settlers of the promises a connection's callers wait on (a handler's body read, a streamed
 * answer's write), the last body read and the answers held back for pipelined requests: made
 * when one is set, dropped once all are empty again, so a connection between requests (and one
 * whose requests never wait: the fast lane) holds none.
 */
class H1Waits {
  readResolve: ((c: StreamChunk | null) => void) | null = null;
  readReject: ((e: unknown) => void) | null = null;
  writeResolve: (() => void) | null = null;
  writeReject: ((e: unknown) => void) | null = null;
  bodyWait: Promise<number> | null = null;
  /** Encoded responses held back while more pipelined requests were buffered, and their size. */
  pending: Uint8Array[] = NO_PENDING;
  pendingBytes = 0;

  get empty(): boolean {
    return (
      this.readResolve === null &&
      this.readReject === null &&
      this.writeResolve === null &&
      this.writeReject === null &&
      this.bodyWait === null &&
      this.pending === NO_PENDING
    );
  }
}

/** One accepted HTTP/1.1 connection. */
export class H1ServerConnection<Cx> implements ServedConnection, ResponseSink, RequestBodySource {
  /** When the armed wait expires (the server's clock, whole ms), or NO_DEADLINE. */
  private deadlineAt = NO_DEADLINE;
  /** Its index in the server's open connections (live-connections.ts). @internal */
  liveSlot = -1;
  /** The stream's write progress when the write deadline was armed (internal/write-progress.ts). */
  private sentMark = 0;
  /** While parked: the server's never-fed idle decoder; the real one went back to the pool. */
  private decoder: RequestDecoder;
  private chunk: StreamChunk | null = null;
  /**
   * The connection's yes/no state, one bit each (F_*; read and written through the accessors
   * below): ten fields of 8 bytes each were one eighth of an idle connection's object. Above
   * them the state, the receive's purpose, the deadline's kind and the lent count (see
   * STATE_SHIFT): Idle, READ_NONE, 'idle', 0.
   */
  private flags = F_BODY_DONE;
  /**
   * The current request's body while its handler may read it; null once the server took it
   * over (to drain it, or at the end of the connection): reads of a taken body fail. @internal
   */
  reqBody: IncomingRequestBody | null = null;
  /** Requests answered on this connection. */
  private served = 0;
  /** What few connections need (H1Rare), made the first time one does; null until then. */
  private rare: H1Rare | null = null;
  /** The settlers and body wait of a request that waits (H1Waits), while there are any. */
  private waits: H1Waits | null = null;
  /** The request whose handler works on its answer (only with onAbandoned), else null. */
  private handling: HttpServerRequest<Cx> | null = null;
  /**
   * The write slab whose pieces this connection's answers were encoded into (see lend()), while
   * it holds any (their count is in flags, LENT_ONE each); null otherwise (an idle connection).
   */
  private lent: WriteSlab | null = null;

  constructor(
    private readonly server: HttpServer<Cx>,
    private readonly stream: HttpStream,
    /** The connection's context; null when the server makes one per request (contextPerRequest). */
    private readonly context: Cx | null,
    private readonly onClosed: ((stream: HttpStream) => void) | null,
  ) {
    this.decoder = server.h1.takeDecoder();
    this.sniffing = server.sniffsPreface(stream);
    try {
      stream.setNoDelay(true);
    } catch {
      // Unix streams and adapters may not support it.
    }
  }

  /**
   * The context for a request (or a rejection): the connection's, or a new one when the server
   * makes them per request (contextPerRequest: an idle connection then holds none).
   */
  private contextNow(): Cx {
    return this.context ?? this.server.makeContext(this.stream);
  }

  /** What the server's h1 connections share (read through the server: one field less each). */
  private get h1(): H1ServerShared {
    return this.server.h1;
  }

  /** Where the exchange is (see H1State). */
  get state(): H1State {
    return ((this.flags & STATE_MASK) >> STATE_SHIFT) as H1State;
  }
  set state(state: H1State) {
    this.flags = (this.flags & ~STATE_MASK) | (state << STATE_SHIFT);
  }

  /** What the pending recvTo is for (READ_*). */
  private get reading(): number {
    return (this.flags & READING_MASK) >> READING_SHIFT;
  }
  private set reading(how: number) {
    this.flags = (this.flags & ~READING_MASK) | (how << READING_SHIFT);
  }

  /** The kind of the deadline armed (or last armed); arm() is its one writer. */
  private get deadlineKind(): HttpTimeoutKind {
    return KINDS[(this.flags & KIND_MASK) >> KIND_SHIFT]!;
  }

  /** The deadline that expired (the connection ends), or null (kept in the rare part). */
  private get expired(): HttpTimeoutKind | null {
    return this.rare === null ? null : this.rare.expired;
  }
  private set expired(kind: HttpTimeoutKind | null) {
    if (kind !== null || this.rare !== null) this.rarePart().expired = kind;
  }

  private flag(bit: number): boolean {
    return (this.flags & bit) !== 0;
  }

  private setFlag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit;
  }

  /** The current request asked for 100-continue. */
  private get expectContinue(): boolean {
    return this.flag(F_EXPECT_CONTINUE);
  }
  private set expectContinue(on: boolean) {
    this.setFlag(F_EXPECT_CONTINUE, on);
  }
  /** The 100 Continue went out. */
  private get continueSent(): boolean {
    return this.flag(F_CONTINUE_SENT);
  }
  private set continueSent(on: boolean) {
    this.setFlag(F_CONTINUE_SENT, on);
  }
  /** The current request's body was read to its end (or it has none). */
  private get bodyDone(): boolean {
    return this.flag(F_BODY_DONE);
  }
  private set bodyDone(on: boolean) {
    this.setFlag(F_BODY_DONE, on);
  }
  /** Something of the current answer went out: a failure can no longer be answered. */
  private get responseStarted(): boolean {
    return this.flag(F_RESPONSE_STARTED);
  }
  private set responseStarted(on: boolean) {
    this.setFlag(F_RESPONSE_STARTED, on);
  }
  /** The connection ends on a failure (the peer may still be sending). */
  private get failed(): boolean {
    return this.flag(F_FAILED);
  }
  private set failed(on: boolean) {
    this.setFlag(F_FAILED, on);
  }
  /**
   * A writeTo is in flight. A final response write is not waited for: the request loop goes on
   * (parks) and onWritten settles it.
   */
  private get writing(): boolean {
    return this.flag(F_WRITING);
  }
  private set writing(on: boolean) {
    this.setFlag(F_WRITING, on);
  }
  /** A DEFERRED response's keep-alive decision. */
  private get tailKeepAlive(): boolean {
    return this.flag(F_TAIL_KEEP_ALIVE);
  }
  private set tailKeepAlive(on: boolean) {
    this.setFlag(F_TAIL_KEEP_ALIVE, on);
  }
  /** The watched request's client went away: its answer is not sent, the connection ends. */
  private get abandoned(): boolean {
    return this.flag(F_ABANDONED);
  }
  private set abandoned(on: boolean) {
    this.setFlag(F_ABANDONED, on);
  }
  /** A watch receive's result is not taken yet (the next read gets it: earlyChunk, earlyError). */
  private get early(): boolean {
    return this.flag(F_EARLY);
  }
  private set early(on: boolean) {
    this.setFlag(F_EARLY, on);
  }
  /** The first read is checked for the HTTP/2 client preface (the server's protocol choice). */
  private get sniffing(): boolean {
    return this.flag(F_SNIFFING);
  }
  private set sniffing(on: boolean) {
    this.setFlag(F_SNIFFING, on);
  }

  /**
   * The request whose client is watched (READ_WATCH) while its handler works, else null: only
   * ever `handling` (a bit says whether it is watched).
   */
  private get watched(): HttpServerRequest<Cx> | null {
    return this.flag(F_WATCHED) ? this.handling : null;
  }
  private set watched(req: HttpServerRequest<Cx> | null) {
    this.setFlag(F_WATCHED, req !== null);
  }

  /** The H1Waits part, made now if it was not. */
  private waitsPart(): H1Waits {
    if (this.waits === null) this.waits = new H1Waits();
    return this.waits;
  }

  /** After a settler or wait was set to null: the part goes once it holds nothing. */
  private dropWaits(): void {
    if (this.waits?.empty) this.waits = null;
  }

  /** The settlers of recvChunk()'s promise while READ_AWAITED. */
  private get readResolve(): ((c: StreamChunk | null) => void) | null {
    return this.waits === null ? null : this.waits.readResolve;
  }
  private set readResolve(f: ((c: StreamChunk | null) => void) | null) {
    if (f !== null) this.waitsPart().readResolve = f;
    else if (this.waits !== null) {
      this.waits.readResolve = null;
      this.dropWaits();
    }
  }
  private get readReject(): ((e: unknown) => void) | null {
    return this.waits === null ? null : this.waits.readReject;
  }
  private set readReject(f: ((e: unknown) => void) | null) {
    if (f !== null) this.waitsPart().readReject = f;
    else if (this.waits !== null) {
      this.waits.readReject = null;
      this.dropWaits();
    }
  }
  /** Whoever waits for the write in flight (send(), afterWrite()). */
  private get writeResolve(): (() => void) | null {
    return this.waits === null ? null : this.waits.writeResolve;
  }
  private set writeResolve(f: (() => void) | null) {
    if (f !== null) this.waitsPart().writeResolve = f;
    else if (this.waits !== null) {
      this.waits.writeResolve = null;
      this.dropWaits();
    }
  }
  private get writeReject(): ((e: unknown) => void) | null {
    return this.waits === null ? null : this.waits.writeReject;
  }
  private set writeReject(f: ((e: unknown) => void) | null) {
    if (f !== null) this.waitsPart().writeReject = f;
    else if (this.waits !== null) {
      this.waits.writeReject = null;
      this.dropWaits();
    }
  }
  /** The last wait of a request body read (the handler's read in flight, if not settled). */
  private get bodyWait(): Promise<number> | null {
    return this.waits === null ? null : this.waits.bodyWait;
  }
  private set bodyWait(p: Promise<number> | null) {
    if (p !== null) this.waitsPart().bodyWait = p;
    else if (this.waits !== null) {
      this.waits.bodyWait = null;
      this.dropWaits();
    }
  }

  /** Encoded responses held back while more pipelined requests were buffered (in H1Waits). */
  private get pending(): Uint8Array[] {
    return this.waits === null ? NO_PENDING : this.waits.pending;
  }
  private set pending(bufs: Uint8Array[]) {
    if (bufs !== NO_PENDING) this.waitsPart().pending = bufs;
    else if (this.waits !== null) {
      this.waits.pending = NO_PENDING;
      this.waits.pendingBytes = 0;
      this.dropWaits();
    }
  }
  /** Their size (0 while none are held). */
  private get pendingBytes(): number {
    return this.waits === null ? 0 : this.waits.pendingBytes;
  }
  private set pendingBytes(n: number) {
    if (n !== 0) this.waitsPart().pendingBytes = n;
    else if (this.waits !== null) this.waits.pendingBytes = 0;
  }

  /** The H1Rare part, made now if it was not. */
  private rarePart(): H1Rare {
    if (this.rare === null) this.rare = new H1Rare();
    return this.rare;
  }

  /** The failure of the current request's body as its reader saw it (a parse error, a timeout). */
  private get bodyError(): unknown {
    return this.rare === null ? null : this.rare.bodyError;
  }
  private set bodyError(e: unknown) {
    if (e !== null || this.rare !== null) this.rarePart().bodyError = e;
  }
  /** A write that failed while nobody waited for it: reported once, by whoever looks next. */
  private get writeFailure(): unknown {
    return this.rare === null ? null : this.rare.writeFailure;
  }
  private set writeFailure(e: unknown) {
    if (e !== null || this.rare !== null) this.rarePart().writeFailure = e;
  }
  /** A DEFERRED response's body iterator (see H1Rare.tail). */
  private get tail(): AsyncIterator<Uint8Array> | null {
    return this.rare === null ? null : this.rare.tail;
  }
  private set tail(it: AsyncIterator<Uint8Array> | null) {
    if (it !== null || this.rare !== null) this.rarePart().tail = it;
  }
  private get tailError(): unknown {
    return this.rare === null ? null : this.rare.tailError;
  }
  private set tailError(e: unknown) {
    if (e !== null || this.rare !== null) this.rarePart().tailError = e;
  }
  private get earlyChunk(): StreamChunk | null {
    return this.rare === null ? null : this.rare.earlyChunk;
  }
  private set earlyChunk(c: StreamChunk | null) {
    if (c !== null || this.rare !== null) this.rarePart().earlyChunk = c;
  }
  private get earlyError(): unknown {
    return this.rare === null ? undefined : this.rare.earlyError;
  }
  private set earlyError(e: unknown) {
    if (e !== undefined || this.rare !== null) this.rarePart().earlyError = e;
  }
  /** A first read that was a strict prefix of the preface, kept until it is told apart. */
  private get sniffed(): Uint8Array | null {
    return this.rare === null ? null : this.rare.sniffed;
  }
  private set sniffed(bytes: Uint8Array | null) {
    if (bytes !== null || this.rare !== null) this.rarePart().sniffed = bytes;
  }

  /** Starts serving: the request loop's first run. */
  start(): void {
    this.run(WAKE_NONE, null, null);
  }

  /** When the armed wait expires, for the server's sweep: +Infinity when none is armed. */
  get deadline(): number {
    const at = this.deadlineAt;
    return at === NO_DEADLINE ? Number.POSITIVE_INFINITY : at;
  }

  /** Deadline check from the server's sweep timer. */
  expire(): void {
    if (this.expired !== null) return;
    const kind = this.deadlineKind;
    if (kind === 'write') {
      // An idle-progress deadline: a write the kernel took bytes of since runs again from now.
      const moved = writeProgressSince(this.stream, this.sentMark);
      if (moved >= 0) {
        this.sentMark = moved;
        this.deadlineAt = this.server.now + this.server.timeouts.write;
        return;
      }
    }
    this.expired = kind;
    this.deadlineAt = NO_DEADLINE;
    if (kind === 'idle' || kind === 'write') {
      // Nothing will be answered: closing settles the pending operation.
      void this.stream.close().catch(() => {});
    } else if (this.reading === READ_AWAITED) {
      // A head or body wait: its waiter ends now (the answer is a 408), while the receive stays
      // pending until the connection closes; its result is dropped then (onRecv). It ends as an
      // end of stream, which fill() turns into the one HttpTimeoutError of this expiry (`expired`
      // is set): an error made here as well cost a second stack capture per connection, 10,000
      // of them when a slowloris burst expires together.
      this.reading = READ_ABANDONED;
      const resolve = this.readResolve!;
      this.readResolve = null;
      this.readReject = null;
      resolve(null);
    }
  }

  /** Waiting for a next request: nothing of one read, no answer being written. */
  get idle(): boolean {
    return this.state === H1State.Idle && this.decoder.idle && !this.writing;
  }

  /** Closes the connection now if it waits for a next request (server shutdown). */
  shutdownIfIdle(): void {
    // A final answer still in flight goes out first (onWritten asks again).
    if (this.idle) {
      this.expired = 'idle';
      void this.stream.close().catch(() => {});
    }
  }

  /** Closes the stream now (the end of a shutdown grace): the run ends as if the peer had gone. */
  close(): Promise<void> {
    return this.stream.close().catch(() => {});
  }

  private timeoutOf(kind: HttpTimeoutKind): number {
    const t = this.server.timeouts;
    return kind === 'idle' ? t.idle : kind === 'head' ? t.head : kind === 'body' ? t.body : t.write;
  }

  /**
   * Arms the deadline of `kind`: at `at` when given (a head's, kept across its reads), else the
   * kind's timeout from now. The one writer of the deadline's kind (flags' KIND bits: written
   * here, not through a setter, which was a call per arm, 3 a request).
   */
  private arm(kind: HttpTimeoutKind, at = NO_DEADLINE): void {
    const ms = this.timeoutOf(kind);
    this.flags = (this.flags & ~KIND_MASK) | (kindCode(kind) << KIND_SHIFT);
    this.deadlineAt = at !== NO_DEADLINE ? at : ms > 0 ? this.server.now + ms : NO_DEADLINE;
    if (kind === 'write' && ms > 0) this.sentMark = writeProgressMark(this.stream);
  }

  /**
   * Waits for input and polls again: NeedMore never comes back, EOF (-1) does when the peer
   * closed between messages. Throws HttpParseError, RuntimeError, or the timeout (also for a
   * wait after a deadline expired: nothing more is read then).
   */
  async fill(kind: 'head' | 'body'): Promise<number> {
    const d = this.decoder;
    // When the head deadline of this head expires: armed at its first byte and kept across
    // reads, so a client that trickles a byte at a time (slowloris) does not extend it, as
    // nginx's client_header_timeout. Body and idle deadlines run per read. NO_DEADLINE until
    // the first head read arms one (arm() then computes it).
    let headBy = NO_DEADLINE;
    for (;;) {
      if (this.chunk !== null) {
        this.chunk.release();
        this.chunk = null;
      }
      // A write that failed unobserved ends the connection; answers held back for pipelined
      // requests go out before waiting for more. A write in flight goes on (bodies stream both
      // ways at once).
      if (this.writeFailure !== null) await this.afterWrite();
      if (this.pending.length > 0) await this.flushPending();
      const idle = kind === 'head' && d.idle;
      // A head's deadline, once armed, is kept across its reads (headBy).
      this.arm(idle ? 'idle' : kind, kind === 'head' && !idle ? headBy : NO_DEADLINE);
      if (kind === 'head' && !idle) headBy = this.deadlineAt;
      if (kind === 'head') this.state = idle ? H1State.Idle : H1State.Head;
      if (idle && this.server.closing) return EOF;
      let c: StreamChunk | null;
      try {
        // After a deadline nothing more is read.
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
        c = await this.recvChunk();
      } catch (e) {
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
        throw e;
      } finally {
        // Something came (or the wait ended): a head is being read.
        if (this.state === H1State.Idle) this.state = H1State.Head;
        this.deadlineAt = NO_DEADLINE;
      }
      if (c === null) {
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
        const ev = d.finish();
        return ev === DecodeEvent.End ? ev : EOF;
      }
      this.chunk = c;
      d.feed(c.bytes);
      const ev = d.poll();
      if (ev !== DecodeEvent.NeedMore) return ev;
    }
  }

  /**
   * The promise form of a receive, built on recvTo (the connection is the target): what fill()
   * and the lingering close wait on. One at a time, never beside a parked receive.
   */
  private recvChunk(): Promise<StreamChunk | null> {
    const p = pendingPromise<StreamChunk | null>();
    this.readResolve = takeResolve();
    this.readReject = takeReject();
    this.requestRecv(READ_AWAITED);
    return p;
  }

  /**
   * Asks for the next receive result for `purpose` (READ_AWAITED, READ_PARKED): a watch receive
   * still pending serves it, a watch result already in comes at the next microtask (as a
   * recvTo's would), else one recvTo.
   */
  private requestRecv(purpose: number): void {
    // `reading` read and written, `early` read as bit operations: the parked lane's calls (run()
    // -> park() -> here) are past TurboFan's inlining budget for run(), a call per accessor.
    const flags = this.flags;
    this.flags = (flags & ~READING_MASK) | (purpose << READING_SHIFT);
    if ((flags & READING_MASK) === READ_WATCH << READING_SHIFT) return;
    if ((flags & F_EARLY) !== 0) {
      const c = this.earlyChunk;
      const error = this.earlyError;
      this.early = false;
      this.earlyChunk = null;
      this.earlyError = undefined;
      // Rare (a pipelined request or the end came during a handler's wait): a closure is fine.
      queueMicrotask(() => this.onRecv(c, error));
      return;
    }
    this.stream.recvTo(this);
  }

  /**
   * While the handler works on a request whose body is read (none, or read to its end), a
   * receive watches for the client going away (server.onAbandoned). Only when nothing else
   * reads and nothing is buffered (the next request's bytes go to the decoder only after this
   * answer), and not for an upgrade (its tunnel reads the stream). Before its body's end a
   * client that leaves fails the body read instead.
   */
  private watch(req: HttpServerRequest<Cx>): void {
    if (
      this.reading !== READ_NONE ||
      this.early ||
      !this.bodyDone ||
      this.decoder.hasInput ||
      this.expired !== null ||
      this.stream.closed
    )
      return;
    this.watched = req;
    this.reading = READ_WATCH;
    this.stream.recvTo(this);
  }

  /**
   * Waits for a next request without a suspended async function: one recvTo whose result
   * starts run() again. The wait is 'idle' (the sweep closes the stream), as in fill(). Only
   * when nothing is buffered, held back or closing.
   */
  private park(): void {
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    // With the last answer still in flight its write deadline holds; onWritten arms the idle one.
    // `writing` read and `state` written as bit operations (run()'s inlining budget: see run()).
    this.arm((this.flags & F_WRITING) !== 0 ? 'write' : 'idle');
    this.flags = (this.flags & ~STATE_MASK) | (H1State.Idle << STATE_SHIFT);
    // The connection itself is the receive's target (onRecv): no promise, reaction or closure
    // per parked connection.
    try {
      this.requestRecv(READ_PARKED);
    } catch (e) {
      this.reading = READ_NONE;
      this.state = H1State.Head;
      this.deadlineAt = NO_DEADLINE;
      throw e;
    }
    // Between messages a decoder holds no state of this connection: lend it back.
    this.h1.spareDecoder(this.decoder);
    this.decoder = this.h1.idleDecoder;
    // Nor does anything else of the last exchange: an idle connection keeps none of it (issue 18).
    // A body still here was read to its end (else drainBody took it), so a late read of it ends
    // as before (its iterator is done); its last read's wait is settled. One test each while
    // neither was made (a bodiless request, an answer that was not DEFERRED).
    if (this.reqBody !== null) {
      this.reqBody = null;
      this.bodyWait = null;
    }
    if (this.rare?.empty) this.rare = null;
  }

  /**
   * The outcome of the pending recvTo (RecvTarget): a parked connection wakes (the next request
   * starts, or the end), a waiting recvChunk() settles, an abandoned wait's result is dropped.
   * @internal
   */
  onRecv(c: StreamChunk | null, error: unknown): void {
    const how = this.reading;
    this.reading = READ_NONE;
    if (how === READ_PARKED) {
      if (error !== undefined) this.wake(WAKE_ERROR, null, error);
      else if (this.sniffing && c !== null) {
        const rest = this.sniff(c);
        if (rest !== null) this.wake(WAKE_CHUNK, rest, null);
      } else this.wake(WAKE_CHUNK, c, null);
    } else if (how === READ_WATCH) {
      // Kept for the loop's next read; an end or a failure is the client gone.
      this.early = true;
      this.earlyChunk = c;
      this.earlyError = error;
      const req = this.watched;
      this.watched = null;
      if (req !== null && (c === null || error !== undefined)) {
        this.abandoned = true;
        this.server.abandoned(req);
      }
    } else if (how === READ_AWAITED) {
      const resolve = this.readResolve!;
      const reject = this.readReject!;
      this.readResolve = null;
      this.readReject = null;
      if (error !== undefined) reject(error);
      else resolve(c);
    } else {
      c?.release();
    }
  }

  /**
   * The connection's first bytes: the HTTP/2 client preface hands the stream to an h2 session
   * (null returned), a strict prefix of it waits for more (null), anything else is HTTP/1.1
   * (the chunk to decode is returned). Once per connection.
   */
  private sniff(c: StreamChunk): StreamChunk | null {
    const prior = this.sniffed;
    let bytes = c.bytes;
    if (prior !== null) {
      bytes = new Uint8Array(prior.length + c.bytes.length);
      bytes.set(prior, 0);
      bytes.set(c.bytes, prior.length);
    }
    const n = Math.min(bytes.length, H2_PREFACE.length);
    for (let i = 0; i < n; i++) {
      if (bytes[i] !== H2_PREFACE[i]) {
        this.sniffing = false;
        this.sniffed = null;
        return prior === null ? c : { bytes, release: () => c.release() };
      }
    }
    if (bytes.length >= H2_PREFACE.length) {
      this.sniffing = false;
      this.sniffed = null;
      const received = prior === null ? bytes.slice() : bytes;
      c.release();
      this.state = H1State.Closed;
      this.deadlineAt = NO_DEADLINE;
      this.server.switchToH2(this, this.stream, this.contextNow(), this.onClosed, received);
      return null;
    }
    this.sniffed = prior === null ? bytes.slice() : bytes;
    c.release();
    this.reading = READ_PARKED;
    this.stream.recvTo(this);
    return null;
  }

  private wake(how: number, c: StreamChunk | null, error: unknown): void {
    this.state = H1State.Head;
    if (!this.writing) this.deadlineAt = NO_DEADLINE;
    this.decoder = this.h1.takeDecoder();
    this.run(how, c, error);
  }

  /** The tail of fill() for a parked wait: the first event of the next request, or NeedMore. */
  private woke(how: number, c: StreamChunk | null, error: unknown): number {
    if (how === WAKE_ERROR) {
      if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
      throw error;
    }
    const d = this.decoder;
    if (c === null) {
      if (this.expired !== null) throw new HttpTimeoutError(this.expired, this.timeoutOf(this.expired));
      const ev = d.finish();
      return ev === DecodeEvent.End ? ev : EOF;
    }
    this.chunk = c;
    d.feed(c.bytes);
    return d.poll();
  }

  /**
   * The request loop's fast lane, not an async function: a bodiless request whose head is at
   * hand (no upgrade, no unsupported Expect) is handled here, its handler's promise waited for by
   * a pooled AnswerWaiter (one `then`, no suspended frame: an async function's frame, promise
   * and resume closures were ~580 B per request), and its answer written by respond(); between
   * requests it parks. Everything else (a head in pieces, a body, an upgrade, an end, a failure,
   * a wait for a write) is loop()'s, the general request loop, handed over at the point reached.
   * Never throws: a failure is loop()'s (answered, then the connection closes).
   */
  run(how: number, c: StreamChunk | null, error: unknown): void {
    const server = this.server;
    try {
      for (;;) {
        if (how === WAKE_RESUME) {
          // The tail of a DEFERRED response: anything but a clean keep-alive is loop()'s.
          if (
            this.writeFailure !== null ||
            this.tailError !== null ||
            !this.tailKeepAlive ||
            this.stream.closed ||
            !this.bodyDone
          ) {
            void this.loop(how, null, null, 0);
            return;
          }
          how = WAKE_NONE;
          this.state = H1State.Responding;
        } else if (how === WAKE_ERROR || (how === WAKE_CHUNK && c === null)) {
          void this.loop(how, c, error, 0);
          return;
        }
        const d = this.decoder;
        // responseStarted = false, as one bit operation: this lane's flag writes are not left to
        // setFlag (a call per write here: TurboFan's inlining budget for run() is spent before it).
        this.flags &= ~F_RESPONSE_STARTED;
        let ev: number;
        if (how === WAKE_CHUNK) {
          ev = this.woke(how, c, null);
          how = WAKE_NONE;
          c = null;
        } else {
          ev = d.poll();
          if (ev === DecodeEvent.NeedMore && d.idle && this.pending.length === 0 && !server.closing) {
            this.park();
            return;
          }
        }
        if (ev !== DecodeEvent.Head || d.framing !== 'none' || d.expectUnsupported || d.upgrade) {
          void this.loop(WAKE_EVENT, null, null, ev);
          return;
        }
        // As loop() sets a request up, for a bodiless one.
        const req = d.message!;
        d.message = null;
        // state = Handling, as a bit operation (see responseStarted above).
        this.flags = (this.flags & ~STATE_MASK) | (H1State.Handling << STATE_SHIFT);
        this.served++;
        let keepAlive =
          d.keepAlive &&
          !server.closing &&
          req.method !== 'CONNECT' &&
          (server.maxRequests === 0 || this.served < server.maxRequests);
        // expectContinue from the decoder, continueSent off, bodyDone on: one write of the flags.
        this.flags =
          (this.flags & ~(F_EXPECT_CONTINUE | F_CONTINUE_SENT)) |
          F_BODY_DONE |
          (d.expectContinue ? F_EXPECT_CONTINUE : 0);
        req.body = EMPTY_BODY;
        // The End event of a bodiless message.
        d.poll();
        let res: HttpResponse;
        try {
          req.context = this.contextNow();
          const out = server.handler.call(req as HttpServerRequest<Cx>);
          if (out instanceof Promise) {
            if (server.onAbandoned !== null) {
              this.handling = req as HttpServerRequest<Cx>;
              this.watch(this.handling);
            }
            this.h1.waitFor(out, this as H1ServerConnection<unknown>, req, keepAlive);
            return;
          }
          res = out;
        } catch (e) {
          server.onError(e);
          res = this.errorResponse(e);
          if (e instanceof HttpParseError || this.expired !== null) keepAlive = false;
        }
        if (!this.respond(req, res, keepAlive)) return;
      }
    } catch (e) {
      void this.loop(WAKE_THROW, null, e, 0);
    }
  }

  /** The handler's promise for a fast-lane request resolved (AnswerWaiter). Never throws. @internal */
  answerCame(req: HttpRequest, res: HttpResponse, keepAlive: boolean): void {
    this.handling = null;
    this.watched = null;
    try {
      if (this.respond(req, res, keepAlive)) this.run(WAKE_NONE, null, null);
    } catch (e) {
      void this.loop(WAKE_THROW, null, e, 0);
    }
  }

  /**
   * The handler's promise for a fast-lane request rejected (AnswerWaiter): the server's onFailed
   * answers it, else (or when that throws) a 500, as loop() does. Never throws. @internal
   */
  answerFailed(req: HttpRequest, error: unknown, keepAlive: boolean): void {
    this.handling = null;
    this.watched = null;
    try {
      const server = this.server;
      let res: HttpResponse;
      try {
        if (server.onFailed === null) throw error;
        res = server.onFailed(req as HttpServerRequest<Cx>, error);
      } catch (e) {
        server.onError(e);
        res = this.errorResponse(e);
        if (e instanceof HttpParseError || this.expired !== null) keepAlive = false;
      }
      if (this.respond(req, res, keepAlive)) this.run(WAKE_NONE, null, null);
    } catch (e) {
      void this.loop(WAKE_THROW, null, e, 0);
    }
  }

  /**
   * The answer to a fast-lane request (bodiless, no upgrade), as loop() writes one: true when the
   * loop goes on at once (the write is left in flight, the connection kept); else whatever waits
   * took over (a DEFERRED tail, a write to wait for, an interim status's body to release, the
   * connection's end).
   */
  private respond(req: HttpRequest, res: HttpResponse, keepAlive: boolean): boolean {
    const server = this.server;
    if (
      res === null ||
      typeof res !== 'object' ||
      typeof res.status !== 'number' ||
      res.headers === undefined ||
      res.body === undefined
    ) {
      const e = new HttpError('ERR_HTTP_INVALID_RESPONSE', 500, 'handler returned no valid HttpResponse');
      server.onError(e);
      res = this.errorResponse(e);
      if (this.expired !== null) keepAlive = false;
    } else if (res.status < 200) {
      // An interim status (a 101 needs an upgrade request): its body is let go first.
      void this.interimAnswer(req, res, keepAlive);
      return false;
    }
    if (this.abandoned) {
      // The client went away while the handler worked (onAbandoned was told): nobody reads an answer.
      void this.dropAnswer(res);
      return false;
    }
    if (server.onAnswered !== null) server.answered(req as HttpServerRequest<Cx>, res);
    this.state = H1State.Responding;
    let w: ResponseOutcome | Promise<ResponseOutcome>;
    try {
      w = this.writeResponse(req, res, keepAlive);
    } catch (e) {
      void this.afterResponse(null, e);
      return false;
    }
    if (w === DEFERRED) {
      // onWritten resumes the loop (run(WAKE_RESUME)); nothing is held meanwhile.
      this.state = H1State.Deferred;
      return false;
    }
    if (typeof w !== 'boolean') {
      void this.afterResponse(w, null);
      return false;
    }
    if (!w || this.stream.closed) {
      void this.cleanup();
      return false;
    }
    return true;
  }

  /** A fast-lane handler answered an interim status: its body is let go, then a 500 goes out. */
  private async interimAnswer(req: HttpRequest, res: HttpResponse, keepAlive: boolean): Promise<void> {
    await closeBody(res.body);
    const e = new HttpError(
      'ERR_HTTP_INVALID_RESPONSE',
      500,
      `handler returned interim status ${res.status}`,
    );
    try {
      this.server.onError(e);
      if (this.expired !== null) keepAlive = false;
      if (this.respond(req, this.errorResponse(e), keepAlive)) this.run(WAKE_NONE, null, null);
    } catch (e) {
      void this.loop(WAKE_THROW, null, e, 0);
    }
  }

  /** A fast-lane request's client went away: its answer is let go, the connection ends. */
  private async dropAnswer(res: HttpResponse): Promise<void> {
    await closeBody(res.body);
    await this.cleanup();
  }

  /**
   * The waiting tail of a fast-lane answer, as loop()'s: waits for the write `w` (then goes on,
   * or ends the connection), or answers `failure` (nothing of the answer went out: it could not
   * be encoded, or its body failed at its first step) and closes.
   */
  private async afterResponse(w: Promise<ResponseOutcome> | null, failure: unknown): Promise<void> {
    let parked = false;
    try {
      try {
        if (w === null) throw failure;
        const outcome = await w;
        if (outcome === DEFERRED) {
          this.state = H1State.Deferred;
          parked = true;
          return;
        }
        if (!outcome || this.stream.closed) return;
      } catch (e) {
        if (this.responseStarted || this.stream.closed) throw e;
        this.server.onError(e);
        await this.writeUnsentFailure(e);
        return;
      }
      parked = true;
      this.run(WAKE_NONE, null, null);
    } catch (e) {
      await this.answerFailure(e);
    } finally {
      if (!parked) await this.cleanup();
    }
  }

  /**
   * The general request loop (see run(), its fast lane, which hands over here with the point it
   * reached: `how` WAKE_EVENT with the first event `ev0` decoded, WAKE_THROW with a failure).
   * Between requests it parks (returns, keeping nothing suspended) and is started again by
   * wake(); the connection's cleanup runs once, when the loop really ends.
   */
  async loop(how: number, c: StreamChunk | null, error: unknown, ev0: number): Promise<void> {
    const d = this.decoder;
    const server = this.server;
    let parked = false;
    try {
      for (;;) {
        if (how === WAKE_THROW) throw error;
        if (how === WAKE_RESUME) {
          // The tail of a DEFERRED response: what the loop does after a response.
          how = WAKE_NONE;
          this.state = H1State.Responding;
          if (this.writeFailure !== null) throw this.writeFailure;
          const failure = this.tailError;
          if (failure !== null) {
            this.tailError = null;
            this.responseStarted = true;
            throw failure;
          }
          if (!this.tailKeepAlive || this.stream.closed) break;
          if (!this.bodyDone && !(await this.drainBody())) break;
        }
        // Nothing of the next response is out yet: a failure from here on can still be answered.
        this.responseStarted = false;
        let ev: number;
        if (how === WAKE_EVENT) {
          ev = ev0;
          how = WAKE_NONE;
        } else if (how !== WAKE_NONE) {
          ev = this.woke(how, c, error);
          how = WAKE_NONE;
          c = null;
          error = null;
        } else {
          ev = d.poll();
          if (ev === DecodeEvent.NeedMore && d.idle && this.pending.length === 0 && !server.closing) {
            this.park();
            parked = true;
            return;
          }
        }
        if (ev === DecodeEvent.NeedMore) ev = await this.fill('head');
        if (ev === EOF) break;
        const req = d.message!;
        // The request lives in this frame from here on: an idle connection keeps no last request.
        d.message = null;
        this.state = H1State.Handling;
        // CONNECT turns a connection into a tunnel, which this core does not run: answer, then close.
        this.served++;
        let keepAlive =
          d.keepAlive &&
          !server.closing &&
          req.method !== 'CONNECT' &&
          (server.maxRequests === 0 || this.served < server.maxRequests);
        this.responseStarted = false;
        this.expectContinue = d.expectContinue;
        this.continueSent = false;
        if (d.expectUnsupported) {
          await this.reject(417, 'ERR_HTTP_EXPECTATION_FAILED', req, null);
          break;
        }
        if (d.framing === 'none') {
          this.bodyDone = true;
          req.body = EMPTY_BODY;
          // The End event of a bodiless message.
          d.poll();
        } else {
          this.bodyDone = false;
          this.bodyWait = null;
          this.bodyError = null;
          req.body = this.reqBody = new IncomingRequestBody(
            this,
            d.framing === 'length' ? d.contentLength : -1,
          );
        }
        let res: HttpResponse;
        // Only a bodiless request that asked to upgrade (Connection: upgrade + Upgrade) may get a 101.
        const askedUpgrade = d.upgrade && d.framing === 'none' && req.method !== 'CONNECT';
        let tunnel: HttpTunnel | null = null;
        try {
          // The decoder types the context as unknown; from here on it is this connection's.
          req.context = this.contextNow();
          const out = server.handler.call(req as HttpServerRequest<Cx>);
          // A synchronous handler's answer needs no trip through the microtask queue.
          if (out instanceof Promise) {
            if (server.onAbandoned !== null && !askedUpgrade) {
              this.handling = req as HttpServerRequest<Cx>;
              this.watch(this.handling);
            }
            // No `finally` here: it costs the request loop's frame registers, saved at every wait.
            try {
              res = await out;
            } catch (e) {
              this.handling = null;
              this.watched = null;
              // The server's failure hook answers a rejection (a throw of its own goes on to the 500).
              if (server.onFailed === null) throw e;
              res = server.onFailed(req as HttpServerRequest<Cx>, e);
            }
            this.handling = null;
            this.watched = null;
          } else res = out;
          if (
            res === null ||
            typeof res !== 'object' ||
            typeof res.status !== 'number' ||
            res.headers === undefined ||
            res.body === undefined
          ) {
            throw new HttpError('ERR_HTTP_INVALID_RESPONSE', 500, 'handler returned no valid HttpResponse');
          }
          if (res.status === 101 && res.tunnel !== undefined && askedUpgrade) {
            // A real protocol switch: the request asked for it and the answer says who takes over.
            tunnel = res.tunnel;
          } else if (res.status < 200) {
            // 100 Continue is the server's business; a 101 needs an upgrade request and a tunnel.
            // The answer will not be sent: let go of its body.
            await closeBody(res.body);
            throw new HttpError(
              'ERR_HTTP_INVALID_RESPONSE',
              500,
              `handler returned interim status ${res.status}`,
            );
          }
        } catch (e) {
          server.onError(e);
          res = this.errorResponse(e);
          // A broken body or an expired deadline leaves the stream unusable; a handler bug does not.
          if (e instanceof HttpParseError || this.expired !== null || !this.bodyDone) keepAlive = false;
          tunnel = null;
        }
        if (this.abandoned) {
          // The client went away while the handler worked (onAbandoned was told): nobody reads an answer.
          if (tunnel === null) await closeBody(res.body);
          break;
        }
        if (server.onAnswered !== null) server.answered(req as HttpServerRequest<Cx>, res);
        if (tunnel !== null) {
          // A 101 carries no body: whatever the answer holds is let go unsent (runTunnel).
          this.bodyEnded(req, res, 0, null);
          await this.runTunnel(res, tunnel);
          break;
        }
        this.state = H1State.Responding;
        try {
          const w = this.writeResponse(req, res, keepAlive);
          const outcome = typeof w === 'boolean' || w === DEFERRED ? w : await w;
          if (outcome === DEFERRED) {
            // onWritten resumes the loop (run(WAKE_RESUME)); this call holds nothing meanwhile.
            this.state = H1State.Deferred;
            parked = true;
            return;
          }
          keepAlive = outcome;
        } catch (e) {
          // Nothing of the answer went out: it could not be encoded (bad status, reason or
          // header), or its body failed at its first step. Answer that instead, and close.
          if (this.responseStarted || this.stream.closed) throw e;
          server.onError(e);
          await this.writeUnsentFailure(e);
          break;
        }
        if (!keepAlive || this.stream.closed) break;
        if (!this.bodyDone && !(await this.drainBody())) break;
      }
    } catch (e) {
      await this.answerFailure(e);
    } finally {
      if (!parked) await this.cleanup();
    }
  }

  /**
   * Writes the 101 head, then hands the stream and the bytes the client sent after its request
   * head to `tunnel` and waits until the tunnel ends; the connection closes after it. No server
   * deadline runs meanwhile (the tunnel has its own), and a server close waits for it.
   */
  private async runTunnel(res: HttpResponse, tunnel: HttpTunnel): Promise<void> {
    // keepAlive true: the head must not say `connection: close` (the handler's Connection and
    // Upgrade fields go out as they are).
    const w = this.writeResponse(null, res, true);
    if (typeof w !== 'boolean' && w !== DEFERRED) await w;
    // The 101 may have been held back behind answers to pipelined requests: all go out first.
    if (this.pending.length > 0) await this.flushPending();
    await this.afterWrite();
    this.state = H1State.Tunnel;
    this.deadlineAt = NO_DEADLINE;
    // What followed the head in the same read belongs to the new protocol (copied: the pooled
    // chunk goes back now).
    const rest = this.decoder.takeRemaining().slice();
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    try {
      await tunnel(this.stream, rest);
    } catch (e) {
      this.server.onError(e);
    }
  }

  /** The end of a connection: flush, linger if needed, close, and tell the server. */
  private async cleanup(): Promise<void> {
    const d = this.decoder;
    const tunnelled = this.state === H1State.Tunnel;
    this.state = H1State.Closing;
    // Reads of the body from here on fail (the stream is about to close).
    this.reqBody = null;
    try {
      if (this.chunk !== null) {
        this.chunk.release();
        this.chunk = null;
      }
      if (this.earlyChunk !== null) {
        this.earlyChunk.release();
        this.earlyChunk = null;
      }
      if (this.writing || this.writeFailure !== null) {
        try {
          await this.afterWrite();
        } catch (e) {
          // The last answer's write failed after the loop moved on: report it as the loop would have.
          if (!(e instanceof HttpTimeoutError)) this.server.onError(e);
        }
      }
      this.deadlineAt = NO_DEADLINE;
      if (this.pending.length > 0) await this.flushPending().catch(() => {});
      // Closing with unread input makes the kernel send RST, which can destroy the answer
      // before the client read it: half-close first and read the rest away for a moment.
      if (
        !tunnelled &&
        !this.stream.closed &&
        this.expired === null &&
        (!this.bodyDone || d.hasInput || this.failed)
      ) {
        await this.lingerClose();
      }
      await this.stream.close().catch(() => {});
    } finally {
      this.state = H1State.Closed;
      this.server.release(this);
      try {
        this.onClosed?.(this.stream);
      } catch (e) {
        this.server.onError(e);
      }
    }
  }

  /**
   * Half-closes and discards what the peer still sends, for at most LINGER_MS (then the stream
   * is closed, which ends the pending receive) or LINGER_BYTES.
   */
  private async lingerClose(): Promise<void> {
    const stream = this.stream;
    const timer = setTimeout(() => void stream.close().catch(() => {}), LINGER_MS);
    try {
      await stream.shutdown();
      // A request body read still in flight (its handler answered without waiting for it) keeps
      // its receive: let it settle first (it fails once the timer closes the stream).
      if (this.bodyWait !== null) await this.bodyWait.catch(() => {});
      for (let budget = LINGER_BYTES; budget > 0 && !stream.closed; ) {
        const c = await this.recvChunk();
        if (c === null) break;
        budget -= c.bytes.length;
        c.release();
      }
    } catch {
      // Reset, cancelled or timed out: the stream closes next anyway.
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes the responses held back while pipelined requests were still buffered. */
  private flushPending(): Promise<void> {
    const bufs = this.pending;
    this.pending = NO_PENDING;
    this.pendingBytes = 0;
    return this.send(bufs);
  }

  /**
   * Starts one writeTo under the write deadline; onWritten settles it. Only when no write is in
   * flight. No promise: send() adds one for a caller that waits. @internal
   */
  startWrite(out: Uint8Array | Uint8Array[]): void {
    this.arm('write');
    this.writing = true;
    this.stream.writeTo(out, this);
  }

  /**
   * HeadLender: `n` bytes for an answer's head (and what is copied behind it), a piece of the
   * thread's write slab (internal/write-slab.ts) when no write is in flight. The piece goes to the
   * next write (started at once, or held back in `pending` and written by flushPending), and is
   * given back when a write completes with nothing held back (onWritten): every piece lent by
   * then went out in that write or one before it. @internal
   */
  lend(n: number): Uint8Array {
    // While a write is in flight its completion would give back a piece that is not in it.
    if (this.writing || this.flags >>> LENT_SHIFT >= LENT_MAX) return Buffer.allocUnsafe(n);
    const out = lendBytes(n);
    const slab = lentSlab();
    if (slab !== null) {
      if (slab !== this.lent) {
        // Pieces of another slab still held (answers held back across a slab's end): their count
        // is dropped, so that slab is never reused (the GC takes it): never overwritten early.
        this.lent = slab;
        this.flags &= LENT_BITS;
      }
      this.flags += LENT_ONE;
    }
    return out;
  }

  /** The outcome of the write in flight (writeTo target). Never throws. @internal */
  onWritten(error: unknown): void {
    this.writing = false;
    const lent = this.lent;
    if (lent !== null && this.pending.length === 0) {
      // The kernel is done with every piece lent so far (sent, or the write failed or was cut).
      this.lent = null;
      const count = this.flags >>> LENT_SHIFT;
      this.flags &= LENT_BITS;
      giveBack(lent, count);
    }
    const resolve = this.writeResolve;
    const reject = this.writeReject;
    this.writeResolve = null;
    this.writeReject = null;
    let failure: unknown;
    if (error !== undefined) {
      failure = this.expired === 'write' ? new HttpTimeoutError('write', this.server.timeouts.write) : error;
      // The connection is done for: closing also ends a parked receive.
      void this.stream.close().catch(() => {});
      this.deadlineAt = NO_DEADLINE;
    } else if (this.state === H1State.Idle) {
      if (this.server.closing) this.shutdownIfIdle();
      else this.arm('idle');
    } else if (this.deadlineKind === 'write') {
      // Another wait (a head or body read) may have armed its own deadline meanwhile: keep it.
      this.deadlineAt = NO_DEADLINE;
    }
    if (resolve !== null) {
      if (failure === undefined) resolve();
      else reject!(failure);
    } else if (failure !== undefined) {
      this.writeFailure = failure;
    }
    const tail = this.tail;
    if (tail !== null) {
      this.tail = null;
      this.finishTail(tail, failure);
    }
  }

  /** A DEFERRED response's last write is in flight: onWritten finishes its body. @internal */
  deferTail(it: AsyncIterator<Uint8Array>, body: HttpBody, req: HttpRequest | null, res: HttpResponse): void {
    const rare = this.rarePart();
    rare.tail = it;
    rare.tailBody = body;
    rare.tailRequest = req;
    rare.tailResponse = res;
  }

  /**
   * ResponseSink: the end of the body of `req`'s answer, told to the server's onBodyEnd (not for
   * the server's own answers: `req` null). Never throws. @internal
   */
  bodyEnded(req: HttpRequest | null, res: HttpResponse, bytes: number, error: unknown): void {
    if (req !== null && this.server.onBodyEnd !== null)
      this.server.bodyEnded(req as HttpServerRequest<Cx>, res, bytes, error);
  }

  /**
   * After a DEFERRED response's last write (`failure`: why it failed, else undefined): see the
   * body's end, tell it (bodyEnded), then resume the request loop.
   */
  private finishTail(it: AsyncIterator<Uint8Array>, failure: unknown): void {
    const rare = this.rarePart();
    const body = rare.tailBody!;
    const req = rare.tailRequest;
    const res = rare.tailResponse!;
    rare.tailBody = null;
    rare.tailRequest = null;
    rare.tailResponse = null;
    if (failure !== undefined) {
      returnIterator(it);
      this.bodyEnded(req, res, body.length, failure);
    } else {
      let r: IteratorResult<Uint8Array> | null;
      let error: unknown = null;
      try {
        r = nextNow(it);
      } catch (e) {
        returnIterator(it);
        this.tailError = error = e;
        r = { done: true, value: undefined };
      }
      if (r === null || !r.done) {
        // The end is not at hand (or more came than announced): the waiting path takes over.
        void this.tailRest(it, r, body, req, res);
        return;
      }
      this.bodyEnded(req, res, body.length, error);
    }
    this.run(WAKE_RESUME, null, null);
  }

  private async tailRest(
    it: AsyncIterator<Uint8Array>,
    r: IteratorResult<Uint8Array> | null,
    body: HttpBody,
    req: HttpRequest | null,
    res: HttpResponse,
  ): Promise<void> {
    try {
      await writeStreamRest(this, req, res, it, r, null, body.length, body, 'length');
    } catch (e) {
      this.tailError = e;
    }
    this.run(WAKE_RESUME, null, null);
  }

  /** A promise of the write in flight. */
  private writeSettled(): Promise<void> {
    const p = pendingPromise<void>();
    const resolve = takeResolve<void>() as () => void;
    const reject = takeReject();
    const prevResolve = this.writeResolve;
    const prevReject = this.writeReject;
    if (prevResolve === null || prevReject === null) {
      this.writeResolve = resolve;
      this.writeReject = reject;
    } else {
      // A second waiter (rare: a body read and a body write at once): both hear the outcome.
      this.writeResolve = () => {
        prevResolve();
        resolve();
      };
      this.writeReject = (e: unknown) => {
        prevReject(e);
        reject(e);
      };
    }
    return p;
  }

  /** Waits until no write is in flight; throws the failure of one nobody waited for. */
  private async afterWrite(): Promise<void> {
    if (this.writing) await this.writeSettled();
    const failure = this.writeFailure;
    if (failure !== null) {
      this.writeFailure = null;
      throw failure;
    }
  }

  /** One write of a response part under the write deadline, waited for. @internal */
  send(out: Uint8Array | Uint8Array[]): Promise<void> {
    if (this.writing || this.writeFailure !== null) return this.sendAfterWrite(out);
    this.startWrite(out);
    return this.writeSettled();
  }

  private async sendAfterWrite(out: Uint8Array | Uint8Array[]): Promise<void> {
    await this.afterWrite();
    this.startWrite(out);
    await this.writeSettled();
  }

  /** The request body's first read must send 100 Continue (the client waits for it). */
  get continueOwed(): boolean {
    return this.expectContinue && !this.continueSent && !this.responseStarted;
  }

  /** Called by the request body when continueOwed: sends the 100 Continue. */
  async beforeBodyRead(): Promise<void> {
    if (this.continueOwed) {
      this.continueSent = true;
      if (this.pending.length > 0) await this.flushPending();
      await this.send(CONTINUE);
    }
  }

  /** The request body's next event if it is buffered, else NeedMore (no read is started). */
  pollBodyEvent(): number {
    return this.decoder.poll();
  }

  /** Next body event for the request body reader. */
  nextBodyEvent(): number | Promise<number> {
    const ev = this.decoder.poll();
    if (ev !== DecodeEvent.NeedMore) return ev;
    // Kept so that the server, taking the body over, waits for this read first (drainBody).
    const wait = this.fill('body');
    this.bodyWait = wait;
    return wait;
  }

  /** The request body's read failed (its reader sees `e`). */
  bodyFailed(e: unknown): void {
    this.bodyError = e;
  }

  get bodyData(): Uint8Array {
    return this.decoder.data;
  }

  get bodyTrailers(): HttpHeaders | null {
    return this.decoder.trailers;
  }

  markBodyDone(): void {
    this.bodyDone = true;
  }

  bodyComplete(): void {
    // A request whose body the handler read to its end is watched from now on (see watch()).
    if (this.handling !== null && this.watched === null) this.watch(this.handling);
  }

  /** Reads and discards what is left of the request body; false when the connection must close. */
  private async drainBody(): Promise<boolean> {
    this.state = H1State.Draining;
    // The body is the server's from here on: a late read by the handler fails instead of taking
    // bytes of this body, or of the next request. A read still in flight completes first.
    this.reqBody = null;
    const wait = this.bodyWait;
    if (wait !== null) {
      this.bodyWait = null;
      try {
        await wait;
      } catch {
        return false;
      }
      if (this.bodyDone) return true;
    }
    if (this.expectContinue && !this.continueSent) return false;
    let left = this.server.maxDrainBytes;
    for (;;) {
      let ev: number = this.decoder.poll();
      if (ev === DecodeEvent.NeedMore) ev = await this.fill('body');
      if (ev === DecodeEvent.End) {
        this.bodyDone = true;
        return true;
      }
      if (ev !== DecodeEvent.Data) return false;
      left -= this.decoder.data.length;
      if (left < 0) return false;
    }
  }

  private errorResponse(e: unknown): HttpResponse {
    let status = 500;
    let code = 'ERR_HTTP_HANDLER_FAILED';
    if (this.expired === 'head' || this.expired === 'body') {
      status = 408;
      code = 'ERR_HTTP_TIMEOUT';
    } else if (e instanceof HttpError && e.status >= 400 && e.status <= 599) {
      status = e.status;
      code = e.code;
    }
    return plainResponse(status, code);
  }

  /**
   * Answers a response that failed before any byte of it was written: the request's own body
   * failure as errorResponse would, a failure that names a 5xx `status` (a TransportError, an
   * HttpError) with it (a proxy's upstream that broke before its first body byte: 502), anything
   * else with 500. The connection closes after it.
   */
  private async writeUnsentFailure(e: unknown): Promise<void> {
    let res: HttpResponse;
    if (e === this.bodyError || this.expired !== null) {
      res = this.errorResponse(e);
    } else {
      const status = (e as { status?: unknown } | null)?.status;
      const code = (e as { code?: unknown } | null)?.code;
      res = plainResponse(
        typeof status === 'number' && status >= 500 && status <= 599 ? status : 500,
        typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'ERR_HTTP_RESPONSE_FAILED',
      );
    }
    try {
      await this.writeResponse(null, res, false);
    } catch {
      // The peer may be gone already.
    }
  }

  /** A failure outside the handler: answer it when nothing of a response went out yet. */
  private async answerFailure(e: unknown): Promise<void> {
    this.failed = true;
    if (this.writeFailure !== null) {
      // An earlier answer's write failed (the loop had moved on): that is the failure to report.
      e = this.writeFailure;
      this.writeFailure = null;
      this.responseStarted = true;
    }
    if (this.responseStarted || this.stream.closed) {
      if (!(e instanceof HttpParseError) && !(e instanceof HttpTimeoutError)) this.server.onError(e);
      return;
    }
    if (e instanceof HttpParseError) {
      await this.reject(e.status, e.code, null, e);
    } else if (e instanceof HttpTimeoutError || this.expired !== null) {
      const kind = e instanceof HttpTimeoutError ? e.kind : this.expired;
      if (kind === 'head' || kind === 'body') await this.reject(408, 'ERR_HTTP_TIMEOUT', null, e);
    } else {
      const code = (e as { code?: string }).code;
      // Peer resets and cancellations are normal ends of a connection.
      if (code !== 'ECONNRESET' && code !== 'EPIPE' && code !== 'ECANCELED') this.server.onError(e);
    }
  }

  private async writeError(status: number, code: string): Promise<void> {
    const res = this.h1.rejection(status, code);
    try {
      await this.writeResponse(null, res, false);
    } catch {
      // The peer may be gone already.
    }
  }

  /** Answers a request the handler will not see, and reports it to `onRejected`. */
  private async reject(status: number, code: string, req: HttpRequest | null, error: unknown): Promise<void> {
    await this.writeError(status, code);
    const hook = this.server.onRejected;
    if (hook === null) return;
    try {
      hook(
        {
          status,
          code,
          method: req === null ? null : req.method,
          target: req === null ? null : req.target,
          bytes: code.length + 1,
          error,
        },
        this.contextNow(),
      );
    } catch (e) {
      this.server.onError(e);
    }
  }

  /**
   * Writes a response with the framing its body implies; returns whether the connection stays
   * open. A failing response body closes the connection (its head is already out). The usual
   * answer (head and body in one buffer, or a streamed body that is complete at hand) is written
   * without waiting: the write is left in flight (see startWrite) and the result is a boolean.
   */
  private writeResponse(
    req: HttpRequest | null,
    res: HttpResponse,
    keepAlive: boolean,
  ): ResponseOutcome | Promise<ResponseOutcome> {
    if (this.writing || this.writeFailure !== null) return this.writeResponseAfterWrite(req, res, keepAlive);
    const method = req === null ? 'GET' : req.method;
    const minor = req !== null && req.version === '1.0' ? 0 : 1;
    const body: HttpBody = res.body;
    // Until the body is being iterated (for-await returns it on every abrupt exit), each path
    // that will not send it must release it: its source may hold an upstream connection.
    let bodyOwned = body instanceof FixedBody;
    try {
      const framing = responseFraming(res.status, body, method, minor);
      if (framing === 'eof' || this.server.closing) keepAlive = false;
      if (keepAlive && asksToClose(res.headers)) keepAlive = false;
      if (keepAlive && !this.bodyDone) {
        if (this.expectContinue && !this.continueSent) {
          // The client may still send the body it held back, or not: closing is the safe answer.
          keepAlive = false;
        } else {
          // What is left of the body will be drained after the answer; more than the drain
          // budget is known now (Content-Length): say `connection: close` in the answer.
          const b = this.reqBody;
          if (b !== null && b.length >= 0 && b.length - b.received > this.server.maxDrainBytes)
            keepAlive = false;
        }
      }
      // Filled and read synchronously: one object per server serves every connection.
      const o = this.h1.headOptions;
      o.framing = framing;
      o.length = body.kind === 'stream' ? -1 : body.length;
      o.keepAlive = keepAlive;
      o.requestMinor = minor;
      o.requestMethod = method;
      const fixed = framing === 'none' || body instanceof FixedBody;
      if (fixed) {
        // Head and body in one buffer, one write.
        const data = framing === 'length' ? (body as FixedBody).data : null;
        const trailing = data === null ? 0 : data.length;
        const out = this.h1.heads.encode(res.status, res.reason, res.headers, o, trailing, this);
        if (data !== null) out.set(data, out.length - trailing);
        this.responseStarted = true;
        if (keepAlive && this.decoder.hasInput && this.pendingBytes + out.length <= MAX_PENDING_BYTES) {
          // The next pipelined request is already here: answer it in the same write.
          if (this.pending === NO_PENDING) this.pending = [out];
          else this.pending.push(out);
          this.pendingBytes += out.length;
        } else if (this.pending.length > 0) {
          this.pending.push(out);
          return this.finishResponse(this.flushPending(), req, res, !bodyOwned, keepAlive);
        } else {
          this.startWrite(out);
        }
        if (!bodyOwned) return this.finishResponse(null, req, res, true, keepAlive);
        return keepAlive;
      }
      // A bad status or reason fails here, before anything is out (answered with a 500).
      statusLineBytes(res.status, res.reason);
      this.responseStarted = true;
      bodyOwned = true;
      if (this.pending.length > 0) {
        // `o` is shared by every connection: keep this response's copy across the wait.
        return this.finishResponse(
          this.flushThenStream(req, res, { ...o }, body, framing),
          req,
          res,
          false,
          keepAlive,
        );
      }
      let p: Promise<void> | null | typeof DEFERRED;
      try {
        p = writeStreamBody(this, req, res, o, body, framing, true);
      } catch (e) {
        // It failed before writing anything (its body's first step, a bad header): answerable.
        this.responseStarted = false;
        throw e;
      }
      if (p === null) return keepAlive;
      if (p === DEFERRED) {
        this.tailKeepAlive = keepAlive;
        return DEFERRED;
      }
      return this.finishResponse(p, req, res, false, keepAlive);
    } catch (e) {
      if (!bodyOwned) return this.finishResponse(Promise.reject(e), req, res, true, keepAlive);
      throw e;
    } finally {
      if (!this.writing) this.deadlineAt = NO_DEADLINE;
    }
  }

  /** writeResponse once the write in flight settled. */
  private async writeResponseAfterWrite(
    req: HttpRequest | null,
    res: HttpResponse,
    keepAlive: boolean,
  ): Promise<ResponseOutcome> {
    try {
      await this.afterWrite();
    } catch (e) {
      this.responseStarted = true;
      this.bodyEnded(req, res, 0, e);
      await closeBody(res.body);
      throw e;
    }
    return this.writeResponse(req, res, keepAlive);
  }

  /**
   * The waiting tail of writeResponse: waits for `step` (when not null), then, when `unsent`, lets
   * go of `res`'s body, which was not sent (also on failure; its end told: bodyEnded). A write
   * that timed out fails as such.
   */
  private async finishResponse(
    step: Promise<void> | null,
    req: HttpRequest | null,
    res: HttpResponse,
    unsent: boolean,
    keepAlive: boolean,
  ): Promise<boolean> {
    try {
      if (step !== null) await step;
      if (unsent) {
        this.bodyEnded(req, res, 0, null);
        await closeBody(res.body);
      }
      return keepAlive;
    } catch (e) {
      if (unsent) {
        this.bodyEnded(req, res, 0, e);
        await closeBody(res.body);
      }
      if (this.expired === 'write' && !(e instanceof HttpTimeoutError)) {
        throw new HttpTimeoutError('write', this.server.timeouts.write);
      }
      throw e;
    } finally {
      if (!this.writing) this.deadlineAt = NO_DEADLINE;
    }
  }

  /** Writes the held-back answers, then a streamed response. */
  private async flushThenStream(
    req: HttpRequest | null,
    res: HttpResponse,
    o: ResponseHeadOptions,
    body: HttpBody,
    framing: 'length' | 'chunked' | 'eof',
  ): Promise<void> {
    try {
      await this.flushPending();
    } catch (e) {
      this.bodyEnded(req, res, 0, e);
      await closeBody(body);
      throw e;
    }
    let p: Promise<void> | null | typeof DEFERRED;
    try {
      p = writeStreamBody(this, req, res, o, body, framing, false);
    } catch (e) {
      // Nothing of this answer is out (only the held-back ones before it): answerable.
      this.responseStarted = false;
      throw e;
    }
    if (p !== null && p !== DEFERRED) await p;
  }
}
