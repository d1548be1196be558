/**
 * The body of an HTTP/1.1 request as its handler reads it: pulled from the connection on demand
 * (nothing is read from the socket before the handler asks), 100 Continue sent on the first
 * pull, and cut off once the server took the body over (its response ended: the server drains
 * or discards the rest), so a late read never takes bytes of the next request. Steps at hand
 * come without waiting (nextNow).
 */
import type { HttpBody, ReadyBodyIterator } from '../body.js';
import { HttpBodyError, HttpParseError } from '../errors.js';
import type { HttpHeaders } from '../headers.js';
import { DecodeEvent } from './decoder.js';

/** What a request body needs from its connection. */
export interface RequestBodySource {
  /** The body the handler may still read; any other value means the server took it over. */
  readonly reqBody: IncomingRequestBody | null;
  /** A 100 Continue is owed before the first read (the client waits for it). */
  readonly continueOwed: boolean;
  /** Sends the 100 Continue that is owed (see continueOwed). */
  beforeBodyRead(): Promise<void>;
  /** The next decoder event of the body if it is buffered (Data or End), else NeedMore: no read. */
  pollBodyEvent(): number;
  /** The next decoder event of the body (Data, End, or EOF as -1), at once or after a read. */
  nextBodyEvent(): number | Promise<number>;
  /** The Data event's bytes (valid until the next event). */
  readonly bodyData: Uint8Array;
  /** The trailers after the End event, if any. */
  readonly bodyTrailers: HttpHeaders | null;
  markBodyDone(): void;
  /** The body was read to its End (after markBodyDone): the client can be watched from now on. */
  bodyComplete(): void;
  /** The read failed with `e` (what its reader sees). */
  bodyFailed(e: unknown): void;
}

/** The end of a body (shared: `{ done: true }` carries nothing to mutate). */
const BODY_DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });

/**
 * A request body read from the connection on demand. A step already decoded from received bytes
 * (a small body that came in the read of its head) is taken without waiting: nextNow() returns
 * it, and next() costs one settled promise for it rather than an async frame and its awaits.
 */
export class IncomingRequestBody implements HttpBody, ReadyBodyIterator {
  readonly kind: 'fixed' | 'stream';
  readonly length: number;
  trailers: HttpHeaders | null = null;
  /** Bytes handed to the reader so far. */
  received = 0;
  private done = false;
  private started = false;

  constructor(
    private readonly conn: RequestBodySource,
    length: number,
  ) {
    this.kind = length >= 0 ? 'fixed' : 'stream';
    this.length = length;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.started) throw new HttpBodyError('ERR_HTTP_BODY_CONSUMED', 'request body can be iterated once');
    this.started = true;
    return this;
  }

  /**
   * The next step if it is buffered (see ReadyBodyIterator), else null; null too while a 100
   * Continue is owed, as only next() can wait for that write.
   */
  nextNow(): IteratorResult<Uint8Array> | null {
    if (this.done) return BODY_DONE;
    const conn = this.conn;
    if (conn.reqBody !== this) throw bodyTaken();
    if (conn.continueOwed) return null;
    let ev: number;
    try {
      ev = conn.pollBodyEvent();
    } catch (e) {
      conn.bodyFailed(e);
      throw e;
    }
    return ev === DecodeEvent.NeedMore ? null : this.step(ev);
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = this.nextNow();
    } catch (e) {
      return Promise.reject(e);
    }
    return r === null ? this.nextLater() : Promise.resolve(r);
  }

  /** next() when its step needs a read (or the 100 Continue write) first. */
  private async nextLater(): Promise<IteratorResult<Uint8Array>> {
    const conn = this.conn;
    if (conn.continueOwed) {
      await conn.beforeBodyRead();
      if (conn.reqBody !== this) throw bodyTaken();
    }
    let ev: number;
    try {
      ev = await conn.nextBodyEvent();
    } catch (e) {
      conn.bodyFailed(e);
      throw e;
    }
    return this.step(ev);
  }

  /** The step of body event `ev` (Data, End, or EOF inside the body). */
  private step(ev: number): IteratorResult<Uint8Array> {
    const conn = this.conn;
    if (ev === DecodeEvent.Data) {
      const data = conn.bodyData;
      this.received += data.length;
      return { done: false, value: data };
    }
    this.done = true;
    conn.markBodyDone();
    if (ev === DecodeEvent.End) {
      this.trailers = conn.bodyTrailers;
      conn.bodyComplete();
      return BODY_DONE;
    }
    const e = new HttpParseError('ERR_HTTP_INCOMPLETE_MESSAGE', 'connection closed inside the request body');
    conn.bodyFailed(e);
    throw e;
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    // Leaving early: the server drains or closes after the response.
    return Promise.resolve(BODY_DONE);
  }
}

/**
 * The failure of a request body read after the server took the body over: its response was
 * complete (the server drains or discards the rest) or the connection ended.
 */
function bodyTaken(): HttpBodyError {
  return new HttpBodyError(
    'ERR_HTTP_BODY_TAKEN',
    'request body read after its response ended: the server discarded the rest',
  );
}
