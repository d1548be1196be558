/**
 * HttpClient: the HTTP/1.1 client codec over one runtime stream. Writes a request (head, then a
 * streamed body with Content-Length or chunked framing, waiting for 100 Continue when asked),
 * reads the response with ResponseDecoder (Content-Length, chunked with trailers,
 * close-delimited, HEAD/1xx/204/304 without a body), and says whether the connection can carry
 * another request. One request at a time; the response body must be read (or `discard()`ed)
 * before the next request. Not a connection pool, not a URL API: @loch/transports builds those.
 */
import type { HttpBody } from './body.js';
import { HttpConnectionError, HttpParseError, HttpTimeoutError, type HttpTimeoutKind } from './errors.js';
import { DecodeEvent, type H1Limits, ResponseDecoder } from './h1/decoder.js';
import { CHUNK_END, chunkHeader, encodeRequestHead, lastChunk, requestFraming } from './h1/encoder.js';
import type { HttpHeaders } from './headers.js';
import type { HttpRequest, HttpResponse } from './message.js';
import type { HttpStream, StreamChunk } from './transport.js';

/** HttpClient options. Timeouts are in milliseconds; 0 disables one. */
export interface HttpClientOptions {
  /** Response head limits. */
  readonly limits?: Partial<H1Limits>;
  /** Host header to add when a request has none. */
  readonly authority?: string;
  /** From the end of the request head to the response head (default 60 s). */
  readonly responseTimeout?: number;
  /** Between two reads of a response body (default 60 s). */
  readonly bodyTimeout?: number;
  /** For each write to make progress (default 60 s). */
  readonly writeTimeout?: number;
  /** How long to wait for 100 Continue before sending the body anyway (default 1 s). */
  readonly expectContinueTimeout?: number;
}

const EOF = -1;

/** An HTTP/1.1 client connection over one stream. */
export class HttpClient {
  private readonly stream: HttpStream;
  private readonly decoder: ResponseDecoder;
  private readonly options: HttpClientOptions;
  private chunk: StreamChunk | null = null;
  private ctrl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private expired: HttpTimeoutKind | null = null;
  private busy = false;
  private broken = false;
  private keepAlive = true;
  private writing: Promise<void> | null = null;
  private writeError: unknown = null;
  private current: IncomingResponseBody | null = null;

  constructor(stream: HttpStream, options: HttpClientOptions = {}) {
    this.stream = stream;
    this.options = options;
    this.decoder = new ResponseDecoder(options.limits);
    try {
      stream.setNoDelay(true);
    } catch {
      // not every stream has TCP_NODELAY
    }
  }

  /**
   * True when the last exchange finished cleanly (response body fully read, request fully
   * written, both sides keep-alive) so another request can be sent on this connection.
   */
  get reusable(): boolean {
    return !this.busy && !this.broken && this.keepAlive && this.writing === null && !this.stream.closed;
  }

  /**
   * Sends a request and resolves with the response once its head arrived; read its body (or call
   * `discard`) before the next send. Rejects with HttpConnectionError when the connection is busy
   * or unusable, HttpParseError for a malformed response, HttpTimeoutError, or the runtime's error.
   */
  async send(request: HttpRequest): Promise<HttpResponse> {
    if (this.busy)
      throw new HttpConnectionError('ERR_HTTP_CONNECTION_BUSY', 'previous response not consumed');
    if (!this.reusable)
      throw new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'connection is not reusable');
    this.busy = true;
    const body = request.body;
    const framing = requestFraming(body);
    const head = encodeRequestHead(request.method, request.target, request.headers, framing, body.length, {
      ...(this.options.authority !== undefined ? { authority: this.options.authority } : {}),
    });
    this.decoder.expectResponseTo(request.method);
    const expectContinue =
      framing !== 'none' && /^\s*100-continue\s*$/i.test(request.headers.get('expect') ?? '');
    try {
      if (framing === 'none' || expectContinue) {
        await this.write(Buffer.from(head, 'latin1'));
      }
      if (framing !== 'none') {
        let release: (send: boolean) => void = () => {};
        const gate = expectContinue
          ? new Promise<boolean>((resolve) => {
              release = resolve;
              setTimeout(() => resolve(true), this.options.expectContinueTimeout ?? 1000).unref();
            })
          : null;
        this.writing = this.writeBody(expectContinue ? null : head, body, framing === 'chunked', gate).then(
          () => {
            this.writing = null;
          },
          (e: unknown) => {
            this.writeError = e;
            this.broken = true;
            this.writing = null;
          },
        );
        return await this.readHead(
          () => release(true),
          () => release(false),
        );
      }
      return await this.readHead(
        () => {},
        () => {},
      );
    } catch (e) {
      this.broken = true;
      this.busy = false;
      throw this.writeError ?? e;
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

  /** Closes the connection. */
  async close(): Promise<void> {
    this.broken = true;
    this.clearTimer();
    if (this.chunk !== null) {
      this.chunk.release();
      this.chunk = null;
    }
    await this.stream.close();
  }

  private async readHead(onContinue: () => void, onFinal: () => void): Promise<HttpResponse> {
    const d = this.decoder;
    for (;;) {
      let ev: number = d.poll();
      if (ev === DecodeEvent.NeedMore) ev = await this.fill('response');
      if (ev === EOF)
        throw new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'connection closed before a response');
      if (ev !== DecodeEvent.Head) continue;
      const res = d.message!;
      if (res.status >= 100 && res.status < 200 && res.status !== 101) {
        if (res.status === 100) onContinue();
        // The End of the interim response.
        d.poll();
        continue;
      }
      // A final response while the body is still held back means the server declined it.
      onFinal();
      this.keepAlive = d.keepAlive && !d.upgrade;
      if (d.framing === 'none') {
        d.poll();
        await this.settleWrite();
        this.finishResponse();
        return res;
      }
      const body = new IncomingResponseBody(this, d.framing === 'length' ? d.contentLength : -1);
      this.current = body;
      res.body = body;
      return res;
    }
  }

