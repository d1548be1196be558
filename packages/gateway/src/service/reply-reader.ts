/**
 * The reply side that ClientExchange's callback-driven connections (exclusive-connection.ts,
 * multiplexed-connection.ts) share: a FrameReader on the connection's stream whose replies are
 * views of its memory, lent to the callers until each is given back (once all are, the next
 * replies are received into the same memory), and the errors a reply's reading ends a connection
 * with. Not for matching replies to calls: in order or by seq id is each connection kind's own.
 */
import {
  FrameReader,
  type ThriftClientOptions,
  type ThriftFrame,
  ThriftRpcError,
  type ThriftStream,
} from '@loch/thrift';
import type { RuntimeError } from '@loch/uring-runtime';
import type { CallFramer } from './call-frame.js';

/** A connection whose replies are views of its memory, until each is given back. */
export interface ReplyOwner {
  /** `reply` is no longer read: its memory may be received into again. */
  release(reply: ThriftFrame): void;
}

/** Told of each reply a connection hands out (ClientExchange: to route release() back to it). */
export interface ReplyLender {
  lent(reply: ThriftFrame, from: ReplyOwner): void;
}

/** The replies of one connection: read from its stream, lent out, given back. */
export class ReplyReader {
  private readonly frames: FrameReader;
  /** Replies read and not given back: while any is out, the reader appends after them. */
  private lent = 0;

  constructor(stream: ThriftStream, options: ThriftClientOptions, framer: CallFramer) {
    this.frames = new FrameReader(stream, { ...options, framing: framer.framing, protocol: framer.protocol });
  }

  /** Bytes received and not yet returned as a reply. */
  get buffered(): number {
    return this.frames.buffered;
  }

  /** Takes received bytes (copied: the chunk they came in may be released after). */
  feed(bytes: Uint8Array): void {
    this.frames.feed(bytes);
  }

  /** The next whole reply received, or null. Throws on bytes that do not frame. */
  poll(): ThriftFrame | null {
    return this.frames.poll();
  }

  /** A reply poll() returned is out: its memory stays until release(). */
  lend(): void {
    this.lent++;
  }

  /** A lent reply was given back: once none is out, later replies reuse the memory. */
  release(): void {
    if (this.lent > 0 && --this.lent === 0) this.frames.recycle();
  }

  /** With no reply out (only dropped ones were read), the next are received into the same memory. */
  recycleUnlessLent(): void {
    if (this.lent === 0) this.frames.recycle();
  }

  /**
   * Why the connection fails when its stream ended (cleanly when `error` is undefined): a reply
   * cut short says so, else the stream's error, else `otherwise`.
   */
  endError(error: RuntimeError | undefined, otherwise: string): ThriftRpcError {
    const truncated = error === undefined ? this.frames.truncation() : null;
    const why = truncated?.message ?? (error !== undefined ? error.message : otherwise);
    return new ThriftRpcError('ERR_THRIFT_CLOSED', why, { cause: truncated ?? error });
  }
}

/** Why the connection fails when received bytes do not frame (`cause`: what the reader threw). */
export function unreadableReply(cause: unknown): ThriftRpcError {
  return new ThriftRpcError('ERR_THRIFT_BAD_REPLY', `unreadable reply: ${(cause as Error).message}`, {
    cause,
  });
}
