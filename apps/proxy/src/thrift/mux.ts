/**
 * Multiplexed upstream connections of the thrift proxy (an upstream with `multiplex = true`):
 * several calls in flight on one connection, told apart by seq ids that loch assigns. Each call
 * is written with a connection-unique seq id in both its framing header (THeader/TTHeader) and
 * its message header (compact's varint may change length: the frame is re-encoded, its length
 * recomputed; a zlib THeader payload is already inflated by the reader and deflated again when
 * written), and its reply gets the caller's ids back. A call that times out, or whose caller
 * went away (its lease's abandon()), leaves a tombstone on its id: the id is not handed out again until its late reply came (and was dropped) or the
 * connection ended, so a late reply never reaches another call. Too many tombstones (more than
 * the connection's call limit) retire the connection: no new calls, closed when the rest end.
 * A reply with an id that no call and no tombstone holds, or that is not a REPLY/EXCEPTION, is
 * a protocol error that fails every call of that connection. ONEWAY calls free their slot once
 * written. Writes are queued and coalesced: calls made while a write is in flight go out
 * together in the next writev; each call's lease hears callSettled() once the writev carrying
 * its bytes settled (a failed one: once the stream is closed), never at its reply, which may
 * come first, or at once when its bytes will never be written. Call and idle timeouts are deadline numbers on the worker's sweep
 * (deadlines.ts), not timers. While every call waiting has a lease released on every path
 * (inPlace: the relay's), replies are read in place: a reply that came whole in a receive is a
 * view of that chunk and keeps it (FrameReader.retainLast) until its lease is released; a reply
 * nobody takes (a late one, a failing connection) gives it back at once. Otherwise, and for a
 * reply split across receives, replies are copied into the connection's reader memory; once
 * every reply handed out was given back through its lease (upstream.ts's ReplyLease), the
 * reader reuses it.
 * Unlike an exclusive connection (upstream.ts), a reply received before its call's writev
 * completed is not refused as predating the call: a writev carries several calls, and after a
 * short send the upstream may rightly answer the first ones before the rest is sent (the
 * runtime reports no per-call progress), so an upstream that forges a reply for an id in
 * flight cannot be told from one answering it. Multiplexing is for upstreams trusted that far.
 * A call's end goes to its listener (UpstreamCallListener), told from the connection's own
 * callbacks: a multiplexed call costs no promise either (a promise and its reaction per call
 * until 2026-12-05).
 * Not for exclusive (one call at a time) connections: upstream.ts.
 */
// The module's binding, not the global: `performance` on Node's global object is a lazy accessor
// whose getter runs on every read (~200 instructions a read in optimized code, callgrind,
// bench/thrift/readings-2026-12-07b.md).
import { performance } from 'node:perf_hooks';
import {
  FrameReader,
  type FrameReaderOptions,
  type FramingName,
  MessageType,
  peekFrameHeader,
  RecvLowWater,
  type RetainedChunk,
  reframe,
  rewriteSeqId,
  type ThriftFrame,
  type ViewFrame,
} from '@loch/thrift';
import {
  type ByteStream,
  NO_DEADLINE,
  type RecvChunk,
  type RecvTarget,
  type RuntimeError,
  type SweepMember,
  type WriteTarget,
} from '@loch/uring-runtime';
import { callDeadlines, IDLE_LOOK_MS } from './deadlines.js';
import { failureOf, ThriftUpstreamError } from './upstream-error.js';

/** What a multiplexed pool needs of a pool key. */
export interface MuxKey {
  readonly id: string;
  readonly framing: ThriftFrame['framing'];
  readonly label: string;
  /** Most calls in flight on one connection (> 0). */
  readonly multiplex: number;
}

/**
 * Told how an upstream call ended (ThriftUpstreams.start, MuxPool.call): an object the caller
 * has anyway, so a call costs no promise, reaction or closure. Exactly one of the two, once;
 * possibly before the call returns (a refused frame, a caller already gone). Must not throw.
 */
export interface UpstreamCallListener {
  /** The reply frame (as ThriftUpstreams.call resolves it); undefined: a ONEWAY call was written. */
  upstreamReplied(reply: ThriftFrame | undefined): void;
  /** The call failed: a ThriftUpstreamError, or the error that kept the frame from being encoded. */
  upstreamFailed(error: unknown): void;
}

