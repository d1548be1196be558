/**
 * HttpClient.setResponseBodyOwner: the owner (a pooled connection) hears the end of every
 * response body once, after the client settled its state (`reusable` is final then), and maps
 * the error of every failed body step, whichever path found it (a step at hand, a step that
 * waited for a read, a cut short at either). A scripted peer answers each request with the next
 * answer of its script, one chunk per entry (null: it closes).
 */
import { plainFacts } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import { type PromiseStreamDouble, promiseStream } from '../../test/promise-stream.js';
import { readText } from '../body.js';
import { createRequest } from '../message.js';
import { HttpClient, type ResponseBodyOwner } from './client.js';

/**
 * A peer that sends `chunks` (null: end of stream) one per read, after the request. `unnotified`:
 * its stream says it ended without TLS close_notify (a close-delimited body is then cut short).
 */
function scripted(chunks: readonly (string | null)[], unnotified = false) {
  let asked = false;
  let wake: (() => void) | null = null;
  let at = 0;
  let closed = false;
  const double: PromiseStreamDouble = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    localAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    driver: 'legacy',
    get closed() {
      return closed;
    },
    async recv() {
      while (!asked && !closed) await new Promise<void>((r) => (wake = r));
      if (closed || at >= chunks.length) return null;
      const c = chunks[at++];
      if (c === null || c === undefined) return null;
      return { bytes: Buffer.from(c, 'latin1'), release() {} };
    },
    async writeAll<B extends Uint8Array>(b: B) {
      asked = true;
      wake?.();
      return b;
    },
    async writev(bufs: readonly Uint8Array[]) {
      asked = true;
      wake?.();
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async shutdown() {},
    async close() {
      closed = true;
      wake?.();
    },
    setNoDelay() {},
  };
  const stream = promiseStream(double);
  if (!unnotified) return stream;
  const facts = { ...plainFacts(double.remoteAddress), closeNotified: false };
  return Object.defineProperty(stream, 'facts', { get: () => facts });
}

/** An owner that records what it hears; its errors wrap the client's. */
class Mapped extends Error {}
function recordingOwner(client: () => HttpClient) {
  const heard: string[] = [];
  const owner: ResponseBodyOwner = {
    responseBodyEnded(failed) {
      heard.push(failed ? 'failed' : `done reusable=${client().reusable}`);
    },
    responseBodyError(error) {
      heard.push('mapped');
      return new Mapped('mapped', { cause: error });
    },
  };
  return { heard, owner };
}

async function failureOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('HttpClient response body owner', () => {
  it('hears a body read to its end once, with the connection reusable, at hand or after a read', async () => {
    for (const chunks of [
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello', ' world'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', '0\r\n\r\n'],
    ]) {
      const client = new HttpClient(scripted(chunks), { authority: 'x' });
      const { heard, owner } = recordingOwner(() => client);
      client.setResponseBodyOwner(owner);
      const res = await client.send(createRequest('GET', '/'));
      expect(heard).toEqual([]);
      expect(await readText(res.body)).toMatch(/^hello/);
      expect(heard).toEqual(['done reusable=true']);
      // A step after the end changes nothing.
      expect((await res.body[Symbol.asyncIterator]().next()).done).toBe(true);
      expect(heard).toEqual(['done reusable=true']);
      await client.close();
    }
  });

  it('hears nothing of a response without a body', async () => {
    const client = new HttpClient(scripted(['HTTP/1.1 204 No Content\r\n\r\n']), { authority: 'x' });
    const { heard, owner } = recordingOwner(() => client);
    client.setResponseBodyOwner(owner);
    await client.send(createRequest('GET', '/'));
    expect(heard).toEqual([]);
    await client.close();
  });

  it('hears an abandoned body as failed, once', async () => {
    const client = new HttpClient(scripted(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello']), {
      authority: 'x',
    });
    const { heard, owner } = recordingOwner(() => client);
    client.setResponseBodyOwner(owner);
    const res = await client.send(createRequest('GET', '/'));
    for await (const _ of res.body) break;
    expect(heard).toEqual(['failed']);
    expect(client.reusable).toBe(false);
    await client.close();
  });

  it.each([
    // The close comes with a later read.
    {
      name: 'a sized body',
      chunks: ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello', null],
      unnotified: false,
    },
    // Chunked, the close right after the head's read.
    {
      name: 'a chunked body',
      chunks: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', null],
      unnotified: false,
    },
    // Close-delimited, ended without TLS close_notify: cut short at its end (the onRecv path).
    {
      name: 'a close-delimited body without close_notify',
      chunks: ['HTTP/1.1 200 OK\r\n\r\nhello', null],
      unnotified: true,
    },
  ])('maps $name cut short by the peer, once', async ({ chunks, unnotified }) => {
    const client = new HttpClient(scripted(chunks, unnotified), { authority: 'x' });
    const { heard, owner } = recordingOwner(() => client);
    client.setResponseBodyOwner(owner);
    const res = await client.send(createRequest('GET', '/'));
    const error = await failureOf(readText(res.body));
    expect(error).toBeInstanceOf(Mapped);
    expect((error as Mapped).cause).toMatchObject({ code: 'ERR_HTTP_INCOMPLETE_MESSAGE' });
    expect(heard).toEqual(['failed', 'mapped']);
    await client.close();
  });

  it('without an owner, a body cut short fails with the client error itself', async () => {
    const client = new HttpClient(scripted(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello', null]), {
      authority: 'x',
    });
    const res = await client.send(createRequest('GET', '/'));
    const error = await failureOf(readText(res.body));
    expect(error).toMatchObject({ code: 'ERR_HTTP_INCOMPLETE_MESSAGE' });
    await client.close();
  });
});
