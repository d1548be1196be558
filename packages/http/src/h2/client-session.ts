/**
 * H2ClientSession: an HTTP/2 client connection (RFC 9113) over one runtime stream, carrying
 * many exchanges at once, each on its own stream. Sends the preface and SETTINGS, opens streams
 * up to the server's SETTINGS_MAX_CONCURRENT_STREAMS (more exchanges wait in order for a slot),
 * writes request heads as HEADERS/CONTINUATION with HPACK and request bodies as DATA within the
 * server's stream and connection windows (a body's source is pulled only while there is room),
 * hands response bodies over as HttpBody and credits the windows with WINDOW_UPDATE as the
 * caller reads, carries trailers both ways (gRPC), resets a stream on abort or deadline, answers
 * PING and honours GOAWAY (streams above the last-stream-id fail as Http2RequestRefusedError,
 * retryable; no new streams). Options, deadlines and the exchange target are HttpClient's
 * (../client.ts), so a pool or a proxy drives either connection the same way.
 *
 * I/O goes through the stream's recvTo/writeTo only, with the session as the target of both; one
 * write is in flight at a time and frames queued meanwhile go out together in the next one.
 * Not a pool: @loch/transports shares sessions between callers (H2Connector).
 */
import { NO_SETTLER } from '@loch/service-async';
import { EMPTY_BODY, type HttpBody, type ReadyBodyIterator } from '../body.js';
import type {
  HttpClientOptions,
  HttpExchangeCancel,
  HttpExchangeTarget,
  HttpSendOptions,
} from '../client.js';
import {
  HttpAbortedError,
  HttpConnectionError,
  HttpRequestBodyError,
  HttpTimeoutError,
  type HttpTimeoutKind,
} from '../errors.js';
import { HttpHeaders } from '../headers.js';
import { deadlines } from '../internal/deadlines.js';
import { writeProgressMark, writeProgressSince } from '../internal/write-progress.js';
import type { HttpRequest, HttpResponse } from '../message.js';
import type { HttpStream, StreamChunk } from '../transport.js';
import { Http2RequestRefusedError, Http2SessionError } from './client-errors.js';
import { Http2ConnectionError, Http2ErrorCode, type Http2StreamError } from './errors.js';
import { FieldBlockValidator } from './field-validator.js';
import { ReceiveWindow } from './flow-control.js';
import { Http2FrameDecoder } from './frame-decoder.js';
import {
  CONNECTION_PREFACE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  encodeData,
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  type HeadersFrameOptions,
  type Http2Priority,
  type Http2SettingsUpdate,
  MAX_WINDOW_SIZE,
} from './frames.js';
import { HpackDecoder, type HpackFieldSink } from './hpack-decoder.js';
import { HpackEncoder } from './hpack-encoder.js';
import { Http2StreamResetError } from './stream-reset-error.js';

/** HTTP/2 settings of a client session. */
export interface Http2ClientLimits {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: what the server may send on a stream before we credit it. Default 1 MiB. */
  readonly streamWindowSize?: number;
  /** The connection's receive window (raised by WINDOW_UPDATE at start). Default 4 MiB. */
  readonly connectionWindowSize?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE. Default 64 KiB. */
  readonly maxHeaderListSize?: number;
  /** Our SETTINGS_HEADER_TABLE_SIZE. Default 4096. */
  readonly headerTableSize?: number;
  /**
   * How long the server has to acknowledge our SETTINGS, ms (default 10,000; 0: no limit). A
   * server that never does is left with GOAWAY SETTINGS_TIMEOUT (RFC 9113 §6.5.3) and its
   * streams fail with Http2SessionError.
   */
  readonly settingsTimeout?: number;
}

/** H2ClientSession options: HttpClient's, plus the scheme and HTTP/2 settings. */
export interface Http2ClientOptions extends Omit<HttpClientOptions, 'limits' | 'expectContinueTimeout'> {
  /** `:scheme` of the requests. Default `https` when the stream is TLS (facts.secure), else `http`. */
  readonly scheme?: 'http' | 'https';
  readonly http2?: Http2ClientLimits;
  /**
   * Told when `alive`, `accepting` or `maxConcurrentStreams` changed on their own (SETTINGS,
   * GOAWAY, the connection ended) or a stream ended: a shared pool's `changed(conn)`.
   */
  readonly onChange?: (session: H2ClientSession) => void;
}

const NO_OPTIONS: HttpSendOptions = {};
/** The abort listener of exchanges without a signal (never registered). */
const NO_ABORT = (): void => {};
const NO_DEADLINE = Number.POSITIVE_INFINITY;
/**
 * Schedules a flush through a settled promise rather than queueMicrotask(): the same checkpoint
 * without an AsyncResource and a bound function per call (server-output.ts does the same).
 */
const SETTLED = Promise.resolve();
/** The end of a body (shared: nothing in it to mutate). */
const BODY_DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });
/** Bytes queued for the stream above which body writers wait for the output to drain. */
const OUTPUT_HIGH_WATER = 256 * 1024;
/** Request fields that HTTP/2 forbids (RFC 9113 §8.2.2) or carries as pseudo-headers. */
const NOT_FORWARDED = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
  'content-length',
]);

/**
 * Collects a response or trailer block's fields as HPACK decodes them, checked by the codec's
 * FieldBlockValidator: `:status` apart, the rest as one flat name/value list handed to an
 * HttpHeaders as is (already validated and lowercase: no second check, no pair per field).
 */
class ResponseFieldSink implements HpackFieldSink {
  readonly #validator = new FieldBlockValidator();
  #list: string[] = [];
  #failed = false;
  status = 0;

  begin(kind: 'response' | 'trailers', streamId: number): void {
    this.#validator.begin(kind, streamId);
    this.#list = [];
    this.#failed = false;
    this.status = 0;
  }