/** A connection whose reader holds replies handed out (their bytes are its memory). */
export interface ReplyHolder {
  /** A reply it handed out is no longer used. */
  replyReleased(): void;
}

/** An upstream call in progress that its caller may cancel (it went away). */
export interface UpstreamCall {
  cancelCall(): void;
}

/**
 * `reply` with `payload` in place of its own (its seq id re-encoded, or a copy), as a plain
 * frame: not a spread of the ViewFrame, which would copy no payload but its `bytes` and range,
 * and its wire length off by what the re-encoding changed.
 */
function withPayload(reply: ViewFrame, payload: Uint8Array): ThriftFrame {
  return {
    framing: reply.framing,
    protocol: reply.protocol,
    seqId: reply.seqId,
    flags: reply.flags,
    headers: reply.headers,
    intHeaders: reply.intHeaders,
    persistentHeaders: reply.persistentHeaders,
    aclToken: reply.aclToken,
    transforms: reply.transforms,
    payload,
    wireLength: reply.wireLength + payload.length - reply.payloadLength,
  };
}

/** Told which connection a reply came from (upstream.ts's ReplyLease). */
export interface ReplyHold {
  /**
   * The reply was read by `holder`'s reader; `chunk`: it is a view of that received chunk,
   * released with the lease; `wireAt`: where its length prefix is in the chunk (-1: not there).
   */
  hold(holder: ReplyHolder, chunk?: RetainedChunk | null, wireAt?: number): void;
  /**
   * Optional: the lease is released on every path once the reply's bytes are unused
   * (upstream.ts's ReplyLease.inPlace), so the reply may be a view of the received chunk.
   */
  readonly inPlace?: boolean;
  /**
   * Optional: the upstream call now running for this caller (undefined: none any more), to be
   * cancelled if the caller goes away. Returns false when the caller is already gone: the call
   * is then not made.
   */
  running?(call: UpstreamCall | undefined): boolean;
  /**
   * Optional: the call's own bytes are no longer lent to a write (see upstream.ts's
   * ReplyLease.callSettled): once the writev carrying them settled (after a failed one, once the
   * stream is closed), or at once when they will never be written. Exactly once per call; may
   * come after the reply (an upstream can answer before the writev's completion is reported).
   */
  callSettled?(): void;
}

/** A call to forward: the frame as it goes upstream, and the caller's ids to answer with. */
export interface MuxCall {
  /** The frame to send (its payload's seq id and framing seq id are rewritten on the way). */
  readonly frame: ThriftFrame;
  /** The caller's message seq id, written back into the reply's message header. */
  readonly seqId: number;
  readonly oneway: boolean;
  /** Released once the reply is no longer used; without one the reader never reuses its memory. */
  readonly lease?: ReplyHold | undefined;
}

/** Deadlines and limits of one call (ms, 0 = none). */
export interface MuxCallOptions {
  readonly connect: number;
  readonly call: number;
  readonly maxFrameSize: number;
  /** As ThriftCallOptions.maxHeaderSize. */
  readonly maxHeaderSize?: number | undefined;
  /** As ThriftCallOptions.maxHeaderCount. */
  readonly maxHeaderCount?: number | undefined;
}

/** An upstream reply reader's limits: the route's (ThriftCallOptions, MuxCallOptions). */
export type FrameLimits = Pick<MuxCallOptions, 'maxFrameSize' | 'maxHeaderSize' | 'maxHeaderCount'>;

/**
 * The FrameReader options of an upstream connection of `framing` under `limits`: a reply over
 * them fails its call (the reply could not be read: INTERNAL_ERROR to the caller), as a reply
 * over max_frame_size always did. An undefined header limit is @loch/thrift's default.
 */
export function readerOptions(framing: FramingName, limits: FrameLimits): FrameReaderOptions {
  return {
    framing,
    maxFrameSize: limits.maxFrameSize,
    maxHeaderSize: limits.maxHeaderSize,
    maxHeaderCount: limits.maxHeaderCount,
  };
}

