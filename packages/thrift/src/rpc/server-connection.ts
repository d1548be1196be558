/**
 * One connection of a ThriftServer, driven by the stream's recvTo/writeTo callbacks: received
 * chunks are fed to a FrameReader (feed/poll), each whole frame becomes a call handed to the
 * handler, and replies are written in the request's framing as calls finish (or in request
 * order), several ready replies in one write. No promise per receive, write or call of its own:
 * a handler that answers at once costs none, one that answers with a promise costs the one
 * reaction that takes its result, one that dispatches (answers through the call's respond(),
 * say from an upstream's receive callback) costs none. Not for accepting (ThriftServer) or for what a method means
 * (the handler).
 *
 * What runs when:
 * - Calls: at most `maxConcurrentCalls` are outstanding (handled and not yet written); further
 *   whole frames wait in the reader. While the limit is reached, the connection keeps
 *   receiving only while less than 16 KiB is buffered ahead: the peer's end is noticed during a
 *   call (its running calls are aborted), and a busy connection does not buffer a flood.
 * - Deadlines: `idleTimeout` while nothing is outstanding or buffered, `readTimeout` while a
 *   message is incomplete and a call could be taken, none while calls run with nothing
 *   buffered. A number on the thread's coarse sweep, not a timer per receive; expiry closes the
 *   stream (ERR_THRIFT_TIMEOUT).
 * - The peer's end: calls still running are aborted; whole frames already received are still
 *   answered, then the connection closes (ERR_THRIFT_TRUNCATED if it ended inside a message).
 * - Memory: the reader receives into the same buffer again once every call since the last time
 *   was released (ThriftRequest.release) and answered, and nothing is outstanding; a call that
 *   was not released pins the buffer its frame lives in (FrameReader.pin). With `callsInPlace`
 *   (the handler releases every call), a call that came whole in a received chunk of at least
 *   IN_PLACE_CALL_BYTES is a view of that chunk, not a copy (FrameReader.feedChunk and
 *   retainLast): the chunk goes back to the runtime once each of its calls was released, not
 *   when the reply is written (a proxy releases a call as soon as its upstream write settled);
 *   bytes the connection does not take (the peer closed, a bad frame) go back at its end. A reply's release()
 *   runs once its write completed, once the stream is closed after a failed write (or when
 *   the connection ended before it was written), or at once when it is dropped (too late):
 *   every reply handed to the server is released (a relay's may hold a receive buffer).
 * - Failure (bad bytes, a failed write or receive, a timeout): reported to onConnectionError
 *   unless the server is closing, running calls aborted, the stream closed; results that come
 *   later are dropped.
 */
// The module's binding, not the global: `performance` on Node's global object is a lazy accessor
// whose getter runs on every read (~200 instructions a read in optimized code, callgrind,
// bench/thrift/readings-2026-12-07b.md).
import { performance } from 'node:perf_hooks';
import { NO_DEADLINE, type SweepMember } from '@loch/uring-runtime';
import { TApplicationException, TApplicationExceptionType } from '../application-exception.js';
import { ThriftRpcError } from '../errors.js';
import { deadlines } from '../internal/deadlines.js';
import { BinaryReader } from '../protocol/binary.js';
import { CompactReader } from '../protocol/compact.js';
import { strictBinaryHeaderAt } from '../protocol/message-header.js';
import { decodeNameAt, type ProtocolReader, type ReaderOptions } from '../protocol/reader.js';
import { frameParts } from '../transport/codec.js';
import { EMPTY_HEADERS, EMPTY_INT_HEADERS, type ThriftFrame, type ViewFrame } from '../transport/frame.js';
import { type MessageHeader, MessageType } from '../types.js';
import { FrameReader, type RetainedChunk } from './frame-reader.js';
import { RecvLowWater } from './recv-low-water.js';
import type {
  ThriftAbortListener,
  ThriftHandler,
  ThriftReply,
  ThriftRequest,
  ThriftResponder,
  ThriftServerOptions,
} from './server.js';
import type {
  ThriftAbortSignal,
  ThriftRecvChunk,
  ThriftRecvTarget,
  ThriftServerStream,
  ThriftWriteTarget,
} from './stream.js';