  onField(name: string, value: string): void {
    // After the first malformed field the block is rejected; the rest is only decoded.
    if (this.#failed) return;
    if (this.#validator.field(name, value) !== null) {
      this.#failed = true;
      return;
    }
    if (name === ':status') this.status = Number(value);
    else this.#list.push(name, value);
  }

  /** The block's first malformed-field error, or null. */
  end(): Http2StreamError | null {
    return this.#validator.end();
  }

  takeHeaders(): HttpHeaders {
    const h = new HttpHeaders();
    if (this.#list.length > 0) h.added = this.#list;
    this.#list = [];
    return h;
  }
}

/** One request's stream; the caller's cancel handle (HttpExchangeCancel). @internal */
class ClientStream implements HttpExchangeCancel {
  id = 0;
  sendWindow: number;
  readonly recv: ReceiveWindow;
  target: HttpExchangeTarget | null;
  response: HttpResponse | null = null;
  body: H2ResponseBody | null = null;
  /** We sent END_STREAM. */
  localEnded = false;
  /** The server sent END_STREAM (or the stream was reset / failed). */
  remoteEnded = false;
  closed = false;
  /** Resolves a body writer waiting for send window. */
  windowWaiter: (() => void) | null = null;
  readDeadline = NO_DEADLINE;
  readKind: HttpTimeoutKind = 'response';
  /**
   * The session write that carries this stream's END_STREAM (its request's last frame; 0: not
   * queued yet): until it completes the request is still going out (H2ClientSession.sendingRequestOf).
   */
  endWrite = 0;
  error: unknown = null;
  readonly responseMs: number;
  readonly bodyMs: number;
  readonly signal: AbortSignal | undefined;
  /** The signal's listener (a closure only for exchanges that have a signal). */
  readonly onAbort: () => void;
  /** A HEAD request: the response has no body whatever it says. */
  readonly head: boolean;

  constructor(
    readonly session: H2ClientSession,
    readonly request: HttpRequest,
    options: HttpSendOptions,
    defaults: Http2ClientOptions,
    target: HttpExchangeTarget,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.target = target;
    this.sendWindow = sendWindow;
    this.recv = new ReceiveWindow(recvWindow);
    this.responseMs = options.responseTimeout ?? defaults.responseTimeout ?? 60_000;
    this.bodyMs = options.bodyTimeout ?? defaults.bodyTimeout ?? 60_000;
    const signal = options.signal;
    this.signal = signal;
    this.head = request.method === 'HEAD';
    this.onAbort =
      signal === undefined
        ? NO_ABORT
        : () => session.abortStream(this, new HttpAbortedError({ cause: signal.reason }));
  }

  /** HttpExchangeCancel: RST_STREAM(CANCEL) while the head is awaited (`target` set until then). */
  cancelExchange(request: HttpRequest): void {
    if (request === this.request && this.target !== null) this.session.cancelStream(this);
  }

  /**
   * Arms the stream's read deadline. The session is the sweep's member, not the stream (a Set
   * insert and delete per exchange less): its onSweep checks its streams' deadlines.
   */
  arm(kind: HttpTimeoutKind, ms: number): void {
    this.readKind = kind;
    this.readDeadline = ms > 0 ? deadlines.deadline(this.session, ms) : NO_DEADLINE;
  }

  /** The session's sweep found this stream's deadline passed (`now`); true while one is armed. @internal */
  onSweep(now: number): boolean {
    if (this.closed) return false;
    if (this.readDeadline <= now) {
      if (this.readKind === 'response' && this.session.sendingRequestOf(this)) {
        // The response deadline counts from the request's last write (nginx's
        // proxy_read_timeout starts once the request is sent): while this stream's body is
        // still going out, not held back by a window, the session's write deadline (an
        // idle-progress one) is what cuts a server that stopped taking bytes.
        this.readDeadline = deadlines.deadline(this.session, this.responseMs);
        return true;
      }
      this.readDeadline = NO_DEADLINE;
      const kind = this.readKind;
      this.session.abortStream(
        this,
        new HttpTimeoutError(kind, kind === 'body' ? this.bodyMs : this.responseMs),
      );
      return false;
    }
    return this.readDeadline !== NO_DEADLINE;
  }
}

/**
 * A response body from the wire: DATA payloads (copied out of the receive chunk) queued until
 * read; each chunk handed to the reader is credited back to the server's windows. `return()`
 * before the end resets the stream with CANCEL.
 */
class H2ResponseBody implements HttpBody, ReadyBodyIterator {
  readonly kind: HttpBody['kind'];
  readonly length: number;
  trailers: HttpHeaders | null = null;
  readonly queue: Uint8Array[] = [];
  ended = false;
  error: unknown = null;
  iterated = false;
  resolve: (r: IteratorResult<Uint8Array>) => void = NO_SETTLER;
  reject: (e: unknown) => void = NO_SETTLER;

  constructor(
    readonly stream: ClientStream,
    length: number,
  ) {
    this.length = length;
    this.kind = length < 0 ? 'stream' : length === 0 ? 'empty' : 'fixed';
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.iterated = true;
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = this.nextNow();
    } catch (error) {
      return Promise.reject(error);
    }
    if (r !== null) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /**
   * The next step when it is at hand (see ReadyBodyIterator): a queued chunk (credited to the
   * windows as it is handed over), the failure (thrown) or the end; null while DATA is awaited.
   */
  nextNow(): IteratorResult<Uint8Array> | null {
    const chunk = this.queue.shift();
    if (chunk !== undefined) {
      this.stream.session.consumed(this.stream, chunk.length);
      if (this.queue.length === 0 && !this.ended) this.stream.arm('body', this.stream.bodyMs);
      return { done: false, value: chunk };
    }
    if (this.error !== null) throw this.error;
    if (this.ended) return BODY_DONE;
    return null;
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.ended && this.error === null) {
      this.error = new HttpAbortedError();
      this.stream.session.cancelStream(this.stream);
      // A read still pending (return() called beside it) ends with the abort.
      this.wake();
    } else if (this.queue.length > 0) {
      // The whole body arrived (or the stream failed) and the reader lets go of what it did not
      // read: those bytes go back to the connection window. Kept, they would shrink it for
      // good, and a shared upstream connection would stall once enough bodies were let go.
      let n = 0;
      for (const c of this.queue) n += c.length;
      this.queue.length = 0;
      this.stream.session.discarded(n);
    }
    return { done: true, value: undefined };
  }

  /** The session's news: a chunk, the end, or the failure; wakes a waiting reader. */
  wake(): void {
    const resolve = this.resolve;
    if (resolve === NO_SETTLER) return;
    const reject = this.reject;
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = this.nextNow();
    } catch (error) {
      this.resolve = NO_SETTLER;
      this.reject = NO_SETTLER;
      reject(error);
      return;
    }
    // Nothing at hand yet (an empty DATA frame): the reader keeps waiting.
    if (r === null) return;
    this.resolve = NO_SETTLER;
    this.reject = NO_SETTLER;
    resolve(r);
  }
}

