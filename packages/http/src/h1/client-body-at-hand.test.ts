/**
 * A response body that came in the same receive as its head is read whole without waiting:
 * consumeBody hands it over at once, readText makes its one promise only, and the connection is
 * reusable after it. A double hands the client the whole answer as one chunk (a real peer may
 * split it; which split happens is not up to the test).
 */
import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { type PromiseStreamDouble, promiseStream } from '../../test/promise-stream.js';
import { consumeBody, readText } from '../body.js';
import { HttpClient } from '../client.js';
import { createRequest } from '../message.js';

/** A peer answering every request with `answer`, as one chunk. */
function answering(answer: string) {
  let asked = 0;
  let wake: (() => void) | null = null;
  const double: PromiseStreamDouble = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    localAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    driver: 'legacy',
    closed: false,
    async recv() {
      while (asked === 0) await new Promise<void>((r) => (wake = r));
      asked--;
      return { bytes: Buffer.from(answer, 'latin1'), release() {} };
    },
    async writeAll<B extends Uint8Array>(b: B) {
      asked++;
      wake?.();
      return b;
    },
    async writev(bufs: readonly Uint8Array[]) {
      asked++;
      wake?.();
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async shutdown() {},
    async close() {},
    setNoDelay() {},
  };
  return promiseStream(double);
}

/** Promises made while `fn` runs, and what it returned. */
function counted<T>(fn: () => T): { made: number; out: T } {
  let made = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') made++;
    },
  });
  hook.enable();
  let out: T;
  try {
    out = fn();
  } finally {
    hook.disable();
  }
  return { made, out };
}

describe('HttpClient response bodies at hand', () => {
  const answer = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

  it('are read whole by consumeBody at once, and the connection is reusable after', async () => {
    const client = new HttpClient(answering(answer('{"ok":true}')), { authority: 'x' });
    const res = await client.send(createRequest('GET', '/'));
    const { made, out } = counted(() => consumeBody(res.body, (b) => Buffer.from(b).toString('latin1')));
    expect(out).toBe('{"ok":true}');
    expect(made).toBe(0);
    expect(client.reusable).toBe(true);
    await client.close();
  });

  it('cost readText its own promise only', async () => {
    const client = new HttpClient(answering(answer('hello')), { authority: 'x' });
    const res = await client.send(createRequest('GET', '/'));
    const { made, out } = counted(() => readText(res.body));
    expect(await out).toBe('hello');
    expect(made).toBe(1);
    await client.close();
  });
});
