/**
 * One HTTP/2 connection of a server (RFC 9113): the frames a client sends become requests to
 * the server's handler, its responses become HEADERS, DATA and trailers, with flow control both
 * ways, and the connection defends itself against the known floods. I/O goes through the
 * stream's promise-free recvTo/writeTo only, the session being the target of both: frames it
 * sends are queued and written together, one writeTo per flush (after each received chunk, or
 * at the next microtask for frames a handler's answer produced; server-output.ts).
 *
 * - Our SETTINGS first (server-shared.ts), SETTINGS and PING acknowledged, our settings applied
 *   to the decoders once the client acknowledged them, the client's to our encoder and windows.
 * - Stream states (stream.ts): client ids odd and increasing; a HEADERS on an id at or below the
 *   last one that is not a trailer block is a connection error; streams over
 *   SETTINGS_MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM), counting reset streams whose
 *   handler still runs.
 * - Requests (header blocks decoded and checked in server-request-head.ts): pseudo-headers
 *   checked by the codec's FieldBlockValidator, then mapped to an HttpServerRequest (`version`
 *   '2', `:path` as the target, `:authority` as `host`, a `host` that disagrees is malformed,
 *   cookies joined); content-length checked against DATA; the body is read through
 *   request-body.ts, its window credited as the handler reads.
 * - Responses (server-response-writer.ts): `:status` plus the handler's fields without
 *   connection-specific ones, a content-length for sized bodies, DATA within the peer's stream
 *   and connection windows (a body waits while either is closed and resumes on WINDOW_UPDATE),
 *   trailers as a final HEADERS.
 * - Errors end only what they must: a stream error resets the stream (RST_STREAM), a
 *   connection error sends GOAWAY with its code and closes. server.close() sends GOAWAY in two
 *   phases (2^31-1 and a PING, then the last stream id), lets the streams in flight finish,
 *   then closes.
 * - Floods (flood-limits.ts): resets (rapid reset), SETTINGS, PING, empty frames and
 *   WINDOW_UPDATEs of less than 1 KiB counted per interval, past their budget GOAWAY ENHANCE_YOUR_CALM; a client that
 *   does not read stops our reading once the output bound is reached; a stream stalled on a
 *   closed window is reset after the write timeout. CONTINUATION floods and HPACK bombs are the
 *   codec's bounds (a bomb is answered 431).
 *
 * Not for the protocol choice (../server.ts) nor the wire codec (frames, HPACK).
 */
import { EMPTY_BODY, type HttpBody } from '../body.js';
import { HttpError, HttpTimeoutError } from '../errors.js';
import { closeBody, plainResponse } from '../internal/answers.js';
import { writeProgressMark, writeProgressSince } from '../internal/write-progress.js';
import type { HttpResponse, HttpServerRequest } from '../message.js';
import { targetFormOf } from '../message.js';
import type { HttpServer, ServedConnection } from '../server.js';
import type { HttpStream, StreamChunk } from '../transport.js';
import { Http2ConnectionError, Http2ErrorCode, Http2StreamError } from './errors.js';
import { FloodCounter } from './flood-limits.js';
import { ReceiveWindow } from './flow-control.js';
import { Http2FrameDecoder } from './frame-decoder.js';
import {
  DEFAULT_INITIAL_WINDOW_SIZE,
  encodeGoaway,
  FRAME_HEADER_LENGTH,
  type Http2Priority,
  type Http2SettingsUpdate,
  MAX_WINDOW_SIZE,
  writePing,
  writeSettingsAck,
} from './frames.js';
import { H2RequestBody } from './request-body.js';
import { H2FrameOutput } from './server-output.js';
import { BLOCK_DISCARD, BLOCK_REQUEST, BLOCK_TRAILERS, H2RequestHeadDecoder } from './server-request-head.js';
import { H2ResponseWriter } from './server-response-writer.js';
import type { H2ServerShared } from './server-shared.js';
import { H2ServerStream, StreamWait } from './stream.js';
import { Http2StreamResetError } from './stream-reset-error.js';

const NO_DEADLINE = Number.POSITIVE_INFINITY;
/** The PING that follows the shutdown notice (the first GOAWAY), and how long to wait for it. */
const SHUTDOWN_PING = Uint8Array.from(Buffer.from('lochbye!', 'latin1'));
const SHUTDOWN_NOTICE_MS = 1000;
/** WINDOW_UPDATE increments below this count against the flood budget. */
const SMALL_WINDOW_UPDATE = 1024;
/** Lingering close after GOAWAY: how long and how much to read away. */
const LINGER_MS = 500;
const LINGER_BYTES = 1024 * 1024;

/** Where the session is. */
const OPEN = 0;
/** GOAWAY (NO_ERROR) sent: the streams in flight finish, no new one starts. */
const DRAINING = 1;
/** Ending: the last frames are flushed, then the stream is half-closed and closed. */
const CLOSING = 2;
const CLOSED = 3;

/**
 * One HTTP/2 server connection; see the module comment. It is its frame decoder's
 * Http2FrameHandler, its streams' H2StreamHost, its output's H2OutputHost and its writer's
 * H2ResponseHost; those methods are internal, so the class does not name these interfaces (the
 * published .d.ts, stripped of internal members, would not satisfy them).
 */
