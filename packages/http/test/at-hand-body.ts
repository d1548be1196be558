/**
 * Test support: a body whose one chunk and end are at hand (nextNow), as a proxied answer that
 * came in one read; sized by default (`kind` 'fixed', its data's length).
 */
import type { HttpBody, ReadyBodyIterator } from '../src/body.js';

export class AtHandBody implements HttpBody, ReadyBodyIterator {
  readonly trailers = null;
  #step = 0;
  constructor(
    private readonly data: Uint8Array,
    readonly kind: 'fixed' | 'stream' = 'fixed',
    readonly length: number = data.length,
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
