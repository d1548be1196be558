/**
 * One Thrift connection that carries one call at a time, driven by the stream's recvTo/writeTo
 * callbacks (any @loch/uring-runtime ByteStream, either driver): a call costs its caller's one
 * promise and nothing more per write or read. ThriftClient's serial mode, which ClientExchange
 * used before, costs a dozen promises per call and, with a timeout, a timer and a
 * Promise.race: 10.1 -> 7.5 CPU us per small gateway call in process (bench/gateway/core.ts).
 * Calls queue behind the running one, in order. Its receive stays pending while idle, so an
 * upstream that closes an idle connection (or sends something unasked) takes it out of use at
 * once instead of failing the next call. The call timeout (from the write to the reply) is a
 * deadline on one sweep per thread, not a timer per call: it fires up to two sweep ticks late
 * (a tick is a quarter of the timeout, 10 ms to 1 s). Not a pool (ClientExchange is) and not
 * multiplexed (multiplexed-connection.ts is).
 */
import { type ThriftFrame, ThriftRpcError } from '@loch/thrift';
import { NO_DEADLINE, type RecvChunk, type RuntimeError } from '@loch/uring-runtime';
import { callDeadlines } from './call-deadlines.js';
import type { CallOptions } from './call-frame.js';
import { CallbackConnection, PendingCall } from './callback-connection.js';
import { unreadableReply } from './reply-reader.js';

/** A call waiting for its turn or running. */
class Call extends PendingCall {
  /** Every byte of the call was handed to the kernel. */
  written = false;
  /** A reply read before the write was reported (the legacy driver may): kept until it is. */
  reply: ThriftFrame | undefined = undefined;
  seqId = 0;

  constructor(
    readonly message: Uint8Array,
    oneway: boolean,
    readonly headers: ReadonlyMap<string, string> | undefined,
    readonly timeout: number,
  ) {
    super(oneway);
  }
}

/** A Thrift connection carrying one call at a time. */
export class ExclusiveConnection extends CallbackConnection {
  private readonly queue: Call[] = [];
  /** The call written and awaiting its reply (or its write). */
  private call: Call | undefined = undefined;
  /** The running call's deadline on the sweep's clock. */
  private deadlineAt = NO_DEADLINE;
  private nextSeqId = 1;

  /** Calls running or queued. */
  get inFlight(): number {
    return this.queue.length + (this.call === undefined ? 0 : 1);
  }

  /**
   * Sends an encoded message (its seq id is replaced) and resolves the reply frame undecoded, or
   * undefined for a ONEWAY call once written. The frame's bytes stay valid until release(frame).
   */
  send(message: Uint8Array, options: CallOptions = {}): Promise<ThriftFrame | undefined> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const call = new Call(message, options.oneway ?? false, options.headers, this.timeout);
    if (this.call === undefined && this.queue.length === 0) this.start(call);
    else this.queue.push(call);
    return call.promise;
  }

  private start(call: Call): void {
    this.call = call;
    const seqId = this.nextSeqId;
    this.nextSeqId = seqId >= 0x7fffffff ? 1 : seqId + 1;
    call.seqId = seqId;
    let parts: Uint8Array[];
    try {
      parts = this.framer.frame(call.message, seqId, call.headers);
    } catch (e) {
      // A message that cannot be framed fails alone: nothing was written.
      this.call = undefined;
      call.reject(e);
      this.startNext();
      return;
    }
    if (call.timeout > 0) this.deadlineAt = callDeadlines.deadline(this, call.timeout);
    this.stream.writeTo(parts, this);
    this.receive();
  }

  private startNext(): void {
    const next = this.queue.shift();
    if (next !== undefined) this.start(next);
  }

  onWritten(error: RuntimeError | undefined): void {
    const call = this.call;
    if (call === undefined) return; // failed meanwhile
    if (error !== undefined) {
      this.fail(new ThriftRpcError('ERR_THRIFT_CLOSED', `the call could not be written: ${error.message}`));
      return;
    }
    call.written = true;
    if (call.oneway) this.finish(call, undefined);
    else if (call.reply !== undefined) this.finish(call, call.reply);
  }

  onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void {
    if (!this.received(chunk, error, 'connection closed before the reply')) return;
    const call = this.call;
    if (call === undefined || call.oneway || (!call.written && this.stream.driver === 'uring')) {
      // Bytes nobody asked for: none while idle or after a ONEWAY call, and on io_uring none
      // before the call's write completed (its results arrive in the order the kernel
      // completed them: such bytes predate the call).
      this.failUnasked(chunk);
      return;
    }
    let reply: ThriftFrame | null;
    try {
      this.replies.feed(chunk.bytes);
      reply = this.replies.poll();
    } catch (e) {
      this.fail(unreadableReply(e));
      return;
    } finally {
      chunk.release();
    }
    if (reply === null) {
      this.receive();
      return;
    }
    if (reply.seqId !== call.seqId) {
      this.fail(
        new ThriftRpcError('ERR_THRIFT_BAD_REPLY', `reply seq id ${reply.seqId}, expected ${call.seqId}`),
      );
      return;
    }
    // Counted as lent from the moment it is read, not handed out: a reply kept until its write is
    // reported lies in the reader too, so releasing the one before must not recycle under it.
    this.replies.lend();
    if (call.written) this.finish(call, reply);
    else call.reply = reply;
  }

  /** `call` ended well: the next one starts, the caller is told. */
  private finish(call: Call, reply: ThriftFrame | undefined): void {
    this.call = undefined;
    this.deadlineAt = NO_DEADLINE;
    // A reply was lent from the reader when it was read (onRecv).
    if (reply !== undefined) this.lender?.lent(reply, this);
    if (this.replies.buffered > 0) {
      // Bytes past the reply answer no call: the reply stands, the connection is out of step.
      this.fail(new ThriftRpcError('ERR_THRIFT_BAD_REPLY', 'the upstream sent bytes past the reply'));
    } else {
      // Keep a receive pending while idle (see the module comment); the next call takes it over.
      this.receive();
      this.startNext();
    }
    call.resolve(reply);
  }

  protected failCalls(error: ThriftRpcError): void {
    this.deadlineAt = NO_DEADLINE;
    const running = this.call;
    this.call = undefined;
    running?.reject(error);
    for (const queued of this.queue.splice(0)) queued.reject(error);
  }

  onSweep(now: number): boolean {
    if (this.deadlineAt > now) return this.deadlineAt !== NO_DEADLINE;
    const ms = this.call?.timeout ?? this.timeout;
    this.fail(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `no reply within ${ms} ms`));
    return false;
  }
}
