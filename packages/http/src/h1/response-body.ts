/**
 * The body of an HTTP/1.1 response as its reader pulls it from the client connection: steps
 * that are at hand (decoded from bytes already received) come without a promise (nextNow), the
 * rest after a read; a body cut short is ERR_HTTP_INCOMPLETE_MESSAGE. Reading it to its end (or
 * discarding it) is what makes the connection reusable.
 *
 * A body delimited by the connection's close (no Content-Length, not chunked) is complete only if
 * the close is the server's: under TLS that takes its close_notify (the stream's
 * `facts.closeNotified`). An end without one may be an attacker or a middlebox cutting the
 * connection, so it is ERR_HTTP_INCOMPLETE_MESSAGE too (RFC 8446 §6.1; what curl and Go's
 * net/http do), and a proxy aborts the response it was relaying instead of completing it.
 */
import type { HttpBody, ReadyBodyIterator } from '../body.js';
import { HttpParseError } from '../errors.js';
import type { HttpHeaders } from '../headers.js';
import type { HttpClient } from './client.js';
import { DecodeEvent } from './decoder.js';

/** pollBodyNow: the next body event needs a read (or the request body's end). */
export const NOT_READY = -2;

/** The end of a body (shared: `{ done: true }` carries nothing to mutate). */
export const BODY_DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });

/** A response body read from the connection on demand. */
export class IncomingResponseBody implements HttpBody, ReadyBodyIterator {
  readonly kind: 'fixed' | 'stream';
  readonly length: number;
  trailers: HttpHeaders | null = null;
  private done = false;

  constructor(
    private readonly client: HttpClient,
    length: number,
    /** Delimited by the connection's close: its end must be authenticated where it can be. */
    private readonly closeDelimited = false,
  ) {
    this.kind = length >= 0 ? 'fixed' : 'stream';
    this.length = length;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.done) return Promise.resolve(BODY_DONE);
    return this.client.nextBody(this);
  }

  /** @internal the step for body event `ev` (Data, End or EOF); throws for a truncated body */
  step(ev: number): IteratorResult<Uint8Array> | Promise<IteratorResult<Uint8Array>> {
    const client = this.client;
    if (ev === DecodeEvent.Data) return { done: false, value: client.bodyData };
    this.done = true;
    if (ev === DecodeEvent.End && !this.truncated()) {
      this.trailers = client.bodyTrailers;
      // A server may answer before it read all of the request body: the exchange ends (and
      // `reusable` can be trusted) once the body is written too.
      if (client.writingBody) return client.settleWrite().then(() => this.ended());
      return this.ended();
    }
    client.finishResponse(true);
    throw this.cutShort(ev);
  }

  /** The error of a body cut short at event `ev` (EOF inside the framing, or an unauthenticated end). */
  private cutShort(ev: number): HttpParseError {
    return new HttpParseError(
      'ERR_HTTP_INCOMPLETE_MESSAGE',
      ev === DecodeEvent.End
        ? 'connection closed without TLS close_notify: the close-delimited response body may be truncated'
        : 'connection closed inside the response body',
    );
  }

  /** A close-delimited body that ended without the server's close_notify (see the header). */
  private truncated(): boolean {
    return this.closeDelimited && this.client.endUnauthenticated;
  }

  private ended(): IteratorResult<Uint8Array> {
    this.client.finishResponse();
    return BODY_DONE;
  }

  /** @internal a read of the body failed: the error the caller sees */
  failed(e: unknown): unknown {
    this.done = true;
    this.client.finishResponse(true);
    return this.client.bodyFailure(e);
  }

  /** The next step when the decoder has it buffered (see ReadyBodyIterator), else null. */
  nextNow(): IteratorResult<Uint8Array> | null {
    if (this.done) return BODY_DONE;
    const client = this.client;
    let ev: number;
    try {
      ev = client.pollBodyNow();
    } catch (e) {
      this.done = true;
      client.finishResponse(true);
      throw client.bodyFailure(e);
    }
    if (ev === NOT_READY) return null;
    if (ev === DecodeEvent.Data) return { done: false, value: client.bodyData };
    this.done = true;
    if (ev === DecodeEvent.End && !this.truncated()) {
      this.trailers = client.bodyTrailers;
      client.finishResponse();
      // Shared, as next()'s end: no object per response.
      return BODY_DONE;
    }
    client.finishResponse(true);
    // Through the owner like every other failure of a step (HttpClient.bodyError). The decoder
    // gives no EOF, nor a close-delimited End, without a read (finish() runs in onRecv, whose
    // step() path is the one taken): kept for the contract's sake, not reached today.
    throw client.bodyError(this.cutShort(ev));
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.done) {
      // Abandoned mid-body: the connection cannot be reused.
      this.done = true;
      this.client.finishResponse(true);
    }
    return BODY_DONE;
  }
}
