/**
 * HttpClient: the HTTP/1.1 client connection over one runtime stream. Writes a request (head,
 * then a streamed body with Content-Length or chunked framing, waiting for 100 Continue when
 * asked), reads the response with ResponseDecoder (Content-Length, chunked with trailers,
 * close-delimited, HEAD/1xx/204/304 without a body), and says whether the connection can carry
 * another request: only when it is provably clean (nothing read past the response, the request
 * fully written before the answer, no unsolicited 101). One request at a time; the response
 * body must be read (or `discard()`ed) before the next request. A response that switched
 * protocols (a 101 answering a request that asked to upgrade, a 2xx to CONNECT) ends HTTP on
 * the connection: `takeOver()` (also `response.takeOver`) hands the raw stream and the bytes
 * read past the head to the caller. Not a connection pool, not a URL API: @loch/transports
 * builds those. The protocol-neutral contract (options, exchange target) is ../client.ts.
 *
 * I/O goes through the stream's promise-free recvTo/writeTo only, with the client as the target
 * of both: the response is decoded as recvTo delivers it, a bodiless request is one writeTo.
 * The promise forms are built on those in one place each: `send()` on `exchange()`, a response
 * body step in nextBody(), a request body write in write(). Deadlines are checked by the
 * package's one coarse sweep (../internal/deadlines.ts).
 */

import { NO_SETTLER, pendingPromise, takeReject, takeResolve } from '@loch/service-async';
import type { HttpBody } from '../body.js';
import type { HttpClientOptions, HttpExchangeTarget, HttpSendOptions } from '../client.js';
import {
  HttpAbortedError,
  HttpConnectionError,
  HttpError,
  HttpParseError,
  HttpRequestBodyError,
  HttpTimeoutError,
  type HttpTimeoutKind,
} from '../errors.js';
import { HeaderName, type HttpHeaders } from '../headers.js';
import { deadlines } from '../internal/deadlines.js';
import { writeProgressMark, writeProgressSince } from '../internal/write-progress.js';
import { giveBack, lendBytes, lentSlab, type WriteSlab } from '../internal/write-slab.js';
import type { HttpRequest, HttpResponse, HttpUpgradedConnection } from '../message.js';
import type { HttpStream, StreamChunk } from '../transport.js';
import { DecodeEvent, ResponseDecoder } from './decoder.js';
import { CHUNK_END, chunkHeader, encodeRequestHeadTo, lastChunk, requestFraming } from './encoder.js';
import { BODY_DONE, IncomingResponseBody, NOT_READY } from './response-body.js';

const EOF = -1;
/** Read on every exchange: resolved once. */
const UPGRADE = new HeaderName('upgrade');
const NO_OPTIONS: HttpSendOptions = {};

const NO_DEADLINE = Number.POSITIVE_INFINITY;

/** What the client is reading: nothing, the response head, or the response body. */
const PHASE_IDLE = 0;
const PHASE_HEAD = 1;
const PHASE_BODY = 2;

type BodyStep = IteratorResult<Uint8Array>;

/**
 * Who hears of the end of each response body of a client (setResponseBodyOwner): a pooled
 * connection that must learn when its connection is free again, and that reports body failures
 * in its own terms, without wrapping every response body in a body of its own (an object and,
 * for a step that waits, a promise reaction more per response).
 */
export interface ResponseBodyOwner {
  /**
   * The current response's body ended: read to its end (`failed` false: the client's `reusable`
   * says whether the connection can carry another request), or it failed, was cut short or was
   * abandoned (`failed` true). Called once per body, after the client settled its own state;
   * the owner may start the next exchange from here.
   */
  responseBodyEnded(failed: boolean): void;
  /** The error a failed step of the body rejects (or throws) with, given the client's own. */
  responseBodyError(error: unknown): unknown;
}