/**
 * Bytes received ahead of the calls while the call limit is reached (plus the last chunk):
 * enough to see the end of a peer that pipelined a few calls and closed, and small beside the
 * reader's 64 KiB buffer, so a pipelining peer's bytes fit beside the running call's instead of
 * making the reader move to bigger memory.
 */
const WATCH_AHEAD = 16 * 1024;

/**
 * With `callsInPlace`: received chunks this large or larger are kept and their whole calls
 * handed out as views of them. A smaller one is copied into the reader, as without the option:
 * copying a few hundred bytes costs less than keeping a pool buffer out until the call is
 * released (the 10 KiB call's copy is what the option is for).
 */
export const IN_PLACE_CALL_BYTES = 1024;

const EMPTY = new Uint8Array(0);
/** #take's scratch for a strict binary header's type and seq id (nothing allocated per call). */
const scratch = { type: 0, seqId: 0 };

/** The receive deadline that applies: none, the idle timeout, or the message read timeout. */
type DeadlineKind = 0 | 1 | 2;
const NO_TIMEOUT = 0;
const IDLE_TIMEOUT = 1;
const READ_TIMEOUT = 2;

/** What a connection needs of its server: shared settings and readers, made once per server. */
export interface ConnectionContext {
  readonly handler: ThriftHandler;
  readonly options: ThriftServerOptions;
  readonly binaryReader: BinaryReader;
  readonly compactReader: CompactReader;
  /** The server is closing: failures are not reported. */
  closing(): boolean;
}

/**
 * A call of a connection: the ThriftRequest handed to the handler, then its answer; also the
 * responder a dispatching handler answers through (no object of its own).
 */
class IncomingCall implements ThriftRequest, ThriftResponder {
  private controller: AbortController | undefined;
  private listener: ThriftAbortListener | undefined;
  private aborted = false;
  /** The handler gave the frame's bytes back (release()). */
  released = false;
  /** The received chunk the frame is a view of (callsInPlace), until release(). */
  share: RetainedChunk | null = null;
  /** Where the frame's length prefix is in that chunk (FrameReader.lastWireAt), or -1: no wire. */
  wireAt = -1;
  /** The handler's answer was taken (in time): later results are dropped. */
  answered = false;
  /** What to write (undefined: nothing, a ONEWAY call). */
  reply: ThriftReply | undefined = undefined;
  /** The handler timeout's timer, when one is set. */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Neighbours in the connection's list of running calls (no Set churn per call). */
  prevRunning: IncomingCall | null = null;
  nextRunning: IncomingCall | null = null;
  /** In the connection's list of running calls. */
  running = false;

  constructor(
    readonly frame: ThriftFrame,
    readonly header: MessageHeader,
    readonly bodyOffset: number,
    private readonly options: ReaderOptions,
    readonly stream: ServerConnection['stream'],
    private readonly connection: ServerConnection,
  ) {}

  respond(reply: ThriftReply | undefined, error?: unknown): void {
    this.connection.answer(this, reply, error);
  }

  get signal(): ThriftAbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  reader(): ProtocolReader {
    const r =
      this.frame.protocol === 'binary' ? new BinaryReader(this.options) : new CompactReader(this.options);
    return r.reset(this.frame.payload, this.bodyOffset);
  }

  wire(): Uint8Array | undefined {
    const share = this.share;
    if (share === null || this.wireAt < 0) return undefined;
    return share.wire(this.wireAt, this.frame.wireLength);
  }

  release(): void {
    this.released = true;
    const share = this.share;
    if (share === null) return;
    this.share = null;
    share.release();
  }

  onAbort(listener: ThriftAbortListener | undefined): void {
    this.listener = listener;
    if (this.aborted) listener?.callAborted();
  }

  /** Aborts the signal and tells the onAbort listener (timeout or connection end). */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.controller?.abort();
    const listener = this.listener;
    this.listener = undefined;
    listener?.callAborted();
  }
}

