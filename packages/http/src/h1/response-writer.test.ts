/**
 * writeStreamBody's one write: a first chunk at hand is copied behind the head, for a sized and
 * a chunked answer, through %TypedArray%.prototype.set itself (not a `set` looked up on the
 * head's buffer, a generic load at a site that sees lent Uint8Arrays and Buffers).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HttpBody, ReadyBodyIterator } from '../body.js';
import { createResponse } from '../message.js';
import type { ResponseHeadOptions } from './encoder.js';
import { type ResponseSink, writeStreamBody } from './response-writer.js';

/** A body whose one chunk and end are at hand (a proxied answer that came in one read). */
class AtHandBody implements HttpBody, ReadyBodyIterator {
  readonly trailers = null;
  #step = 0;
  constructor(
    private readonly data: Uint8Array,
    readonly kind: 'fixed' | 'stream',
    readonly length: number,
  ) {}
  [Symbol.asyncIterator](): ReadyBodyIterator {
    return this;
  }
  nextNow(): IteratorResult<Uint8Array> {
    return this.#step++ === 0 ? { done: false, value: this.data } : { done: true, value: undefined };
  }
  async next(): Promise<IteratorResult<Uint8Array>> {
    return this.nextNow();
  }
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.#step = 1;
    return { done: true, value: undefined };
  }
}

/** A sink that lends plain Uint8Arrays and keeps the one write. */
function sink(): ResponseSink & { writes: (Uint8Array | Uint8Array[])[] } {
  const writes: (Uint8Array | Uint8Array[])[] = [];
  return {
    writes,
    lend: (n) => new Uint8Array(n),
    startWrite: (out) => {
      writes.push(out);
    },
    deferTail: () => {},
    send: async (out) => {
      writes.push(out);
    },
    bodyEnded: () => {},
  };
}

const text = (b: Uint8Array | Uint8Array[]): string =>
  Buffer.concat(Array.isArray(b) ? b : [b]).toString('latin1');

describe('writeStreamBody', () => {
  const looked: string[] = [];
  afterEach(() => {
    delete (Buffer.prototype as { set?: unknown }).set;
    delete (Uint8Array.prototype as { set?: unknown }).set;
    looked.length = 0;
  });

  it('copies the chunk at hand behind the head without looking `set` up on the head', () => {
    const chunk = new Uint8Array(Buffer.from('hello', 'latin1'));
    const typedSet = Object.getPrototypeOf(Uint8Array.prototype).set as (
      this: Uint8Array,
      src: ArrayLike<number>,
      offset?: number,
    ) => void;
    // An own `set` on Buffer.prototype and Uint8Array.prototype is what `b.set` finds first.
    for (const [proto, name] of [
      [Buffer.prototype, 'Buffer'],
      [Uint8Array.prototype, 'Uint8Array'],
    ] as const) {
      Object.defineProperty(proto, 'set', {
        configurable: true,
        writable: true,
        value(this: Uint8Array, src: ArrayLike<number>, offset?: number) {
          if (src === chunk) looked.push(name);
          typedSet.call(this, src, offset);
        },
      });
    }
    const o: ResponseHeadOptions = {
      framing: 'length',
      length: 5,
      keepAlive: true,
      requestMinor: 1,
      requestMethod: 'GET',
      date: false,
    };
    const sized = sink();
    const res = createResponse(200, { body: new AtHandBody(chunk, 'fixed', 5) });
    expect(writeStreamBody(sized, null, res, o, res.body, 'length', true)).toBe(null);
    expect(text(sized.writes[0]!)).toBe('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello');
    const chunked = sink();
    const streamed = createResponse(200, { body: new AtHandBody(chunk, 'stream', -1) });
    const oc: ResponseHeadOptions = { ...o, framing: 'chunked', length: -1 };
    expect(writeStreamBody(chunked, null, streamed, oc, streamed.body, 'chunked', true)).toBe(null);
    expect(text(chunked.writes[0]!)).toBe(
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    expect(looked).toEqual([]);
  });
});