export class H2ServerSession<Cx> implements ServedConnection {
  deadline = NO_DEADLINE;
  /** Its index in the server's open connections (live-connections.ts). @internal */
  liveSlot = -1;
  private state = OPEN;
  private readonly decoder: Http2FrameDecoder;
  /** Decodes and checks the client's header blocks (server-request-head.ts). */
  private readonly head: H2RequestHeadDecoder;
  /** Writes responses within the peer's windows (server-response-writer.ts). */
  private readonly writer: H2ResponseWriter;
  private readonly streams = new Map<number, H2ServerStream>();
  /** The highest stream id the client opened (or tried to). */
  private lastStreamId = 0;
  /** The last stream id our GOAWAY announced (streams above it are ignored). */
  private goawayId = MAX_WINDOW_SIZE;
  /** The first GOAWAY of a graceful shutdown is out; the second follows (finalGoaway). */
  private noticeTimer: ReturnType<typeof setTimeout> | null = null;
  /** The client sent GOAWAY: close once the streams in flight are done. */
  private peerGoaway = false;

  // Windows: ours for the client's DATA (the writer keeps the client's for ours).
  private readonly recvWindow: ReceiveWindow;
  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE. */
  private peerInitialWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  /** Our SETTINGS were acknowledged (our windows and frame size apply). */
  private settingsAcked = false;

  // Flood counters.
  private readonly resets: FloodCounter;
  private readonly settingsFlood: FloodCounter;
  private readonly pings: FloodCounter;
  private readonly empties: FloodCounter;
  private readonly windowUpdates: FloodCounter;

  /** Frames queued and the write in flight (server-output.ts). */
  private readonly output: H2FrameOutput;

  // Input.
  private reading = false;
  private readPaused = false;
  private lingering = false;
  private lingerLeft = LINGER_BYTES;
  private lingerTimer: ReturnType<typeof setTimeout> | null = null;

  // Deadlines: of the write in flight, of an idle connection, of the client's SETTINGS ACK, and a
  // lower bound of the streams'.
  private writeDeadline = NO_DEADLINE;
  /** The stream's write progress when the write deadline was armed (internal/write-progress.ts). */
  private sentMark = 0;
  private settingsDeadline = NO_DEADLINE;
  private idleDeadline = NO_DEADLINE;
  private streamDeadline = NO_DEADLINE;

  constructor(
    private readonly server: HttpServer<Cx>,
    private readonly shared: H2ServerShared,
    private readonly stream: HttpStream,
    private readonly context: Cx,
    private readonly onClosed: ((stream: HttpStream) => void) | null,
  ) {
    const limits = shared.limits;
    this.decoder = new Http2FrameDecoder(this, {
      role: 'server',
      maxHeaderBlockSize: 2 * limits.maxHeaderListSize + 1024,
    });
    this.head = new H2RequestHeadDecoder(limits.maxHeaderListSize);
    this.output = new H2FrameOutput(stream, this, limits.maxOutputBuffer);
    this.writer = new H2ResponseWriter(this, this.output, shared.date);
    this.recvWindow = new ReceiveWindow(limits.connectionWindowSize);
    const interval = limits.floodInterval;
    this.resets = new FloodCounter(limits.maxResetsPerInterval, interval);
    this.settingsFlood = new FloodCounter(limits.maxSettingsPerInterval, interval);
    this.pings = new FloodCounter(limits.maxPingsPerInterval, interval);
    this.empties = new FloodCounter(limits.maxEmptyFramesPerInterval, interval);
    this.windowUpdates = new FloodCounter(limits.maxWindowUpdatesPerInterval, interval);
    try {
      stream.setNoDelay(true);
    } catch {
      // Unix streams and adapters may not support it.
    }
  }

  /** Number of streams the session holds (open, or reset with their handler still running). */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** No stream held: the client has no request in flight on this connection. */
  get idle(): boolean {
    return this.streams.size === 0;
  }

  /**
   * Starts the session: our SETTINGS go out, `received` (bytes already read from the stream,
   * such as the sniffed client preface; may be empty) is decoded, then the stream is read.
   */
  start(received: Uint8Array | null): void {
    this.output.queue(this.shared.preface);
    const settingsMs = this.shared.limits.settingsTimeout;
    if (settingsMs > 0) this.settingsDeadline = this.server.now + settingsMs;
    this.armIdle();
    if (received !== null && received.length > 0) this.feed(received);
    else this.output.flush();
    this.recv();
  }

  // ---- ServedConnection ----

  /** The sweep's tick found a deadline passed. */
  expire(): void {
    const now = this.server.now;
    if (this.writeDeadline <= now) {
      // An idle-progress deadline: a write the kernel took bytes of since runs again from now.
      const moved = writeProgressSince(this.stream, this.sentMark);
      if (moved >= 0) {
        this.sentMark = moved;
        this.writeDeadline = now + this.server.timeouts.write;
      } else {
        // The client stopped reading: nothing more can be said to it.
        this.writeDeadline = NO_DEADLINE;
        this.abort(new HttpTimeoutError('write', this.server.timeouts.write));
        return;
      }
    }
    if (this.settingsDeadline <= now) {
      // RFC 9113 §6.5.3: our SETTINGS were never acknowledged.
      this.settingsDeadline = NO_DEADLINE;
      this.goaway(Http2ErrorCode.SETTINGS_TIMEOUT, 'SETTINGS not acknowledged');
      return;
    }
    if (this.idleDeadline <= now) {
      this.idleDeadline = NO_DEADLINE;
      this.goaway(Http2ErrorCode.NO_ERROR, null);
      return;
    }
    if (this.streamDeadline <= now) {
      let next = NO_DEADLINE;
      for (const s of this.streams.values()) {
        if (s.deadline <= now) {
          const wait = s.wait;
          s.deadline = NO_DEADLINE;
          s.wait = StreamWait.None;
          if (wait === StreamWait.Body) {
            s.body?.fail(new HttpTimeoutError('body', this.server.timeouts.body));
          } else if (wait === StreamWait.Window) {
            this.resetStream(s, Http2ErrorCode.CANCEL, false);
          }
        } else if (s.deadline < next) {
          next = s.deadline;
        }
      }
      this.streamDeadline = next;
    }
    this.rearm();
  }

