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
import {
  EMPTY_HEADERS,
  EMPTY_INT_HEADERS,
  FrameReader,
  type FramingName,
  frameParts,
  type ProtocolName,
  rewriteSeqId,
  type ThriftClientOptions,
  type ThriftFrame,
  ThriftRpcError,
  type ThriftStream,
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
import { callDeadlines } from './call-deadlines.js';

/** A Thrift stream that can also be driven by callbacks (every runtime stream can). */
export type CallbackStream = ThriftStream & Pick<ByteStream, 'recvTo' | 'writeTo' | 'driver'>;

/** Whether `stream` can be driven by callbacks (a test double with only recv/writev cannot). */
export function isCallbackStream(stream: ThriftStream): stream is CallbackStream {
  const s = stream as Partial<CallbackStream>;
  return typeof s.recvTo === 'function' && typeof s.writeTo === 'function';
}

/** A call waiting for its turn or running. */
class Call {
  resolve!: (reply: ThriftFrame | undefined) => void;
  reject!: (error: unknown) => void;
  readonly promise: Promise<ThriftFrame | undefined>;
  /** Every byte of the call was handed to the kernel. */
  written = false;
  /** A reply read before the write was reported (the legacy driver may): kept until it is. */
  reply: ThriftFrame | undefined = undefined;
  seqId = 0;

  constructor(
    readonly message: Uint8Array,
    readonly oneway: boolean,
    readonly headers: ReadonlyMap<string, string> | undefined,
    readonly timeout: number,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** A connection whose replies are views of its memory, until each is given back. */
export interface ReplyOwner {
  /** `reply` is no longer read: its memory may be received into again. */
  release(reply: ThriftFrame): void;
}

/** Told of each reply a connection hands out (ClientExchange: to route release() back to it). */
export interface ReplyLender {
  lent(reply: ThriftFrame, from: ReplyOwner): void;
}

/** Per-call settings. */
export interface ExclusiveCallOptions {
  readonly oneway?: boolean;
  readonly headers?: ReadonlyMap<string, string>;
}

/** A Thrift connection carrying one call at a time. */
export class ExclusiveConnection implements RecvTarget, WriteTarget, SweepMember, ReplyOwner {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  private readonly reader: FrameReader;
  private readonly framing: FramingName;
  private readonly protocol: ProtocolName;
  private readonly timeout: number;
  private readonly queue: Call[] = [];
  /** The call written and awaiting its reply (or its write). */
  private call: Call | undefined = undefined;
  /** A recvTo is pending. */
  private receiving = false;
  /** The running call's deadline on the sweep's clock. */
  private deadlineAt = NO_DEADLINE;
  private nextSeqId = 1;
  /**
   * Replies read (handed out, or kept until their write is reported) and not given back: while
   * any is out, the reader appends after them.
   */
  private lent = 0;
  /** Why the connection cannot carry calls any more (undefined: it can). */
  private failure: ThriftRpcError | undefined = undefined;

  constructor(
    private readonly stream: CallbackStream,
    private readonly options: ThriftClientOptions = {},
    private readonly lender?: ReplyLender,
  ) {
    this.framing = options.framing ?? 'framed';
    this.protocol = options.protocol ?? 'binary';
    this.timeout = options.timeout ?? 0;
    this.reader = new FrameReader(stream, { ...options, framing: this.framing, protocol: this.protocol });
  }

  /** False once the connection failed or was closed: the owner replaces it. */
  get usable(): boolean {
    return this.failure === undefined;
  }

  /** Calls running or queued. */
  get inFlight(): number {
    return this.queue.length + (this.call === undefined ? 0 : 1);
  }

  /**
   * Sends an encoded message (its seq id is replaced) and resolves the reply frame undecoded, or
   * undefined for a ONEWAY call once written. The frame's bytes stay valid until release(frame).
   */
  send(message: Uint8Array, options: ExclusiveCallOptions = {}): Promise<ThriftFrame | undefined> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const call = new Call(message, options.oneway ?? false, options.headers, this.timeout);
    if (this.call === undefined && this.queue.length === 0) this.start(call);
    else this.queue.push(call);
    return call.promise;
  }

  /** A reply this connection resolved is no longer read: later replies may reuse its memory. */
  release(_reply: ThriftFrame): void {
    if (this.lent > 0 && --this.lent === 0) this.reader.recycle();
  }

  /** Closes the connection; calls running or queued reject with ERR_THRIFT_CLOSED. */
  close(): Promise<void> {
    this.fail(new ThriftRpcError('ERR_THRIFT_CLOSED', 'client closed'));
    return this.stream.closed ? Promise.resolve() : this.stream.close().catch(() => {});
  }

  private start(call: Call): void {
    this.call = call;
    const seqId = this.nextSeqId;
    this.nextSeqId = seqId >= 0x7fffffff ? 1 : seqId + 1;
    call.seqId = seqId;
    let parts: Uint8Array[];
    try {
      parts = frameParts(
        {
          framing: this.framing,
          protocol: this.protocol,
          seqId,
          headers: call.headers ?? this.options.headers ?? EMPTY_HEADERS,
          intHeaders: this.options.intHeaders ?? EMPTY_INT_HEADERS,
          transforms: this.framing === 'theader' ? (this.options.transforms ?? []) : [],
        },
        rewriteSeqId(this.protocol, call.message, seqId),
      );
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

  private receive(): void {
    if (this.receiving || this.failure !== undefined) return;
    this.receiving = true;
    this.stream.recvTo(this);
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
    this.receiving = false;
    if (this.failure !== undefined) {
      chunk?.release();
      return;
    }
    const call = this.call;
    if (chunk === null) {
      const truncated = error === undefined ? this.reader.truncation() : null;
      const why =
        truncated?.message ?? (error !== undefined ? error.message : 'connection closed before the reply');
      this.fail(new ThriftRpcError('ERR_THRIFT_CLOSED', why, { cause: truncated ?? error }));
      return;
    }
    if (call === undefined || call.oneway || (!call.written && this.stream.driver === 'uring')) {
      // Bytes nobody asked for: none while idle or after a ONEWAY call, and on io_uring none
      // before the call's write completed (its results arrive in the order the kernel
      // completed them: such bytes predate the call). The connection is out of step.
      chunk.release();
      this.fail(new ThriftRpcError('ERR_THRIFT_BAD_REPLY', 'the upstream sent bytes no call asked for'));
      return;
    }
    let reply: ThriftFrame | null;
    try {
      this.reader.feed(chunk.bytes);
      reply = this.reader.poll();
    } catch (e) {
      this.fail(
        new ThriftRpcError('ERR_THRIFT_BAD_REPLY', `unreadable reply: ${(e as Error).message}`, { cause: e }),
      );
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
    this.lent++;
    if (call.written) this.finish(call, reply);
    else call.reply = reply;
  }

  /** `call` ended well: the next one starts, the caller is told. */
  private finish(call: Call, reply: ThriftFrame | undefined): void {
    this.call = undefined;
    this.deadlineAt = NO_DEADLINE;
    // A reply was counted in `lent` when it was read (onRecv).
    if (reply !== undefined) this.lender?.lent(reply, this);
    if (this.reader.buffered > 0) {
      // Bytes past the reply answer no call: the reply stands, the connection is out of step.
      this.fail(new ThriftRpcError('ERR_THRIFT_BAD_REPLY', 'the upstream sent bytes past the reply'));
    } else {
      // Keep a receive pending while idle (see the module comment); the next call takes it over.
      this.receive();
      this.startNext();
    }
    call.resolve(reply);
  }

  /** The connection cannot go on: every call fails with `error`, the stream is closed. */
  private fail(error: ThriftRpcError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.deadlineAt = NO_DEADLINE;
    callDeadlines.remove(this);
    const running = this.call;
    this.call = undefined;
    running?.reject(error);
    for (const queued of this.queue.splice(0)) queued.reject(error);
    if (!this.stream.closed) void this.stream.close().catch(() => {});
  }

  onSweep(now: number): boolean {
    if (this.deadlineAt > now) return this.deadlineAt !== NO_DEADLINE;
    const ms = this.call?.timeout ?? this.timeout;
    this.fail(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `no reply within ${ms} ms`));
    return false;
  }
}