/** Serves one connection; `done` settles (never rejects) once it ended and was closed. */
export class ServerConnection implements ThriftRecvTarget, ThriftWriteTarget, SweepMember {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  readonly #reader: FrameReader;
  /** The socket's receive low-water mark at the reader's frame boundaries (one set a connection). */
  readonly #lowWater: RecvLowWater;
  readonly #ctx: ConnectionContext;
  readonly #limit: number;
  readonly #inOrder: boolean;
  /** Calls are views of the received chunks (options.callsInPlace). */
  readonly #inPlace: boolean;
  /** The longest message name the readers accept (options.maxStringLength). */
  readonly #maxName: number;
  /** A recvTo is pending. */
  #receiving = false;
  /** The peer ended its side (or the receive failed): nothing more is received. */
  #peerEnded = false;
  /** The connection ended (cleanly or not): results that come later are dropped. */
  #over = false;
  /** Calls taken and not yet finished (answered and, if there is a reply, written). */
  #outstanding = 0;
  /**
   * Calls whose handler has not answered yet (aborted when the connection ends): a list through
   * the calls' own fields, newest first, rather than a Set, whose add and delete of the one call
   * a connection runs at a time rehashed its table per call (122 B, bench/thrift/per-call.ts).
   */
  #running: IncomingCall | null = null;
  /** With replyOrder 'request': calls not yet queued for writing, in the order they came. */
  readonly #order = new CallBatch();
  /** Replies ready to write, in order. */
  #ready = new CallBatch();
  /** The replies of the write in flight (empty: none in flight). */
  #writing = new CallBatch();
  /**
   * An empty batch that takes `#writing`'s place while a written batch is finished. The three
   * change places instead of a new one per write, and a batch is emptied by its count, not by
   * its array's length: an array emptied gives its backing store up, and the next push
   * allocated a new one of 17 slots (152 B per reply, bench/thrift/per-call.ts).
   */
  #spare = new CallBatch();
  /** The armed receive deadline on a fresh clock (NO_DEADLINE: none), and its length. */
  #deadlineAt = NO_DEADLINE;
  #deadlineMs = 0;
  /** A receive deadline passed: the stream was closed. */
  #expired = false;
  /** Which deadline is armed. */
  #deadlineKind: DeadlineKind = NO_TIMEOUT;
  /** While idle: when the idle time ends (fresh clock; NO_DEADLINE: no idle timeout). */
  #idleEndsAt = NO_DEADLINE;
  /** While idle: the mark was put to 1 to look for bytes it held back (#lookForHiddenBytes). */
  #probing = false;
  /** #pump is running (see there). */
  #pumping = false;
  #resolveDone!: () => void;
  /** Settles once the connection ended and its stream was closed. */
  readonly done = new Promise<void>((resolve) => {
    this.#resolveDone = resolve;
  });

  constructor(
    readonly stream: ThriftServerStream,
    ctx: ConnectionContext,
  ) {
    this.#ctx = ctx;
    const options = ctx.options;
    this.#reader = new FrameReader(stream, options);
    this.#lowWater = new RecvLowWater(stream);
    this.#limit = Math.max(1, options.maxConcurrentCalls ?? 1);
    this.#inOrder = options.replyOrder === 'request' && this.#limit > 1;
    this.#inPlace = options.callsInPlace === true;
    this.#maxName = options.maxStringLength ?? 0x7fffffff;
  }

  /** Starts serving. */
  start(): void {
    this.#pump();
  }

