/**
 * Thrift upstream connections, pooled exclusively: one call on a connection at a time (many
 * Thrift servers answer a connection strictly in order, and a framed connection has no way to
 * match replies but order). A call takes an idle connection of its upstream and framing from
 * @loch/transports' ConnectionPool (or connects), writes the frame, reads exactly one frame
 * back, and returns the connection only when it is provably clean: the reply is a REPLY or
 * EXCEPTION with the call's seq id, and nothing was received past it. While idle, a connection
 * keeps one receive pending: the peer closing it (or sending anything) takes it out of the pool
 * at once instead of failing the next call. That receive becomes the next call's reply read, so
 * bytes it got before the call's write completed (io_uring reports the two in the kernel's
 * order) predate the call: they fail it and drop the connection, never answering a caller. A reply's bytes stay in the connection's reader
 * (no copy); the reader receives into the same memory again only once every reply it returned
 * was given back through its ReplyLease after being written to the caller, since a relay that
 * allocates new memory per reply makes V8 run major GCs at the rate it relays. With a lease
 * whose holder releases it on every path (inPlace: the thrift relay's), a reply that came whole
 * in one receive is not even copied into the reader: it is a view of the received chunk, which
 * the reply keeps by a reference of its own (FrameReader.feedChunk/retainLast) and which goes
 * back to the runtime's pool once the lease was released; the reader lets go of it at once, so
 * the next call's reply (the connection is pooled again before the caller wrote this one) is
 * read in place as well. The call's own bytes (possibly the caller's
 * receive buffer) are lent to the connection's write: the lease hears callSettled() exactly once
 * per call, when that write settled (after a failure, once the stream is closed) or when the
 * call is never written. Not for routing
 * or for answering the caller (service.ts); an upstream with `multiplex` set carries several
 * calls per connection (mux.ts).
 */

// The module's binding, not the global: `performance` on Node's global object is a lazy accessor
// whose getter runs on every read (~200 instructions a read in optimized code, callgrind,
// bench/thrift/readings-2026-12-07b.md).
import { performance } from 'node:perf_hooks';
import {
  FrameReader,
  type FramingName,
  frameParts,
  MessageType,
  peekFrameHeader,
  RecvLowWater,
  type RetainedChunk,
  type ThriftFrame,
  type ViewFrame,
} from '@loch/thrift';
import {
  ConnectionPool,
  type ConnectOptions,
  type PoolKey,
  type PoolStats,
  TransportError,
  UnifiedL4Connector,
} from '@loch/transports';
import {
  type ByteStream,
  NO_DEADLINE,
  type RecvChunk,
  type RecvTarget,
  type RuntimeError,
  type SweepMember,
  type WriteTarget,
} from '@loch/uring-runtime';
import type { ThriftUpstreamAddress, ThriftUpstreamConfig } from '../config/schema.js';
import { callDeadlines, IDLE_LOOK_MS } from './deadlines.js';
import {
  type FrameLimits,
  type MuxCounters,
  type MuxKey,
  MuxPool,
  type ReplyHold,
  type ReplyHolder,
  readerOptions,
  type UpstreamCall,
  type UpstreamCallListener,
} from './mux.js';

import { failureOf, ThriftUpstreamError, type ThriftUpstreamFailure } from './upstream-error.js';

export { ThriftUpstreamError, type ThriftUpstreamFailure, type UpstreamCallListener };

/** A pool key: one upstream spoken to in one framing, exclusively or multiplexed. */
export interface ThriftUpstreamKey extends PoolKey, MuxKey {
  readonly address: ThriftUpstreamAddress;
  readonly framing: FramingName;
  readonly label: string;
  /** Calls in flight per connection when multiplexed; 0: one call per connection. */
  readonly multiplex: number;
}

/** An upstream of a compiled route, with its four pool keys (one per framing) made once. */
export class ThriftUpstreamEndpoint {
  readonly #keys: Record<FramingName, ThriftUpstreamKey>;
  constructor(readonly upstream: ThriftUpstreamConfig) {
    const a = upstream.address;
    const base = a.kind === 'tcp' ? `tcp:${a.host}:${a.port}` : `unix:${a.path}`;
    const key = (framing: FramingName): ThriftUpstreamKey => ({
      id: `${base}|${framing}${upstream.multiplex > 0 ? `|mux${upstream.multiplex}` : ''}`,
      address: a,
      framing,
      label: upstream.label,
      multiplex: upstream.multiplex,
    });
    this.#keys = {
      unframed: key('unframed'),
      framed: key('framed'),
      theader: key('theader'),
      ttheader: key('ttheader'),
    };
  }
  key(framing: FramingName): ThriftUpstreamKey {
    return this.#keys[framing];
  }
}

