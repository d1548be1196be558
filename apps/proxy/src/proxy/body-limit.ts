/**
 * The per-route request body limit (`max_body_size`, nginx's client_max_body_size). A body
 * whose length is known (Content-Length, HTTP/2 content-length) above the limit is refused
 * before a byte of it is read: the route layer answers 413 and the HTTP server then drains or
 * closes the connection (an unread body above its drain bound closes it). A body without a
 * length (chunked, HTTP/2 without content-length) is wrapped in a LimitedBody that fails with
 * `ERR_HTTP_BODY_TOO_LARGE` (HttpBodyError, 413) on the chunk that would cross the limit, before
 * handing it on: the upstream exchange fails at once (its connection is aborted, never
 * pooled), the upstream never sees the excess, and the client gets 413 when no response head
 * was sent yet, else its connection is cut. Not a buffer: chunks pass through as they come.
 */
import {
  type BodyKind,
  type HttpBody,
  HttpBodyError,
  type HttpHeaders,
  type HttpRequest,
  nextNow,
  type ReadyBodyIterator,
} from '@loch/http';

/** A pass-through body that fails once more than `limit` bytes went through. */
export class LimitedBody implements HttpBody, ReadyBodyIterator {
  readonly kind: BodyKind;
  readonly length: number;
  /** Bytes passed through so far. */
  bytes = 0;
  #iterator: AsyncIterator<Uint8Array> | null = null;

  constructor(
    private readonly source: HttpBody,
    readonly limit: number,
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
    this.#iterator ??= this.source[Symbol.asyncIterator]();
    return this.#count(await this.#iterator.next());
  }

  /** A step the source can take without waiting (see ReadyBodyIterator), else null. */
  nextNow(): IteratorResult<Uint8Array> | null {
    this.#iterator ??= this.source[Symbol.asyncIterator]();
    const r = nextNow(this.#iterator);
    return r === null ? null : this.#count(r);
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.#iterator ??= this.source[Symbol.asyncIterator]();
    await this.#iterator.return?.();
    return { done: true, value: undefined };
  }

  #count(r: IteratorResult<Uint8Array>): IteratorResult<Uint8Array> {
    if (r.done) return r;
    this.bytes += r.value.byteLength;
    if (this.bytes > this.limit) throw tooLarge(this.limit);
    return r;
  }
}

function tooLarge(limit: number): HttpBodyError {
  return new HttpBodyError('ERR_HTTP_BODY_TOO_LARGE', `request body exceeds max_body_size (${limit} bytes)`);
}

/**
 * Applies `limit` (bytes; 0 = none) to `request`'s body: the 413 error to answer at once when
 * its length is known and above the limit; otherwise null, after wrapping a body of unknown
 * length in a LimitedBody. Costs nothing for a request without a body or within a known limit.
 */
export function limitRequestBody(request: HttpRequest, limit: number): HttpBodyError | null {
  if (limit <= 0) return null;
  const body = request.body;
  if (body.length > limit) return tooLarge(limit);
  if (body.length < 0 && body.kind === 'stream') request.body = new LimitedBody(body, limit);
  return null;
}
