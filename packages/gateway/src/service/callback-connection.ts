/**
 * What ClientExchange's two connection kinds share: a Thrift upstream connection driven by its
 * stream's callbacks (recvTo/writeTo, the promise-free pair every @loch/uring-runtime stream
 * has), its calls framed by a CallFramer (call-frame.ts) and its replies read and lent by a
 * ReplyReader (reply-reader.ts), one receive pending at a time, and a failure that ends the
 * connection for good: every call fails, the stream is closed, the owner connects anew. Not the
 * order of calls and replies: one at a time is exclusive-connection.ts, many matched by seq id
 * is multiplexed-connection.ts.
 */
import { type ThriftClientOptions, type ThriftFrame, ThriftRpcError, type ThriftStream } from '@loch/thrift';
import type {
  ByteStream,
  RecvChunk,
  RecvTarget,
  RuntimeError,
  SweepMember,
  WriteTarget,
} from '@loch/uring-runtime';
import { callDeadlines } from './call-deadlines.js';
import { CallFramer } from './call-frame.js';
import { type ReplyLender, type ReplyOwner, ReplyReader } from './reply-reader.js';

/** A Thrift stream that can also be driven by callbacks (every runtime stream can). */
export type CallbackStream = ThriftStream & Pick<ByteStream, 'recvTo' | 'writeTo' | 'driver'>;

/** Whether `stream` can be driven by callbacks (a test double with only recv/writev cannot). */
export function isCallbackStream(stream: ThriftStream): stream is CallbackStream {
  const s = stream as Partial<CallbackStream>;
  return typeof s.recvTo === 'function' && typeof s.writeTo === 'function';
}

/** A call on a callback connection: the promise its caller waits on, and its settlers. */
export class PendingCall {
  resolve!: (reply: ThriftFrame | undefined) => void;
  reject!: (error: unknown) => void;
  readonly promise: Promise<ThriftFrame | undefined>;

  constructor(readonly oneway: boolean) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** A Thrift connection driven by its stream's callbacks; its kind orders the calls. */
export abstract class CallbackConnection implements RecvTarget, WriteTarget, SweepMember, ReplyOwner {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  protected readonly framer: CallFramer;
  protected readonly replies: ReplyReader;
  /** Each call's timeout in ms (0: none). */
  protected readonly timeout: number;
  /** A recvTo is pending. */
  private receiving = false;
  /** Why the connection cannot carry calls any more (undefined: it can). */
  protected failure: ThriftRpcError | undefined = undefined;

  constructor(
    protected readonly stream: CallbackStream,
    options: ThriftClientOptions = {},
    protected readonly lender?: ReplyLender,
  ) {
    this.framer = new CallFramer(options);
    this.timeout = options.timeout ?? 0;
    this.replies = new ReplyReader(stream, options, this.framer);
  }

  /** False once the connection failed or was closed: the owner replaces it. */
  get usable(): boolean {
    return this.failure === undefined;
  }

  abstract onWritten(error: RuntimeError | undefined): void;
  abstract onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined): void;
  abstract onSweep(now: number): boolean;

  /** A reply this connection resolved is no longer read: later replies may reuse its memory. */
  release(_reply: ThriftFrame): void {
    this.replies.release();
  }

  /** Closes the connection; calls not yet answered reject with ERR_THRIFT_CLOSED. */
  close(): Promise<void> {
    this.fail(new ThriftRpcError('ERR_THRIFT_CLOSED', 'client closed'));
    return this.stream.closed ? Promise.resolve() : this.stream.close().catch(() => {});
  }

  /** Keeps one recvTo pending (none once failed). */
  protected receive(): void {
    if (this.receiving || this.failure !== undefined) return;
    this.receiving = true;
    this.stream.recvTo(this);
  }

  /**
   * onRecv's first step: true when `chunk` holds bytes for the kind to read. False when the
   * connection failed already (the chunk is given back) or the stream ended (the connection
   * fails: the stream's error, a reply cut short, or else `ended`).
   */
  protected received(
    chunk: RecvChunk | null,
    error: RuntimeError | undefined,
    ended: string,
  ): chunk is RecvChunk {
    this.receiving = false;
    if (this.failure !== undefined) {
      chunk?.release();
      return false;
    }
    if (chunk === null) {
      this.fail(this.replies.endError(error, ended));
      return false;
    }
    return true;
  }

  /** Bytes that answer no call: the connection is out of step with its upstream. */
  protected failUnasked(chunk: RecvChunk): void {
    chunk.release();
    this.fail(new ThriftRpcError('ERR_THRIFT_BAD_REPLY', 'the upstream sent bytes no call asked for'));
  }

  /** The connection cannot go on: every call fails with `error`, the stream is closed. */
  protected fail(error: ThriftRpcError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    callDeadlines.remove(this);
    this.failCalls(error);
    if (!this.stream.closed) void this.stream.close().catch(() => {});
  }

  /** fail()'s part that is the kind's own: every call the connection holds rejects with `error`. */
  protected abstract failCalls(error: ThriftRpcError): void;
}
