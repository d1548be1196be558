/**
 * Message bodies as async iterables of byte chunks plus their framing, so the same body value
 * moves through HTTP/1.1 (Content-Length, chunked, close-delimited) and HTTP/2 (DATA frames)
 * unchanged. Not a stream library: no transforms, no buffering policy beyond `readBody`.
 */
import { HttpBodyError } from './errors.js';
import type { HttpHeaders } from './headers.js';

/**
 * How a body is framed: `empty` (no bytes), `fixed` (exactly `length` bytes, known up front),
 * `stream` (length unknown until the end: chunked in HTTP/1.1, DATA frames in HTTP/2).
 */
export type BodyKind = 'empty' | 'fixed' | 'stream';

/**
 * A message body. Iterate it once. Chunks yielded by bodies that come from the wire (request
 * bodies on a server, response bodies on a client) are views into pooled receive memory and are
 * valid only until the next iteration step: copy what must outlive it (readBody copies).
 */
export interface HttpBody extends AsyncIterable<Uint8Array> {
  /** The framing. */
  readonly kind: BodyKind;
  /** Byte length for `fixed` (and 0 for `empty`); -1 for `stream`. */
  readonly length: number;
  /**
   * Trailer fields: for incoming bodies, set once iteration completed (null when none); for
   * outgoing `stream` bodies, read by the encoder after the last chunk.
   */
  readonly trailers: HttpHeaders | null;
}

/**
 * A body iterator that can also take a step without waiting: `nextNow()` returns the next
 * result when it is already at hand (a chunk buffered from the same receive, or the end) and
 * consumes it, or null when only `next()` can tell (nothing consumed then). Bodies that come
 * from the wire implement it, and so do pass-through wrappers, so a server can write a response
 * head together with its first chunk and skip a promise per step. Errors are thrown as from
 * `next()`.
 */
export interface ReadyBodyIterator extends AsyncIterator<Uint8Array> {
  nextNow(): IteratorResult<Uint8Array> | null;
}

/** The iterator's step if it can be taken without waiting (see ReadyBodyIterator), else null. */
export function nextNow(it: AsyncIterator<Uint8Array>): IteratorResult<Uint8Array> | null {
  const f = (it as Partial<ReadyBodyIterator>).nextNow;
  return f === undefined ? null : f.call(it);
}

const EMPTY_BYTES = new Uint8Array(0);
const encoder = new TextEncoder();

/** A body held in memory as one chunk (`fixed`), or no body at all (`empty`). */
export class FixedBody implements HttpBody {
  readonly kind: BodyKind;
  readonly length: number;
  readonly trailers: HttpHeaders | null = null;
  /** The whole body. */
  readonly data: Uint8Array;

  /** Wraps bytes (not copied) or a string (UTF-8 encoded). An empty input makes an `empty` body. */
  constructor(data: Uint8Array | string) {
    this.data = typeof data === 'string' ? encoder.encode(data) : data;
    this.length = this.data.byteLength;
    this.kind = this.length === 0 ? 'empty' : 'fixed';
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.length > 0) yield this.data;
  }
}

/** The shared empty body. */
export const EMPTY_BODY: FixedBody = new FixedBody(EMPTY_BYTES);

/** A body produced by an (async) iterable of chunks: `stream`, or `fixed` when `length` is given. */
export class StreamBody implements HttpBody {
  readonly kind: BodyKind;
  readonly length: number;
  trailers: HttpHeaders | null;
  private readonly source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

  /**
   * `length` (optional) promises exactly that many bytes; the encoders fail the message with
   * ERR_HTTP_BODY_LENGTH_MISMATCH otherwise. `trailers` are sent after the last chunk (HTTP/1.1
   * chunked only).
   */
  constructor(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { length?: number; trailers?: HttpHeaders } = {},
  ) {
    this.source = source;
    this.length = options.length ?? -1;
    this.kind = options.length === undefined ? 'stream' : options.length === 0 ? 'empty' : 'fixed';
    this.trailers = options.trailers ?? null;
  }

  /**
   * Iterates the source. `return()` reaches the source's iterator even before the first
   * `next()` (a generator's `yield*` would not), so a body that will not be sent releases what
   * its source holds (a ReadableStream is cancelled, an upstream body abandoned).
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return new SourceIterator(this.source);
  }
}

/** Delegates to an (async) iterable's iterator, created on first use. @internal */
class SourceIterator implements AsyncIterator<Uint8Array> {
  #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array> | null = null;
  #done = false;

  constructor(private readonly source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {}

  #iterator(): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
    if (this.#it === null) {
      const src = this.source;
      this.#it = Symbol.asyncIterator in src ? src[Symbol.asyncIterator]() : src[Symbol.iterator]();
    }
    return this.#it;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#done) return { done: true, value: undefined };
    try {
      const r = await this.#iterator().next();
      if (r.done) this.#done = true;
      return r;
    } catch (e) {
      this.#done = true;
      throw e;
    }
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.#done) {
      this.#done = true;
      await this.#iterator().return?.();
    }
    return { done: true, value: undefined };
  }
}

/** Makes a body from bytes or a string. */
export function fixedBody(data: Uint8Array | string): FixedBody {
  return new FixedBody(data);
}

/** Makes a streaming body from chunks; pass `length` when it is known (Content-Length framing). */
export function streamBody(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: { length?: number; trailers?: HttpHeaders } = {},
): StreamBody {
  return new StreamBody(source, options);
}

/**
 * Reads a whole body into one (copied) Uint8Array. Fails with ERR_HTTP_BODY_TOO_LARGE past
 * `maxBytes` (default 16 MiB) and stops reading there.
 */
export async function readBody(body: HttpBody, maxBytes = 16 * 1024 * 1024): Promise<Uint8Array> {
  if (body instanceof FixedBody) return body.data;
  if (body.kind === 'fixed' && body.length > maxBytes) {
    throw new HttpBodyError('ERR_HTTP_BODY_TOO_LARGE', `body of ${body.length} bytes exceeds ${maxBytes}`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > maxBytes)
      throw new HttpBodyError('ERR_HTTP_BODY_TOO_LARGE', `body exceeds ${maxBytes} bytes`);
    parts.push(chunk.slice());
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Reads a whole body as UTF-8 text (see readBody for the limit). */
export async function readText(body: HttpBody, maxBytes?: number): Promise<string> {
  return new TextDecoder().decode(await readBody(body, maxBytes));
}