/** ThriftUpstreams.call's promise as a listener. */
class PromisedCall implements UpstreamCallListener {
  resolve!: (reply: ThriftFrame | undefined) => void;
  reject!: (error: unknown) => void;
  readonly promise = new Promise<ThriftFrame | undefined>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
  upstreamReplied(reply: ThriftFrame | undefined): void {
    this.resolve(reply);
  }
  upstreamFailed(error: unknown): void {
    this.reject(error);
  }
}

/** The call an exclusive connection runs: what to check its reply against, and whom to tell. */
class ExclusiveCall {
  /** Every byte of the call was handed to the kernel. */
  written = false;
  /** The reply, once read (and the call written, on a driver that reports them out of order). */
  reply: ViewFrame | undefined = undefined;
  /**
   * The received chunk an in-place reply is a view of (FrameReader.retainLast), until the lease
   * takes it with the reply (or the call ends otherwise and it is released).
   */
  share: RetainedChunk | null = null;
  /** Where the reply's length prefix is in that chunk (FrameReader.lastWireAt), or -1. */
  wireAt = -1;
  /** The call failed (a ONEWAY one counts as undelivered). */
  failed = false;

  constructor(
    readonly key: ThriftUpstreamKey,
    /** The framing header's seq id of the call (THeader, TTHeader): the reply's must match. */
    readonly frameSeqId: number,
    readonly message: { readonly type: number; readonly seqId: number },
    readonly callTimeout: number,
    readonly lease: UpstreamLease | undefined,
    /** Told the outcome (last: the connection is pooled or dropped first). */
    readonly listener: UpstreamCallListener,
  ) {}

  get oneway(): boolean {
    return this.message.type === MessageType.ONEWAY;
  }
}

/**
 * One upstream connection, driven by the runtime's recvTo/writeTo callbacks: a call costs no
 * promise per write or read, and none at all when started with ThriftUpstreams.start (its end
 * goes to the caller's listener; call() makes the one promise it returns), and its single pending receive
 * doubles as the idle watch (see the module comment): taken by the next call when it answers.
 */
class UpstreamConnection implements SweepMember, ReplyHolder, UpstreamCall, RecvTarget, WriteTarget {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  readonly reader: FrameReader;
  /** The socket's receive low-water mark at the reader's frame boundaries (one set a connection). */
  readonly #lowWater: RecvLowWater;
  /** The call's upstream_call deadline on the sweep's clock (NO_DEADLINE: none). */
  #callDeadline = NO_DEADLINE;
  /** The call's deadline passed and the connection was closed to end it. */
  timedOut = false;
  /** The call's caller went away and the connection was closed to end the call. */
  abandoned = false;
  /** A recvTo is pending (the idle watch, or a read for the call's reply). */
  #receiving = false;
  #idle = false;
  /** While idle: when the idle look lowers the mark (the sweep's clock; NO_DEADLINE: none). */
  #lookAt = NO_DEADLINE;
  /** The call running, if any. */
  #call: ExclusiveCall | undefined = undefined;
  /** The last reply's message type and seq id (peekFrameHeader), reused per reply. */
  readonly #header = { type: 0, seqId: 0 };
  /**
   * The call whose write is in flight (its bytes lent to the stream): told callSettled() when
   * the write settles, whether or not the call ended before (a timeout, a stray reply).
   */
  #sending: ExclusiveCall | undefined = undefined;
  /** False once the peer closed, sent something unasked, or the connection failed. */
  alive = true;
  /**
   * Replies the reader returned that were not given back (ReplyLease.release): while any is
   * out, the reader appends after their bytes instead of reusing its buffer.
   */
  lent = 0;

  constructor(
    readonly key: ThriftUpstreamKey,
    readonly stream: ByteStream,
    limits: FrameLimits,
    /** The pool's side: told when the idle watch finds the connection dead, and when a call ended. */
    private readonly owner: ConnectionOwner,
  ) {
    this.reader = new FrameReader(stream, readerOptions(key.framing, limits));
    this.#lowWater = new RecvLowWater(stream);
  }

  get closed(): boolean {
    return this.stream.closed;
  }

  close(): Promise<void> {
    this.alive = false;
    return this.stream.close();
  }