/** Counters shared by the connections of a pool. */
export interface MuxCounters {
  /** Replies that came after their call timed out (dropped on their tombstone). */
  lateReplies: number;
  /** Connections retired because too many of their calls timed out. */
  retired: number;
  /** ONEWAY calls that could not be delivered. */
  onewayFailures: number;
  /** Calls given to the pool whose listener was not told yet. */
  inFlight: number;
}

/** A call's end: counted out of the pool's calls in flight, then its listener told. */
function replied(
  counters: MuxCounters,
  listener: UpstreamCallListener,
  reply: ThriftFrame | undefined,
): void {
  counters.inFlight--;
  listener.upstreamReplied(reply);
}

/** A call's failure: counted out of the pool's calls in flight (and as undelivered if ONEWAY), then its listener told. */
function failed(
  counters: MuxCounters,
  listener: UpstreamCallListener,
  error: unknown,
  oneway: boolean,
): void {
  counters.inFlight--;
  if (oneway) counters.onewayFailures++;
  listener.upstreamFailed(error);
}

/** A call waiting for its reply; cancelCall() abandons it (its caller went away). */
class Waiting implements UpstreamCall {
  constructor(
    readonly conn: MuxConnection,
    /** The connection's seq id of the call. */
    readonly id: number,
    /** The caller's seq id, written back into the reply. */
    readonly seqId: number,
    readonly lease: ReplyHold | undefined,
    /** Told the reply or the failure. */
    readonly listener: UpstreamCallListener,
    /** When the call times out (performance.now() ms; NO_DEADLINE: never), and its timeout. */
    readonly deadline: number,
    readonly timeout: number,
  ) {}

  cancelCall(): void {
    this.conn.abandon(this);
  }
}

/** At most this many buffers per writev (IOV_MAX is 1024 on Linux). */
const MAX_IOVECS = 512;

/**
 * One upstream connection carrying several calls at once. Its writes and receives run on the
 * runtime stream's callback forms (writeTo/recvTo), and each call's end goes to its listener:
 * nothing here makes a promise per call. Listeners are told last, once the connection's state
 * is settled, since one may start its caller's next call on this very connection.
 */
export class MuxConnection implements SweepMember, ReplyHolder, RecvTarget, WriteTarget {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  readonly #reader: FrameReader;
  /** The socket's receive low-water mark at the reader's frame boundaries (one set a connection). */
  readonly #lowWater: RecvLowWater;
  readonly #pending = new Map<number, Waiting>();
  readonly #tombstones = new Set<number>();
  /** The last reply's message type and seq id (peekFrameHeader), reused per reply. */
  readonly #header = { type: 0, seqId: 0 };
  #nextId = 1;
  #queue: Uint8Array[] = [];
  /** The listeners of the ONEWAY calls in `#queue`, told once it is written. */
  #queued: UpstreamCallListener[] = [];
  /** The listeners of the ONEWAY calls in the writev in flight (null: no writev in flight). */
  #writing: UpstreamCallListener[] | null = null;
  /** Calls whose bytes are in `#queue` (told callSettled() once a writev carried them). */
  #queuedSent: ReplyHold[] = [];
  /** Calls whose bytes the writev in flight carries (the last of them, when split). */
  #writingSent: ReplyHold[] = [];
  /** When the idle connection closes (performance.now() ms; NO_DEADLINE: busy or never). */
  #idleDeadline = NO_DEADLINE;
  /** While idle: when the idle look lowers the receive mark (the sweep's clock; NO_DEADLINE: none). */
  #lookAt = NO_DEADLINE;
  #error: ThriftUpstreamError | undefined;
  /** Calls given to this connection and not finished (reserved ones included). */
  load = 0;
  /** False once the connection failed or was closed. */
  alive = true;
  /** No new calls: closed once its calls end. */
  draining = false;
  /** Replies handed out and not released: the reader reuses its memory only at 0. */
  #lent = 0;
  /**
   * Calls waiting whose lease does not say it is released on every path (not inPlace): while
   * any waits, replies are copied into the reader (feed), else read in place (feedChunk), each
   * reply keeping its chunk until its lease is released.
   */
  #copyLeases = 0;