  /**
   * Takes the calls there is room for, then receives if more bytes are wanted and sets the
   * deadline that applies now. Not re-entered: a call answered at once while taking calls
   * leaves the rest to the loop running.
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      this.#takeCalls();
    } finally {
      this.#pumping = false;
    }
  }

  #takeCalls(): void {
    const reader = this.#reader;
    while (!this.#over && this.#outstanding < this.#limit) {
      let frame: ViewFrame | null;
      try {
        frame = reader.poll();
      } catch (error) {
        this.#fail(error);
        return;
      }
      if (frame === null) break;
      this.#take(frame);
    }
    if (this.#over) return;
    if (this.#peerEnded) {
      if (this.#outstanding === 0) this.#end(reader.truncation());
      return;
    }
    // Also with a receive pending: a frame whose last bytes are fewer than the mark lowers it.
    this.#lowWater.update(reader);
    const room = this.#outstanding < this.#limit;
    if (!this.#receiving) {
      if (!room && reader.buffered >= WATCH_AHEAD) {
        this.#deadline(NO_TIMEOUT);
        return;
      }
      this.#receiving = true;
      this.stream.recvTo(this);
    }
    this.#deadline(
      reader.buffered > 0
        ? room
          ? READ_TIMEOUT
          : NO_TIMEOUT
        : this.#outstanding === 0
          ? IDLE_TIMEOUT
          : NO_TIMEOUT,
    );
  }

  /**
   * Sets the receive deadline of `kind`, measured from now when the kind changes (the idle
   * time from the moment nothing was outstanding, the read time from a message's first bytes).
   */
  #deadline(kind: DeadlineKind): void {
    if (kind === this.#deadlineKind) return;
    this.#deadlineKind = kind;
    this.#probing = false;
    const options = this.#ctx.options;
    const ms =
      kind === IDLE_TIMEOUT
        ? (options.idleTimeout ?? 0)
        : kind === READ_TIMEOUT
          ? (options.readTimeout ?? 0)
          : 0;
    // While idle with the mark above 1, the sweep also comes back every read timeout to look for
    // bytes the mark holds back (#lookForHiddenBytes).
    const read = kind === IDLE_TIMEOUT && this.#lowWater.mark > 1 ? (options.readTimeout ?? 0) : 0;
    if (!(ms > 0) && !(read > 0)) {
      this.#deadlineAt = NO_DEADLINE;
      return;
    }
    // A fresh clock, not the sweep's coarse one (a whole old tick stale once a shorter deadline
    // shortened the tick): never early.
    const now = performance.now();
    if (kind === IDLE_TIMEOUT) this.#idleEndsAt = ms > 0 ? now + ms : NO_DEADLINE;
    this.#deadlineMs = ms;
    const first = read > 0 && !(ms > 0 && ms <= read) ? read : ms;
    deadlines.deadline(this, first);
    this.#deadlineAt = now + first;
  }