/** An HTTP/1.1 client connection over one stream. */
export class HttpClient {
  /** @internal The deadline sweep's field (SweepMember.sweepSlot): declared, arming keeps the shape. */
  sweepSlot = -1;
  private readonly stream: HttpStream;
  private readonly decoder: ResponseDecoder;
  private readonly options: HttpClientOptions;
  /** The encoder options of every request head (one object, not one per send). */
  private readonly headOptions: { authority?: string; upgrade?: boolean };
  private chunk: StreamChunk | null = null;
  /**
   * Set when a deadline, the send's signal or a failed request body ended the connection. The
   * stream is closed then, which settles its pending read and write: reads and writes carry no
   * AbortSignal, which spares a listener (and its allocations) per operation.
   */
  private killed = false;
  /** Deadlines (performance.now() ms) checked by the shared sweep; NO_DEADLINE when off. */
  private readDeadline = NO_DEADLINE;
  private readKind: HttpTimeoutKind = 'response';
  private writeDeadline = NO_DEADLINE;
  /** The stream's write progress when the write deadline was armed (internal/write-progress.ts). */
  private sentMark = 0;
  private expired: HttpTimeoutKind | null = null;
  private busy = false;
  private broken = false;
  private keepAlive = true;
  /** The request in progress carries an Upgrade field: only then may a 101 answer it. */
  private askedUpgrade = false;
  /**
   * The last response switched protocols (a solicited 101, a 2xx to CONNECT): no more HTTP on
   * this connection; the stream waits for takeOver() (until the response timeout, then closed).
   */
  private switched = false;
  /** takeOver() handed the stream away: this client never touches it again. */
  private taken = false;
  /**
   * The last bytes of the request were handed to the stream (a bodiless request: at once). A
   * final answer that comes before is an early answer (a 401 or 413 to an upload): the peer
   * may take the rest of the body for the next request, so the connection is not reused, as
   * nginx does (it keeps upstream connections only when the request body was sent).
   */
  private requestSent = true;
  /** A request body (and its head) being written by writeBody; never rejects. */
  private writing: Promise<void> | null = null;
  /** A bodiless request's head handed to the stream and not yet settled (onWritten). */
  private headWriting = false;
  /**
   * The write slab the request head in progress was encoded into (see lend()), until that piece
   * is given back: at the completion of the first write after it was lent (every request's first
   * write carries its head), or when the request ends without ever writing it. Null otherwise.
   */
  private lent: WriteSlab | null = null;
  /** The settlers of write()'s promise (a request body path write in flight), else NO_SETTLER. */
  private writeResolve: (value: undefined) => void = NO_SETTLER;
  private writeReject: (e: unknown) => void = NO_SETTLER;
  private writeError: unknown = null;
  private current: IncomingResponseBody | null = null;
  /** The current exchange's deadlines (ms). */
  private responseMs: number;
  private bodyMs: number;
  private writeMs: number;
  /** The current exchange's signal, and why it aborted. */
  private signal: AbortSignal | undefined = undefined;
  private abortReason: unknown = undefined;
  private received = 0;
  /** What a read's result is for (PHASE_*). */
  private phase = PHASE_IDLE;
  /** Who gets the response head (or the failure) of the exchange in progress. */
  private target: HttpExchangeTarget | null = null;
  /** A decoded final head held until the request head is written (a write failure fails the exchange). */
  private heldHead: HttpResponse | null = null;
  /** Releases a request body held back for 100 Continue (true: send it). */
  private gateRelease: ((send: boolean) => void) | null = null;
  /** The pending body read's promise settlers (one body read at a time). */
  private bodyResolve: (step: BodyStep | Promise<BodyStep>) => void = NO_SETTLER;
  private bodyReject: (e: unknown) => void = NO_SETTLER;
  /** Who hears of each body's end (setResponseBodyOwner), or null. */
  private bodyOwner: ResponseBodyOwner | null = null;
  private readonly onAbort = (): void => {
    const signal = this.signal;
    if (signal === undefined) return;
    this.abortReason = signal.reason;
    this.kill();
  };

  constructor(stream: HttpStream, options: HttpClientOptions = {}) {
    this.stream = stream;
    this.options = options;
    this.headOptions = options.authority !== undefined ? { authority: options.authority } : {};
    this.responseMs = options.responseTimeout ?? 60_000;
    this.bodyMs = options.bodyTimeout ?? 60_000;
    this.writeMs = options.writeTimeout ?? 60_000;
    this.decoder = new ResponseDecoder(options.limits);
    try {
      stream.setNoDelay(true);
    } catch {
      // not every stream has TCP_NODELAY
    }
  }