/**
 * An HTTP/2 client connection over one stream; see the module comment. It is its frame
 * decoder's Http2FrameHandler; those methods are internal, so the published types do not name
 * that interface.
 */
export class H2ClientSession {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  readonly #stream: HttpStream;
  readonly #options: Http2ClientOptions;
  readonly #decoder: Http2FrameDecoder;
  readonly #encoder = new HpackEncoder();
  readonly #hpack: HpackDecoder;
  /** Collects and checks the fields of the server's header blocks (one, reused). */
  readonly #fields = new ResponseFieldSink();
  readonly #scheme: string;
  readonly #streams = new Map<number, ClientStream>();
  /** Exchanges waiting for a stream slot, in order. */
  readonly #waiting: ClientStream[] = [];
  readonly #connRecv: ReceiveWindow;
  readonly #streamWindow: number;
  #connSend = DEFAULT_INITIAL_WINDOW_SIZE;
  #peerInitialWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  #peerMaxFrame = DEFAULT_MAX_FRAME_SIZE;
  #headersEnd: HeadersFrameOptions = { endStream: true, maxFrameSize: DEFAULT_MAX_FRAME_SIZE };
  #headersOpen: HeadersFrameOptions = { endStream: false, maxFrameSize: DEFAULT_MAX_FRAME_SIZE };
  /**
   * One stream until the server's first SETTINGS arrives (its first frame, within the first
   * round trip): a server with a low limit (nginx's http2_max_concurrent_streams) would
   * otherwise refuse the streams a burst opened above it.
   */
  #peerMaxStreams = 1;
  #settingsSeen = false;
  #nextId = 1;
  #goawayLast = -1;
  #closing = false;
  #dead = false;
  #deadError: unknown = null;
  #chunk: StreamChunk | null = null;
  /** Frames queued for the next write. */
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #writing = false;
  /** A received chunk is being decoded: what its frames queue goes out in one write after it. */
  #inFeed = false;
  /** A flush is scheduled at the next microtask checkpoint (#flushSoon). */
  #flushQueued = false;
  readonly #flushTask = (): void => {
    this.#flushQueued = false;
    this.#flush();
  };
  /** Session writes started so far (#flush), and the last one that completed (onWritten). */
  #writesStarted = 0;
  #writesDone = 0;
  /** Streams whose END_STREAM is in a session write not completed yet (see ClientStream.endWrite). */
  #ending: ClientStream[] = [];
  #writeDeadline = NO_DEADLINE;
  /** The stream's write progress when the write deadline was armed (internal/write-progress.ts). */
  #sentMark = 0;
  readonly #writeMs: number;
  /** When the server must have acknowledged our SETTINGS by (RFC 9113 §6.5.3). */
  #settingsDeadline = NO_DEADLINE;
  readonly #settingsMs: number;
  #drainWaiters: (() => void)[] = [];
  #pings: ((rtt: number) => void)[] = [];
  #pingStarts: number[] = [];
  /** Body writers waiting for connection window. */
  #connWaiters: (() => void)[] = [];
  readonly #onChange: ((s: H2ClientSession) => void) | undefined;

  constructor(stream: HttpStream, options: Http2ClientOptions = {}) {
    this.#stream = stream;
    this.#options = options;
    this.#onChange = options.onChange;
    const h2 = options.http2 ?? {};
    this.#streamWindow = Math.min(h2.streamWindowSize ?? 1 << 20, MAX_WINDOW_SIZE);
    const connWindow = Math.min(h2.connectionWindowSize ?? 4 << 20, MAX_WINDOW_SIZE);
    // The WINDOW_UPDATE that raises it to connWindow goes out with the preface.
    this.#connRecv = new ReceiveWindow(connWindow);
    this.#hpack = new HpackDecoder({
      maxTableSize: h2.headerTableSize ?? 4096,
      maxHeaderListSize: h2.maxHeaderListSize ?? 65536,
    });
    this.#writeMs = options.writeTimeout ?? 60_000;
    this.#settingsMs = h2.settingsTimeout ?? 10_000;
    this.#scheme = options.scheme ?? (stream.facts?.secure ? 'https' : 'http');
    this.#decoder = new Http2FrameDecoder(this, { role: 'client' });
    try {
      stream.setNoDelay(true);
    } catch {
      // not every stream has TCP_NODELAY
    }
    const settings: Http2SettingsUpdate = {
      enablePush: false,
      initialWindowSize: this.#streamWindow,
      maxHeaderListSize: h2.maxHeaderListSize ?? 65536,
    };
    if (h2.headerTableSize !== undefined) settings.headerTableSize = h2.headerTableSize;
    this.#queue(CONNECTION_PREFACE);
    this.#queue(encodeSettings(settings));
    if (connWindow > DEFAULT_INITIAL_WINDOW_SIZE) {
      this.#queue(encodeWindowUpdate(0, connWindow - DEFAULT_INITIAL_WINDOW_SIZE));
    }
    this.#flush();
    if (this.#settingsMs > 0) this.#settingsDeadline = deadlines.deadline(this, this.#settingsMs);
    this.#read();
  }

  /** False once the connection ended (closed, failed, or the server left). */
  get alive(): boolean {
    return !this.#dead;
  }

  /** False once it opens no new streams: after a GOAWAY (either way), out of stream ids, dead. */
  get accepting(): boolean {
    return !this.#dead && !this.#closing && this.#goawayLast < 0 && this.#nextId < 0x7fffffff;
  }

  /**
   * The server's SETTINGS_MAX_CONCURRENT_STREAMS: 1 until its first SETTINGS arrived, then its
   * value (Infinity when it sets none).
   */
  get maxConcurrentStreams(): number {
    return this.#peerMaxStreams;
  }

  /** Streams open now (sent and not yet ended both ways), not counting exchanges waiting for a slot. */
  get activeStreams(): number {
    return this.#streams.size;
  }

  /** HttpClient's `reusable`, for callers that drive either: true while it takes new exchanges. */
  get reusable(): boolean {
    return this.accepting;
  }

  /**
   * Sends a request and resolves with the response at its head; its body streams (read it to
   * the end or `return()` it). Rejects as `exchange` reports.
   */
  send(request: HttpRequest, options: HttpSendOptions = NO_OPTIONS): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      this.exchange(request, options, { onResponse: resolve, onFailure: reject });
    });
  }

  /**
   * Starts an exchange on a new stream (or queues it until the server allows one more) and
   * reports its response head or failure to `target` exactly once: Http2RequestRefusedError
   * (never processed: REFUSED_STREAM, above a GOAWAY's last-stream-id, or the connection ended
   * before it was sent; retryable), Http2StreamResetError (the server reset it), HttpTimeoutError,
   * HttpAbortedError, HttpRequestBodyError, Http2SessionError, HttpConnectionError, or the
   * runtime's error. Throws (reporting nothing) HttpConnectionError `ERR_HTTP_CONNECTION_CLOSED`
   * when the session takes no new streams, HttpAbortedError when the signal already aborted.
   * Returns the exchange's cancel handle (cancelExchange: RST_STREAM(CANCEL) before the head).
   */
  exchange(request: HttpRequest, options: HttpSendOptions, target: HttpExchangeTarget): HttpExchangeCancel {
    if (!this.accepting)
      throw new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'HTTP/2 session takes no new streams');
    const signal = options.signal;
    if (signal?.aborted) throw new HttpAbortedError({ cause: signal.reason });
    const s = new ClientStream(
      this,
      request,
      options,
      this.#options,
      target,
      this.#peerInitialWindow,
      this.#streamWindow,
    );
    signal?.addEventListener('abort', s.onAbort, { once: true });
    if (this.#streams.size < this.#peerMaxStreams) this.#open(s);
    else this.#waiting.push(s);
    return s;
  }

  /** Sends a PING and resolves with the round trip in ms. */
  ping(): Promise<number> {
    if (this.#dead) return Promise.reject(this.#failure());
    const data = new Uint8Array(8);
    this.#queue(encodePing(data, false));
    this.#flush();
    this.#pingStarts.push(performance.now());
    return new Promise((resolve) => this.#pings.push(resolve));
  }

  /**
   * Graceful close: GOAWAY(NO_ERROR), no new streams; the connection closes once the streams in
   * flight ended. `close()` ends it at once (streams in flight fail).
   */
  drain(): void {
    if (this.#dead || this.#closing) return;
    this.#closing = true;
    this.#queue(encodeGoaway(0, Http2ErrorCode.NO_ERROR));
    this.#flush();
    this.#changed();
    this.#maybeFinish();
  }

  /** Closes the connection now: GOAWAY(NO_ERROR) if it can still be written; streams in flight fail. */
  async close(): Promise<void> {
    if (!this.#dead) {
      this.#closing = true;
      this.#queue(encodeGoaway(0, Http2ErrorCode.NO_ERROR));
      this.#flush();
      this.#die(new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'HTTP/2 session closed by the client'));
    }
  }

  // ---- streams ------------------------------------------------------------------------------

  #open(s: ClientStream): void {
    const id = this.#nextId;
    this.#nextId += 2;
    s.id = id;
    this.#streams.set(id, s);
    const req = s.request;
    let block: Uint8Array;
    try {
      block = this.#encodeHead(req);
    } catch (e) {
      this.#streams.delete(id);
      s.closed = true;
      this.#report(s, e);
      this.#next();
      return;
    }
    const body = req.body;
    const bodiless = body.kind === 'empty' && body.trailers === null;
    this.#queue(encodeHeaders(id, block, this.#headersOptions(bodiless)));
    s.arm('response', s.responseMs);
    if (bodiless) {
      s.localEnded = true;
      this.#endQueued(s);
      // The requests opened in the same turn (a downstream chunk's, a completion batch's) go
      // out in one write.
      this.#flushSoon();
    } else {
      this.#flush();
      void this.#writeBody(s, body);
    }
  }

  /** HEADERS frame options for the peer's frame size: two objects, made again when it changes. */
  #headersOptions(endStream: boolean): HeadersFrameOptions {
    if (this.#headersEnd.maxFrameSize !== this.#peerMaxFrame) {
      this.#headersEnd = { endStream: true, maxFrameSize: this.#peerMaxFrame };
      this.#headersOpen = { endStream: false, maxFrameSize: this.#peerMaxFrame };
    }
    return endStream ? this.#headersEnd : this.#headersOpen;
  }

  #encodeHead(req: HttpRequest): Uint8Array {
    const enc = this.#encoder;
    const h = req.headers;
    const authority = h.get('host') ?? this.#options.authority ?? '';
    enc.begin();
    enc.addField(':method', req.method);
    if (req.method === 'CONNECT') {
      enc.addField(':authority', req.target);
    } else {
      enc.addField(':scheme', this.#scheme);
      if (authority !== '') enc.addField(':authority', authority);
      let path = req.target;
      if (req.targetForm === 'absolute') {
        const u = new URL(path);
        path = u.pathname + u.search;
      } else if (req.targetForm === 'asterisk') {
        path = '*';
      }
      enc.addField(':path', path === '' ? '/' : path);
    }
    // HttpHeaders names are lowercase already; indexed, so no [name, value] pair per field.
    const n = h.size;
    for (let i = 0; i < n; i++) {
      const name = h.nameAt(i);
      const value = h.valueAt(i);
      if (NOT_FORWARDED.has(name)) continue;
      if (name === 'te') {
        if (/(^|,)\s*trailers\s*(;|,|$)/i.test(value)) enc.addField('te', 'trailers');
        continue;
      }
      if (name === 'cookie') {
        addCookieCrumbs(enc, value);
        continue;
      }
      enc.addField(name, value);
    }
    if (req.body.kind === 'fixed') enc.addField('content-length', String(req.body.length));
    return enc.finish();
  }

  /** Writes a request body as DATA frames within the windows, then trailers or END_STREAM. */
  async #writeBody(s: ClientStream, body: HttpBody): Promise<void> {
    const it = body[Symbol.asyncIterator]();
    let sent = 0;
    try {
      for (;;) {
        let r: IteratorResult<Uint8Array>;
        try {
          r = await it.next();
        } catch (e) {
          throw new HttpRequestBodyError(e);
        }
        if (s.closed) return;
        if (r.done) break;
        let chunk = r.value;
        sent += chunk.length;
        while (chunk.length > 0) {
          while (s.sendWindow <= 0 || this.#connSend <= 0) {
            await new Promise<void>((resolve) => {
              if (s.sendWindow <= 0) s.windowWaiter = resolve;
              else this.#connWaiters.push(resolve);
            });
            if (s.closed) return;
          }
          const n = Math.min(chunk.length, s.sendWindow, this.#connSend, this.#peerMaxFrame);
          s.sendWindow -= n;
          this.#connSend -= n;
          // The frame is a copy: the source may reuse its chunk once next() is called again.
          this.#queue(encodeData(s.id, chunk.subarray(0, n)));
          chunk = chunk.subarray(n);
          this.#flush();
          // The request moved: its response deadline runs again from now (see ClientStream.onSweep).
          if (s.readKind === 'response' && s.readDeadline !== NO_DEADLINE)
            s.readDeadline = deadlines.deadline(this, s.responseMs);
          if (this.#outBytes > OUTPUT_HIGH_WATER) {
            await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
            if (s.closed) return;
          }
        }
      }
      if (body.kind === 'fixed' && sent !== body.length) {
        throw new HttpRequestBodyError(
          new Error(`request body announced ${body.length} bytes, produced ${sent}`),
        );
      }
      if (s.closed) return;
      const trailers = body.trailers;
      if (trailers !== null && trailers.size > 0) {
        const enc = this.#encoder;
        enc.begin();
        for (const [name, value] of trailers) enc.addField(name.toLowerCase(), value);
        this.#queue(encodeHeaders(s.id, enc.finish(), this.#headersOptions(true)));
      } else {
        this.#queue(encodeData(s.id, new Uint8Array(0), { endStream: true }));
      }
      s.localEnded = true;
      this.#endQueued(s);
      this.#flush();
      this.#maybeClose(s);
    } catch (e) {
      try {
        await it.return?.();
      } catch {
        // the source's own failure changes nothing
      }
      this.abortStream(s, e);
    }
  }

  /** @internal Ends stream `s` from this side with RST_STREAM(CANCEL) and fails it with `error`. */
  abortStream(s: ClientStream, error: unknown): void {
    if (s.closed) return;
    if (s.id === 0) {
      const i = this.#waiting.indexOf(s);
      if (i >= 0) this.#waiting.splice(i, 1);
      s.closed = true;
      this.#report(s, error);
      return;
    }
    if (!this.#dead) {
      this.#queue(encodeRstStream(s.id, Http2ErrorCode.CANCEL));
      this.#flush();
    }
    this.#fail(s, error);
  }

  /** @internal The caller let go of the response body before its end. */
  cancelStream(s: ClientStream): void {
    this.abortStream(s, new HttpAbortedError());
  }

  /** @internal `n` response body bytes of `s` were handed to the reader: credit the windows. */
  consumed(s: ClientStream, n: number): void {
    if (this.#dead) return;
    const c = this.#connRecv.consume(n);
    if (c > 0) this.#queue(encodeWindowUpdate(0, c));
    if (!s.closed && !s.remoteEnded) {
      const i = s.recv.consume(n);
      if (i > 0) this.#queue(encodeWindowUpdate(s.id, i));
    }
    if (this.#out.length > 0) this.#flush();
  }

  /** @internal `n` response body bytes of a stream that ended were dropped unread: credit the connection. */
  discarded(n: number): void {
    if (this.#dead) return;
    const c = this.#connRecv.consume(n);
    if (c > 0) {
      this.#queue(encodeWindowUpdate(0, c));
      this.#flush();
    }
  }

  /** Reports a failure to the exchange's target, or to its body's reader. */
  #report(s: ClientStream, error: unknown): void {
    s.readDeadline = NO_DEADLINE;
    s.signal?.removeEventListener('abort', s.onAbort);
    const target = s.target;
    if (target !== null) {
      s.target = null;
      target.onFailure(error);
      return;
    }
    const body = s.body;
    if (body !== null && !body.ended && body.error === null) {
      body.error = error;
      body.wake();
    }
  }

  /** The stream ends in failure (no RST sent here). */
  #fail(s: ClientStream, error: unknown): void {
    if (s.closed) return;
    s.closed = true;
    s.error = error;
    s.windowWaiter?.();
    s.windowWaiter = null;
    // Bytes buffered and never read go back to the connection window.
    const body = s.body;
    if (body !== null && !this.#dead) {
      let n = 0;
      for (const c of body.queue) n += c.length;
      body.queue.length = 0;
      if (n > 0) this.discarded(n);
    }
    this.#streams.delete(s.id);
    this.#report(s, error);
    this.#next();
  }

  /** Both sides ended: the stream leaves the session. */
  #maybeClose(s: ClientStream): void {
    if (s.closed || !s.localEnded || !s.remoteEnded) return;
    s.closed = true;
    s.readDeadline = NO_DEADLINE;
    s.signal?.removeEventListener('abort', s.onAbort);
    this.#streams.delete(s.id);
    this.#next();
  }

  /** A slot freed: open a waiting exchange, tell the pool, or finish a drain. */
  #next(): void {
    while (this.#waiting.length > 0 && this.#streams.size < this.#peerMaxStreams && this.accepting) {
      this.#open(this.#waiting.shift()!);
    }
    this.#changed();
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#dead || this.#streams.size > 0) return;
    if (this.#closing || this.#goawayLast >= 0) {
      this.#die(new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'HTTP/2 session drained'));
    }
  }

  #changed(): void {
    this.#onChange?.(this);
  }

  // ---- output -------------------------------------------------------------------------------

  #queue(frame: Uint8Array): void {
    this.#out.push(frame);
    this.#outBytes += frame.length;
  }

  /** Flushes at the next microtask checkpoint (after a write in flight: its end flushes; in a feed: its end). */
  #flushSoon(): void {
    if (this.#writing || this.#inFeed || this.#flushQueued || this.#dead) return;
    this.#flushQueued = true;
    void SETTLED.then(this.#flushTask);
  }

  #flush(): void {
    if (this.#writing || this.#inFeed || this.#out.length === 0 || this.#dead) return;
    const frames = this.#out;
    this.#out = [];
    this.#outBytes = 0;
    this.#writing = true;
    this.#writesStarted++;
    this.#writeDeadline = this.#writeMs > 0 ? deadlines.deadline(this, this.#writeMs) : NO_DEADLINE;
    if (this.#writeMs > 0) this.#sentMark = writeProgressMark(this.#stream);
    this.#stream.writeTo(frames.length === 1 ? frames[0]! : frames, this);
  }

  /**
   * @internal Whether stream `s`'s request is still going out: its body not ended, a session
   * write out, and neither window holding it back (a stream blocked by a window the server does
   * not open is not moving).
   */
  sendingRequestOf(s: ClientStream): boolean {
    if (!this.#writing) return false;
    if (s.localEnded) return s.endWrite > this.#writesDone;
    return s.sendWindow > 0 && this.#connSend > 0;
  }

  /** Stream `s`'s END_STREAM was just queued: it goes out with the next session write. */
  #endQueued(s: ClientStream): void {
    s.endWrite = this.#writesStarted + 1;
    if (s.readKind === 'response' && s.readDeadline !== NO_DEADLINE) this.#ending.push(s);
  }

  /** @internal WriteTarget */
  onWritten(error: unknown): void {
    this.#writing = false;
    this.#writeDeadline = NO_DEADLINE;
    if (error !== undefined) {
      this.#die(error);
      return;
    }
    const done = ++this.#writesDone;
    if (this.#ending.length > 0) {
      // Requests whose last frame just went out: their response deadline runs from now.
      const ending = this.#ending;
      let keep = 0;
      for (let i = 0; i < ending.length; i++) {
        const e = ending[i]!;
        if (e.endWrite > done) ending[keep++] = e;
        else if (e.readKind === 'response' && e.readDeadline !== NO_DEADLINE)
          e.readDeadline = deadlines.deadline(this, e.responseMs);
      }
      ending.length = keep;
    }
    this.#flush();
    if (this.#outBytes <= OUTPUT_HIGH_WATER && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * @internal SweepMember: the write deadline (an idle-progress deadline, as nginx's
   * proxy_send_timeout: a write the server took bytes of since it was armed runs again from now;
   * internal/write-progress.ts), the SETTINGS acknowledgement's, and its streams' read
   * deadlines (ClientStream.arm: the streams are not members themselves).
   */
  onSweep(now: number): boolean {
    if (this.#writeDeadline <= now) {
      const moved = writeProgressSince(this.#stream, this.#sentMark);
      if (moved >= 0) {
        this.#sentMark = moved;
        this.#writeDeadline = deadlines.deadline(this, this.#writeMs);
      } else {
        this.#writeDeadline = NO_DEADLINE;
        this.#die(new HttpTimeoutError('write', this.#writeMs));
        return false;
      }
    }
    if (this.#settingsDeadline <= now) {
      this.#settingsDeadline = NO_DEADLINE;
      this.#connectionError(
        new Http2ConnectionError(
          'ERR_HTTP2_SETTINGS_TIMEOUT',
          Http2ErrorCode.SETTINGS_TIMEOUT,
          `SETTINGS not acknowledged within ${this.#settingsMs} ms`,
        ),
      );
      return false;
    }
    let armed = false;
    if (this.#streams.size > 0) {
      // The streams' read deadlines (ClientStream.arm): those that passed are handled after the
      // walk (expiring one changes the map).
      let expired: ClientStream[] | null = null;
      for (const s of this.#streams.values()) {
        const d = s.readDeadline;
        if (d === NO_DEADLINE) continue;
        if (d <= now) (expired ??= []).push(s);
        else armed = true;
      }
      if (expired !== null) for (const s of expired) if (s.onSweep(now)) armed = true;
    }
    return armed || this.#writeDeadline !== NO_DEADLINE || this.#settingsDeadline !== NO_DEADLINE;
  }

  // ---- input --------------------------------------------------------------------------------

  #read(): void {
    if (this.#chunk !== null) {
      this.#chunk.release();
      this.#chunk = null;
    }
    if (!this.#dead) this.#stream.recvTo(this);
  }

  /** @internal RecvTarget */
  onRecv(chunk: StreamChunk | null, error: unknown): void {
    if (this.#dead) {
      chunk?.release();
      return;
    }
    if (error !== undefined) {
      this.#die(error);
      return;
    }
    if (chunk === null) {
      this.#die(new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'HTTP/2 server closed the connection'));
      return;
    }
    this.#chunk = chunk;
    this.#inFeed = true;
    try {
      this.#decoder.feed(chunk.bytes);
    } catch (e) {
      this.#inFeed = false;
      this.#connectionError(e);
      return;
    }
    this.#inFeed = false;
    // What the chunk's frames queued (SETTINGS and PING ACKs, WINDOW_UPDATE, RST_STREAM, the
    // HEADERS of requests its answers let open) leaves in one write.
    this.#flush();
    this.#read();
  }

  #connectionError(e: unknown): void {
    if (this.#dead) return;
    const code = e instanceof Http2ConnectionError ? e.errorCode : Http2ErrorCode.INTERNAL_ERROR;
    this.#queue(encodeGoaway(this.#lastPeerStream(), code));
    // The GOAWAY goes out before the stream is closed when the write is immediate.
    this.#flush();
    this.#die(
      new Http2SessionError(code, 'client', e instanceof Error ? e.message : String(e), { cause: e }),
    );
  }

  #lastPeerStream(): number {
    return 0;
  }

  /** The error new operations fail with once dead. */
  #failure(): unknown {
    return this.#deadError ?? new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'HTTP/2 session closed');
  }

  /** The connection ends: every stream fails, waiting exchanges as never processed. */
  #die(error: unknown): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#deadError = error;
    this.#writeDeadline = NO_DEADLINE;
    this.#settingsDeadline = NO_DEADLINE;
    for (const s of this.#waiting.splice(0)) {
      s.closed = true;
      this.#report(s, new Http2RequestRefusedError(0, 'not-sent', Http2ErrorCode.NO_ERROR));
    }
    for (const s of [...this.#streams.values()]) {
      s.closed = true;
      s.windowWaiter?.();
      this.#streams.delete(s.id);
      this.#report(s, error);
    }
    for (const w of this.#connWaiters.splice(0)) w();
    for (const w of this.#drainWaiters.splice(0)) w();
    this.#pings = [];
    if (this.#chunk !== null) {
      this.#chunk.release();
      this.#chunk = null;
    }
    const stream = this.#stream;
    if (this.#out.length > 0 && !this.#writing) {
      // A last GOAWAY: written, then the stream closes.
      const frames = this.#out;
      this.#out = [];
      stream.writeTo(frames, { onWritten: () => void stream.close().catch(() => {}) });
    } else {
      void stream.close().catch(() => {});
    }
    this.#changed();
  }

  // ---- Http2FrameHandler ------------------------------------------------------------------

  /** @internal */
  onData(streamId: number, data: Uint8Array, endStream: boolean, flowLength: number): void {
    if (!this.#connRecv.receive(flowLength)) {
      throw new Http2ConnectionError(
        'ERR_HTTP2_FLOW_CONTROL',
        Http2ErrorCode.FLOW_CONTROL_ERROR,
        'server sent DATA beyond the connection window',
      );
    }
    const s = this.#streams.get(streamId);
    const body = s?.body ?? null;
    if (s === undefined || s.closed || body === null || s.remoteEnded) {
      // A stream we reset or that is done: the bytes still count on the connection.
      const c = this.#connRecv.consume(flowLength);
      if (c > 0) this.#queue(encodeWindowUpdate(0, c));
      if (s !== undefined && !s.closed)
        this.#streamError(s, Http2ErrorCode.STREAM_CLOSED, 'DATA before HEADERS');
      else if (streamId >= this.#nextId) {
        throw new Http2ConnectionError(
          'ERR_HTTP2_IDLE_STREAM',
          Http2ErrorCode.PROTOCOL_ERROR,
          'DATA on an idle stream',
        );
      }
      this.#flush();
      return;
    }
    if (!s.recv.receive(flowLength)) {
      this.#streamError(s, Http2ErrorCode.FLOW_CONTROL_ERROR, 'server sent DATA beyond the stream window');
      return;
    }
    const padding = flowLength - data.length;
    if (padding > 0) this.consumed(s, padding);
    if (data.length > 0) {
      body.queue.push(data.slice());
      s.readDeadline = NO_DEADLINE;
    }
    if (endStream) this.#endRemote(s, null);
    body.wake();
  }

  /** @internal */
  onHeaders(streamId: number, block: Uint8Array, endStream: boolean, _priority: Http2Priority | null): void {
    // Every block is decoded, even a reset stream's, to keep HPACK in step.
    const s = this.#streams.get(streamId);
    const sink = this.#fields;
    sink.begin(s !== undefined && s.response !== null ? 'trailers' : 'response', streamId);
    let listError: Http2StreamError | null = null;
    try {
      this.#hpack.decode(block, sink);
    } catch (e) {
      if (e instanceof Http2ConnectionError) throw e;
      listError = e as Http2StreamError;
    }
    if (s === undefined || s.closed) {
      if (streamId >= this.#nextId) {
        throw new Http2ConnectionError(
          'ERR_HTTP2_IDLE_STREAM',
          Http2ErrorCode.PROTOCOL_ERROR,
          'HEADERS on an idle stream',
        );
      }
      return;
    }
    if (listError !== null) {
      this.#streamError(s, Http2ErrorCode.PROTOCOL_ERROR, listError.message);
      return;
    }
    if (s.remoteEnded) {
      this.#streamError(s, Http2ErrorCode.STREAM_CLOSED, 'HEADERS after END_STREAM');
      return;
    }
    const isTrailers = s.response !== null;
    const err = sink.end();
    if (err !== null) {
      this.#streamError(s, Http2ErrorCode.PROTOCOL_ERROR, err.message);
      return;
    }
    const status = sink.status;
    const headers = sink.takeHeaders();
    if (isTrailers) {
      if (!endStream) {
        this.#streamError(s, Http2ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
        return;
      }
      this.#endRemote(s, headers);
      s.body?.wake();
      return;
    }
    if (!(status >= 100 && status <= 599) || status === 101) {
      this.#streamError(s, Http2ErrorCode.PROTOCOL_ERROR, `invalid :status ${status}`);
      return;
    }
    if (status < 200) {
      // An interim answer (100, 103): the final one follows.
      if (endStream) this.#streamError(s, Http2ErrorCode.PROTOCOL_ERROR, 'interim response with END_STREAM');
      return;
    }
    const cl = headers.get('content-length');
    let length = -1;
    if (cl !== undefined && /^\d+$/.test(cl)) length = Number(cl);
    const noBody = s.head || status === 204 || status === 304;
    const res: HttpResponse = {
      status,
      reason: '',
      version: '2',
      headers,
      body: EMPTY_BODY,
    };
    s.response = res;
    if (endStream || noBody) {
      // A body the server sends anyway on HEAD/204/304 is read and dropped through the stream.
      const body = new H2ResponseBody(s, 0);
      s.body = body;
      if (endStream) this.#endRemote(s, null);
      res.body = endStream ? EMPTY_BODY : body;
    } else {
      const body = new H2ResponseBody(s, length);
      s.body = body;
      res.body = body;
      s.arm('body', s.bodyMs);
    }
    const target = s.target;
    s.target = null;
    if (endStream) s.signal?.removeEventListener('abort', s.onAbort);
    target?.onResponse(res);
  }

  #endRemote(s: ClientStream, trailers: HttpHeaders | null): void {
    s.remoteEnded = true;
    s.readDeadline = NO_DEADLINE;
    const body = s.body;
    if (body !== null) {
      body.ended = true;
      body.trailers = trailers;
    }
    if (!s.localEnded) {
      // The server answered before the request body ended: it does not want the rest (RFC 9113 §8.1).
      this.#queue(encodeRstStream(s.id, Http2ErrorCode.NO_ERROR));
      this.#flush();
      s.localEnded = true;
      s.closed = true;
      s.windowWaiter?.();
      this.#streams.delete(s.id);
      s.signal?.removeEventListener('abort', s.onAbort);
      this.#next();
      return;
    }
    this.#maybeClose(s);
  }

  #streamError(s: ClientStream, code: number, message: string): void {
    this.#queue(encodeRstStream(s.id, code));
    this.#flush();
    this.#fail(s, new Http2StreamResetError(s.id, code, 'server'));
    void message;
  }

  /** @internal */
  onPriority(): void {
    // Deprecated signal; ignored (RFC 9113 §5.3.2).
  }

  /** @internal */
  onRstStream(streamId: number, errorCode: number): void {
    const s = this.#streams.get(streamId);
    if (s === undefined) {
      if (streamId >= this.#nextId) {
        throw new Http2ConnectionError(
          'ERR_HTTP2_IDLE_STREAM',
          Http2ErrorCode.PROTOCOL_ERROR,
          'RST_STREAM on an idle stream',
        );
      }
      return;
    }
    if (errorCode === Http2ErrorCode.NO_ERROR && s.remoteEnded) {
      // The response is complete; the server just does not want the rest of the request body.
      s.localEnded = true;
      this.#maybeClose(s);
      s.windowWaiter?.();
      return;
    }
    const error =
      errorCode === Http2ErrorCode.REFUSED_STREAM && s.response === null
        ? new Http2RequestRefusedError(streamId, 'refused-stream', errorCode)
        : new Http2StreamResetError(streamId, errorCode, 'peer');
    this.#fail(s, error);
  }

  /** @internal */
  onSettings(settings: Http2SettingsUpdate): void {
    if (settings.initialWindowSize !== undefined) {
      const delta = settings.initialWindowSize - this.#peerInitialWindow;
      this.#peerInitialWindow = settings.initialWindowSize;
      for (const s of this.#streams.values()) {
        s.sendWindow += delta;
        if (s.sendWindow > MAX_WINDOW_SIZE) {
          throw new Http2ConnectionError(
            'ERR_HTTP2_FLOW_CONTROL',
            Http2ErrorCode.FLOW_CONTROL_ERROR,
            'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window',
          );
        }
        if (s.sendWindow > 0 && s.windowWaiter !== null) {
          const w = s.windowWaiter;
          s.windowWaiter = null;
          w();
        }
      }
    }
    if (settings.maxFrameSize !== undefined) this.#peerMaxFrame = settings.maxFrameSize;
    if (settings.headerTableSize !== undefined) this.#encoder.setPeerMaxTableSize(settings.headerTableSize);
    if (settings.maxConcurrentStreams !== undefined) this.#peerMaxStreams = settings.maxConcurrentStreams;
    else if (!this.#settingsSeen) this.#peerMaxStreams = Number.POSITIVE_INFINITY;
    this.#settingsSeen = true;
    this.#queue(encodeSettingsAck());
    this.#flush();
    this.#next();
  }

  /** @internal */
  onSettingsAck(): void {
    // Our settings apply from the start (the server reads them before any stream of ours); the
    // sweep drops this session at its next tick when no write is in flight either.
    this.#settingsDeadline = NO_DEADLINE;
  }

  /** @internal */
  onPushPromise(): void {
    // Refused by the decoder: we send SETTINGS_ENABLE_PUSH 0.
  }

  /** @internal */
  onPing(data: Uint8Array, ack: boolean): void {
    if (!ack) {
      this.#queue(encodePing(data, true));
      this.#flush();
      return;
    }
    const resolve = this.#pings.shift();
    const start = this.#pingStarts.shift();
    if (resolve !== undefined && start !== undefined) resolve(performance.now() - start);
  }

  /** @internal */
  onGoaway(lastStreamId: number, errorCode: number, _debugData: Uint8Array): void {
    this.#goawayLast = this.#goawayLast < 0 ? lastStreamId : Math.min(this.#goawayLast, lastStreamId);
    for (const s of [...this.#streams.values()]) {
      if (s.id > this.#goawayLast) {
        this.#fail(s, new Http2RequestRefusedError(s.id, 'goaway', errorCode));
      } else if (errorCode !== Http2ErrorCode.NO_ERROR && !s.remoteEnded) {
        // An error GOAWAY: the server will not finish these; they may have been processed.
      }
    }
    for (const s of this.#waiting.splice(0)) {
      s.closed = true;
      this.#report(s, new Http2RequestRefusedError(0, 'goaway', errorCode));
    }
    this.#changed();
    this.#maybeFinish();
  }

  /** @internal */
  onWindowUpdate(streamId: number, increment: number): void {
    if (streamId === 0) {
      this.#connSend += increment;
      if (this.#connSend > MAX_WINDOW_SIZE) {
        throw new Http2ConnectionError(
          'ERR_HTTP2_FLOW_CONTROL',
          Http2ErrorCode.FLOW_CONTROL_ERROR,
          'connection window above 2^31-1',
        );
      }
      const waiters = this.#connWaiters;
      this.#connWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const s = this.#streams.get(streamId);
    if (s === undefined) return;
    s.sendWindow += increment;
    if (s.sendWindow > MAX_WINDOW_SIZE) {
      this.#streamError(s, Http2ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
      return;
    }
    const w = s.windowWaiter;
    if (w !== null && s.sendWindow > 0) {
      s.windowWaiter = null;
      w();
    }
  }

  /** @internal */
  onStreamError(error: Http2StreamError): void {
    const s = this.#streams.get(error.streamId);
    if (s === undefined) {
      this.#queue(encodeRstStream(error.streamId, error.errorCode));
      this.#flush();
      return;
    }
    this.#streamError(s, error.errorCode, error.message);
  }
}

/**
 * An HTTP/1.1 Cookie value as one `cookie` field per cookie-pair (RFC 9113 §8.2.3 allows the
 * split, and the server joins them back with "; "): HPACK then indexes each pair on its own, so
 * a request whose one changing cookie differs re-sends only that pair. Only SP and HTAB around a
 * pair are dropped (String.prototype.trim would also drop bytes such as 0xA0 that belong to it);
 * empty pieces go.
 */
function addCookieCrumbs(enc: HpackEncoder, value: string): void {
  let at = 0;
  const end = value.length;
  while (at <= end) {
    let stop = value.indexOf(';', at);
    if (stop === -1) stop = end;
    let from = at;
    let to = stop;
    while (from < to && isOws(value.charCodeAt(from))) from++;
    while (to > from && isOws(value.charCodeAt(to - 1))) to--;
    if (to > from) enc.addField('cookie', from === 0 && to === end ? value : value.slice(from, to));
    at = stop + 1;
  }
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