  onSweep(now: number): boolean {
    if (this.#deadlineAt > now) return this.#deadlineAt !== NO_DEADLINE;
    if (this.#deadlineKind === IDLE_TIMEOUT && this.#lookForHiddenBytes(now)) return true;
    this.#deadlineAt = NO_DEADLINE;
    this.#expired = true;
    void this.stream.close().catch(() => {});
    return false;
  }

  /**
   * An idle deadline passed (the idle timeout's, or the read timeout's look while idle): true
   * while the connection stays open.
   *
   * Why (REVIEW F228): with the receive low-water mark at 5 (RecvLowWater), a peer that sends a
   * frame's first 1-4 bytes and stops is never seen: the bytes wait in the kernel, the pending
   * receive does not complete, and the connection looks idle, held to the idle timeout (or
   * forever without one) instead of the read (message) timeout. So while idle with the mark
   * above 1, the sweep looks every read timeout and at the idle deadline: the mark goes to 1,
   * which makes the kernel re-check the pending receive at once (tcp_set_rcvlowat calls
   * tcp_data_ready), so bytes already queued complete it; the look is decided at the sweep's next
   * tick (10 ms .. 1 s later), by when that completion has come. Bytes came: a message started,
   * and its read timeout runs from the look that found them (#takeCalls arms it), so a peer
   * that stops after 1-4 bytes is closed within two read timeouts and a tick of sending them,
   * and never later than the idle timeout plus one read timeout. None: the mark goes back up and
   * the next look is armed, or, at the idle deadline, the connection is closed as idle. Costs
   * two setsockopts per read timeout of idleness (30 s by default); none on a busy connection.
   */
  #lookForHiddenBytes(now: number): boolean {
    if (!this.#probing) {
      if (this.#lowWater.lower()) {
        this.#probing = true;
        // Decided at the next tick: its clock is later than this one.
        this.#deadlineAt = now;
        return true;
      }
    } else this.#probing = false;
    // Nothing came (or there is no mark): closed as idle once the idle time is over.
    if (this.#idleEndsAt <= now) return false;
    const read = this.#ctx.options.readTimeout ?? 0;
    if (!(read > 0)) return false;
    this.#lowWater.update(this.#reader);
    const ms = Math.min(read, this.#idleEndsAt - now);
    deadlines.deadline(this, ms);
    this.#deadlineAt = performance.now() + ms;
    return true;
  }

  onRecv(chunk: ThriftRecvChunk | null, error: unknown): void {
    this.#receiving = false;
    if (this.#over) {
      chunk?.release();
      return;
    }
    if (this.#expired) {
      chunk?.release();
      const buffered = this.#reader.buffered;
      const ms = this.#deadlineMs;
      this.#fail(
        new ThriftRpcError(
          'ERR_THRIFT_TIMEOUT',
          buffered > 0 ? `message not complete after ${ms} ms` : `no message for ${ms} ms`,
          error === undefined ? undefined : { cause: error },
        ),
      );
      return;
    }
    if (chunk === null) {
      if (error !== undefined) {
        this.#fail(error);
        return;
      }
      // The peer closed (or half-closed) its side: calls still running are abandoned.
      this.#peerEnded = true;
      this.#abortRunning();
      this.#pump();
      return;
    }
    if (this.#inPlace && chunk.bytes.length >= IN_PLACE_CALL_BYTES) {
      // Kept: its whole calls are views of it (retained in #take), released call by call.
      this.#reader.feedChunk(chunk);
    } else {
      try {
        this.#reader.feed(chunk.bytes);
      } finally {
        chunk.release();
      }
    }
    this.#pump();
  }

  /** Reads the frame's message header (bad bytes end the connection) and runs the handler. */
  #take(frame: ViewFrame): void {
    const ctx = this.#ctx;
    let header: MessageHeader;
    // A strict binary header is read from the payload's bytes where they lie (readMessageBegin's
    // result, with no reader reset twice, and no payload view made: ViewFrame); anything else
    // by the reader.
    const bytes = frame.bytes;
    const at = frame.payloadStart;
    let bodyOffset =
      frame.protocol === 'binary' ? strictBinaryHeaderAt(bytes, at, frame.payloadEnd, scratch) : 0;
    if (bodyOffset !== 0 && bodyOffset - 12 <= this.#maxName) {
      header = {
        name: decodeNameAt(bytes, at + 8, bodyOffset - 12),
        type: scratch.type as MessageType,
        seqId: scratch.seqId,
      };
    } else {
      const r = frame.protocol === 'binary' ? ctx.binaryReader : ctx.compactReader;
      r.reset(frame.payload);
      try {
        header = r.readMessageBegin();
        bodyOffset = r.pos;
      } catch (error) {
        // A message header that does not parse is a protocol error: the connection is closed.
        this.#fail(error);
        return;
      } finally {
        r.reset(EMPTY);
      }
    }
    const call = new IncomingCall(frame, header, bodyOffset, ctx.options, this.stream, this);
    // A view of a kept chunk: the call holds it until the handler releases the call.
    if (this.#inPlace) {
      const share = this.#reader.retainLast();
      call.share = share;
      if (share !== null) call.wireAt = this.#reader.lastWireAt;
    }
    // The message is whole: the next one's read time starts (a pipelining peer always has part
    // of one buffered, so the kind alone would not change). The armed deadline goes with it: the
    // call running now is not the peer's to finish, so the sweep must not cut it.
    this.#deadlineKind = NO_TIMEOUT;
    this.#deadlineAt = NO_DEADLINE;
    this.#outstanding++;
    if (this.#inOrder) this.#order.push(call);
    const handler = ctx.handler;
    if (handler.dispatch !== undefined) {
      // Answered through call.respond(), now or later: no promise, no reaction.
      this.#run(call);
      try {
        handler.dispatch(call, call);
      } catch (error) {
        this.#answer(call, undefined, error);
      }
      return;
    }
    let result: ThriftReply | undefined | Promise<ThriftReply | undefined>;
    try {
      result = handler.call(call);
    } catch (error) {
      this.#answer(call, undefined, error);
      return;
    }
    if (!(result instanceof Promise)) {
      // A synchronous answer cannot be late: no timer, no reaction.
      this.#answer(call, result, undefined);
      return;
    }
    this.#run(call);
    result.then(
      (reply) => this.#answer(call, reply, undefined),
      (error: unknown) => this.#answer(call, undefined, error),
    );
  }

  /** `call` runs until answered: listed (aborted if the connection ends), its handler timeout armed. */
  #run(call: IncomingCall): void {
    const head = this.#running;
    call.nextRunning = head;
    if (head !== null) head.prevRunning = call;
    this.#running = call;
    call.running = true;
    const timeoutMs = this.#ctx.options.handlerTimeout ?? 0;
    if (timeoutMs > 0) {
      call.timer = setTimeout(() => {
        call.abort();
        this.#answer(
          call,
          undefined,
          new ThriftRpcError('ERR_THRIFT_TIMEOUT', `handler took longer than ${timeoutMs} ms`),
        );
      }, timeoutMs);
    }
  }

