/**
 * Thrift server core: @loch/uring-runtime's accept loop, and per connection (ServerConnection,
 * on the stream's recvTo/writeTo callbacks) frames read, each handed to a ThriftHandler (one
 * call per message: a Service of @loch/service-async, so a service chain plugs in as it is), and
 * replies written in the request's framing and protocol. Calls on a connection are answered in
 * order unless configured otherwise. A connection that sends bytes that are not Thrift is
 * closed; other connections are not disturbed. Not a code generator or a dispatcher by method
 * name: the handler decides what a method means (a proxy routes, a service decodes).
 */
import type { Service } from '@loch/service-async';
import { acceptLoop } from '@loch/uring-runtime';
import { BinaryReader } from '../protocol/binary.js';
import { CompactReader } from '../protocol/compact.js';
import { createWriter } from '../protocol/factory.js';
import type { ProtocolReader, ReaderOptions } from '../protocol/reader.js';
import type { ProtocolWriter } from '../protocol/writer.js';
import type { FramingName, ThriftFrame } from '../transport/frame.js';
import { type MessageHeader, MessageType, type ProtocolName } from '../types.js';
import { type ConnectionContext, ServerConnection } from './server-connection.js';
import type { ThriftAbortSignal, ThriftListener, ThriftServerStream, ThriftStream } from './stream.js';

/** One incoming message. */
export interface ThriftRequest {
  /** The frame as received: framing, protocol, headers, payload (message bytes). */
  readonly frame: ThriftFrame;
  /** Method name, message type and seq id from the message header. */
  readonly header: MessageHeader;
  /** Offset in `frame.payload` where the body struct starts. */
  readonly bodyOffset: number;
  /** A reader positioned at the body struct (a fresh reader each call). */
  reader(): ProtocolReader;
  /**
   * Aborted when the handler timeout passes, or when the connection ends while the call runs
   * (the peer closes, half-closes or resets it, or the server closes): an AbortSignal, made
   * only when read.
   */
  readonly signal: ThriftAbortSignal;
  /**
   * Optional: `listener.callAborted()` is called when `signal` would abort (at once if it has),
   * without making the signal: an AbortController and its listener per call cost a proxy that
   * relays every call more than the relay's own bookkeeping. One listener per call; a later call
   * replaces it, undefined removes it.
   */
  onAbort?(listener: ThriftAbortListener | undefined): void;
  /**
   * The connection the call came on, as given to `handleConnection` (a runtime ByteStream
   * when served by `serve`): for its peer address or facts.
   */
  readonly stream: ThriftStream;
  /**
   * Optional: the handler will not read this request's frame bytes again and no write of them
   * is pending. A server answering one call at a time then receives the connection's next
   * messages into the same memory once this call's reply is written, instead of into new
   * memory (which a busy connection would otherwise allocate at the rate it receives). Without
   * it, the bytes stay valid for as long as anything references them. With the server's
   * `callsInPlace`, the frame may be a view of a received pool buffer, which goes back to the
   * runtime at this call: the handler must call it exactly when no write of the bytes is pending
   * any more, on every path (a second call does nothing).
   */
  release?(): void;
  /**
   * Optional: the call's frame exactly as it came on the wire, as one view of the received
   * bytes, or undefined. Given for a framed message read in place (the server's `callsInPlace`)
   * whose length prefix came in the same receive as its payload; valid as `frame.payload` is
   * (until release()). A proxy relaying the call unchanged writes this one buffer instead of a
   * new prefix and the payload.
   */
  wire?(): Uint8Array | undefined;
}

/** Told that a call was aborted (ThriftRequest.onAbort): an object, so no closure per call. */
export interface ThriftAbortListener {
  callAborted(): void;
}