  constructor(
    readonly key: MuxKey,
    readonly stream: ByteStream,
    limits: FrameLimits,
    private readonly idleTimeout: number,
    private readonly counters: MuxCounters,
    private readonly onEnd: (conn: MuxConnection) => void,
    /** Largest seq id handed out before wrapping to 1 (an i32; tests shrink it). */
    private readonly maxSeqId = 0x7fffffff,
  ) {
    this.#reader = new FrameReader(stream, readerOptions(key.framing, limits));
    this.#lowWater = new RecvLowWater(stream);
    this.#lowWater.update(this.#reader);
    // One receive pending for the connection's life: replies, or its end.
    stream.recvTo(this);
  }

  /** Takes a call this connection was reserved for (`load` counts it already); its end goes to `listener`. */
  call(call: MuxCall, timeout: number, listener: UpstreamCallListener): void {
    if (!this.alive) {
      this.#refuse(call, listener, this.#error);
      return;
    }
    this.#idleDeadline = NO_DEADLINE;
    // The reader's mark again before the call is written (#goIdle says why it may be 1): a
    // syscall only when the idle look lowered it.
    this.#lookAt = NO_DEADLINE;
    this.#lowWater.update(this.#reader);
    const id = this.#allocate();
    let parts: Uint8Array[];
    try {
      parts = reframe(call.frame, { seqId: id });
    } catch (error) {
      this.#refuse(
        call,
        listener,
        new ThriftUpstreamError(
          'protocol',
          this.key.label,
          `the call could not be re-encoded: ${(error as Error).message}`,
          { cause: error },
        ),
      );
      return;
    }
    if (call.oneway) {
      this.#enqueue(parts, listener, call.lease);
      return;
    }
    const waiting = new Waiting(this, id, call.seqId, call.lease, listener, this.#arm(timeout), timeout);
    let taken: boolean;
    try {
      taken = call.lease?.running?.(waiting) !== false;
    } catch (error) {
      // A lease that throws (not expected of one) fails its call here, where its slot is known
      // to be held: MuxPool's catch would count the call out of the pool but not give the slot
      // back, and each such throw would cost this connection one of its `multiplex` for good.
      this.#refuse(call, listener, error);
      return;
    }
    if (!taken) {
      // The caller went away before its call was sent: nothing to send, nothing to wait for.
      this.#refuse(
        call,
        listener,
        new ThriftUpstreamError('abandoned', this.key.label, 'the caller went away'),
      );
      return;
    }
    this.#pending.set(id, waiting);
    if (call.lease?.inPlace !== true) this.#copyLeases++;
    this.#enqueue(parts, undefined, call.lease);
  }

  /**
   * A call taken (its slot counted in `load`) and never to be written: the slot goes back, its
   * lease hears its bytes are no longer lent, its listener the failure. Every path of call() that
   * refuses a call ends here, so none can forget the slot.
   */
  #refuse(call: MuxCall, listener: UpstreamCallListener, error: unknown): void {
    this.#release();
    call.lease?.callSettled?.(); // never written
    failed(this.counters, listener, error, call.oneway);
  }

  /**
   * A deadline `ms` from now on the worker's sweep (NO_DEADLINE for 0). Measured from a fresh
   * clock: the sweep's coarse one can be a whole old tick stale and fire early.
   */
  #arm(ms: number): number {
    if (!(ms > 0)) return NO_DEADLINE;
    callDeadlines.deadline(this, ms);
    return performance.now() + ms;
  }

  replyReleased(): void {
    // No reply handed out is in use: the reader may overwrite their bytes (unread ones move).
    if (--this.#lent === 0) this.#reader.recycle();
  }

  /** The sweep's call: times out calls and an idle connection past their deadlines. */
  onSweep(now: number): boolean {
    if (!this.alive) return false;
    if (this.#idleDeadline <= now) {
      this.close();
      return false;
    }
    if (this.#lookAt <= now) {
      // Idle past IDLE_LOOK_MS: the mark to 1, so 1-4 stray bytes wake the receive (#goIdle).
      this.#lookAt = NO_DEADLINE;
      if (this.load === 0) this.#lowWater.lower();
    }
    let armed = false;
    // Deleting the current entry while iterating a Map is safe.
    for (const [id, waiting] of this.#pending) {
      if (waiting.deadline <= now) this.#timedOut(id, waiting);
      else if (waiting.deadline !== NO_DEADLINE) armed = true;
      if (!this.alive) return false;
    }
    // Read after the loop (REVIEW F240): a last call timed out there goes idle (#goIdle), and the
    // idle timeout and look it arms live only if this sweep keeps the connection.
    return armed || this.#idleDeadline !== NO_DEADLINE || this.#lookAt !== NO_DEADLINE;
  }

  /** Ends the connection; calls still on it fail as reset. */
  close(): void {
    this.#die(new ThriftUpstreamError('reset', this.key.label, 'the connection was closed by loch'));
  }

  /** Stops taking calls and closes once the calls on it end. */
  drain(): void {
    this.draining = true;
    if (this.load === 0) this.close();
  }

  /**
   * A seq id held by no call and no tombstone (ids are positive i32s). Calls and tombstones
   * are at most twice the call limit, far below the id space, so the search is short.
   */
  #allocate(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= this.maxSeqId ? 1 : id + 1;
      if (!this.#pending.has(id) && !this.#tombstones.has(id)) return id;
    }
  }

  #timedOut(id: number, waiting: Waiting): void {
    this.#bury(
      id,
      waiting,
      new ThriftUpstreamError(
        'timeout',
        this.key.label,
        `no reply within the upstream_call timeout (${waiting.timeout} ms)`,
      ),
    );
  }

  /**
   * A waiting call's caller went away: the call fails at once and, as a timed-out one, leaves
   * a tombstone on its id, so its reply is dropped when it comes and never reaches a call that
   * reused the id.
   */
  abandon(waiting: Waiting): void {
    if (this.#pending.get(waiting.id) !== waiting) return; // answered or failed already
    this.#bury(
      waiting.id,
      waiting,
      new ThriftUpstreamError('abandoned', this.key.label, 'the caller went away'),
    );
  }

  #bury(id: number, waiting: Waiting, error: ThriftUpstreamError): void {
    this.#pending.delete(id);
    if (waiting.lease?.inPlace !== true) this.#copyLeases--;
    this.#tombstones.add(id);
    waiting.lease?.running?.(undefined);
    if (this.#tombstones.size > this.key.multiplex && !this.draining) {
      // An upstream that stopped answering: new calls go to a new connection.
      this.counters.retired++;
      this.draining = true;
    }
    this.#release();
    failed(this.counters, waiting.listener, error, false);
  }

  /** A call ended: the connection may go idle, or close when draining. */
  #release(): void {
    if (!this.alive) return;
    this.load--;
    if (this.load > 0) return;
    if (this.draining) this.close();
    else this.#goIdle();
  }

  /**
   * No call on the connection: the idle timeout runs, and past IDLE_LOOK_MS the receive mark
   * goes to 1 (the first call after sets the reader's again).
   *
   * Why (REVIEW F227's class, for multiplexed connections): with no call waiting and no
   * tombstone, any byte the upstream sends is stray, and onRecv ends the connection on it
   * before a call's reply can be read behind it. With the reader's mark (5)
   * kept, 1-4 such bytes would wait in the kernel and corrupt the next reply (every call then on
   * the connection fails). Lowering makes the kernel re-check the pending receive at once
   * (tcp_set_rcvlowat calls tcp_data_ready). Only past a window, as for exclusive connections
   * (UpstreamConnection.watchIdle, which says what the window does not catch): a busy
   * connection that goes idle between two calls pays no setsockopt.
   */
  #goIdle(): void {
    this.#idleDeadline = this.#arm(this.idleTimeout);
    if (this.#lowWater.mark > 1) this.#lookAt = callDeadlines.deadline(this, IDLE_LOOK_MS);
  }

  #enqueue(
    parts: readonly Uint8Array[],
    oneway: UpstreamCallListener | undefined,
    lease: ReplyHold | undefined,
  ): void {
    for (const p of parts) this.#queue.push(p);
    if (oneway !== undefined) this.#queued.push(oneway);
    if (lease?.callSettled !== undefined) this.#queuedSent.push(lease);
    if (this.#writing === null) this.#flush();
  }

  /** Writes what is queued (one writev at a time: `#writing` is set until onWritten). */
  #flush(): void {
    if (this.#writing !== null || this.#queue.length === 0 || !this.alive) return;
    let bufs = this.#queue;
    if (bufs.length > MAX_IOVECS) {
      // Frames stay whole across writevs: the bytes are sent in order either way.
      this.#queue = bufs.slice(MAX_IOVECS);
      bufs = bufs.slice(0, MAX_IOVECS);
    } else {
      this.#queue = [];
    }
    const written = this.#queue.length === 0 ? this.#queued : [];
    if (this.#queue.length === 0) {
      this.#queued = [];
      // The calls queued so far all end in this writev (a split one: in its last part).
      this.#writingSent = this.#queuedSent;
      this.#queuedSent = [];
    }
    this.#writing = written;
    this.stream.writeTo(bufs, this);
  }

  onWritten(error: RuntimeError | undefined): void {
    const sent = this.#writingSent;
    this.#writingSent = [];
    if (error !== undefined) {
      // #die fails the ONEWAY calls of this writev (still in #writing) with the rest.
      this.#die(
        new ThriftUpstreamError(
          failureOf(error),
          this.key.label,
          `the call could not be written: ${error.message}`,
          {
            cause: error,
          },
        ),
      );
      this.#writing = null;
      // Bytes of a failed writev are lent until the stream is closed; queued ones never went.
      const unsent = this.#queuedSent;
      this.#queuedSent = [];
      settleWhenClosed(this.stream, sent.length === 0 ? unsent : sent.concat(unsent));
      return;
    }
    const written = this.#writing;
    this.#writing = null;
    for (const lease of sent) lease.callSettled!();
    // Its ONEWAY calls are done (#die emptied the list if the connection ended meanwhile).
    if (written !== null) for (let i = 0; i < written.length; i++) this.#release();
    // Ended while this writev was in flight: what was queued behind it is never written.
    if (!this.alive) this.#settleQueued();
    else this.#flush();
    if (written !== null) for (const listener of written) replied(this.counters, listener, undefined);
  }

  /** Calls queued and never to be written (the connection ended) are told so. */
  #settleQueued(): void {
    const unsent = this.#queuedSent;
    this.#queuedSent = [];
    for (const lease of unsent) lease.callSettled!();
  }

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    if (!this.alive) {
      chunk?.release();
      return;
    }
    const label = this.key.label;
    if (chunk === null) {
      const failed = error ?? this.#reader.truncation();
      this.#die(
        failed === null
          ? new ThriftUpstreamError('reset', label, 'the upstream closed the connection')
          : new ThriftUpstreamError(
              failureOf(failed),
              label,
              `the reply could not be read: ${failed.message}`,
              {
                cause: failed,
              },
            ),
      );
      return;
    }
    if (this.#copyLeases === 0) {
      // Every caller waiting releases its lease on every path: replies are views of the chunk.
      this.#reader.feedChunk(chunk);
    } else {
      try {
        this.#reader.feed(chunk.bytes);
      } finally {
        chunk.release();
      }
    }
    for (;;) {
      let reply: ViewFrame | null;
      try {
        reply = this.#reader.poll();
      } catch (error) {
        this.#die(
          new ThriftUpstreamError(
            failureOf(error),
            label,
            `the reply could not be read: ${(error as Error).message}`,
            {
              cause: error,
            },
          ),
        );
        return;
      }
      if (reply === null) break;
      // A reply in a kept chunk holds it until its lease is released (#deliver hands it on).
      const chunk = this.#reader.retainLast();
      const failure = this.#deliver(reply, chunk, chunk === null ? -1 : this.#reader.lastWireAt);
      if (failure !== undefined) {
        this.#die(new ThriftUpstreamError('protocol', label, failure));
        return;
      }
      // A draining connection closes with its last call answered.
      if (!this.alive) return;
    }
    if (this.load === 0 && this.#tombstones.size === 0 && this.#reader.buffered > 0) {
      // No call or late reply can be on its way: the bytes are stray (#goIdle).
      this.#die(
        new ThriftUpstreamError(
          'protocol',
          label,
          `the upstream sent ${this.#reader.buffered} bytes while no call was waiting`,
        ),
      );
      return;
    }
    // Idle with the look done (a late reply read after it): the mark stays 1 (#goIdle).
    if (this.load === 0 && this.#lookAt === NO_DEADLINE) this.#lowWater.lower();
    else this.#lowWater.update(this.#reader);
    this.stream.recvTo(this);
  }

  /**
   * Hands a reply to its call (with `chunk`, the received chunk it is a view of, if any: given
   * to the call's lease or released here, and `wireAt`, where its length prefix is in that
   * chunk); returns why the connection must end, if it must.
   */
  #deliver(reply: ViewFrame, chunk: RetainedChunk | null, wireAt: number): string | undefined {
    // Type and seq id only: the reply's name is never decoded (no string, no header object).
    const header = this.#header;
    let failure: string | undefined;
    let read = false;
    try {
      peekFrameHeader(reply, header);
      read = true;
    } catch (error) {
      failure = `unreadable reply: ${(error as Error).message}`;
    }
    if (!read) failure ??= 'unreadable reply';
    else if (header.type !== MessageType.REPLY && header.type !== MessageType.EXCEPTION)
      failure = `a reply has message type ${header.type}`;
    else if (reply.seqId !== header.seqId)
      failure = `a reply's framing header has seq id ${reply.seqId}, its message ${header.seqId}`;
    const waiting = failure !== undefined ? undefined : this.#pending.get(header.seqId);
    if (waiting === undefined) {
      chunk?.release(); // nobody gets this reply
      if (failure !== undefined) return failure;
      if (!this.#tombstones.delete(header.seqId))
        return `a reply has seq id ${header.seqId}, which no call is waiting for`;
      // The late reply of a call that timed out: dropped; its id may be handed out again.
      this.counters.lateReplies++;
      return undefined;
    }
    this.#pending.delete(header.seqId);
    const lease = waiting.lease;
    if (lease?.inPlace !== true) this.#copyLeases--;
    lease?.running?.(undefined);
    let payload = rewriteSeqId(reply.protocol, reply.payload, waiting.seqId);
    if (chunk !== null && (payload !== reply.payload || lease?.inPlace !== true)) {
      // The reply no longer views the chunk (its seq id re-encoded into a copy), or nobody would
      // give the chunk back on every path (a call made after the chunk came): a copy, chunk back.
      if (payload === reply.payload) payload = payload.slice();
      chunk.release();
      chunk = null;
    }
    // Counted lent whether or not a lease will give it back (none: never reused).
    this.#lent++;
    lease?.hold(this, chunk, wireAt);
    this.#release();
    replied(this.counters, waiting.listener, payload === reply.payload ? reply : withPayload(reply, payload));
    return undefined;
  }

  #die(error: ThriftUpstreamError): void {
    if (!this.alive) return;
    this.alive = false;
    this.#error = error;
    this.load = 0;
    this.#idleDeadline = NO_DEADLINE;
    this.#lookAt = NO_DEADLINE;
    callDeadlines.remove(this);
    void this.stream.close().catch(() => {});
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    this.#copyLeases = 0;
    // A kept chunk's bytes no reply took go back (replies handed out keep theirs).
    this.#reader.dispose();
    // The ONEWAY calls of the writev in flight and of the queue fail; the writev's list stays
    // (empty) until its completion, which must then tell them nothing more.
    const oneways = this.#writing === null ? this.#queued : this.#writing.concat(this.#queued);
    if (this.#writing !== null) this.#writing = [];
    this.#queued = [];
    this.#queue = [];
    // Queued bytes are never written; with a writev in flight (part of them may be in it) they
    // wait for its completion (onWritten).
    if (this.#writing === null) this.#settleQueued();
    this.onEnd(this);
    for (const w of waiting) failed(this.counters, w.listener, error, false);
    for (const listener of oneways) failed(this.counters, listener, error, true);
  }
}

