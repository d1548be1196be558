/**
 * ForwardedBody: the upstream response body as the proxy hands it to the client. It passes
 * chunks through untouched (same views, no copy), counts the bytes, and reports the end once:
 * `done(bytes, error)` after the last chunk was written downstream (the server pulls the next
 * chunk only after writing the previous one), or when the client went away (`return()`), or
 * when the upstream failed mid-body. The core layer's access log subclasses it (`ended`), so
 * a logged response costs one object, not an object and a closure. Not a buffer.
 */
import { type BodyKind, type HttpBody, type HttpHeaders, nextNow, type ReadyBodyIterator } from '@loch/http';

/** Called once when a forwarded body ends; `error` is set when it did not end cleanly. */
export type BodyEnd = (bytes: number, error: unknown) => void;

/** A pass-through body with an end hook. */
export class ForwardedBody implements HttpBody, ReadyBodyIterator {
  readonly kind: BodyKind;
  readonly length: number;
  /** Bytes passed through so far. */
  bytes = 0;
  /** Extra hook run after `done` (the access log). */
  onEnd: BodyEnd | null = null;
  #iterator: AsyncIterator<Uint8Array> | null = null;
  #ended = false;

  constructor(
    private readonly source: HttpBody,
    private readonly done: BodyEnd | null,
  ) {
    this.kind = source.kind;
    this.length = source.length;
  }

  get trailers(): HttpHeaders | null {
    return this.source.trailers ?? null;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#iterator ??= this.source[Symbol.asyncIterator]();
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#ended) return { done: true, value: undefined };
    if (this.#iterator === null) this.#iterator = this.source[Symbol.asyncIterator]();
    const it = this.#iterator;
    let r: IteratorResult<Uint8Array>;
    try {
      r = await it.next();
    } catch (error) {
      this.#end(error);
      throw error;
    }
    if (r.done) this.#end(null);
    else this.bytes += r.value.byteLength;
    return r;
  }

  /** A step the source can take without waiting (see ReadyBodyIterator), else null. */
  nextNow(): IteratorResult<Uint8Array> | null {
    if (this.#ended) return { done: true, value: undefined };
    if (this.#iterator === null) this.#iterator = this.source[Symbol.asyncIterator]();
    let r: IteratorResult<Uint8Array> | null;
    try {
      r = nextNow(this.#iterator);
    } catch (error) {
      this.#end(error);
      throw error;
    }
    if (r === null) return null;
    if (r.done) this.#end(null);
    else this.bytes += r.value.byteLength;
    return r;
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.#ended) {
      try {
        // Also when never iterated: the source must learn it is abandoned (to free its connection).
        this.#iterator ??= this.source[Symbol.asyncIterator]();
        await this.#iterator.return?.();
      } catch {
        // the upstream body is being abandoned anyway
      }
      this.#end(new BodyAbandoned());
    }
    return { done: true, value: undefined };
  }

  /** Runs once when the body ends, after `done` and before `onEnd`: a subclass's hook without a closure. */
  protected ended(_bytes: number, _error: unknown): void {}

  #end(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.done?.(this.bytes, error);
    this.ended(this.bytes, error);
    this.onEnd?.(this.bytes, error);
  }
}

/** The downstream stopped reading a forwarded body (client gone, or HEAD/204/304 answered). */
export class BodyAbandoned extends Error {
  override readonly name = 'BodyAbandoned';
  readonly code = 'ERR_LOCH_BODY_ABANDONED';
  constructor() {
    super('the response body was not sent to the end');
  }
}