  /**
   * Marks the connection idle in the pool and keeps a receive pending to notice its death; past
   * IDLE_LOOK_MS of idleness the receive low-water mark goes to 1 (busy() sets the reader's again).
   *
   * Why the mark goes down while idle (REVIEW F227): a connection is pooled only when provably
   * clean, and the pending receive is what proves it: anything the upstream sends unasked
   * completes it and the connection leaves the pool unseen by any call. With the reader's mark
   * (5, RecvLowWater) kept, 1-4 stray bytes would wait in the kernel instead, and the next call
   * would read its reply behind them and fail. Lowering the mark makes the kernel re-check the
   * pending receive at once (tcp_set_rcvlowat calls tcp_data_ready), so bytes that came while
   * the mark was up are seen then too.
   *
   * Why only past a window (REVIEW F234): lowering at once cost two setsockopts on every call
   * (here and at busy()), more than the mark saves, while a busy pool reuses a connection within
   * microseconds. So the look is a deadline on the worker's sweep (callDeadlines, a number, no
   * timer): IDLE_LOOK_MS after pooling (up to two of the sweep's ticks later), a connection still
   * idle is lowered, and a call on it pays the one setsockopt back to 5. A connection reused
   * inside the window pays none. What that window does not catch: 1-4 stray bytes that arrive
   * and are followed by a call on the connection within the window are read in front of the
   * call's reply, which then fails as unreadable (or the write-order check in onRecv fails it) and
   * drops the connection: a failed call, as before F227's fix, never another call's answer.
   */
  watchIdle(): void {
    this.#idle = true;
    this.#lookAt = this.#lowWater.mark > 1 ? callDeadlines.deadline(this, IDLE_LOOK_MS) : NO_DEADLINE;
    // Still pending from the call (a ONEWAY call read nothing): it watches again.
    if (this.#receiving) return;
    this.#receiving = true;
    this.stream.recvTo(this);
  }

  replyReleased(): void {
    this.lent--;
    // No reply in use and no call reading one: the reader's memory (and a chunk it holds) is
    // free now, not only at the next call's busy(): an idle pooled connection holds no chunk.
    if (this.lent === 0 && this.#call === undefined) this.reader.recycle();
  }

  /** Taken out of the pool for a call. */
  busy(): void {
    this.#idle = false;
    this.#lookAt = NO_DEADLINE;
    // The reader's mark again (5 with nothing buffered) when the idle look lowered it, before the
    // call is written: the pending receive becomes the reply's (watchIdle says why it was 1).
    this.#lowWater.update(this.reader);
    // No earlier reply is in use: this call's reply may overwrite their bytes.
    if (this.lent === 0) this.reader.recycle();
  }

  /**
   * Writes the call and reads its one reply (a receive still pending from the idle watch is
   * the call's); `call` is settled through the owner's callEnded once both are done or failed.
   */
  start(call: ExclusiveCall, parts: Uint8Array | readonly Uint8Array[]): void {
    this.#call = call;
    this.#sending = call;
    this.stream.writeTo(parts, this);
    if (!call.oneway) this.#receive();
  }

  #receive(): void {
    this.#lowWater.update(this.reader);
    if (this.#receiving) return;
    this.#receiving = true;
    this.stream.recvTo(this);
  }

  onWritten(error: RuntimeError | undefined): void {
    const sent = this.#sending;
    this.#sending = undefined;
    if (sent !== undefined) {
      // The call's bytes are the caller's again: at once when written; after a failure only
      // once the stream is closed (no operation of it holds them then).
      if (error === undefined) sent.lease?.callSettled();
      else settleWhenClosed(this.stream, sent.lease);
    }
    const call = this.#call;
    if (call === undefined) return;
    if (error !== undefined) {
      this.#fail(call, this.#failure(call, 'the call could not be written', error));
      return;
    }
    call.written = true;
    if (call.oneway) this.#end(call, undefined);
    else if (call.reply !== undefined) this.#replied(call, call.reply, call.share, call.wireAt);
  }

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    this.#receiving = false;
    const call = this.#call;
    if (call === undefined || call.oneway) {
      // The idle watch (or a ONEWAY call's connection, which reads nothing): anything ends it.
      chunk?.release();
      if (this.#idle) this.#died();
      else if (call !== undefined) this.alive = false; // seen when the ONEWAY call ends
      return;
    }
    if (chunk !== null && !call.written && this.stream.driver === 'uring') {
      // io_uring reports a stream's receives and writes in the order the kernel completed them
      // (the runtime's WriteTarget): bytes received before the call's write completed predate
      // the call (the idle watch's receive, taken over by it, found them) and are no reply to
      // it, whatever seq id they carry. The legacy driver gives no such order: there, as in
      // nginx, bytes arriving while a connection is reused count as its answer.
      const stray = chunk.bytes.length;
      chunk.release();
      this.alive = false;
      this.#fail(
        call,
        new ThriftUpstreamError(
          'protocol',
          call.key.label,
          `the upstream sent ${stray} bytes before the call was written (not a reply: the connection is dropped)`,
        ),
      );
      return;
    }
    if (chunk === null) {
      const truncated = error === undefined ? this.reader.truncation() : null;
      this.#fail(
        call,
        truncated !== null
          ? this.#failure(call, 'the reply could not be read', truncated)
          : error !== undefined
            ? this.#failure(call, 'the reply could not be read', error)
            : this.#failure(call, 'the upstream closed the connection before a reply', undefined),
      );
      return;
    }
    let reply: ViewFrame | null;
    const inPlace = call.lease?.inPlace === true;
    try {
      if (inPlace) {
        // The reply is read in place, a view of the received chunk (no copy into the reader's
        // buffer): the reader keeps the chunk until a recycle() after the lease came back.
        this.reader.feedChunk(chunk);
      } else {
        try {
          this.reader.feed(chunk.bytes);
        } finally {
          chunk.release();
        }
      }
      reply = this.reader.poll();
    } catch (e) {
      this.#fail(call, this.#failure(call, 'the reply could not be read', e));
      return;
    }
    if (reply === null) {
      this.#receive();
      return;
    }
    // An in-place reply keeps its chunk by a reference of its own, given to the lease: the
    // reader lets go of the chunk at once, so the next call's reply (this connection is pooled
    // again before the caller wrote this one) is held in place too instead of copied.
    const share = inPlace ? this.reader.retainLast() : null;
    const wireAt = share === null ? -1 : this.reader.lastWireAt;
    if (call.written) this.#replied(call, reply, share, wireAt);
    else {
      // The legacy driver may report the reply before the write's completion (a write that did
      // not complete at once, whose completion is read after the reply): kept until then.
      call.reply = reply;
      call.share = share;
      call.wireAt = wireAt;
    }
  }

