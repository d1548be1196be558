/**
 * Thrift server core: @loch/uring-runtime's accept loop, and per connection a message loop that reads a frame,
 * hands it to a ThriftHandler (one call per message: a Service of @loch/service-async, so a
 * service chain plugs in as it is), and writes the reply in the request's framing and protocol. Calls on a
 * connection are answered in order. A connection that sends bytes that are not Thrift is
 * closed; other connections are not disturbed. Not a code generator or a dispatcher by method
 * name: the handler decides what a method means (a proxy routes, a service decodes).
 */
import type { Service } from '@loch/service-async';
import { acceptLoop } from '@loch/uring-runtime';
import { TApplicationException, TApplicationExceptionType } from '../application-exception.js';
import { ThriftRpcError } from '../errors.js';
import { BinaryReader } from '../protocol/binary.js';
import { CompactReader } from '../protocol/compact.js';
import { createWriter } from '../protocol/factory.js';
import type { ProtocolReader, ReaderOptions } from '../protocol/reader.js';
import type { ProtocolWriter } from '../protocol/writer.js';
import { frameParts } from '../transport/codec.js';
import { EMPTY_HEADERS, EMPTY_INT_HEADERS, type FramingName, type ThriftFrame } from '../transport/frame.js';
import { type MessageHeader, MessageType, type ProtocolName } from '../types.js';
import { FrameReader, type StreamEndListener } from './frame-reader.js';
import type { ThriftAbortSignal, ThriftListener, ThriftStream } from './stream.js';

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
   * it, the bytes stay valid for as long as anything references them.
   */
  release?(): void;
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
}

/**
 * Handles one message: a Service. Answer a reply for CALL messages and undefined for ONEWAY
 * ones, at once or with a promise (see Service); throw or reject with a TApplicationException
 * to send it to the caller (any other error is sent as INTERNAL_ERROR).
 */
export type ThriftHandler = Service<ThriftRequest, ThriftReply | undefined>;

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
   * can match, including one that pipelines and expects replies in order. A finished call
   * waiting for an earlier one still counts against `maxConcurrentCalls`.
   */
  readonly replyOrder?: 'completion' | 'request';
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

const EMPTY = new Uint8Array(0);

/** A ThriftRequest whose abort signal is only made when a handler asks for it. */
class IncomingCall implements ThriftRequest, StreamEndListener {
  private controller: AbortController | undefined;
  private listener: ThriftAbortListener | undefined;
  private aborted = false;
  /** The handler gave the frame's bytes back (release()). */
  released = false;

  constructor(
    readonly frame: ThriftFrame,
    readonly header: MessageHeader,
    readonly bodyOffset: number,
    private readonly options: ReaderOptions,
    readonly stream: ThriftStream,
  ) {}

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

  release(): void {
    this.released = true;
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

  /** The connection ended while the call ran (FrameReader.watch). */
  streamEnded(): void {
    this.abort();
  }
}

/** Accepts connections and runs the message loop on each. */
export class ThriftServer {
  private readonly streams = new Set<ThriftStream>();
  private readonly binaryReader: BinaryReader;
  private readonly compactReader: CompactReader;
  private readonly listeners = new Set<ThriftListener>();
  private closing = false;
  /** acceptLoop's callback and stop test, made once per server rather than per serve() or connection. */
  private readonly onStream = (stream: ThriftStream): void => {
    void this.handleConnection(stream);
  };
  private readonly isClosing = (): boolean => this.closing;