/** What a handler answers for a CALL. */
export interface ThriftReply {
  /** The whole reply message (message header and body) in the request's protocol. */
  readonly payload: Uint8Array;
  /** String headers for THeader/TTHeader replies. */
  readonly headers?: ReadonlyMap<string, string>;
  /** Integer headers for TTHeader replies. */
  readonly intHeaders?: ReadonlyMap<number, string>;
  /**
   * Called once the reply's bytes were written: memory that `payload` views may be reused from
   * then on (a proxy relaying an upstream's reply frame lets that connection's reader recycle
   * its buffer). Not called when the write failed: the kernel may still have held the bytes
   * when it was reported, so they are never reused.
   */
  release?(): void;
  /**
   * Optional: the reply framed for the 'framed' transport as one buffer, its 4-byte big-endian
   * length prefix then the bytes of `payload` (a proxy relaying an upstream's framed reply read
   * in place gives the received frame, `payload` being its view from the 5th byte on). Written as
   * is to a caller that came framed, instead of a new prefix and the payload; ignored otherwise,
   * and when its prefix does not give the rest of it, `payload.length` bytes (`payloadLength`
   * when given; checked). That
   * those bytes are the payload's is the handler's promise, not checked (comparing the views'
   * memory costs a builtin call per read on every reply).
   */
  readonly wire?: Uint8Array | undefined;
  /**
   * Optional, with `wire`: `payload.length`, for a reply that knows it without making its
   * payload (a relay whose `payload` is an accessor over the received frame, ViewFrame): the
   * server checks `wire` by it and reads `payload` only to frame the reply anew.
   */
  readonly payloadLength?: number | undefined;
}

/**
 * Takes a call's answer (ThriftHandler.dispatch): the server's own per-call object, so answering
 * through it costs no promise, reaction or closure.
 */
export interface ThriftResponder {
  /**
   * The call's answer: `reply` for a CALL (undefined for a ONEWAY one), or `error` when it is
   * not undefined (a TApplicationException is sent as it is, anything else as INTERNAL_ERROR).
   * Once per call: a later answer, or one after the handler timeout or the connection's end, is
   * dropped and its reply released. May be called from inside `dispatch`.
   */
  respond(reply: ThriftReply | undefined, error?: unknown): void;
}

/**
 * Handles one message: a Service. Answer a reply for CALL messages and undefined for ONEWAY
 * ones, at once or with a promise (see Service); throw or reject with a TApplicationException
 * to send it to the caller (any other error is sent as INTERNAL_ERROR).
 *
 * A handler may also have `dispatch(request, responder)`: the server then calls it instead of
 * `call` and takes the answer from `responder.respond()`, at once or later (say from an
 * upstream's receive callback), instead of from a returned promise: a relay answering every call
 * later saves the promise it would return, the reaction that takes its result, and the promises
 * and turns of the awaits inside it. `dispatch` must lead to exactly one `respond()` on every
 * path (the handler timeout and the connection's end still apply); a throw from it is the call's
 * error.
 */
export type ThriftHandler = Service<ThriftRequest, ThriftReply | undefined> & {
  dispatch?(request: ThriftRequest, responder: ThriftResponder): void;
};

/** Server limits and timeouts (milliseconds; 0 = none). */
export interface ThriftServerOptions extends ReaderOptions {
  /** Framing to expect, or 'auto' (default) to detect it per connection. */
  readonly framing?: FramingName | 'auto';
  /** With 'auto': the framings accepted (default all); others close the connection (ERR_THRIFT_FRAMING_REFUSED). */
  readonly framings?: readonly FramingName[];
  /** Protocol of framed/unframed payloads when it cannot be sniffed (old-style binary). */
  readonly protocol?: ProtocolName;
  /** Largest frame accepted (default 16 MiB). */
  readonly maxFrameSize?: number;
  /**
   * Largest THeader/TTHeader header block accepted, in bytes (default 64 KiB; see
   * FrameCodecOptions): a frame over it closes its connection (ERR_THRIFT_HEADER_SIZE), as an
   * oversized frame does.
   */
  readonly maxHeaderSize?: number | undefined;
  /** Most info headers in one THeader/TTHeader frame (default 1,000; see FrameCodecOptions): as maxHeaderSize. */
  readonly maxHeaderCount?: number | undefined;
  /** Close a connection that sends no message for this long (default 0: never). */
  readonly idleTimeout?: number;
  /** Close a connection whose started message does not complete in time (default 30 s). */
  readonly readTimeout?: number;
  /**
   * Handler calls run at once per connection (default 1: strictly in order). Above 1, replies
   * are written as calls finish, out of order, for clients that match replies by seq id;
   * unless `replyOrder` is 'request'.
   */
  readonly maxConcurrentCalls?: number;
  /**
   * With `maxConcurrentCalls` above 1: 'completion' (default) writes each reply as its call
   * finishes; 'request' writes replies in the order the calls came (FIFO), which every client
   * can match, including one that pipelines and expects replies in order. A call counts against
   * `maxConcurrentCalls` until its reply was written (a finished call waiting for an earlier
   * one too).
   */
  readonly replyOrder?: 'completion' | 'request';
  /**
   * The handler releases every call (`request.release()`) on every path, as soon as it no longer
   * reads the call's bytes and no write of them is pending (written, or the write failed and its
   * stream was closed), and never reads them after that: then a call that arrived whole in a
   * received chunk of at least 1 KiB is a view of that chunk (no copy into the connection's
   * reader), and the chunk goes back to the runtime's pool once its calls were released. A call
   * never released keeps its receive buffer (charged to the connection's receive budget). Default
   * false: calls are copied, and a call not released only keeps the reader from reusing its
   * memory. A relay of 10 KiB calls saves a copy per call into a cold buffer.
   */
  readonly callsInPlace?: boolean;
  /** Answer INTERNAL_ERROR when the handler takes longer (default 0: no limit). */
  readonly handlerTimeout?: number;
  /**
   * Called when a connection is closed because of an error (bad bytes, timeout, I/O), with
   * the connection (absent for accept failures).
   */
  readonly onConnectionError?: (error: unknown, stream?: ThriftStream) => void;
}

