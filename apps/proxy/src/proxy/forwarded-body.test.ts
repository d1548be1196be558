import { fixedBody, streamBody } from '@loch/http';
import { describe, expect, it } from 'vitest';
import { BodyAbandoned, ForwardedBody } from './forwarded-body.js';

describe('ForwardedBody', () => {
  it('passes chunks through, counts bytes and reports a clean end once', async () => {
    const ends: [number, unknown][] = [];
    const logged: number[] = [];
    const body = new ForwardedBody(streamBody([new Uint8Array(3), new Uint8Array(4)]), (n, e) =>
      ends.push([n, e]),
    );
    body.onEnd = (n) => logged.push(n);
    expect(body.kind).toBe('stream');
    let total = 0;
    for await (const chunk of body) total += chunk.byteLength;
    expect(total).toBe(7);
    await body.next();
    expect(ends).toEqual([[7, null]]);
    expect(logged).toEqual([7]);
  });

  it('reports an abandoned body (client gone) with BodyAbandoned', async () => {
    const ends: [number, unknown][] = [];
    const body = new ForwardedBody(fixedBody('hello'), (n, e) => ends.push([n, e]));
    expect(body.kind).toBe('fixed');
    expect(body.length).toBe(5);
    for await (const _ of body) break;
    expect(ends).toHaveLength(1);
    expect(ends[0]![0]).toBe(5);
    expect(ends[0]![1]).toBeInstanceOf(BodyAbandoned);
  });

  it('reports an upstream failure mid-body and rethrows it', async () => {
    const boom = new Error('reset');
    async function* failing() {
      yield new Uint8Array(2);
      throw boom;
    }
    const ends: [number, unknown][] = [];
    const body = new ForwardedBody(streamBody(failing()), (n, e) => ends.push([n, e]));
    await expect(
      (async () => {
        for await (const _ of body) {
          // reading
        }
      })(),
    ).rejects.toBe(boom);
    expect(ends).toEqual([[2, boom]]);
  });
});

describe('ForwardedBody never iterated', () => {
  it('tells its source when returned before the first read (the server releasing an unsent body)', async () => {
    let returned = false;
    const source = {
      kind: 'stream' as const,
      length: -1,
      trailers: null,
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: true as const, value: undefined }),
        return: async () => {
          returned = true;
          return { done: true as const, value: undefined };
        },
      }),
    };
    const ends: unknown[] = [];
    const body = new ForwardedBody(source, (_n, e) => ends.push(e));
    await body[Symbol.asyncIterator]().return?.();
    expect(returned).toBe(true);
    expect(ends[0]).toBeInstanceOf(BodyAbandoned);
    await body.return();
    expect(ends).toHaveLength(1);
  });
});