  /** Checks that `reply` answers `call`, then ends it. */
  #replied(call: ExclusiveCall, reply: ViewFrame, share: RetainedChunk | null, wireAt: number): void {
    call.share = share; // released by #end unless the lease takes it
    const label = call.key.label;
    // Type and seq id only: the reply's name is never decoded (no string, no header object),
    // read where it lies (no payload view made, ViewFrame).
    const header = this.#header;
    try {
      peekFrameHeader(reply, header);
    } catch (error) {
      this.#fail(
        call,
        new ThriftUpstreamError('protocol', label, `unreadable reply: ${(error as Error).message}`, {
          cause: error,
        }),
      );
      return;
    }
    if (header.type !== MessageType.REPLY && header.type !== MessageType.EXCEPTION) {
      this.#fail(
        call,
        new ThriftUpstreamError('protocol', label, `the reply has message type ${header.type}`),
      );
      return;
    }
    // Both the message's seq id and the framing header's (THeader, TTHeader) must answer the call's.
    const message = call.message;
    if (header.seqId !== message.seqId || reply.seqId !== call.frameSeqId) {
      const got = header.seqId !== message.seqId ? header.seqId : reply.seqId;
      const sent = header.seqId !== message.seqId ? message.seqId : call.frameSeqId;
      this.#fail(
        call,
        new ThriftUpstreamError('protocol', label, `the reply has seq id ${got}, the call ${sent}`),
      );
      return;
    }
    this.lent++;
    call.share = null;
    call.lease?.hold(this, share, wireAt);
    this.#end(call, reply);
  }

  /**
   * The call was answered with `reply` (undefined for a written ONEWAY call): the owner pools or
   * drops the connection, then the caller is told.
   */
  #end(call: ExclusiveCall, reply: ThriftFrame | undefined): void {
    this.#finish(call, false);
    // Last: the listener may start the caller's next call on this very connection.
    call.listener.upstreamReplied(reply);
  }

  /** The call failed with `error`: the connection is dropped, then the caller is told. */
  #fail(call: ExclusiveCall, error: ThriftUpstreamError): void {
    this.#finish(call, true);
    call.listener.upstreamFailed(error);
  }

  /**
   * What ending `call` does before its caller is told: the connection is pooled again when the
   * call did not fail and it is provably clean, else dropped. Whether it failed is the caller's
   * to say (#end or #fail), not an `instanceof` of its outcome (three per call, each a call of
   * the builtin in TurboFan's code: the class is a module binding it does not fold).
   */
  #finish(call: ExclusiveCall, failed: boolean): void {
    this.#call = undefined;
    // A reply read in place that no lease took (refused, or the call failed meanwhile).
    const share = call.share;
    call.share = null;
    share?.release();
    this.#callDeadline = NO_DEADLINE;
    call.failed = failed;
    // Pooled only when provably clean: exactly one reply read and nothing past it.
    const clean =
      !failed &&
      this.reader.buffered === 0 &&
      !this.timedOut &&
      !this.abandoned &&
      this.alive &&
      !this.stream.closed;
    // A dropped connection reads no more replies: the reader gives back the chunk it holds
    // (a retained reply keeps it until its lease is released). Also with no reply out: a
    // refused in-place reply with bytes after it leaves the reader its own reference to the
    // chunk, which recycle() does not drop (one receive buffer lost per such reply).
    if (!clean) this.reader.dispose();
    // Nothing the reader returned is in use (no reply out): a chunk it holds goes back now.
    else if (this.lent === 0) this.reader.recycle();
    this.owner.callEnded(this, call, clean);
  }

  #failure(call: ExclusiveCall, what: string, error: unknown): ThriftUpstreamError {
    const label = call.key.label;
    if (this.abandoned) {
      return new ThriftUpstreamError('abandoned', label, 'the caller went away', { cause: error });
    }
    if (this.timedOut) {
      return new ThriftUpstreamError(
        'timeout',
        label,
        `no reply within the upstream_call timeout (${call.callTimeout} ms)`,
        { cause: error },
      );
    }
    const detail = error === undefined ? '' : `: ${(error as Error)?.message ?? String(error)}`;
    return new ThriftUpstreamError(failureOf(error), label, `${what}${detail}`, { cause: error });
  }

  /**
   * Arms the call's timeout (ms, 0 = none): a number on the worker's sweep rather than a timer
   * per call. Past it the connection is closed, which ends the call's pending write or read.
   */
  armCall(ms: number): void {
    this.timedOut = false;
    if (!(ms > 0)) return;
    callDeadlines.deadline(this, ms);
    // A fresh clock, not the sweep's coarse one (which can be a whole old tick stale once a
    // shorter deadline shortens the tick): never early.
    this.#callDeadline = performance.now() + ms;
  }

  /**
   * The caller went away: the connection is closed, which ends the call's pending write or
   * read, tells the upstream the call is abandoned, and keeps a late reply from ever being
   * read as the next call's (a closed connection is never pooled again).
   */
  cancelCall(): void {
    this.abandoned = true;
    void this.close().catch(() => {});
  }

  onSweep(now: number): boolean {
    if (this.#lookAt <= now) {
      // Idle past IDLE_LOOK_MS: the mark to 1, so 1-4 stray bytes end the idle watch (watchIdle).
      this.#lookAt = NO_DEADLINE;
      if (this.#idle && !this.stream.closed) this.#lowWater.lower();
    }
    if (this.#callDeadline > now) return this.#callDeadline !== NO_DEADLINE || this.#lookAt !== NO_DEADLINE;
    this.#callDeadline = NO_DEADLINE;
    this.timedOut = true;
    void this.close().catch(() => {});
    return false;
  }

  #died(): void {
    this.alive = false;
    this.owner.idleDied(this);
  }
}