/**
 * Builds a reply message for `request`: writes a REPLY header with the request's name and seq
 * id, then lets `writeBody` write the result struct.
 */
export function createReply(request: ThriftRequest, writeBody: (w: ProtocolWriter) => void): ThriftReply {
  const w = createWriter(request.frame.protocol);
  w.writeMessageBegin(request.header.name, MessageType.REPLY, request.header.seqId);
  writeBody(w);
  w.writeMessageEnd();
  return { payload: w.finish() };
}

/** Accepts connections and runs the message loop on each. */
export class ThriftServer {
  private readonly streams = new Set<ThriftStream>();
  private readonly listeners = new Set<ThriftListener<ThriftServerStream>>();
  private closing = false;
  /** acceptLoop's callback and stop test, made once per server rather than per serve() or connection. */
  private readonly onStream = (stream: ThriftServerStream): void => {
    void this.handleConnection(stream);
  };
  private readonly isClosing = (): boolean => this.closing;
  /** What every connection shares. */
  private readonly context: ConnectionContext;

  constructor(handler: ThriftHandler, options: ThriftServerOptions = {}) {
    this.context = {
      handler,
      options: { ...options, readTimeout: options.readTimeout ?? 30_000 },
      binaryReader: new BinaryReader(options),
      compactReader: new CompactReader(options),
      closing: this.isClosing,
    };
  }

  /** Connections being served. */
  get connections(): number {
    return this.streams.size;
  }

  /**
   * Runs the accept loop on `listener` until `close()` or the listener closes. Connections are
   * served concurrently; this resolves when accepting stops. An accept failure other than the
   * listener closing (EMFILE...) goes to `onConnectionError`, and the loop backs off (10 ms,
   * doubling up to 1 s) instead of spinning: @loch/uring-runtime's acceptLoop.
   */
  async serve(listener: ThriftListener<ThriftServerStream>): Promise<void> {
    this.listeners.add(listener);
    try {
      await acceptLoop(listener, this.onStream, {
        stopping: this.isClosing,
        onError: this.context.options.onConnectionError,
      });
    } finally {
      this.listeners.delete(listener);
    }
  }

  /**
   * Serves one connection until it ends, fails or the server closes (ServerConnection: driven
   * by the stream's recvTo/writeTo callbacks); never rejects.
   */
  async handleConnection(stream: ThriftServerStream): Promise<void> {
    this.streams.add(stream);
    const connection = new ServerConnection(stream, this.context);
    connection.start();
    await connection.done;
    this.streams.delete(stream);
  }

  /** Stops accepting, closes the listeners and every connection. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.listeners].map((l) => l.close().catch(() => {})));
    await Promise.all([...this.streams].map((s) => s.close().catch(() => {})));
  }
}
