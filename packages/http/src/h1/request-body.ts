/**
 * The body of an HTTP/1.1 request as its handler reads it: pulled from the connection on demand
 * (nothing is read from the socket before the handler asks), 100 Continue sent on the first
 * pull, and cut off once the server took the body over (its response ended: the server drains
 * or discards the rest), so a late read never takes bytes of the next request.
 */
import type { HttpBody } from '../body.js';
import { HttpBodyError, HttpParseError } from '../errors.js';
import type { HttpHeaders } from '../headers.js';
import { DecodeEvent } from './decoder.js';

/** What a request body needs from its connection. */
export interface RequestBodySource {
  /** The body the handler may still read; any other value means the server took it over. */
  readonly reqBody: IncomingRequestBody | null;
  /** Called before the first read: sends 100 Continue when the client waits for it. */
  beforeBodyRead(): Promise<void>;
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

/** A request body read from the connection on demand. */
export class IncomingRequestBody implements HttpBody, AsyncIterator<Uint8Array> {
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

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.done) return { done: true, value: undefined };
    const conn = this.conn;
    if (conn.reqBody !== this) throw bodyTaken();
    await conn.beforeBodyRead();
    if (conn.reqBody !== this) throw bodyTaken();
    let ev: number;
    try {
      ev = await conn.nextBodyEvent();
    } catch (e) {
      conn.bodyFailed(e);
      throw e;
    }
    if (ev === DecodeEvent.Data) {
      const data = conn.bodyData;
      this.received += data.byteLength;
      return { done: false, value: data };
    }
    this.done = true;
    conn.markBodyDone();
    if (ev === DecodeEvent.End) {
      this.trailers = conn.bodyTrailers;
      conn.bodyComplete();
      return { done: true, value: undefined };
    }
    const e = new HttpParseError('ERR_HTTP_INCOMPLETE_MESSAGE', 'connection closed inside the request body');
    conn.bodyFailed(e);
    throw e;
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    // Leaving early: the server drains or closes after the response.
    return { done: true, value: undefined };
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