  /** Server shutdown: GOAWAY now; the streams in flight finish, then the connection closes. */
  shutdownIfIdle(): void {
    if (this.state !== OPEN) return;
    this.state = DRAINING;
    // Two phases (RFC 9113 §6.8): a GOAWAY with the largest id tells the client to open no more
    // streams while the ones it already sent are still served; a PING round trip later (or after
    // SHUTDOWN_NOTICE_MS without an answer) the GOAWAY with the real last id follows.
    this.output.queue(encodeGoaway(MAX_WINDOW_SIZE, Http2ErrorCode.NO_ERROR));
    const at = this.output.reserve(FRAME_HEADER_LENGTH + 8);
    writePing(this.output.arena, at, SHUTDOWN_PING, false);
    this.output.flush();
    this.noticeTimer = setTimeout(() => this.finalGoaway(), SHUTDOWN_NOTICE_MS);
  }

  /** Closes now (the end of a shutdown grace): open streams are cancelled, the stream closed. */
  close(): Promise<void> {
    this.closeNow();
    return this.stream.close().catch(() => {});
  }

  /** The second GOAWAY of a graceful shutdown: streams above the last id are not served. */
  private finalGoaway(): void {
    if (this.noticeTimer !== null) clearTimeout(this.noticeTimer);
    this.noticeTimer = null;
    if (this.state !== DRAINING || this.goawayId !== MAX_WINDOW_SIZE) return;
    this.goawayId = this.lastStreamId;
    this.output.queue(encodeGoaway(this.lastStreamId, Http2ErrorCode.NO_ERROR));
    this.output.flush();
    if (this.streams.size === 0) this.finish();
  }

  private rearm(): void {
    let d = this.writeDeadline;
    if (this.idleDeadline < d) d = this.idleDeadline;
    if (this.settingsDeadline < d) d = this.settingsDeadline;
    if (this.streamDeadline < d) d = this.streamDeadline;
    this.deadline = d;
  }

  private armIdle(): void {
    const idle = this.server.timeouts.idle;
    this.idleDeadline = idle > 0 && this.streams.size === 0 ? this.server.now + idle : NO_DEADLINE;
    this.rearm();
  }

  /** Whether the session is ending (H2ResponseHost): no more answers go out. @internal */
  get ending(): boolean {
    return this.state >= CLOSING;
  }

  /** Arms a stream's deadline for what it waits for (H2ResponseHost too). @internal */
  armStream(s: H2ServerStream, wait: StreamWait): void {
    const t = this.server.timeouts;
    const ms = wait === StreamWait.Body ? t.body : t.write;
    s.wait = wait;
    s.deadline = ms > 0 ? this.server.now + ms : NO_DEADLINE;
    if (s.deadline < this.streamDeadline) {
      this.streamDeadline = s.deadline;
      if (s.deadline < this.deadline) this.deadline = s.deadline;
    }
  }

  /** A stream waits no more. @internal */
  disarmStream(s: H2ServerStream): void {
    s.wait = StreamWait.None;
    s.deadline = NO_DEADLINE;
  }

  // ---- Input ----

  private recv(): void {
    if (this.reading || this.state === CLOSED || (this.state === CLOSING && !this.lingering)) return;
    if (this.output.overBound) {
      // The client does not read what we send: stop reading what it sends.
      this.readPaused = true;
      return;
    }
    this.readPaused = false;
    this.reading = true;
    try {
      this.stream.recvTo(this);
    } catch (e) {
      this.reading = false;
      this.abort(e);
    }
  }

  /** The outcome of the pending recvTo (RecvTarget). @internal */
  onRecv(c: StreamChunk | null, error: unknown): void {
    this.reading = false;
    if (this.lingering) {
      if (c === null) {
        this.closeNow();
        return;
      }
      this.lingerLeft -= c.bytes.length;
      c.release();
      if (this.lingerLeft <= 0) this.closeNow();
      else this.recv();
      return;
    }
    if (this.state >= CLOSING) {
      c?.release();
      return;
    }
    if (c === null) {
      // The client left (or the stream failed): what is in flight ends with it.
      this.abort(error);
      return;
    }
    try {
      this.feed(c.bytes);
    } finally {
      c.release();
    }
    this.recv();
  }

  /** Decodes received bytes; frames the handling produced go out in one write. */
  private feed(bytes: Uint8Array): void {
    const output = this.output;
    output.inFeed = true;
    try {
      this.decoder.feed(bytes);
    } catch (e) {
      this.connectionError(e);
    } finally {
      output.inFeed = false;
    }
    this.output.flush();
  }

  /** A connection error: GOAWAY with its code (INTERNAL_ERROR for a bug of ours), then close. */
  private connectionError(e: unknown): void {
    if (e instanceof Http2ConnectionError) {
      this.goaway(e.errorCode, e.message);
    } else {
      this.server.onError(e);
      this.goaway(Http2ErrorCode.INTERNAL_ERROR, null);
    }
  }

  // ---- Http2FrameHandler ----