/** `lease.callSettled()` once `stream` is closed (a failed write's bytes are lent until then). */
function settleWhenClosed(stream: ByteStream, lease: UpstreamLease | undefined): void {
  if (lease === undefined) return;
  const settle = (): void => lease.callSettled();
  stream.close().then(settle, settle);
}

/** What an UpstreamConnection tells its pool. */
interface ConnectionOwner {
  /** The idle watch found the connection dead (closed, reset, or sent something unasked). */
  idleDied(conn: UpstreamConnection): void;
  /** `call` ended; `clean`: the connection may carry the next call. */
  callEnded(conn: UpstreamConnection, call: ExclusiveCall, clean: boolean): void;
}

/**
 * What ThriftUpstreams needs of a caller's lease on a relayed reply (ReplyLease below is one; the
 * thrift relay's RelayedReply implements it itself, service.ts says why).
 */
export interface UpstreamLease extends ReplyHold {
  /** See ReplyLease.inPlace. */
  readonly inPlace: boolean;
  /** See ReplyLease.running. */
  running(call: UpstreamCall | undefined): boolean;
  /** See ReplyLease.callSettled. */
  callSettled(): void;
}

/**
 * A relayed reply's hold on the exclusive connection whose reader its bytes live in. A caller
 * that answers with the reply frame's bytes passes one to ThriftUpstreams.call and releases it
 * once they were written; one never released (or none passed) only keeps that connection's
 * reader from reusing its memory.
 */
export class ReplyLease implements UpstreamLease, LeaseState {
  /**
   * The holder releases this lease on every path once the reply's bytes are unused (a written
   * reply, a dropped one), so an exclusive or multiplexed connection may return the reply as a
   * view of the received chunk itself (FrameReader.feedChunk, retainLast): a lease never
   * released then keeps a receive buffer of the runtime's pool, not only reader memory. False
   * here: the reply is copied.
   */
  get inPlace(): boolean {
    return false;
  }
  /** @internal LeaseState. */
  leaseHolder: ReplyHolder | undefined = undefined;
  /** @internal LeaseState. */
  leaseChunk: RetainedChunk | null = null;
  /** @internal LeaseState. */
  leaseWireAt = -1;
  /** @internal LeaseState. */
  leaseCall: UpstreamCall | undefined = undefined;
  /** The caller went away (abandon()). */
  abandoned = false;

