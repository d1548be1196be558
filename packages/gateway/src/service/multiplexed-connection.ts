/**
 * One Thrift connection carrying many calls at once, their replies matched by seq id, driven by
 * the stream's recvTo/writeTo callbacks as ExclusiveConnection is for one call at a time: a call
 * costs its caller's one promise, no timer and no promise per write or read (ThriftClient's
 * multiplexed mode, which ClientExchange's `multiplexed` used before, costs several of each).
 *
 * Writes: the calls made in one pass of the event loop go out in one write, at the microtask
 * checkpoint after the first of them (calls made while a write is in flight, in the next write
 * once it completed): N calls cost one send, and on loopback one segment for the upstream's
 * kernel side to take in, rather than N.
 * Replies: matched among the calls already handed to the stream. A reply with any other seq id
 * (none such in flight, or a call not yet written), bytes that do not frame, bytes while no call
 * awaits a reply, and the stream's end while calls await replies fail the connection and every
 * call on it (ERR_THRIFT_BAD_REPLY, ERR_THRIFT_CLOSED): the owner connects anew. A reply that
 * arrives before the write carrying its call was reported is taken: after a short send the
 * upstream may rightly answer the first calls of a write before its rest went out (as the
 * Thrift proxy's multiplexed connections, apps/proxy/src/thrift/mux.ts; the runtime reports
 * no per-call progress), so this is for upstreams trusted to answer only what they were asked.
 * Timeouts: each call's deadline, from its send() to its reply, on the thread's one sweep
 * (call-deadlines.ts; up to two ticks late). A call that times out fails alone; its seq id stays
 * taken until its late reply came (then dropped), so that reply never reaches another call. More
 * than MAX_EXPIRED such ids, or a write that cannot go out in time, fail the connection.
 * Memory: a reply is a view of the connection's reader; once every reply handed out was given
 * back (release), the next ones are received into the same memory.
 * Not a pool (ClientExchange is); not for one call at a time (exclusive-connection.ts).
 */
import { type ThriftFrame, ThriftRpcError } from '@loch/thrift';
import { NO_DEADLINE, type RecvChunk, type RuntimeError } from '@loch/uring-runtime';
import { callDeadlines } from './call-deadlines.js';
import type { CallOptions } from './call-frame.js';
import { CallbackConnection, PendingCall } from './callback-connection.js';
import { unreadableReply } from './reply-reader.js';

/** Timed-out calls whose late replies a connection waits for before it gives up on the upstream. */
const MAX_EXPIRED = 64;

/** A settled promise: `then` on it schedules the batch's write at the microtask checkpoint. */
const settled = Promise.resolve();

/** A call on a multiplexed connection. */
class MuxCall extends PendingCall {
  /** Timed out: its late reply is dropped. */
  expired = false;

  constructor(
    readonly seqId: number,
    oneway: boolean,
    /** When it times out, on the sweep's clock. */
    readonly deadline: number,
  ) {
    super(oneway);
  }
}

/** A Thrift connection carrying many calls at once. */
export class MultiplexedConnection extends CallbackConnection {
  /**
   * Calls handed to the stream that await a reply, by seq id, in the order written (nearly in
   * deadline order: see onSweep); timed-out ones stay (expired) until their late reply.
   */
  private readonly awaiting = new Map<number, MuxCall>();
  /** Calls in `awaiting` that have not timed out. */
  private live = 0;
  /** Calls in `awaiting` that have (their ids kept for the late reply). */
  private expired = 0;
  /** The next write: its buffers, and its calls in the order made. */
  private parts: Uint8Array[] = [];
  private batch: MuxCall[] = [];
  /** The calls of the write in flight; undefined while none is. */
  private writing: MuxCall[] | undefined = undefined;
  /** The next write is scheduled (at the microtask checkpoint). */
  private scheduled = false;
  private readonly writeBatchBound = (): void => {
    this.scheduled = false;
    this.writeBatch();
  };
  private nextSeqId = 1;

  /** Calls awaiting a reply or their write (timed-out ones not counted). */
  get inFlight(): number {
    return this.live + this.batch.length;
  }