  /** @internal */
  onData(streamId: number, data: Uint8Array, endStream: boolean, flowLength: number): void {
    if (this.state >= CLOSING) return;
    if (!this.recvWindow.receive(flowLength)) {
      throw new Http2ConnectionError(
        'ERR_HTTP2_FLOW_CONTROL',
        Http2ErrorCode.FLOW_CONTROL_ERROR,
        'DATA beyond the connection window',
      );
    }
    // The connection window is credited as DATA arrives: the streams' windows bound the buffers.
    const inc = this.recvWindow.consume(flowLength);
    if (inc > 0) this.output.queueWindowUpdate(0, inc);
    if (flowLength === 0 && !endStream) this.countEmpty();
    const s = this.streams.get(streamId);
    if (s === undefined) {
      if (streamId > this.lastStreamId || (streamId & 1) === 0) {
        throw protocolError(`DATA on idle stream ${streamId}`);
      }
      // A stream already closed (reset by us while the client was still sending): discarded.
      return;
    }
    if (s.remoteClosed) {
      if (!s.reset) this.resetStream(s, Http2ErrorCode.STREAM_CLOSED, true);
      return;
    }
    // A stream has a receive window unless its request ended with its HEADERS, and then it is
    // remote-closed (above).
    if (!s.recv!.receive(flowLength)) {
      this.resetStream(s, Http2ErrorCode.FLOW_CONTROL_ERROR, true);
      return;
    }
    const body = s.body;
    if (body !== null) {
      // Malformed (RFC 9113 §8.1.1): a body that disagrees with its content-length.
      body.received += data.length;
      const got = body.received;
      if (s.contentLength >= 0 && (got > s.contentLength || (endStream && got !== s.contentLength))) {
        this.resetStream(s, Http2ErrorCode.PROTOCOL_ERROR, true);
        return;
      }
    }
    const pad = flowLength - data.length;
    if (body === null || body.finished) {
      // Its reader left: credit what arrives so the client can finish.
      this.creditStream(s, flowLength);
    } else {
      if (pad > 0) this.creditStream(s, pad);
      body.push(data);
    }
    if (endStream) {
      s.remoteClosed = true;
      body?.end(null);
      if (s.closed && !s.active) this.release(s);
    }
  }

  /** @internal */
  onHeaders(streamId: number, block: Uint8Array, endStream: boolean, _priority: Http2Priority | null): void {
    if (this.state >= CLOSING) {
      // Nothing more will be answered, but the table stays in step for the GOAWAY's sake.
      this.head.decode(block, BLOCK_DISCARD, streamId);
      return;
    }
    if ((streamId & 1) === 0) {
      throw new Http2ConnectionError(
        'ERR_HTTP2_STREAM_ID',
        Http2ErrorCode.PROTOCOL_ERROR,
        `HEADERS on even stream ${streamId}`,
      );
    }
    const s = this.streams.get(streamId);
    if (s !== undefined) {
      this.onTrailers(s, block, endStream);
      return;
    }
    if (streamId <= this.lastStreamId) {
      // A closed stream: trailers of a body we stopped reading are dropped; a request on an id
      // already used (reuse, or a decrease) is a connection error.
      let err: Http2StreamError | null;
      try {
        err = this.head.decode(block, BLOCK_TRAILERS, streamId);
      } catch (e) {
        if (!(e instanceof Http2StreamError)) throw e;
        err = null;
      }
      if (err !== null && err.code === 'ERR_HTTP2_PSEUDO_HEADER_IN_TRAILERS') {
        throw new Http2ConnectionError(
          'ERR_HTTP2_STREAM_ID_REUSED',
          Http2ErrorCode.PROTOCOL_ERROR,
          `a request on stream ${streamId}, at or below the last stream ${this.lastStreamId}`,
        );
      }
      return;
    }
    this.lastStreamId = streamId;
    if (streamId > this.goawayId || this.peerGoaway) {
      // After our GOAWAY new streams are ignored (RFC 9113 §6.8), their blocks still decoded.
      this.head.decode(block, BLOCK_DISCARD, streamId);
      return;
    }
    let err: Http2StreamError | null;
    try {
      err = this.head.decode(block, BLOCK_REQUEST, streamId);
    } catch (e) {
      if (!(e instanceof Http2StreamError)) throw e;
      // An HPACK bomb or an oversized head: the block was walked to its end; answer 431.
      this.countReset();
      this.writer.answerRefused(streamId, 431, endStream);
      return;
    }
    if (err !== null) {
      this.countReset();
      this.output.queueRst(streamId, err.errorCode);
      return;
    }
    if (this.head.count > this.shared.maxHeaderCount) {
      this.countReset();
      this.writer.answerRefused(streamId, 431, endStream);
      return;
    }
    if (this.streams.size >= this.shared.limits.maxConcurrentStreams) {
      this.countReset();
      this.output.queueRst(streamId, Http2ErrorCode.REFUSED_STREAM);
      return;
    }
    this.openStream(streamId, endStream);
  }

  /** A HEADERS block on an open stream: the request's trailers. */
  private onTrailers(s: H2ServerStream, block: Uint8Array, endStream: boolean): void {
    if (s.remoteClosed) {
      this.head.decode(block, BLOCK_DISCARD, s.id);
      if (!s.reset) this.resetStream(s, Http2ErrorCode.STREAM_CLOSED, true);
      return;
    }
    let err: Http2StreamError | null;
    try {
      err = this.head.decode(block, BLOCK_TRAILERS, s.id);
    } catch (e) {
      if (!(e instanceof Http2StreamError)) throw e;
      err = e;
    }
    const body = s.body;
    if (
      err !== null ||
      !endStream ||
      (body !== null && s.contentLength >= 0 && body.received !== s.contentLength)
    ) {
      // Trailers without END_STREAM, a malformed trailer field, a short body: malformed.
      this.resetStream(s, Http2ErrorCode.PROTOCOL_ERROR, true);
      return;
    }
    s.remoteClosed = true;
    body?.end(this.head.takeFields());
    if (s.closed && !s.active) this.release(s);
  }

