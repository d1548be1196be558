/**
 * The body of an HTTP/2 request as its handler reads it: fed by the session from DATA frames
 * (copied out of the receive chunk, which is only valid during the frame callback), read by the
 * handler as an HttpBody. What it buffers is bounded by the stream's receive window: the
 * session credits the window (WINDOW_UPDATE) only as the handler takes chunks, so a handler
 * that does not read stops the client after one window (backpressure, never an unbounded
 * buffer). Trailers arrive with the end; a reset or a malformed body fails the reader.
 *
 * Not for flow-control arithmetic (flow-control.ts) nor stream states (stream.ts).
 */

import { pendingPromise, takeReject, takeResolve } from '@loch/service-async';
import type { HttpBody, ReadyBodyIterator } from '../body.js';
import { HttpBodyError } from '../errors.js';
import type { HttpHeaders } from '../headers.js';

/** What the body tells its stream. */
export interface H2BodyOwner {
  /** The handler took `n` octets: credit them back to the peer. */
  onBodyConsumed(n: number): void;
  /** The handler waits for data (true) or got it (false): the body deadline. */
  onBodyWait(waiting: boolean): void;
  /** The handler stopped reading (return()) before the end, dropping `buffered` octets: discard what comes. */
  onBodyAbandoned(buffered: number): void;
}

const DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });

/** A request body fed by DATA frames; see the module comment. */
export class H2RequestBody implements HttpBody, ReadyBodyIterator {
  readonly kind: 'fixed' | 'stream';
  readonly length: number;
  trailers: HttpHeaders | null = null;
  /** Octets of DATA received, counted by the session (checked against content-length). */
  received = 0;
  readonly #owner: H2BodyOwner;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #ended = false;
  #error: unknown = null;
  #started = false;
  #finished = false;
  #resolve: ((r: IteratorResult<Uint8Array>) => void) | null = null;
  #reject: ((e: unknown) => void) | null = null;

  /** `length` is the request's content-length, or -1. */
  constructor(owner: H2BodyOwner, length: number) {
    this.#owner = owner;
    this.length = length;
    this.kind = length >= 0 ? 'fixed' : 'stream';
  }

  /** Octets buffered, not yet taken by the handler. */
  get buffered(): number {
    let n = 0;
    for (let i = this.#head; i < this.#chunks.length; i++) n += this.#chunks[i]!.length;
    return n;
  }

  /** True once the handler let go of the body (read to its end, failed or returned). */
  get finished(): boolean {
    return this.#finished;
  }

  /** Session: the content of a DATA frame (copied here). */
  push(data: Uint8Array): void {
    if (this.#finished || this.#ended || this.#error !== null || data.length === 0) return;
    const copy = data.slice();
    const resolve = this.#resolve;
    if (resolve !== null) {
      this.#resolve = null;
      this.#reject = null;
      this.#owner.onBodyWait(false);
      this.#owner.onBodyConsumed(copy.length);
      resolve({ done: false, value: copy });
      return;
    }
    this.#chunks.push(copy);
  }

  /** Session: END_STREAM arrived (with trailers or not). */
  end(trailers: HttpHeaders | null): void {
    if (this.#ended || this.#error !== null) return;
    this.#ended = true;
    this.trailers = trailers;
    const resolve = this.#resolve;
    if (resolve !== null && this.#head === this.#chunks.length) {
      this.#resolve = null;
      this.#reject = null;
      this.#finished = true;
      this.#owner.onBodyWait(false);
      resolve(DONE);
    }
  }

  /** Session: the stream ended before the body did (reset, malformed, connection gone). */
  fail(error: unknown): void {
    if (this.#ended || this.#error !== null) return;
    this.#error = error;
    this.#chunks = [];
    this.#head = 0;
    const reject = this.#reject;
    if (reject !== null) {
      this.#resolve = null;
      this.#reject = null;
      this.#finished = true;
      this.#owner.onBodyWait(false);
      reject(error);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#started) throw new HttpBodyError('ERR_HTTP_BODY_CONSUMED', 'request body can be iterated once');
    this.#started = true;
    return this;
  }

  nextNow(): IteratorResult<Uint8Array> | null {
    if (this.#head < this.#chunks.length) {
      const c = this.#chunks[this.#head]!;
      this.#chunks[this.#head++] = EMPTY;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      }
      this.#owner.onBodyConsumed(c.length);
      return { done: false, value: c };
    }
    if (this.#error !== null) {
      this.#finished = true;
      throw this.#error;
    }
    if (this.#ended || this.#finished) {
      this.#finished = true;
      return DONE;
    }
    return null;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = this.nextNow();
    } catch (e) {
      return Promise.reject(e);
    }
    if (r !== null) return Promise.resolve(r);
    if (this.#resolve !== null) {
      return Promise.reject(new HttpBodyError('ERR_HTTP_BODY_CONSUMED', 'request body read twice at once'));
    }
    const p = pendingPromise<IteratorResult<Uint8Array>>();
    this.#resolve = takeResolve();
    this.#reject = takeReject();
    this.#owner.onBodyWait(true);
    return p;
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.#finished) {
      this.#finished = true;
      const dropped = this.buffered;
      this.#chunks = [];
      this.#head = 0;
      if (!this.#ended && this.#error === null) this.#owner.onBodyAbandoned(dropped);
    }
    return Promise.resolve(DONE);
  }
}

const EMPTY = new Uint8Array(0);