  /** @internal The upstream call now running (undefined: it ended); false if the caller is gone. */
  running(call: UpstreamCall | undefined): boolean {
    return leaseRunning(this, call);
  }

  /**
   * The caller went away: the upstream call running for it is cancelled (an exclusive
   * connection closed, a multiplexed call's id tombstoned), and one not yet made is not made.
   */
  abandon(): void {
    leaseAbandon(this);
  }

  /**
   * @internal The reply was read by `holder`'s reader; `chunk`: it is a view of that received
   * chunk (an in-place read), given back with the lease; `wireAt`: where its length prefix is in
   * the chunk (FrameReader.lastWireAt; -1: not there, no wire).
   */
  hold(holder: ReplyHolder, chunk: RetainedChunk | null = null, wireAt = -1): void {
    leaseHold(this, holder, chunk, wireAt);
  }

  /**
   * @internal The held reply, framed, as it came (RetainedChunk.wire): one view of its length
   * prefix and payload, `wireLength` bytes (the reply frame's), when the reply was read in place
   * with its prefix; else undefined.
   */
  framedWire(wireLength: number): Uint8Array | undefined {
    return leaseFramedWire(this, wireLength);
  }

  /**
   * The call's own bytes (the frame given to ThriftUpstreams.call) are no longer lent to a
   * write: written, or the write failed and its stream was closed, or the call will never be
   * written (no connection, the caller gone, not encodable). Called exactly once per call, on
   * every path; a multiplexed upstream may call it after the reply came (the reply can beat the
   * writev's completion). Nothing here; the thrift relay gives the caller's frame back to the
   * server then, which may hand its receive buffer back to the runtime.
   */
  callSettled(): void {}

  /** The reply's bytes are no longer used (a second call does nothing). */
  release(): void {
    leaseRelease(this);
  }
}

/**
 * @internal A lease's state: ReplyLease's fields, declared again by the thrift relay's
 * RelayedReply, which implements UpstreamLease without extending ReplyLease (a subclass's
 * super() went through V8's generic Construct builtin on every relayed call, service.ts). The
 * lease's operations are the functions below over this state: one implementation for both, so
 * ReplyLease's tests exercise the relay's lease too.
 */
export interface LeaseState {
  /** The connection whose reader the reply was read by (hold()), until released. */
  leaseHolder: ReplyHolder | undefined;
  /** The received chunk the reply is a view of (in place), released with the lease. */
  leaseChunk: RetainedChunk | null;
  /** Where the reply's length prefix is in that chunk (FrameReader.lastWireAt), or -1: no wire. */
  leaseWireAt: number;
  /** The upstream call running for the caller, cancelled by abandon(). */
  leaseCall: UpstreamCall | undefined;
  /** The caller went away (abandon()). */
  abandoned: boolean;
}

/** @internal ReplyLease.running over `s`. */
export function leaseRunning(s: LeaseState, call: UpstreamCall | undefined): boolean {
  if (s.abandoned) return false;
  s.leaseCall = call;
  return true;
}

/** @internal ReplyLease.abandon over `s`. */
export function leaseAbandon(s: LeaseState): void {
  if (s.abandoned) return;
  s.abandoned = true;
  const call = s.leaseCall;
  s.leaseCall = undefined;
  call?.cancelCall();
}

/** @internal ReplyLease.hold over `s`. */
export function leaseHold(
  s: LeaseState,
  holder: ReplyHolder,
  chunk: RetainedChunk | null,
  wireAt: number,
): void {
  s.leaseHolder = holder;
  s.leaseChunk = chunk;
  s.leaseWireAt = chunk === null ? -1 : wireAt;
}

/** @internal ReplyLease.framedWire over `s`. */
export function leaseFramedWire(s: LeaseState, wireLength: number): Uint8Array | undefined {
  const chunk = s.leaseChunk;
  return s.leaseHolder === undefined || chunk === null || s.leaseWireAt < 0
    ? undefined
    : chunk.wire(s.leaseWireAt, wireLength);
}

/** @internal ReplyLease.release over `s`: the reply's bytes are no longer used (once). */
export function leaseRelease(s: LeaseState): void {
  const holder = s.leaseHolder;
  if (holder === undefined) return;
  s.leaseHolder = undefined;
  const chunk = s.leaseChunk;
  s.leaseChunk = null;
  chunk?.release();
  holder.replyReleased();
}

/** Settings of a ThriftUpstreams. */
export interface ThriftUpstreamsOptions {
  /** Idle connections older than this are closed (ms). */
  readonly idleTimeout: number;
  /** Largest seq id a multiplexed connection hands out before wrapping (tests shrink it). */
  readonly maxSeqId?: number;
}