  /** `call` is no longer running (answered, or the connection ended). */
  #unlist(call: IncomingCall): void {
    if (!call.running) return;
    call.running = false;
    const prev = call.prevRunning;
    const next = call.nextRunning;
    if (prev === null) this.#running = next;
    else prev.nextRunning = next;
    if (next !== null) next.prevRunning = prev;
    call.prevRunning = null;
    call.nextRunning = null;
  }

  /**
   * Aborts every running call. Taken off the list first: an abort listener may answer its call
   * (or another) at once, which unlists it.
   */
  #abortRunning(): void {
    let call = this.#running;
    if (call === null) return;
    const calls: IncomingCall[] = [];
    for (; call !== null; call = call.nextRunning) calls.push(call);
    for (const c of calls) c.abort();
  }

  /**
   * @internal ThriftResponder.respond of `call` (a dispatching handler's answer): as a returned
   * promise's result would be taken.
   */
  answer(call: IncomingCall, reply: ThriftReply | undefined, error: unknown): void {
    // respond() is called from wherever the handler answers: for a relay, an upstream's receive
    // callback inside the runtime's completion drain, where a throw would end the worker. A bug
    // surfacing here (a reply's release() that throws, say) ends this connection instead.
    try {
      this.#answer(call, reply, error);
    } catch (failure) {
      this.#fail(failure);
    }
  }

  /**
   * The handler answered `call` (or failed with `error`): what to write is the reply, an
   * exception reply, or nothing (ONEWAY); then it goes to the write queue in its turn.
   */
  #answer(call: IncomingCall, reply: ThriftReply | undefined, error: unknown): void {
    if (call.answered || this.#over) {
      // Dropped (too late, or the connection ended): nothing writes it, its memory is free.
      reply?.release?.();
      if (call.answered) return;
    }
    call.answered = true;
    if (call.timer !== undefined) clearTimeout(call.timer);
    this.#unlist(call);
    if (this.#over) return;
    const header = call.header;
    if (header.type === MessageType.ONEWAY) call.reply = undefined;
    else if (error === undefined && reply !== undefined) call.reply = reply;
    else {
      const exc =
        error === undefined
          ? new TApplicationException(
              TApplicationExceptionType.MISSING_RESULT,
              `${header.name} returned no result`,
            )
          : error instanceof TApplicationException
            ? error
            : new TApplicationException(
                TApplicationExceptionType.INTERNAL_ERROR,
                (error as Error)?.message ?? String(error),
              );
      call.reply = { payload: exc.toMessage(call.frame.protocol, header.name, header.seqId) };
    }
    if (!this.#inOrder) this.#queue(call);
    else {
      // FIFO: a call's reply goes out once every earlier call's did.
      const order = this.#order;
      while (order.length > 0 && order.first().answered) this.#queue(order.shift());
    }
    this.#write();
    this.#pump();
  }

  /** Queues `call`'s reply for writing; a call with nothing to write is finished now. */
  #queue(call: IncomingCall): void {
    if (call.reply === undefined) this.#finished(call);
    else this.#ready.push(call);
  }

  /** Writes every ready reply in one write, unless one is in flight. */
  #write(): void {
    if (this.#over || this.#writing.length > 0 || this.#ready.length === 0) return;
    const batch = this.#ready;
    this.#ready = this.#writing; // empty: no write in flight
    this.#writing = batch;
    let parts: Uint8Array | Uint8Array[];
    try {
      const first = batch.at(0);
      // A reply relayed as it came (framed, in place) is one buffer: no prefix, no parts array.
      const wire = batch.length === 1 ? this.#replyWire(first) : undefined;
      if (wire !== undefined) parts = wire;
      else {
        parts = this.#replyPartsOf(first);
        for (let i = 1; i < batch.length; i++) {
          const call = batch.at(i);
          const one = this.#replyWire(call);
          if (one !== undefined) parts.push(one);
          else parts.push(...this.#replyParts(call));
        }
      }
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.stream.writeTo(parts, this);
  }

  /** The first reply of a batch as a parts array the others are pushed onto. */
  #replyPartsOf(call: IncomingCall): Uint8Array[] {
    const wire = this.#replyWire(call);
    return wire !== undefined ? [wire] : this.#replyParts(call);
  }

  /**
   * `call`'s reply as the one framed buffer its handler gave (ThriftReply.wire), when the call
   * came framed and the buffer's length prefix gives the rest of it, as many bytes as the reply's
   * payload (its payloadLength when given: a relay's payload view is then never made); else
   * undefined. That its bytes after the prefix are the payload's is the handler's
   * word (ThriftReply.wire), not checked: comparing the two views' `buffer` and `byteOffset`
   * took four generic loads and two builtin calls per relayed reply (~770 instructions,
   * bench/thrift/readings-2026-12-06c.md). What is checked keeps the caller's stream framed.
   */
  #replyWire(call: IncomingCall): Uint8Array | undefined {
    const reply = call.reply!;
    const wire = reply.wire;
    if (wire === undefined || call.frame.framing !== 'framed') return undefined;
    // `length`, not byteLength: node 20's TurboFan inlines the one and calls a builtin for the other.
    const n = wire.length - 4;
    if (
      n < 0 ||
      (reply.payloadLength ?? reply.payload.length) !== n ||
      wire[0] !== n >>> 24 ||
      wire[1] !== ((n >>> 16) & 0xff) ||
      wire[2] !== ((n >>> 8) & 0xff) ||
      wire[3] !== (n & 0xff)
    )
      return undefined;
    return wire;
  }

  /**
   * The array rotation below relies on the ByteStream contract that `writeTo` never calls
   * `onWritten` before it returns (the runtime delivers write results from its queue): called
   * from inside `writeTo`, `#writing` would become `#ready`'s array and the connection would stall.
   */
  onWritten(error: unknown): void {
    const batch = this.#writing;
    if (this.#over || error !== undefined) {
      // A failed write's bytes may still have been the kernel's when it was reported: their
      // memory is given back only once the stream is closed (no operation of it pending then).
      this.#writing = new CallBatch();
      this.#fail(error);
      this.#releaseWhenClosed(batch.take());
      return;
    }
    this.#writing = this.#spare;
    for (let i = 0; i < batch.length; i++) {
      const call = batch.at(i);
      call.reply?.release?.();
      this.#finished(call);
    }
    batch.clear();
    this.#spare = batch;
    this.#write();
    this.#pump();
  }

  /** Releases the replies of `calls` once the connection ended and its stream was closed. */
  #releaseWhenClosed(calls: readonly IncomingCall[]): void {
    if (calls.length === 0) return;
    void this.done.then(() => {
      for (const call of calls) call.reply?.release?.();
    });
  }

  /** `call` is answered and written: its slot is free, and its frame's memory maybe reusable. */
  #finished(call: IncomingCall): void {
    this.#outstanding--;
    const reader = this.#reader;
    if (!call.released) {
      // A call in a kept chunk holds that chunk, not the reader's buffer.
      if (call.share === null) reader.pin();
    } else if (this.#outstanding === 0 && this.#ready.length === 0 && this.#writing.length === 0)
      reader.recycle();
  }

  /** The buffers of `call`'s reply framed the way its request came. */
  #replyParts(call: IncomingCall): Uint8Array[] {
    const frame = call.frame;
    const reply = call.reply!;
    // A framed (or unframed) reply needs only the framing: the request's frame says it, no
    // spec object is made per reply.
    if (frame.framing === 'framed' || frame.framing === 'unframed') return frameParts(frame, reply.payload);
    return frameParts(
      {
        framing: frame.framing,
        protocol: frame.protocol,
        seqId: frame.seqId,
        flags: frame.flags,
        headers: reply.headers ?? EMPTY_HEADERS,
        intHeaders: reply.intHeaders ?? EMPTY_INT_HEADERS,
        transforms: frame.transforms,
      },
      reply.payload,
    );
  }

  /** The connection failed: reported (unless the server closes), then ended. */
  #fail(error: unknown): void {
    if (this.#over) return;
    if (!this.#ctx.closing()) this.#ctx.options.onConnectionError?.(error, this.stream);
    this.#end(null);
  }

  /** Ends the connection (`truncated`: it ended inside a message, reported as a failure). */
  #end(truncated: Error | null): void {
    if (truncated !== null) {
      this.#fail(truncated);
      return;
    }
    if (this.#over) return;
    this.#over = true;
    // Replies that will not be written now: the queued ones, and (request order) the answered
    // ones still waiting behind an earlier call (a relay's reply may hold a receive buffer).
    this.#releaseWhenClosed(this.#ready.take());
    const order = this.#order;
    if (order.length > 0) this.#releaseWhenClosed(order.take().filter((call) => call.answered));
    this.#deadlineAt = NO_DEADLINE;
    this.#deadlineKind = NO_TIMEOUT;
    // A kept chunk's bytes no call took go back (calls that took some hold them until released).
    this.#reader.dispose();
    this.#abortRunning();
    if (this.stream.closed) this.#resolveDone();
    else this.stream.close().then(this.#resolveDone, this.#resolveDone);
  }
}

/**
 * Calls in order (a write queue, a batch being written, request order): an array used up to
 * `length`, emptied by its count so that its backing store is kept from batch to batch.
 */
class CallBatch {
  /**
   * Made holding an object (null), not empty: a fresh `[]` holds small integers until the first
   * call is stored, and that transition deoptimized the code that stored it
   * (bench/thrift/deopts-2026-12-04.md).
   */
  readonly #calls: (IncomingCall | null)[] = [null];
  /** Index of the first call (shift() advances it). */
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  push(call: IncomingCall): void {
    this.#calls[this.#end++] = call;
  }

  at(i: number): IncomingCall {
    return this.#calls[this.#start + i]!;
  }

  first(): IncomingCall {
    return this.#calls[this.#start]!;
  }

  shift(): IncomingCall {
    const calls = this.#calls;
    const call = calls[this.#start]!;
    calls[this.#start++] = null;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#start >= 64 && this.#start * 2 >= this.#end) {
      // A peer that always keeps a call outstanding never empties the batch: the calls move
      // down rather than the array growing by one slot per call.
      const n = this.#end - this.#start;
      calls.copyWithin(0, this.#start, this.#end);
      calls.fill(null, n, this.#end);
      this.#start = 0;
      this.#end = n;
    }
    return call;
  }

  /** Empties the batch (its slots let go of their calls). */
  clear(): void {
    const calls = this.#calls;
    for (let i = this.#start; i < this.#end; i++) calls[i] = null;
    this.#start = this.#end = 0;
  }

  /** The calls as an array of their own, and the batch emptied. */
  take(): IncomingCall[] {
    const taken: IncomingCall[] = [];
    for (let i = 0; i < this.length; i++) taken.push(this.at(i));
    this.clear();
    return taken;
  }
}
