/**
 * The HTTP/1.1 client's response body stepped without waiting (ReadyBodyIterator.nextNow): a body
 * that arrived with its head is handed over at once, and its end is the shared BODY_DONE (no
 * object per response: the proxy's response writer takes every proxied body's end this way).
 */
import { describe, expect, it } from 'vitest';
import type { ReadyBodyIterator } from '../src/body.js';
import { HttpClient } from '../src/h1/client.js';
import { BODY_DONE } from '../src/h1/response-body.js';
import { createRequest } from '../src/message.js';
import { scriptedStream } from './scripted-stream.js';

describe('HttpClient response body nextNow', () => {
  it('hands over bytes at hand, then the shared end, and the end again after it', async () => {
    const { stream, writes } = scriptedStream(['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc']);
    const client = new HttpClient(stream, { authority: 'x' });
    const res = await client.send(createRequest('GET', '/a'));
    expect(writes[0]![0]).toMatch(/^GET \/a HTTP\/1\.1\r\n/);
    const it = res.body[Symbol.asyncIterator]() as ReadyBodyIterator;
    const first = it.nextNow();
    expect(first?.done).toBe(false);
    expect(Buffer.from(first!.value as Uint8Array).toString('latin1')).toBe('abc');
    expect(it.nextNow()).toBe(BODY_DONE);
    expect(it.nextNow()).toBe(BODY_DONE);
    expect(client.reusable).toBe(true);
    await client.close();
  });
});