  /**
   * Makes `owner` hear of the end of every response body from now on, and map the errors their
   * failed steps report (see ResponseBodyOwner); null: nobody. For a connection pool: a
   * response's body is then the client's own, not wrapped.
   */
  setResponseBodyOwner(owner: ResponseBodyOwner | null): void {
    this.bodyOwner = owner;
  }

  /**
   * True when the last exchange finished cleanly (response body fully read, request fully
   * written, both sides keep-alive) so another request can be sent on this connection.
   */
  get reusable(): boolean {
    return (
      !this.busy &&
      !this.broken &&
      this.keepAlive &&
      this.writing === null &&
      !this.headWriting &&
      !this.stream.closed
    );
  }

  /**
   * Bytes of the response received during the current (or last) exchange: 0 after a failure
   * means no byte of a response arrived, so an idempotent request may be retried elsewhere.
   */
  get responseBytes(): number {
    return this.received;
  }

  /**
   * True once the last response switched protocols: a 101 answering a request that carried
   * Upgrade, or a 2xx to CONNECT (the response has no body; its `takeOver` is set). The
   * connection then carries no more HTTP: take it over with `takeOver()`.
   */
  get upgraded(): boolean {
    return this.switched;
  }

  /**
   * Hands the connection over after a response that switched protocols (`upgraded`): the raw
   * stream and the bytes the server sent behind the response head (the new protocol's first
   * bytes, possibly empty; a copy the caller owns). From then on the stream is the caller's to
   * read, write and close: this client arms no deadline on it and `close()` leaves it open. A
   * switched connection that is not taken over within the response timeout is closed (nobody
   * would ever read it). Throws HttpError `ERR_HTTP_NOT_UPGRADED` (a misuse) when the last
   * response did not switch protocols, HttpConnectionError `ERR_HTTP_CONNECTION_CLOSED` when it
   * was taken over already or closed meanwhile.
   */
  takeOver(): HttpUpgradedConnection {
    if (!this.switched)
      throw new HttpError('ERR_HTTP_NOT_UPGRADED', 500, 'the last response did not switch protocols');
    if (this.taken || this.killed || this.stream.closed)
      throw new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'the upgraded connection is gone');
    this.taken = true;
    this.broken = true;
    this.clearTimer();
    this.writeDeadline = NO_DEADLINE;
    // What followed the head in the same read belongs to the new protocol (copied: the pooled
    // chunk goes back now).
    const head = this.decoder.takeRemaining().slice();
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    return { stream: this.stream, head };
  }

  /**
   * Sends a request and resolves with the response once its head arrived; read its body (or call
   * `discard`) before the next send. Rejects with HttpConnectionError when the connection is busy
   * or unusable, HttpParseError for a malformed response, HttpTimeoutError, HttpAbortedError
   * (`options.signal`), HttpRequestBodyError (the request body's source failed), or the
   * runtime's error (a failed read or write). `options` override the client's timeouts for
   * this exchange.
   */
  send(request: HttpRequest, options: HttpSendOptions = NO_OPTIONS): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      this.exchange(request, options, { onResponse: resolve, onFailure: reject });
    });
  }

  /**
   * `send` without a promise: starts the exchange and reports its response head, or its failure
   * (the same errors as `send`), to `target` exactly once (see HttpExchangeTarget). Throws
   * (and reports nothing) when the exchange cannot start: HttpConnectionError (busy or not
   * reusable) or HttpAbortedError (`options.signal` already aborted). A bodiless request costs
   * no promise: the head is written with writeTo and the response head decoded as recvTo
   * delivers it.
   */
  exchange(request: HttpRequest, options: HttpSendOptions, target: HttpExchangeTarget): void {
    if (this.busy)
      throw new HttpConnectionError('ERR_HTTP_CONNECTION_BUSY', 'previous response not consumed');
    if (!this.reusable)
      throw new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'connection is not reusable');
    const defaults = this.options;
    this.responseMs = options.responseTimeout ?? defaults.responseTimeout ?? 60_000;
    this.bodyMs = options.bodyTimeout ?? defaults.bodyTimeout ?? 60_000;
    this.writeMs = options.writeTimeout ?? defaults.writeTimeout ?? 60_000;
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) throw new HttpAbortedError({ cause: signal.reason });
      this.signal = signal;
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.received = 0;
    this.busy = true;
    const body = request.body;
    const framing = requestFraming(body);
    const askedUpgrade = request.headers.has(UPGRADE);
    let head: Uint8Array;
    // An upgrade request says `connection: upgrade` (the encoder writes none of the request's
    // own Connection fields).
    this.headOptions.upgrade = askedUpgrade;
    try {
      head = encodeRequestHeadTo(
        this,
        request.method,
        request.target,
        request.headers,
        framing,
        body.length,
        this.headOptions,
      );
    } catch (e) {
      this.giveBackHead();
      this.busy = false;
      this.detachSignal();
      throw e;
    }
    this.decoder.expectResponseTo(request.method);
    this.askedUpgrade = askedUpgrade;
    this.target = target;
    this.phase = PHASE_HEAD;
    if (framing === 'none') {
      this.headWriting = true;
      this.armWrite();
      this.stream.writeTo(head, this);
    } else {
      const expectContinue = /^\s*100-continue\s*$/i.test(request.headers.get('expect') ?? '');
      let gate: Promise<boolean> | null = null;
      if (expectContinue) {
        gate = new Promise<boolean>((resolve) => {
          this.gateRelease = resolve;
          setTimeout(() => resolve(true), this.options.expectContinueTimeout ?? 1000).unref();
        });
      }
      this.requestSent = false;
      // writeBody awaits each write's completion, so when it settles no write is in flight: a head
      // still lent then was never handed to one (the body's source failed before its first
      // chunk, or a sized body produced nothing) and goes back.
      this.writing = this.writeBody(head, expectContinue, body, framing === 'chunked', gate).then(
        () => {
          this.giveBackHead();
          this.writing = null;
        },
        (e: unknown) => {
          this.giveBackHead();
          // The request cannot be completed: fail the exchange now rather than wait for a
          // response the peer will not send to half a request.
          // (A write cancelled because something else ended the connection is not the cause.)
          if (!this.killed) this.writeError ??= e;
          this.broken = true;
          this.writing = null;
          this.kill();
        },
      );
    }
    // The response head is read while the request goes out (reads and writes are independent).
    this.readHead();
  }

  /**
   * @internal WriteTarget: a request body path write (write()'s promise settles), else the
   * bodiless request's head, was written (or failed).
   */
  onWritten(error: unknown): void {
    // The request's first write carried its head: the kernel is done reading it (sent, or the
    // write failed or was cut: a close settles a write only once the stream let go of it).
    if (this.lent !== null) this.giveBackHead();
    this.writeDeadline = NO_DEADLINE;
    // The response deadline runs again from the request's last write (see onSweep).
    if (error === undefined && this.readKind === 'response' && this.readDeadline !== NO_DEADLINE)
      this.readDeadline = deadlines.deadline(this, this.responseMs);
    const resolve = this.writeResolve;
    if (resolve !== NO_SETTLER) {
      const reject = this.writeReject;
      this.writeResolve = NO_SETTLER;
      this.writeReject = NO_SETTLER;
      if (error === undefined) resolve(undefined);
      else reject(this.expired === 'write' ? new HttpTimeoutError('write', this.writeMs) : error);
      return;
    }
    this.headWriting = false;
    const held = this.heldHead;
    this.heldHead = null;
    if (error !== undefined) {
      const e = this.expired === 'write' ? new HttpTimeoutError('write', this.writeMs) : error;
      if (!this.killed) this.writeError ??= e;
      this.broken = true;
      // Closing the stream fails the pending head read, which then reports writeError.
      this.kill();
      if (held !== null) this.failHead(this.readFailure(e));
      return;
    }
    if (held !== null) this.headDone(held);
  }

  /** The error an exchange fails with: an abort or a failed request body explains the rest. */
  private failure(e: unknown): unknown {
    if (this.abortReason !== undefined) return new HttpAbortedError({ cause: this.abortReason });
    return this.writeError ?? e;
  }

  /** A read's failure: the deadline that closed the stream, if one did. */
  private readFailure(e: unknown): unknown {
    return this.expired !== null ? new HttpTimeoutError(this.expired, this.timeoutOf(this.expired)) : e;
  }

  private detachSignal(): void {
    if (this.signal !== undefined) {
      this.signal.removeEventListener('abort', this.onAbort);
      this.signal = undefined;
    }
  }

  /** Reads and drops the rest of the current response body. */
  async discard(): Promise<void> {
    const body = this.current;
    if (body === null) return;
    for (let r = await body.next(); !r.done; r = await body.next()) {
      // dropping the bytes
    }
  }

  /** Closes the connection (not a stream handed away by takeOver()). */
  async close(): Promise<void> {
    this.broken = true;
    this.clearTimer();
    if (this.taken) return;
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    await this.stream.close();
  }

  /** Decodes what is buffered toward the response head; asks for a read when it needs more. */
  private readHead(): void {
    const d = this.decoder;
    try {
      for (;;) {
        const ev = d.poll();
        if (ev === DecodeEvent.NeedMore) {
          this.requestRead('response');
          return;
        }
        if (ev !== DecodeEvent.Head) continue;
        const res = d.message!;
        // The response lives with the caller: an idle pooled connection keeps no last head (and
        // no HeadSlab it sits in).
        d.message = null;
        if (res.status === 101 && !this.askedUpgrade) {
          // A protocol switch nobody asked for: what follows is not HTTP/1.1 to this client.
          throw new HttpParseError(
            'ERR_HTTP_UNSOLICITED_UPGRADE',
            '101 Switching Protocols without an Upgrade request',
          );
        }
        if (res.status >= 100 && res.status < 200 && res.status !== 101) {
          if (res.status === 100) this.gateRelease?.(true);
          // The End of the interim response.
          d.poll();
          continue;
        }
        // A final response while the body is still held back means the server declined it.
        const gate = this.gateRelease;
        if (gate !== null) {
          this.gateRelease = null;
          gate(false);
        }
        this.keepAlive = d.keepAlive && !d.upgrade && this.requestSent;
        if (d.upgrade) {
          // HTTP ends here: the connection waits for takeOver() (the response says so).
          this.switched = true;
          res.takeOver = () => this.takeOver();
        }
        if (d.framing === 'none') {
          d.poll();
          // No body to read: the exchange ends once the request is written too.
          const writing = this.writing;
          if (writing !== null) writing.then(() => this.headDone(res));
          else this.headDone(res);
          return;
        }
        const body = new IncomingResponseBody(
          this,
          d.framing === 'length' ? d.contentLength : -1,
          d.framing === 'eof',
        );
        this.current = body;
        res.body = body;
        this.headDone(res);
        return;
      }
    } catch (e) {
      this.failHead(e);
    }
  }

  /** Hands the final head to the target, once the request head was written. */
  private headDone(res: HttpResponse): void {
    const target = this.target;
    if (target === null) return;
    if (this.headWriting) {
      this.heldHead = res;
      return;
    }
    this.target = null;
    if (this.current === null) {
      this.finishResponse();
      // A switched connection nobody takes over is closed after the response timeout.
      if (this.switched) this.arm('response', this.responseMs);
    } else {
      this.phase = PHASE_BODY;
    }
    target.onResponse(res);
  }

  private failHead(e: unknown): void {
    const target = this.target;
    if (target === null) return;
    this.target = null;
    this.heldHead = null;
    this.phase = PHASE_IDLE;
    this.broken = true;
    this.busy = false;
    this.clearTimer();
    this.detachSignal();
    target.onFailure(this.failure(e));
  }

  /** Releases the consumed chunk and asks the stream for the next one (recvTo: onRecv gets it). */
  private requestRead(kind: 'response' | 'body'): void {
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    this.arm(kind, kind === 'response' ? this.responseMs : this.bodyMs);
    this.stream.recvTo(this);
  }

  /** @internal RecvTarget: the next chunk, end of stream (null) or the read's failure. */
  onRecv(chunk: StreamChunk | null, error: unknown): void {
    this.clearTimer();
    const phase = this.phase;
    if (phase === PHASE_IDLE) {
      chunk?.release();
      // The body was abandoned (return()) while this read was pending: that read just ends.
      const resolve = this.bodyResolve;
      this.bodyResolve = NO_SETTLER;
      this.bodyReject = NO_SETTLER;
      resolve(BODY_DONE);
      return;
    }
    if (error !== undefined) {
      this.broken = true;
      this.readFailed(this.readFailure(error));
      return;
    }
    let ev: number;
    if (chunk === null) {
      // A stream may end rather than fail when it was closed to end the exchange.
      if (this.killed) {
        this.readFailed(
          this.expired !== null
            ? this.readFailure(null)
            : new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'connection closed by the client'),
        );
        return;
      }
      this.keepAlive = false;
      try {
        ev = this.decoder.finish() === DecodeEvent.End ? DecodeEvent.End : EOF;
      } catch (e) {
        this.readFailed(e);
        return;
      }
    } else {
      this.chunk = chunk;
      this.received += chunk.bytes.length;
      this.decoder.feed(chunk.bytes);
      if (phase === PHASE_HEAD) {
        this.readHead();
        return;
      }
      try {
        ev = this.decoder.poll();
      } catch (e) {
        this.readFailed(e);
        return;
      }
      if (ev === DecodeEvent.NeedMore) {
        this.requestRead('body');
        return;
      }
    }
    if (phase === PHASE_HEAD) {
      this.failHead(
        new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'connection closed before a response'),
      );
      return;
    }
    const resolve = this.bodyResolve;
    const reject = this.bodyReject;
    this.bodyResolve = NO_SETTLER;
    this.bodyReject = NO_SETTLER;
    const body = this.current;
    if (body === null) {
      resolve(BODY_DONE);
      return;
    }
    try {
      resolve(body.step(ev));
    } catch (e) {
      reject(this.bodyError(e));
    }
  }

  private readFailed(e: unknown): void {
    if (this.phase === PHASE_HEAD) {
      this.failHead(e);
      return;
    }
    const reject = this.bodyReject;
    this.bodyResolve = NO_SETTLER;
    this.bodyReject = NO_SETTLER;
    const body = this.current;
    reject(body === null ? this.failure(e) : body.failed(e));
  }

  /**
   * @internal the next step of the response body `body`: one promise, settled from the read
   * that completes it (no async layers between the stream and the caller).
   */
  nextBody(body: IncomingResponseBody): Promise<BodyStep> {
    let ev: number;
    try {
      ev = this.decoder.poll();
      if (ev !== DecodeEvent.NeedMore) return Promise.resolve(body.step(ev));
    } catch (e) {
      return Promise.reject(body.failed(e));
    }
    const p = pendingPromise<BodyStep>();
    this.bodyResolve = takeResolve();
    this.bodyReject = takeReject();
    this.requestRead('body');
    return p;
  }

  /** @internal whether a request body is still being written */
  get writingBody(): boolean {
    return this.writing !== null;
  }

  /**
   * @internal the next body event if it needs no waiting, else NOT_READY (nothing consumed).
   * The end needs the request body written first, so nothing is taken while it is being written.
   */
  pollBodyNow(): number {
    if (this.writing !== null) return NOT_READY;
    const ev = this.decoder.poll();
    return ev === DecodeEvent.NeedMore ? NOT_READY : ev;
  }

  /**
   * @internal the stream ended without the authenticated end of data its transport has (TLS
   * close_notify); false for transports without one (TCP) and for a clean TLS end.
   */
  get endUnauthenticated(): boolean {
    return this.stream.facts.closeNotified === false;
  }

  /** @internal */
  get bodyData(): Uint8Array {
    return this.decoder.data;
  }

  /** @internal */
  get bodyTrailers(): HttpHeaders | null {
    return this.decoder.trailers;
  }

  /** @internal waits for a request body still being written (its failure marks the connection broken) */
  async settleWrite(): Promise<void> {
    if (this.writing !== null) await this.writing;
  }

  /**
   * @internal the response ended (or failed). This is where reuse is decided: a connection
   * that read anything past the end of its response (a second response in the same read, a body
   * longer than its Content-Length, bytes after a 204/304/HEAD answer or after the last chunk,
   * even a stray CRLF) is out of step with its peer and never carries another request: those
   * bytes would be taken for the next request's answer (nginx closes it too).
   */
  finishResponse(failed = false): void {
    const body = this.current;
    this.busy = false;
    this.current = null;
    this.phase = PHASE_IDLE;
    this.clearTimer();
    this.detachSignal();
    if (failed || this.decoder.hasInput) this.broken = true;
    else if (!this.switched) this.releaseChunk();
    // Last: the owner may start the next exchange from here.
    if (body !== null && this.bodyOwner !== null) this.bodyOwner.responseBodyEnded(failed);
  }

  /**
   * A complete response gives its last chunk back at once: an idle pooled connection would
   * otherwise pin one provided receive buffer (64 KiB on io_uring) until its next request, and
   * more idle connections than the pool has buffers starve every receive of the thread (issue
   * 16). Nothing still reads the chunk then: the head and trailers were copied into a HeadSlab
   * by the decoder, and the last data view was valid only until this step (the body contract;
   * HTTP/1.1 and HTTP/2 response writers take the end only once a write lending that view is
   * done: h2c on io_uring lends DATA payloads as views too, TLS and legacy copy them). Not after a protocol switch (`takeOver()` copies the
   * bytes behind the head from it) nor after a failure (a write may still lend a view; the
   * connection is closed, which releases it).
   */
  private releaseChunk(): void {
    const chunk = this.chunk;
    if (chunk !== null) {
      this.chunk = null;
      chunk.release();
    }
  }

  /** @internal the error a failed body read reports */
  bodyFailure(e: unknown): unknown {
    return this.bodyError(this.failure(e));
  }

  /** @internal `e`, a failed body step's error, as the body's reader gets it (the owner's terms). */
  bodyError(e: unknown): unknown {
    return this.bodyOwner === null ? e : this.bodyOwner.responseBodyError(e);
  }

  /** Ends the connection from within (deadline, abort, failed request body): closing settles pending I/O. */
  private kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.broken = true;
    void this.stream.close().catch(() => {});
  }

  private timeoutOf(kind: HttpTimeoutKind): number {
    return kind === 'write' ? this.writeMs : kind === 'body' ? this.bodyMs : this.responseMs;
  }

  private arm(kind: HttpTimeoutKind, ms: number): void {
    if (ms <= 0) {
      this.readDeadline = NO_DEADLINE;
      return;
    }
    this.readKind = kind;
    this.readDeadline = deadlines.deadline(this, ms);
  }

  private clearTimer(): void {
    this.readDeadline = NO_DEADLINE;
  }

  /** The deadline sweep's call (SweepMember): expires what is due; whether a deadline is still armed. @internal */
  onSweep(now: number): boolean {
    if (this.taken) {
      this.readDeadline = NO_DEADLINE;
      this.writeDeadline = NO_DEADLINE;
      return false;
    }
    if (this.readDeadline <= now) {
      if (this.readKind === 'response' && this.writeDeadline !== NO_DEADLINE) {
        // The response deadline counts from the request's last write (nginx's proxy_read_timeout
        // starts once the request is sent): while a request write is out, its write deadline
        // (an idle-progress one) is what cuts a peer that stopped taking bytes.
        this.readDeadline = deadlines.deadline(this, this.responseMs);
      } else {
        this.readDeadline = NO_DEADLINE;
        this.expired ??= this.readKind;
        this.kill();
      }
    }
    if (this.writeDeadline <= now) {
      // An idle-progress deadline (internal/write-progress.ts): a write the peer took bytes of
      // since it was armed runs again from now; one that moved none for a whole timeout is cut.
      const moved = writeProgressSince(this.stream, this.sentMark);
      if (moved >= 0) {
        this.sentMark = moved;
        this.writeDeadline = deadlines.deadline(this, this.writeMs);
      } else {
        this.writeDeadline = NO_DEADLINE;
        this.expired ??= 'write';
        this.kill();
      }
    }
    return this.readDeadline !== NO_DEADLINE || this.writeDeadline !== NO_DEADLINE;
  }

  /**
   * One write of the request body path under the write deadline, waited for: the promise form
   * of writeTo (onWritten settles it; a write that timed out fails as HttpTimeoutError). One at
   * a time, never beside the bodiless head's writeTo.
   */
  private write(data: Uint8Array | Uint8Array[]): Promise<void> {
    this.armWrite();
    const p = pendingPromise<void>();
    this.writeResolve = takeResolve<undefined>();
    this.writeReject = takeReject();
    this.stream.writeTo(data, this);
    return p;
  }

  /**
   * The write deadline of one write, separate from the read deadline (both can run at once): an
   * idle-progress deadline, as nginx's proxy_send_timeout ("between two successive write
   * operations"): it runs again while the peer takes bytes (onSweep).
   */
  private armWrite(): void {
    const ms = this.writeMs;
    this.writeDeadline = ms > 0 ? deadlines.deadline(this, ms) : NO_DEADLINE;
    if (ms > 0) this.sentMark = writeProgressMark(this.stream);
  }

  /**
   * HeadLender: `n` bytes for the request head, a piece of the thread's write slab
   * (internal/write-slab.ts), lent to the first write of the request and given back at that
   * write's completion (onWritten), the same rule as the server's answers. Only called by
   * exchange(), when no write of this connection is in flight. @internal
   */
  lend(n: number): Uint8Array {
    // A piece still held (never expected: each request gives its head back) keeps its slab
    // from reuse: this head then gets memory of its own rather than losing that count.
    if (this.lent !== null) return Buffer.allocUnsafe(n);
    const out = lendBytes(n);
    this.lent = lentSlab();
    return out;
  }

  /** Gives the lent head back (no write holds it: written, or never handed to one). */
  private giveBackHead(): void {
    const slab = this.lent;
    if (slab !== null) {
      this.lent = null;
      giveBack(slab, 1);
    }
  }

  /**
   * Writes the head and the body; with `headFirst` (100-continue) the head goes alone and the
   * body waits for `gate`.
   */
  private async writeBody(
    head: Uint8Array,
    headFirst: boolean,
    body: HttpBody,
    chunked: boolean,
    gate: Promise<boolean> | null,
  ): Promise<void> {
    if (headFirst) await this.write(head);
    if (gate !== null && !(await gate)) {
      // Declined before the body went out: the connection cannot carry another request.
      this.keepAlive = false;
      await body[Symbol.asyncIterator]().return?.();
      return;
    }
    let pending: Uint8Array | null = headFirst ? null : head;
    let sent = 0;
    const it = body[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (e) {
        // The body's source failed (a proxied client went away mid-upload).
        throw new HttpRequestBodyError(e);
      }
      if (r.done) break;
      const chunk = r.value;
      if (chunk.length === 0) continue;
      sent += chunk.length;
      // A sized body's last bytes go out in this write (a chunked one ends with lastChunk).
      if (!chunked && sent >= body.length) this.requestSent = true;
      try {
        if (chunked) {
          const parts = [chunkHeader(chunk.length), chunk, CHUNK_END];
          if (pending !== null) parts.unshift(pending);
          await this.write(parts);
        } else if (pending !== null) {
          await this.write([pending, chunk]);
        } else {
          await this.write(chunk);
        }
      } catch (e) {
        // The rest of the body will not be sent: let its source go.
        try {
          await it.return?.();
        } catch {
          // its own failure changes nothing
        }
        throw e;
      }
      pending = null;
    }
    if (!chunked && sent !== body.length) {
      throw new HttpParseError(
        'ERR_HTTP_INCOMPLETE_MESSAGE',
        `request body announced ${body.length} bytes, produced ${sent}`,
      );
    }
    const end = chunked ? lastChunk(body.trailers) : null;
    this.requestSent = true;
    if (pending !== null && end !== null) await this.write([pending, end]);
    else if (pending !== null) await this.write(pending);
    else if (end !== null) await this.write(end);
  }
}
