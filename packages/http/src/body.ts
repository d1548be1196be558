/**
 * Message bodies as async iterables of byte chunks plus their framing, so the same body value
 * moves through HTTP/1.1 (Content-Length, chunked, close-delimited) and HTTP/2 (DATA frames)
 * unchanged. Not a stream library: no transforms, no buffering policy beyond whole-body reads
 * (`readBody`, `consumeBody`).
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
    this.length = this.data.length;
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

/** The default limit of readBody, readText and consumeBody: 16 MiB. */
const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

/**
 * Reads a whole body and returns what `use` makes of its bytes: at once when every step of the
 * body is at hand (a FixedBody; an incoming body whose bytes came with its head), else a promise.
 * `use` runs while the bytes are valid: a body that came as one chunk of known length is handed
 * over as that chunk, a view into receive memory (not copied; valid only during `use`), one that
 * came in several is copied together first. Fails with ERR_HTTP_BODY_TOO_LARGE past `maxBytes`
 * (default 16 MiB) and stops reading there; a failure is thrown when it happens at once, else the
 * promise rejects. A body of known length may be handed to `use` before its end was read: a
 * failure of that last step still fails the read.
 */
export function consumeBody<T>(
  body: HttpBody,
  use: (bytes: Uint8Array) => T,
  maxBytes: number = DEFAULT_MAX_BODY,
): T | Promise<T> {
  if (body.kind !== 'stream' && body.length > maxBytes) throw tooLarge(body.length, maxBytes);
  if (body instanceof FixedBody) return use(body.data);
  return new BodyCollector(body, use, maxBytes, false).run();
}

/**
 * Reads a whole body into one (copied) Uint8Array (a FixedBody's own bytes are returned as they
 * are). Fails with ERR_HTTP_BODY_TOO_LARGE past `maxBytes` (default 16 MiB) and stops reading there.
 */
export function readBody(body: HttpBody, maxBytes: number = DEFAULT_MAX_BODY): Promise<Uint8Array> {
  try {
    if (body.kind !== 'stream' && body.length > maxBytes) throw tooLarge(body.length, maxBytes);
    if (body instanceof FixedBody) return Promise.resolve(body.data);
    return Promise.resolve(new BodyCollector(body, ownBytes, maxBytes, true).run());
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Reads a whole body as UTF-8 text (see readBody for the limit). */
export function readText(body: HttpBody, maxBytes?: number): Promise<string> {
  try {
    return Promise.resolve(consumeBody(body, decodeUtf8, maxBytes));
  } catch (e) {
    return Promise.reject(e);
  }
}

const utf8 = new TextDecoder();

function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes;
}

function tooLarge(length: number, maxBytes: number): HttpBodyError {
  return new HttpBodyError(
    'ERR_HTTP_BODY_TOO_LARGE',
    length < 0 ? `body exceeds ${maxBytes} bytes` : `body of ${length} bytes exceeds ${maxBytes}`,
  );
}

/**
 * One whole-body read (consumeBody, readBody). The fast path of whole-body reads lives here, and
 * only here: steps are taken with nextNow() while the body has them at hand, so a small POST
 * whose bytes came with its head is read with no promise at all (each await would cost a promise
 * and a trip through the microtask queue, ~12 per JSON call before); the first step that is not
 * at hand switches to awaiting next(), carrying what was read so far. @internal
 */
class BodyCollector<T> {
  private readonly it: AsyncIterator<Uint8Array>;
  /** Copies of the chunks read so far (a view is not valid past its step). */
  private parts: Uint8Array[] | null = null;
  private total = 0;
  /** use()'s result once it ran (a one-chunk body of known length runs it before its end). */
  private result: T | undefined;
  private used = false;

  constructor(
    private readonly body: HttpBody,
    private readonly use: (bytes: Uint8Array) => T,
    private readonly maxBytes: number,
    /** Hand use() a copy even of a one-chunk body (readBody's bytes outlive the read). */
    private readonly copy: boolean,
  ) {
    this.it = body[Symbol.asyncIterator]();
  }

  /** The result now when every step is at hand, else a promise of it. */
  run(): T | Promise<T> {
    const it = this.it;
    for (;;) {
      // A step that fails is the body's own failure: its iterator is done with it.
      const r = nextNow(it);
      if (r === null) return this.runLater();
      if (r.done) return this.finish();
      this.take(r.value);
    }
  }

  /** The rest of run() once a step had to wait. */
  private async runLater(): Promise<T> {
    const it = this.it;
    let r: IteratorResult<Uint8Array> | null = null;
    for (;;) {
      if (r === null) r = await it.next();
      if (r.done) return this.finish();
      this.take(r.value);
      r = nextNow(it);
    }
  }

  /** One chunk, while it is valid. */
  private take(chunk: Uint8Array): void {
    const total = this.total + chunk.length;
    if (total > this.maxBytes) {
      this.abandon();
      throw tooLarge(-1, this.maxBytes);
    }
    if (this.used && chunk.length > 0) {
      this.abandon();
      throw new HttpBodyError(
        'ERR_HTTP_BODY_LENGTH_MISMATCH',
        `body longer than its length ${this.body.length}`,
      );
    }
    this.total = total;
    if (!this.copy && this.parts === null && total === this.body.length) {
      // The whole body in one chunk of the announced length: used where it lies.
      try {
        this.result = this.use(chunk);
      } catch (e) {
        this.abandon();
        throw e;
      }
      this.used = true;
      return;
    }
    if (chunk.length > 0) (this.parts ??= []).push(chunk.slice());
  }

  private finish(): T {
    if (this.used) return this.result as T;
    const parts = this.parts;
    let bytes: Uint8Array;
    if (parts === null) bytes = EMPTY_BYTES;
    else if (parts.length === 1) bytes = parts[0]!;
    else {
      bytes = new Uint8Array(this.total);
      let off = 0;
      for (const p of parts) {
        bytes.set(p, off);
        off += p.length;
      }
    }
    return this.use(bytes);
  }

  /** Stops reading (a limit or a failure): the body's source lets go of what it holds. */
  private abandon(): void {
    try {
      const left = this.it.return?.();
      if (left !== undefined) Promise.resolve(left).catch(noop);
    } catch {
      // The failure that stopped the read is the one to report.
    }
  }
}

function noop(): void {}