/** Each lease's callSettled() once `stream` is closed (a failed writev's bytes are lent until then). */
function settleWhenClosed(stream: ByteStream, leases: readonly ReplyHold[]): void {
  if (leases.length === 0) return;
  const settle = (): void => {
    for (const lease of leases) lease.callSettled!();
  };
  stream.close().then(settle, settle);
}

interface Connecting {
  /** Calls waiting for this connection. */
  reserved: number;
  readonly conn: Promise<MuxConnection>;
}

/** The multiplexed connections of a thrift server's upstreams, per pool key. */
export class MuxPool {
  readonly #conns = new Map<string, MuxConnection[]>();
  readonly #connecting = new Map<string, Connecting>();
  readonly counters: MuxCounters = { lateReplies: 0, retired: 0, onewayFailures: 0, inFlight: 0 };
  #closing = false;
  readonly #ended = (conn: MuxConnection): void => {
    const list = this.#conns.get(conn.key.id);
    const at = list?.indexOf(conn) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list?.length === 0) this.#conns.delete(conn.key.id);
  };

  constructor(
    private readonly connect: (key: MuxKey, timeout: number) => Promise<ByteStream>,
    private readonly idleTimeout: number,
    /** See MuxConnection's maxSeqId. */
    private readonly maxSeqId?: number,
  ) {}

  /**
   * Forwards a call on a connection of `key` with room, connecting one if none has; its end
   * goes to `listener` (counted in `counters.inFlight` until then).
   */
  call(key: MuxKey, call: MuxCall, options: MuxCallOptions, listener: UpstreamCallListener): void {
    this.counters.inFlight++;
    const list = this.#conns.get(key.id);
    if (list !== undefined) {
      for (const conn of list) {
        if (conn.alive && !conn.draining && conn.load < key.multiplex) {
          conn.load++;
          this.#callOn(conn, call, options.call, listener);
          return;
        }
      }
    }
    let connecting = this.#connecting.get(key.id);
    if (connecting === undefined || connecting.reserved >= key.multiplex)
      connecting = this.#open(key, options);
    connecting.reserved++;
    // Cold path: the connect's promise.
    connecting.conn.then(
      (conn) => this.#callOn(conn, call, options.call, listener),
      (error: unknown) => {
        call.lease?.callSettled?.(); // never written
        failed(this.counters, listener, error, call.oneway);
      },
    );
  }

  /**
   * `conn.call`, whose throw (not expected: it tells its failures to the listener) is the call's
   * failure too, counted out of the calls in flight: not an error thrown into the caller's
   * dispatch (hot path) or an unhandled rejection (after a connect), with the call counted for
   * good and a graceful stop waiting its whole grace for it.
   */
  #callOn(conn: MuxConnection, call: MuxCall, timeout: number, listener: UpstreamCallListener): void {
    try {
      conn.call(call, timeout, listener);
    } catch (error) {
      failed(this.counters, listener, error, call.oneway);
    }
  }

  /** Open connections. */
  get connections(): number {
    let n = 0;
    for (const list of this.#conns.values()) n += list.length;
    return n;
  }

  #open(key: MuxKey, options: MuxCallOptions): Connecting {
    const entry: Connecting = {
      reserved: 0,
      conn: this.connect(key, options.connect).then(
        (stream) => {
          if (this.#connecting.get(key.id) === entry) this.#connecting.delete(key.id);
          const conn = new MuxConnection(
            key,
            stream,
            options,
            this.idleTimeout,
            this.counters,
            this.#ended,
            this.maxSeqId,
          );
          conn.load = entry.reserved;
          let list = this.#conns.get(key.id);
          if (list === undefined) this.#conns.set(key.id, (list = []));
          list.push(conn);
          if (this.#closing) conn.draining = true;
          return conn;
        },
        (error: unknown) => {
          if (this.#connecting.get(key.id) === entry) this.#connecting.delete(key.id);
          throw error;
        },
      ),
    };
    this.#connecting.set(key.id, entry);
    return entry;
  }

  /** Connections close once their calls end. */
  close(): void {
    this.#closing = true;
    for (const list of [...this.#conns.values()]) for (const conn of [...list]) conn.drain();
  }

  /** Closes every connection now. */
  closeAll(): void {
    this.#closing = true;
    for (const list of [...this.#conns.values()]) for (const conn of [...list]) conn.close();
  }
}