/** Deadlines (ms, 0 = none) and limits of one call. */
export interface ThriftCallOptions {
  readonly connect: number;
  readonly call: number;
  /** Largest reply frame accepted (applies to connections made for this call). */
  readonly maxFrameSize: number;
  /** Largest THeader/TTHeader reply header block, bytes (undefined: @loch/thrift's 64 KiB); as maxFrameSize. */
  readonly maxHeaderSize?: number | undefined;
  /** Most info headers in a THeader/TTHeader reply (undefined: @loch/thrift's 1,000); as maxFrameSize. */
  readonly maxHeaderCount?: number | undefined;
}

/** Counters of a ThriftUpstreams beside its pool's. */
export interface ThriftUpstreamStats extends PoolStats, Pick<MuxCounters, 'lateReplies' | 'retired'> {
  /** Multiplexed connections open. */
  readonly muxConnections: number;
  /** ONEWAY calls that could not be delivered (logged one by one as well). */
  readonly onewayFailures: number;
}

/** The upstream side of a thrift server in one worker: connector and pools, kept across reloads. */
export class ThriftUpstreams implements ConnectionOwner {
  readonly #pool: ConnectionPool<ThriftUpstreamKey, UpstreamConnection>;
  readonly #mux: MuxPool;
  readonly #connector = new UnifiedL4Connector();
  readonly #open = new Set<UpstreamConnection>();
  /** Exclusive calls being forwarded (the multiplexed ones are counted by MuxPool). */
  #inFlight = 0;
  /** Exclusive ONEWAY calls that could not be delivered. */
  #onewayFailures = 0;