  /** @internal next body event for the response body */
  nextBodyEvent(): Promise<number> {
    const ev = this.decoder.poll();
    if (ev === DecodeEvent.NeedMore) return this.fill('body');
    return Promise.resolve(ev);
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

  /** @internal the response body ended (or failed) */
  finishResponse(failed = false): void {
    this.busy = false;
    this.current = null;
    this.clearTimer();
    if (failed) this.broken = true;
  }

  private async fill(kind: 'response' | 'body'): Promise<number> {
    const d = this.decoder;
    for (;;) {
      if (this.chunk !== null) {
        this.chunk.release();
        this.chunk = null;
      }
      this.arm(
        kind,
        kind === 'response' ? (this.options.responseTimeout ?? 60_000) : (this.options.bodyTimeout ?? 60_000),
      );
      let c: StreamChunk | null;
      try {
        c = await this.stream.recv({ signal: this.ctrl.signal });
      } catch (e) {
        this.broken = true;
        if (this.expired !== null) throw new HttpTimeoutError(this.expired, 0);
        throw e;
      } finally {
        this.clearTimer();
      }
      if (c === null) {
        this.keepAlive = false;
        const ev = d.finish();
        return ev === DecodeEvent.End ? ev : EOF;
      }
      this.chunk = c;
      d.feed(c.bytes);
      const ev = d.poll();
      if (ev !== DecodeEvent.NeedMore) return ev;
    }
  }

  private arm(kind: HttpTimeoutKind, ms: number): void {
    this.clearTimer();
    if (ms <= 0) return;
    this.timer = setTimeout(() => {
      this.expired = kind;
      this.ctrl.abort(new HttpTimeoutError(kind, ms));
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private async write(buf: Uint8Array): Promise<void> {
    const timer = this.armWrite();
    try {
      await this.stream.writeAll(buf, { signal: this.ctrl.signal });
    } catch (e) {
      if (this.expired === 'write') throw new HttpTimeoutError('write', this.options.writeTimeout ?? 60_000);
      throw e;
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  /** A deadline for one write, separate from the read deadline (both can run at once). */
  private armWrite(): ReturnType<typeof setTimeout> | null {
    const ms = this.options.writeTimeout ?? 60_000;
    if (ms <= 0) return null;
    return setTimeout(() => {
      this.expired = 'write';
      this.ctrl.abort(new HttpTimeoutError('write', ms));
    }, ms);
  }

  private async writev(bufs: Uint8Array[]): Promise<void> {
    const timer = this.armWrite();
    try {
      await this.stream.writev(bufs, { signal: this.ctrl.signal });
    } catch (e) {
      if (this.expired === 'write') throw new HttpTimeoutError('write', this.options.writeTimeout ?? 60_000);
      throw e;
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  /** Writes the head (unless already sent) and the body, after `gate` when waiting for 100 Continue. */
  private async writeBody(
    head: string | null,
    body: HttpBody,
    chunked: boolean,
    gate: Promise<boolean> | null,
  ): Promise<void> {
    if (gate !== null && !(await gate)) {
      // Declined before the body went out: the connection cannot carry another request.
      this.keepAlive = false;
      await body[Symbol.asyncIterator]().return?.();
      return;
    }
    let pending: Uint8Array | null = head === null ? null : Buffer.from(head, 'latin1');
    let sent = 0;
    for await (const chunk of body) {
      if (chunk.byteLength === 0) continue;
      sent += chunk.byteLength;
      if (chunked) {
        const parts = [chunkHeader(chunk.byteLength), chunk, CHUNK_END];
        if (pending !== null) parts.unshift(pending);
        await this.writev(parts);
      } else if (pending !== null) {
        await this.writev([pending, chunk]);
      } else {
        await this.write(chunk);
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
    if (pending !== null && end !== null) await this.writev([pending, end]);
    else if (pending !== null) await this.write(pending);
    else if (end !== null) await this.write(end);
  }
}

/** A response body read from the connection on demand. @internal */
class IncomingResponseBody implements HttpBody, AsyncIterator<Uint8Array> {
  readonly kind: 'fixed' | 'stream';
  readonly length: number;
  trailers: HttpHeaders | null = null;
  private done = false;

  constructor(
    private readonly client: HttpClient,
    length: number,
  ) {
    this.kind = length >= 0 ? 'fixed' : 'stream';
    this.length = length;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.done) return { done: true, value: undefined };
    let ev: number;
    try {
      ev = await this.client.nextBodyEvent();
    } catch (e) {
      this.done = true;
      this.client.finishResponse(true);
      throw e;
    }
    if (ev === DecodeEvent.Data) return { done: false, value: this.client.bodyData };
    this.done = true;
    if (ev === DecodeEvent.End) {
      this.trailers = this.client.bodyTrailers;
      // A server may answer before it read all of the request body: the exchange ends (and
      // `reusable` can be trusted) once the body is written too.
      await this.client.settleWrite();
      this.client.finishResponse();
      return { done: true, value: undefined };
    }
    this.client.finishResponse(true);
    throw new HttpParseError('ERR_HTTP_INCOMPLETE_MESSAGE', 'connection closed inside the response body');
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.done) {
      // Abandoned mid-body: the connection cannot be reused.
      this.done = true;
      this.client.finishResponse(true);
    }
    return { done: true, value: undefined };
  }
}