  constructor(
    private readonly handler: ThriftHandler,
    private readonly options: ThriftServerOptions = {},
  ) {
    this.binaryReader = new BinaryReader(options);
    this.compactReader = new CompactReader(options);
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
  async serve(listener: ThriftListener): Promise<void> {
    this.listeners.add(listener);
    try {
      await acceptLoop(listener, this.onStream, {
        stopping: this.isClosing,
        onError: this.options.onConnectionError,
      });
    } finally {
      this.listeners.delete(listener);
    }
  }

  /** Serves one connection until it ends, fails or the server closes; never rejects. */
  async handleConnection(stream: ThriftStream): Promise<void> {
    this.streams.add(stream);
    const active = new Set<IncomingCall>();
    const reader = new FrameReader(stream, {
      ...this.options,
      readTimeout: this.options.readTimeout ?? 30_000,
    });
    const limit = Math.max(1, this.options.maxConcurrentCalls ?? 1);
    const inFlight = new Set<Promise<void>>();
    const inOrder = this.options.replyOrder === 'request';
    let writing: Promise<unknown> = Promise.resolve();
    let failure: unknown;
    const fail = (e: unknown): void => {
      failure ??= e;
      void stream.close().catch(() => {});
    };
    try {
      for (;;) {
        const frame = await reader.next();
        if (frame === null) {
          // The peer closed (or half-closed) its side: calls still running are abandoned.
          for (const call of active) call.abort();
          break;
        }
        if (limit === 1) {
          const request = this.incoming(frame, stream);
          // No `active` set: the loop ends only between calls, when none is running. The
          // connection's end during the call is noticed by the reader's watch instead.
          const reply = await this.answer(request, undefined, reader);
          reader.unwatch();
          if (reply !== undefined) {
            await stream.writev(this.replyParts(frame, reply));
            reply.release?.();
          }
          // One call at a time: with its reply written, a released request's bytes are unused.
          if (request.released) reader.recycle();
          continue;
        }
        // Parse the header before reading on, so that bad bytes stop the loop at once.
        const dispatched = this.answerFrame(frame, active, stream);
        let call: Promise<void>;
        if (inOrder) {
          // The reply is written after every earlier one; the call is in flight until then.
          const written = writing
            .then(() => dispatched)
            .then((reply) => this.writeReply(stream, frame, reply));
          writing = written;
          call = written.then(() => undefined, fail);
        } else {
          call = dispatched.then((reply) => {
            if (reply === undefined) return;
            writing = writing.then(() => this.writeReply(stream, frame, reply)).catch(fail);
          }, fail);
        }
        inFlight.add(call);
        void call.finally(() => inFlight.delete(call));
        if (inFlight.size >= limit) await Promise.race(inFlight);
        if (failure !== undefined) throw failure;
      }
      await Promise.all(inFlight);
      await writing;
      if (failure !== undefined) throw failure;
    } catch (e) {
      if (!this.closing) this.options.onConnectionError?.(failure ?? e, stream);
    } finally {
      for (const call of active) call.abort();
      this.streams.delete(stream);
      if (!stream.closed) await stream.close().catch(() => {});
    }
  }

  /** Reads the message header of a frame (a header that does not parse throws: bad bytes). */
  private incoming(frame: ThriftFrame, stream: ThriftStream): IncomingCall {
    const r = frame.protocol === 'binary' ? this.binaryReader : this.compactReader;
    r.reset(frame.payload);
    let header: MessageHeader;
    let bodyOffset: number;
    try {
      // A message header that does not parse is a protocol error: the connection is closed.
      header = r.readMessageBegin();
      bodyOffset = r.pos;
    } finally {
      r.reset(EMPTY);
    }
    return new IncomingCall(frame, header, bodyOffset, this.options, stream);
  }

  /** incoming() and answer() for a call that runs beside others. */
  private async answerFrame(
    frame: ThriftFrame,
    active: Set<IncomingCall>,
    stream: ThriftStream,
  ): Promise<ThriftReply | undefined> {
    return this.answer(this.incoming(frame, stream), active, undefined);
  }

  /** Writes a reply in its request's framing, then gives its memory back (reply.release). */
  private async writeReply(
    stream: ThriftStream,
    frame: ThriftFrame,
    reply: ThriftReply | undefined,
  ): Promise<void> {
    if (reply === undefined) return;
    await stream.writev(this.replyParts(frame, reply));
    reply.release?.();
  }

  /**
   * Runs the handler for one call; returns what to answer (an exception reply for a failure,
   * nothing for ONEWAY). Concurrent calls are kept in `active` (the connection's loop aborts
   * them when it ends); a call answered alone has `reader` watch the connection while it runs.
   */
  private async answer(
    request: IncomingCall,
    active: Set<IncomingCall> | undefined,
    reader: FrameReader | undefined,
  ): Promise<ThriftReply | undefined> {
    const header = request.header;
    const frame = request.frame;
    const timeoutMs = this.options.handlerTimeout ?? 0;
    active?.add(request);
    let reply: ThriftReply | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const call = this.handler.call(request);
      if (!(call instanceof Promise)) {
        // A synchronous answer cannot be late: no timer, no trip through the microtask queue.
        reply = call;
      } else {
        // Only a call that waits is watched: the receive the next call would make is armed now
        // (no extra receive; its handlers are made once per connection, so a call costs one
        // promise reaction), and a peer gone mid-call aborts the call.
        reader?.watch(request);
        if (timeoutMs > 0) {
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              request.abort();
              reject(new ThriftRpcError('ERR_THRIFT_TIMEOUT', `handler took longer than ${timeoutMs} ms`));
            }, timeoutMs);
          });
          call.catch(() => {});
          reply = await Promise.race([call, timeout]);
        } else {
          reply = await call;
        }
      }
      if (header.type === MessageType.ONEWAY) return undefined;
      if (reply === undefined) {
        throw new TApplicationException(
          TApplicationExceptionType.MISSING_RESULT,
          `${header.name} returned no result`,
        );
      }
    } catch (e) {
      if (header.type === MessageType.ONEWAY) return undefined;
      const exc =
        e instanceof TApplicationException
          ? e
          : new TApplicationException(
              TApplicationExceptionType.INTERNAL_ERROR,
              (e as Error)?.message ?? String(e),
            );
      reply = { payload: exc.toMessage(frame.protocol, header.name, header.seqId) };
    } finally {
      clearTimeout(timer);
      active?.delete(request);
    }
    return reply;
  }

  /** The buffers of `reply` framed the way `frame` came. */
  private replyParts(frame: ThriftFrame, reply: ThriftReply): Uint8Array[] {
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

  /** Stops accepting, closes the listeners and every connection. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.listeners].map((l) => l.close().catch(() => {})));
    await Promise.all([...this.streams].map((s) => s.close().catch(() => {})));
  }
}