  constructor(options: ThriftUpstreamsOptions) {
    this.#pool = new ConnectionPool<ThriftUpstreamKey, UpstreamConnection>({
      maxIdlePerKey: 64,
      idleTimeout: options.idleTimeout,
      isAlive: (c) => c.alive && !c.stream.closed,
    });
    this.#mux = new MuxPool(
      (key, timeout) => this.#connectStream(key as ThriftUpstreamKey, timeout),
      options.idleTimeout,
      options.maxSeqId,
    );
  }

  /** Calls being forwarded, exclusive and multiplexed (a graceful stop waits for them). */
  get inFlight(): number {
    return this.#inFlight + this.#mux.counters.inFlight;
  }

  /** Pool counters. */
  stats(): ThriftUpstreamStats {
    const mux = this.#mux.counters;
    return {
      ...this.#pool.stats(),
      lateReplies: mux.lateReplies,
      retired: mux.retired,
      muxConnections: this.#mux.connections,
      onewayFailures: this.#onewayFailures + mux.onewayFailures,
    };
  }

  /**
   * Sends `frame` (the call as it goes upstream, in the key's framing; `message` its message
   * header) and resolves the reply frame, undecoded past its message header, with the call's
   * message seq id (the framing header's is the server's to restore); undefined for a ONEWAY
   * call (resolved once written). Exclusive or multiplexed as the key says. Rejects with
   * ThriftUpstreamError. The reply's bytes stay valid until `lease` is released (without a
   * lease, for as long as they are referenced).
   */
  call(
    key: ThriftUpstreamKey,
    frame: ThriftFrame,
    message: { readonly type: number; readonly seqId: number },
    timeouts: ThriftCallOptions,
    lease?: UpstreamLease,
  ): Promise<ThriftFrame | undefined> {
    const promised = new PromisedCall();
    this.start(key, frame, message, timeouts, lease, promised);
    return promised.promise;
  }

  /**
   * As call(), but the outcome goes to `listener` instead of a promise: a call then costs no
   * promise at all (its reply is passed on from the connection's receive callback, exclusive or
   * multiplexed; but the cold path's connect).
   */
  start(
    key: ThriftUpstreamKey,
    frame: ThriftFrame,
    message: { readonly type: number; readonly seqId: number },
    timeouts: ThriftCallOptions,
    lease: UpstreamLease | undefined,
    listener: UpstreamCallListener,
    /**
     * The call exactly as it came (ThriftRequest.wire: framed, one buffer), when `frame` is that
     * call unchanged: an exclusive upstream writes it as is, no prefix made, one buffer.
     */
    wire?: Uint8Array,
  ): void {
    if (key.multiplex === 0) {
      this.#call(key, frame, message, timeouts, lease, listener, wire);
      return;
    }
    // Told from the multiplexed connection's callbacks, as an exclusive call is: no promise
    // (MuxPool's promise and its reaction per call until 2026-12-05).
    const oneway = message.type === MessageType.ONEWAY;
    this.#mux.call(key, { frame, seqId: message.seqId, oneway, lease }, timeouts, listener);
  }

  /**
   * An exclusive call: a pooled connection (or a new one) runs it on its stream's callbacks
   * (UpstreamConnection.start), which tell `listener` how it ended: no promise per call (but
   * the cold path's connect).
   */
  #call(
    key: ThriftUpstreamKey,
    frame: ThriftFrame,
    message: { readonly type: number; readonly seqId: number },
    timeouts: ThriftCallOptions,
    lease: UpstreamLease | undefined,
    listener: UpstreamCallListener,
    wire?: Uint8Array,
  ): void {
    this.#inFlight++;
    const call = new ExclusiveCall(key, frame.seqId, message, timeouts.call, lease, listener);
    let parts: Uint8Array | Uint8Array[];
    try {
      // Framed as the caller sent it (same framing: the route changed nothing): its bytes as they came.
      parts = wire !== undefined && frame.framing === 'framed' ? wire : frameParts(frame, frame.payload);
    } catch (error) {
      call.failed = true;
      this.#ended(call);
      lease?.callSettled();
      listener.upstreamFailed(error);
      return;
    }
    const conn = this.#pool.acquire(key);
    if (conn !== undefined) {
      this.#start(conn, call, parts);
      return;
    }
    // Cold path: a new connection first.
    this.#connect(key, timeouts).then(
      (fresh) => {
        try {
          this.#start(fresh, call, parts);
        } catch (error) {
          // Not expected; but a throw here would be an unhandled rejection, not the call's error.
          listener.upstreamFailed(error);
        }
      },
      (error: unknown) => {
        call.failed = true;
        this.#ended(call);
        lease?.callSettled(); // never written
        listener.upstreamFailed(error);
      },
    );
  }

  #start(conn: UpstreamConnection, call: ExclusiveCall, parts: Uint8Array | readonly Uint8Array[]): void {
    conn.busy();
    const lease = call.lease;
    if (lease !== undefined && !lease.running(conn)) {
      // The caller went away while a connection was found: it goes back to the pool unused.
      call.failed = true;
      this.callEnded(conn, call, true);
      lease.callSettled(); // never written
      call.listener.upstreamFailed(
        new ThriftUpstreamError('abandoned', call.key.label, 'the caller went away'),
      );
      return;
    }
    conn.armCall(call.callTimeout);
    conn.start(call, parts);
  }

  /** ConnectionOwner: the connection's idle watch found it dead. */
  idleDied(conn: UpstreamConnection): void {
    this.#pool.removeIdle(conn.key, conn);
  }

  /** ConnectionOwner: `call` ended on `conn`; the connection is pooled again only when `clean`. */
  callEnded(conn: UpstreamConnection, call: ExclusiveCall, clean: boolean): void {
    this.#ended(call);
    if (clean) conn.watchIdle();
    else this.#open.delete(conn);
    this.#pool.release(call.key, conn, clean);
  }

  /** A call is no longer in flight (answered, failed, or never started). */
  #ended(call: ExclusiveCall): void {
    this.#inFlight--;
    if (call.failed && call.oneway) this.#onewayFailures++;
    // The call ended: the caller going away from now on must not close the connection.
    call.lease?.running(undefined);
  }

  async #connect(key: ThriftUpstreamKey, options: ThriftCallOptions): Promise<UpstreamConnection> {
    const stream = await this.#connectStream(key, options.connect);
    const conn = new UpstreamConnection(key, stream, options, this);
    this.#pool.created(key, conn);
    // Connections the pool closed (idle timeout, cap) are swept here, not tracked per close.
    if (this.#open.size >= 256) for (const c of this.#open) if (c.closed) this.#open.delete(c);
    this.#open.add(conn);
    return conn;
  }

  /** Connects to the key's upstream; rejects with a ThriftUpstreamError. */
  async #connectStream(key: ThriftUpstreamKey, timeout: number): Promise<ByteStream> {
    const options: ConnectOptions = { timeout };
    try {
      return await this.#connector.connect(key.address, options);
    } catch (error) {
      const code = error instanceof TransportError ? error.code : '';
      const failure: ThriftUpstreamFailure =
        code === 'ERR_TRANSPORT_CONNECT_REFUSED'
          ? 'refused'
          : code === 'ERR_TRANSPORT_CONNECT_TIMEOUT'
            ? 'connect_timeout'
            : 'connect_failed';
      throw new ThriftUpstreamError(
        failure,
        key.label,
        failure === 'connect_timeout'
          ? `no connection within the upstream_connect timeout (${timeout} ms)`
          : `connect failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** Closes idle connections now and the rest when their calls end; closeAll ends those too. */
  close(): void {
    this.#pool.close();
    this.#mux.close();
  }

  /** Closes every connection, in use or not (shutdown past its grace). */
  closeAll(): void {
    this.#pool.close();
    this.#mux.closeAll();
    for (const conn of this.#open) void conn.close().catch(() => {});
    this.#open.clear();
  }
}