  /** A well-formed request on a new stream: its request object, body and handler. */
  private openStream(id: number, endStream: boolean): void {
    const shared = this.shared;
    const limits = shared.limits;
    const head = this.head;
    const method = head.method;
    const cl = head.contentLength;
    let contentLength = -1;
    if (cl !== '') {
      contentLength = /^[0-9]{1,15}$/.test(cl) ? Number(cl) : Number.NaN;
      if (Number.isNaN(contentLength) || (endStream && contentLength !== 0 && method !== 'HEAD')) {
        // Malformed (RFC 9113 §8.1.1): a bad content-length, or one that END_STREAM contradicts.
        this.countReset();
        this.output.queueRst(id, Http2ErrorCode.PROTOCOL_ERROR);
        return;
      }
    }
    const headers = head.takeRequestFields();
    const recvInitial = this.settingsAcked
      ? limits.initialWindowSize
      : Math.max(limits.initialWindowSize, DEFAULT_INITIAL_WINDOW_SIZE);
    const s = new H2ServerStream(
      this,
      id,
      this.peerInitialWindow,
      endStream ? null : new ReceiveWindow(limits.initialWindowSize, recvInitial),
    );
    s.contentLength = contentLength;
    this.streams.set(id, s);
    if (this.idleDeadline !== NO_DEADLINE) {
      this.idleDeadline = NO_DEADLINE;
      this.rearm();
    }
    let body: HttpBody;
    if (endStream) {
      s.remoteClosed = true;
      body = EMPTY_BODY;
    } else {
      s.body = new H2RequestBody(s, contentLength);
      body = s.body;
    }
    const target = method === 'CONNECT' ? head.authority : head.path;
    const req: HttpServerRequest<Cx> = {
      method,
      target,
      targetForm: targetFormOf(method, target),
      version: '2',
      headers,
      body,
      context: this.context,
    };
    if (method === 'CONNECT') {
      // Tunnels over HTTP/2 streams (RFC 9113 §8.5) are not served yet.
      void this.answerItself(s, req, 501, 'ERR_HTTP2_CONNECT_UNSUPPORTED');
      return;
    }
    const methods = shared.methods;
    if (methods !== 'any' && !methods.has(method)) {
      void this.answerItself(s, req, 501, 'ERR_HTTP_UNKNOWN_METHOD');
      return;
    }
    if (!(target.charCodeAt(0) === 0x2f || (target === '*' && method === 'OPTIONS'))) {
      // :path must be origin-form, or `*` for OPTIONS (RFC 9113 §8.3.1).
      this.countReset();
      this.resetStream(s, Http2ErrorCode.PROTOCOL_ERROR, true);
      s.active = false;
      this.release(s);
      return;
    }
    this.runStream(s, req);
  }

  /**
   * Runs the handler for a stream's request and writes its answer; a synchronous handler with a
   * body at hand is answered without a promise (the async path only where something waits).
   */
  private runStream(s: H2ServerStream, req: HttpServerRequest<Cx>): void {
    let out: HttpResponse | Promise<HttpResponse>;
    try {
      out = this.server.handler.call(req);
    } catch (e) {
      out = this.handlerFailed(e);
    }
    if (out instanceof Promise) {
      // Only a server that listens for abandoned requests keeps the request on its stream.
      if (this.server.onAbandoned !== null) s.awaiting = req;
      // A then() rather than an async function: its two closures cost less than an async
      // function's frame and its await (a proxied request takes this path every time).
      out.then(
        (res) => {
          s.awaiting = null;
          this.answer(s, req, res);
        },
        (e: unknown) => {
          s.awaiting = null;
          this.answer(s, req, this.rejected(req, e));
        },
      );
    } else this.answer(s, req, out);
  }

  /**
   * The handler's promise rejected: the server's onFailed makes the answer (without onError), as
   * on HTTP/1.1, so a handler chain can leave its failure mapping to that hook and hand its inner
   * promise on; without one, or when it throws, handlerFailed's 500. An answer to a stream reset
   * meanwhile is dropped by the writer as any other.
   */
  private rejected(req: HttpServerRequest<Cx>, e: unknown): HttpResponse {
    const hook = this.server.onFailed;
    if (hook === null) return this.handlerFailed(e);
    try {
      return hook(req, e);
    } catch (thrown) {
      return this.handlerFailed(thrown);
    }
  }

  /**
   * A stream ended (reset, or its connection) while its handler works on the answer: the
   * server's onAbandoned hook hears of it once.
   */
  private abandoned(s: H2ServerStream): void {
    const req = s.awaiting;
    if (req === null) return;
    s.awaiting = null;
    this.server.abandoned(req as HttpServerRequest<Cx>);
  }

  /** A handler failed: reported (unless its stream was reset), answered 500 or its status. */
  private handlerFailed(e: unknown): HttpResponse {
    if (!(e instanceof Http2StreamResetError)) this.server.onError(e);
    return errorResponse(e);
  }