  /**
   * Sends an encoded message (its seq id is replaced) and resolves the reply frame undecoded, or
   * undefined for a ONEWAY call once written. The frame's bytes stay valid until release(frame).
   */
  send(message: Uint8Array, options: CallOptions = {}): Promise<ThriftFrame | undefined> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const seqId = this.allocSeqId();
    let parts: Uint8Array[];
    try {
      parts = this.framer.frame(message, seqId, options.headers);
    } catch (e) {
      // A message that cannot be framed fails alone: nothing was written.
      return Promise.reject(e);
    }
    const oneway = options.oneway ?? false;
    const deadline = this.timeout > 0 ? callDeadlines.deadline(this, this.timeout) : NO_DEADLINE;
    const call = new MuxCall(seqId, oneway, deadline);
    for (let i = 0; i < parts.length; i++) this.parts.push(parts[i]!);
    this.batch.push(call);
    this.schedule();
    return call.promise;
  }

  private allocSeqId(): number {
    let id = this.nextSeqId;
    while (this.awaiting.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
    this.nextSeqId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /** The batch goes out at the microtask checkpoint, unless a write is in flight (then after it). */
  private schedule(): void {
    if (this.scheduled || this.writing !== undefined) return;
    this.scheduled = true;
    void settled.then(this.writeBatchBound);
  }

  private writeBatch(): void {
    if (this.failure !== undefined || this.writing !== undefined || this.batch.length === 0) return;
    const calls = this.batch;
    const parts = this.parts;
    this.batch = [];
    this.parts = [];
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!;
      if (call.oneway) continue;
      this.awaiting.set(call.seqId, call);
      this.live++;
    }
    this.writing = calls;
    this.stream.writeTo(parts, this);
    this.receive();
  }

  onWritten(error: RuntimeError | undefined): void {
    const calls = this.writing;
    if (calls === undefined) return; // failed meanwhile
    if (error !== undefined) {
      // fail() rejects this write's ONEWAY calls too.
      this.fail(new ThriftRpcError('ERR_THRIFT_CLOSED', `calls could not be written: ${error.message}`));
      return;
    }
    this.writing = undefined;
    for (let i = 0; i < calls.length; i++) if (calls[i]!.oneway) calls[i]!.resolve(undefined);
    if (this.batch.length > 0) this.schedule();
  }

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    if (!this.received(chunk, error, 'connection closed')) return;
    if (this.awaiting.size === 0) {
      // Bytes nobody asked for (idle, or only ONEWAY calls sent).
      this.failUnasked(chunk);
      return;
    }
    try {
      this.replies.feed(chunk.bytes);
    } catch (e) {
      this.fail(unreadableReply(e));
      return;
    } finally {
      chunk.release();
    }
    for (;;) {
      let reply: ThriftFrame | null;
      try {
        reply = this.replies.poll();
      } catch (e) {
        this.fail(unreadableReply(e));
        return;
      }
      if (reply === null) break;
      const call = this.awaiting.get(reply.seqId);
      if (call === undefined) {
        this.fail(new ThriftRpcError('ERR_THRIFT_BAD_REPLY', `reply with unknown seq id ${reply.seqId}`));
        return;
      }
      this.awaiting.delete(reply.seqId);
      if (call.expired) {
        // The late reply of a call that timed out: dropped, its id free again.
        this.expired--;
        continue;
      }
      this.live--;
      this.replies.lend();
      this.lender?.lent(reply, this);
      call.resolve(reply);
    }
    if (this.awaiting.size === 0 && this.replies.buffered > 0) {
      // Bytes past the last reply awaited: they answer no call, the connection is out of step.
      this.fail(new ThriftRpcError('ERR_THRIFT_BAD_REPLY', 'the upstream sent bytes past the replies'));
      return;
    }
    // Only dropped late replies were read: nothing handed out views the reader's memory.
    this.replies.recycleUnlessLent();
    this.receive();
  }

  onSweep(now: number): boolean {
    for (const call of this.awaiting.values()) {
      if (call.expired) continue;
      // Not always in deadline order: the thread's one sweep shortens its tick (and so later
      // deadlines) when another member arms a shorter timeout. Every call is looked at.
      if (call.deadline > now) continue;
      call.expired = true;
      this.live--;
      this.expired++;
      call.reject(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `no reply within ${this.timeout} ms`));
    }
    const first = this.batch[0];
    if (first !== undefined && first.deadline <= now) {
      this.fail(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `calls not written within ${this.timeout} ms`));
      return false;
    }
    if (this.expired > MAX_EXPIRED) {
      this.fail(
        new ThriftRpcError(
          'ERR_THRIFT_TIMEOUT',
          `${this.expired} calls had no reply within ${this.timeout} ms`,
        ),
      );
      return false;
    }
    return this.live > 0 || this.batch.length > 0;
  }

  protected failCalls(error: ThriftRpcError): void {
    for (const call of this.awaiting.values()) if (!call.expired) call.reject(error);
    this.awaiting.clear();
    this.live = 0;
    this.expired = 0;
    const writing = this.writing;
    this.writing = undefined;
    if (writing !== undefined)
      for (let i = 0; i < writing.length; i++) if (writing[i]!.oneway) writing[i]!.reject(error);
    for (let i = 0; i < this.batch.length; i++) this.batch[i]!.reject(error);
    this.batch = [];
    this.parts = [];
  }
}