  /** Checks a handler's answer and writes it; the stream ends once it is out. Never throws. */
  private answer(s: H2ServerStream, req: HttpServerRequest<Cx>, out: HttpResponse): void {
    let res = out;
    if (
      res === null ||
      typeof res !== 'object' ||
      typeof res.status !== 'number' ||
      res.headers === undefined ||
      res.body === undefined
    ) {
      res = this.handlerFailed(
        new HttpError('ERR_HTTP_INVALID_RESPONSE', 500, 'handler returned no valid HttpResponse'),
      );
    } else if (res.status < 200 || res.status > 599 || !Number.isInteger(res.status)) {
      void closeBody(res.body);
      res = this.handlerFailed(
        new HttpError('ERR_HTTP_INVALID_RESPONSE', 500, `handler returned status ${res.status}`),
      );
    }
    // A stream reset before its answer was abandoned (told then), not answered.
    if (this.server.onAnswered !== null && !s.reset) this.server.answered(req, res);
    // The end of an answered streamed body is told to onBodyEnd (the server skips other bodies).
    const told = this.server.onBodyEnd !== null && !s.reset;
    let p: Promise<void> | undefined;
    try {
      p = this.writer.respond(s, req.method, res);
    } catch (e) {
      if (told) this.server.bodyEnded(req, res, s.bodyBytes, e);
      this.responseFailed(s, e);
      return;
    }
    if (p === undefined) {
      // Written or queued whole (or let go: the stream or the session ended first).
      if (told)
        this.server.bodyEnded(
          req,
          res,
          s.bodyBytes,
          s.localClosed ? null : new Http2StreamResetError(s.id, Http2ErrorCode.CANCEL, 'server'),
        );
      this.endStream(s);
    } else
      p.then(
        () => {
          if (told) this.server.bodyEnded(req, res, s.bodyBytes, null);
          this.endStream(s);
        },
        (e: unknown) => {
          if (told) this.server.bodyEnded(req, res, s.bodyBytes, e);
          this.responseFailed(s, e);
        },
      );
  }

  /** The response could not be sent (its body failed, the stream or connection ended). */
  private responseFailed(s: H2ServerStream, e: unknown): void {
    if (!(e instanceof Http2StreamResetError)) this.server.onError(e);
    if (!s.localClosed) this.resetStream(s, Http2ErrorCode.INTERNAL_ERROR, false);
    this.endStream(s);
  }

  /** Answers a request the handler will not see (and reports it to onRejected). */
  private async answerItself(
    s: H2ServerStream,
    req: HttpServerRequest<Cx>,
    status: number,
    code: string,
  ): Promise<void> {
    try {
      await this.writer.respond(s, req.method, plainResponse(status, code));
    } catch {
      // The stream or connection ended meanwhile.
    }
    this.endStream(s);
    const hook = this.server.onRejected;
    if (hook === null) return;
    try {
      hook(
        { status, code, method: req.method, target: req.target, bytes: code.length + 1, error: null },
        this.context,
      );
    } catch (e) {
      this.server.onError(e);
    }
  }

  /** The handler and the response of a stream are done. */
  private endStream(s: H2ServerStream): void {
    s.active = false;
    this.disarmStream(s);
    if (!s.remoteClosed && !s.reset) {
      // The answer is complete before the request (RFC 9113 §8.1): ask the client to stop sending.
      this.resetStream(s, Http2ErrorCode.NO_ERROR, false);
    }
    s.body?.fail(new Http2StreamResetError(s.id, Http2ErrorCode.NO_ERROR, 'server'));
    this.release(s);
  }

  /** Forgets a stream once both sides are closed and its handler is done. */
  private release(s: H2ServerStream): void {
    if (s.active || this.streams.get(s.id) !== s) return;
    if (!s.closed) return;
    this.streams.delete(s.id);
    this.writer.blocked.delete(s);
    if (this.streams.size === 0) {
      if ((this.state === DRAINING && this.goawayId !== MAX_WINDOW_SIZE) || this.peerGoaway) this.finish();
      else this.armIdle();
    }
  }

  /** @internal */
  onPriority(_streamId: number, _priority: Http2Priority): void {
    // Deprecated signal (RFC 9113 §5.3.2): accepted and ignored, but counted as a useless frame.
    this.countEmpty();
  }

  /** @internal */
  onRstStream(streamId: number, errorCode: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) {
      if (streamId > this.lastStreamId) throw protocolError(`RST_STREAM on idle stream ${streamId}`);
      return;
    }
    // Rapid reset (CVE-2023-44487): a stream opened and cancelled at once costs us its handler.
    this.countReset();
    if (s.reset) return;
    s.reset = true;
    s.remoteClosed = true;
    s.localClosed = true;
    this.abandon(s, new Http2StreamResetError(streamId, errorCode, 'peer'));
  }

  /** @internal */
  onSettings(settings: Http2SettingsUpdate): void {
    if (this.settingsFlood.hit(performance.now())) throw calm('SETTINGS flood');
    if (settings.headerTableSize !== undefined)
      this.writer.hpack.setPeerMaxTableSize(settings.headerTableSize);
    if (settings.maxFrameSize !== undefined) this.writer.peerMaxFrameSize = settings.maxFrameSize;
    if (settings.initialWindowSize !== undefined) {
      const delta = settings.initialWindowSize - this.peerInitialWindow;
      this.peerInitialWindow = settings.initialWindowSize;
      if (delta !== 0) {
        for (const s of this.streams.values()) {
          if (s.sendWindow + delta > MAX_WINDOW_SIZE) {
            throw new Http2ConnectionError(
              'ERR_HTTP2_FLOW_CONTROL',
              Http2ErrorCode.FLOW_CONTROL_ERROR,
              'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window',
            );
          }
          s.sendWindow += delta;
          if (delta > 0) s.wake();
        }
      }
    }
    const at = this.output.reserve(FRAME_HEADER_LENGTH);
    writeSettingsAck(this.output.arena, at);
  }

  /** @internal */
  onSettingsAck(): void {
    if (this.settingsAcked) return;
    this.settingsAcked = true;
    // The deadline is left in `deadline`; the next expire() finds nothing passed and rearms.
    this.settingsDeadline = NO_DEADLINE;
    const limits = this.shared.limits;
    this.decoder.setMaxFrameSize(limits.maxFrameSize);
    if (limits.initialWindowSize < DEFAULT_INITIAL_WINDOW_SIZE) {
      for (const s of this.streams.values()) s.recv?.resize(limits.initialWindowSize);
    }
  }

  /** @internal */
  onPushPromise(): void {
    // The frame decoder rejects PUSH_PROMISE in the server role.
  }

  /** @internal */
  onPing(data: Uint8Array, ack: boolean): void {
    if (this.pings.hit(performance.now())) throw calm('PING flood');
    if (ack) {
      if (this.noticeTimer !== null && Buffer.from(SHUTDOWN_PING).equals(data)) this.finalGoaway();
      return;
    }
    const at = this.output.reserve(FRAME_HEADER_LENGTH + 8);
    writePing(this.output.arena, at, data, true);
  }

  /** @internal */
  onGoaway(_lastStreamId: number, _errorCode: number, _debugData: Uint8Array): void {
    // The client opens no more streams; the ones in flight finish.
    this.peerGoaway = true;
    if (this.streams.size === 0) this.finish();
  }

  /** @internal */
  onWindowUpdate(streamId: number, increment: number): void {
    // Small increments are what a tiny-window client sends to make us write DATA frames of a
    // few octets each; the large ones of a client reading fast are not counted.
    if (increment < SMALL_WINDOW_UPDATE && this.windowUpdates.hit(performance.now())) {
      throw calm('WINDOW_UPDATE flood');
    }
    if (streamId === 0) {
      if (this.writer.sendWindow + increment > MAX_WINDOW_SIZE) {
        throw new Http2ConnectionError(
          'ERR_HTTP2_FLOW_CONTROL',
          Http2ErrorCode.FLOW_CONTROL_ERROR,
          'WINDOW_UPDATE overflows the connection window',
        );
      }
      this.writer.sendWindow += increment;
      if (this.writer.blocked.size > 0) {
        const waiting = [...this.writer.blocked];
        this.writer.blocked.clear();
        for (const s of waiting) s.wake();
      }
      return;
    }
    const s = this.streams.get(streamId);
    if (s === undefined) {
      if (streamId > this.lastStreamId) throw protocolError(`WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (s.localClosed) return;
    if (s.sendWindow + increment > MAX_WINDOW_SIZE) {
      this.resetStream(s, Http2ErrorCode.FLOW_CONTROL_ERROR, true);
      return;
    }
    s.sendWindow += increment;
    s.wake();
  }

  /** @internal */
  onStreamError(error: Http2StreamError): void {
    const s = this.streams.get(error.streamId);
    this.countReset();
    if (s !== undefined) this.resetStream(s, error.errorCode, true);
    else this.output.queueRst(error.streamId, error.errorCode);
  }

  // ---- Flood accounting ----

  private countReset(): void {
    if (this.resets.hit(performance.now())) throw calm('too many streams reset');
  }

  private countEmpty(): void {
    if (this.empties.hit(performance.now())) throw calm('too many empty frames');
  }

  // ---- Streams and their bodies (H2StreamHost) ----

  /** @internal */
  streamBodyConsumed(s: H2ServerStream, n: number): void {
    this.creditStream(s, n);
    if (!this.output.inFeed) this.output.scheduleFlush();
  }

  /** @internal */
  streamBodyWait(s: H2ServerStream, waiting: boolean): void {
    if (waiting) this.armStream(s, StreamWait.Body);
    else if (s.wait === StreamWait.Body) this.disarmStream(s);
  }

  /** @internal */
  streamBodyAbandoned(s: H2ServerStream, buffered: number): void {
    // The handler stopped reading: what it left and what still comes is credited and dropped,
    // so the client can finish; once the answer is done it is asked to stop (RST NO_ERROR).
    if (!s.remoteClosed && buffered > 0) {
      this.creditStream(s, buffered);
      if (!this.output.inFeed) this.output.scheduleFlush();
    }
  }

  /** Credits `n` consumed octets of a stream's window (WINDOW_UPDATE once half is consumed). */
  private creditStream(s: H2ServerStream, n: number): void {
    const recv = s.recv;
    if (recv === null) return;
    const inc = recv.consume(n);
    if (inc > 0 && !s.remoteClosed) this.output.queueWindowUpdate(s.id, inc);
  }

  /**
   * Resets a stream (RST_STREAM `code`): its body reader and response writer fail. `byPeer` says
   * whether the peer's fault caused it (the reader sees it as such).
   */
  private resetStream(s: H2ServerStream, code: number, byPeer: boolean): void {
    if (s.reset) return;
    s.reset = true;
    const wasClosed = s.localClosed && s.remoteClosed;
    s.remoteClosed = true;
    s.localClosed = true;
    if (!wasClosed) this.output.queueRst(s.id, code);
    this.abandon(s, new Http2StreamResetError(s.id, code, byPeer ? 'peer' : 'server'));
  }

  /**
   * A reset stream (by either side): its body reader and response writer fail with `e`, a
   * response body waited on is let go now (a proxied upstream stream or connection is
   * cancelled, not left to its timeout), and the stream leaves the session.
   */
  private abandon(s: H2ServerStream, e: Http2StreamResetError): void {
    this.abandoned(s);
    s.body?.fail(e);
    s.wake(e);
    const pending = s.pendingBody;
    if (pending !== null) {
      s.pendingBody = null;
      returnQuietly(pending);
    }
    this.writer.blocked.delete(s);
    this.release(s);
  }

  // ---- Output ----

  /** A write goes out (H2OutputHost): the write timeout runs. @internal */
  writeStarted(): void {
    const ms = this.server.timeouts.write;
    this.writeDeadline = ms > 0 ? this.server.now + ms : NO_DEADLINE;
    if (ms > 0) this.sentMark = writeProgressMark(this.stream);
    if (this.writeDeadline < this.deadline) this.deadline = this.writeDeadline;
  }

  /** The stream refused a write at once (H2OutputHost). @internal */
  writeRefused(error: unknown): void {
    this.abort(error);
  }

  /** The outcome of the write in flight (WriteTarget). Never throws. @internal */
  onWritten(error: unknown): void {
    const output = this.output;
    output.writeEnded(error === undefined);
    this.writeDeadline = NO_DEADLINE;
    this.rearm();
    if (error !== undefined) {
      this.abort(error);
      return;
    }
    if (this.state === CLOSED) return;
    if (output.flushPending() && this.readPaused) this.recv();
    if (this.state === CLOSING && !output.writing && !this.lingering) this.linger();
  }

  // ---- Ending ----

  /** Sends GOAWAY with `code` and ends the connection (after the frames queued so far). */
  private goaway(code: number, message: string | null): void {
    if (this.state >= CLOSING) return;
    const debug = message === null ? undefined : Buffer.from(message.slice(0, 200), 'latin1');
    this.output.queue(encodeGoaway(Math.min(this.lastStreamId, this.goawayId), code, debug));
    this.failStreams(code, code === Http2ErrorCode.NO_ERROR ? 'server' : 'peer');
    this.state = CLOSING;
    this.output.flush();
    if (!this.output.writing) this.linger();
  }

  /** Draining is over (no stream left after our GOAWAY or the client's): close. */
  private finish(): void {
    if (this.state >= CLOSING) return;
    this.state = CLOSING;
    this.output.flush();
    if (!this.output.writing) this.linger();
  }

  /** Every stream in flight ends (their readers and writers fail). */
  private failStreams(code: number, by: 'peer' | 'server'): void {
    for (const s of this.streams.values()) {
      if (s.reset) continue;
      s.reset = true;
      s.remoteClosed = true;
      s.localClosed = true;
      const e = new Http2StreamResetError(s.id, code, by);
      this.abandoned(s);
      s.body?.fail(e);
      s.wake(e);
    }
    this.writer.blocked.clear();
    this.output.wakeDrained();
  }

  /**
   * Half-closes and reads away what the client still sends for a moment, so that the kernel
   * does not reset the connection before the client read our last frames (GOAWAY).
   */
  private linger(): void {
    if (this.lingering || this.state === CLOSED) return;
    this.lingering = true;
    this.deadline = NO_DEADLINE;
    const stream = this.stream;
    if (stream.closed) {
      this.closeNow();
      return;
    }
    this.lingerTimer = setTimeout(() => this.closeNow(), LINGER_MS);
    stream.shutdown().then(
      () => this.recv(),
      () => this.closeNow(),
    );
  }

  /** The stream failed or the client left: everything ends now. */
  private abort(error: unknown): void {
    if (this.state === CLOSED) return;
    const code = (error as { code?: unknown } | null)?.code;
    if (
      error !== undefined &&
      error !== null &&
      !(error instanceof HttpTimeoutError) &&
      code !== 'ECONNRESET' &&
      code !== 'EPIPE' &&
      code !== 'ECANCELED'
    ) {
      this.server.onError(error);
    }
    this.failStreams(Http2ErrorCode.CANCEL, 'peer');
    this.closeNow();
  }

  private closeNow(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.deadline = NO_DEADLINE;
    if (this.noticeTimer !== null) clearTimeout(this.noticeTimer);
    this.noticeTimer = null;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.output.discard();
    this.failStreams(Http2ErrorCode.CANCEL, 'peer');
    const stream = this.stream;
    void stream
      .close()
      .catch(() => {})
      .then(() => {
        this.server.release(this);
        try {
          this.onClosed?.(stream);
        } catch (e) {
          this.server.onError(e);
        }
      });
  }
}

function protocolError(message: string): Http2ConnectionError {
  return new Http2ConnectionError('ERR_HTTP2_IDLE_STREAM', Http2ErrorCode.PROTOCOL_ERROR, message);
}

function calm(message: string): Http2ConnectionError {
  return new Http2ConnectionError('ERR_HTTP2_FLOOD', Http2ErrorCode.ENHANCE_YOUR_CALM, message);
}

/** The answer to a handler failure: its HttpError status, else 500. */
function errorResponse(e: unknown): HttpResponse {
  if (e instanceof HttpError && e.status >= 400 && e.status <= 599) return plainResponse(e.status, e.code);
  return plainResponse(500, 'ERR_HTTP_HANDLER_FAILED');
}

/** Calls an iterator's return() without waiting; its failure changes nothing. */
function returnQuietly(it: AsyncIterator<Uint8Array>): void {
  try {
    const p = it.return?.();
    if (p !== undefined) p.then(undefined, () => {});
  } catch {
    // its own failure changes nothing
  }
}
