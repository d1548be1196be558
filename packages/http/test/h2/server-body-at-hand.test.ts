/**
 * An HTTP/2 response whose body is at hand when the handler answers (a proxied answer of a few
 * KB came with its upstream head: its chunk and its end are steps `nextNow()` can take) is
 * written without a promise, the way the HTTP/1.1 writer does it; a body whose steps are not all
 * at hand still goes out whole, in order, and ends its stream. Driven in process over an
 * in-memory stream (the session's own work, no driver; its own completions by process.nextTick,
 * which the counts leave out), so the count of promises made is exact.
 */
import { createHook } from 'node:async_hooks';
import { plainFacts } from '@loch/uring-runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HttpBody, ReadyBodyIterator } from '../../src/body.js';
import {
  CONNECTION_PREFACE,
  encodeHeaders,
  encodeSettings,
  encodeSettingsAck,
  FrameFlag,
  FrameType,
} from '../../src/h2/frames.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import { createResponse } from '../../src/message.js';
import { HttpServer } from '../../src/server.js';
import type { HttpStream, StreamChunk } from '../../src/transport.js';

const ADDRESS = { family: 'ipv4', address: '127.0.0.1', port: 1 } as const;

/** A frame the server wrote. */
interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/**
 * A client stream: `send()` hands the session bytes (delivered at once to its pending receive),
 * and each write's frames are recorded; the write completes at a microtask, as a driver's does.
 */
class MemoryClient implements HttpStream {
  readonly remoteAddress = ADDRESS;
  readonly localAddress = { ...ADDRESS, port: 2 };
  readonly driver = 'legacy' as const;
  readonly facts = plainFacts(ADDRESS);
  closed = false;
  frames: Frame[] = [];
  /** Bytes sent before the session asked for them. */
  private ready: Uint8Array[] = [];
  private target: { onRecv(chunk: StreamChunk | null, error: unknown): void } | null = null;

  send(bytes: Uint8Array | null): void {
    const target = this.target;
    if (target === null) {
      if (bytes !== null) this.ready.push(bytes);
      return;
    }
    this.target = null;
    target.onRecv(bytes === null ? null : { bytes, release() {} }, undefined);
  }

  recvTo(target: { onRecv(chunk: StreamChunk | null, error: unknown): void }): void {
    const next = this.ready.shift();
    if (next === undefined) this.target = target;
    else process.nextTick(() => target.onRecv({ bytes: next, release() {} }, undefined));
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: { onWritten(error: unknown): void }): void {
    for (const piece of data instanceof Uint8Array ? [data] : data) this.record(piece);
    process.nextTick(() => target.onWritten(undefined));
  }

  private record(b: Uint8Array): void {
    for (let at = 0; at + 9 <= b.length; ) {
      const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
      this.frames.push({
        type: b[at + 3]!,
        flags: b[at + 4]!,
        streamId: ((b[at + 5]! & 0x7f) << 24) | (b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!,
        payload: b.slice(at + 9, at + 9 + length),
      });
      at += 9 + length;
    }
  }

  /** The frames of one stream. */
  of(streamId: number): Frame[] {
    return this.frames.filter((f) => f.streamId === streamId);
  }

  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
  }
  setNoDelay(): void {}
}

/**
 * A sized body like a proxied upstream answer's: its steps are `chunks` (each at hand or not:
 * `null` is a step only next() takes, after a microtask), then its end (at hand when
 * `endAtHand`). Records whether the body was read to its end.
 */
function upstreamLike(
  chunks: (string | null)[],
  endAtHand: boolean,
): { body: HttpBody; ended: () => boolean } {
  const steps = chunks.map((c) => (c === null ? null : new TextEncoder().encode(c)));
  const length = steps.reduce((n, c) => n + (c?.length ?? 0), 0);
  let i = 0;
  let ended = false;
  let waitNext = false;
  const end = (): IteratorResult<Uint8Array> => {
    ended = true;
    return { done: true, value: undefined };
  };
  const it: ReadyBodyIterator = {
    nextNow() {
      if (waitNext) return null;
      while (i < steps.length && steps[i] === null) {
        // A step that is not at hand: only next() takes it.
        waitNext = true;
        return null;
      }
      if (i < steps.length) return { done: false, value: steps[i++]! };
      return endAtHand ? end() : null;
    },
    async next() {
      await Promise.resolve();
      waitNext = false;
      while (i < steps.length && steps[i] === null) i++;
      if (i < steps.length) return { done: false, value: steps[i++]! };
      return end();
    },
    async return() {
      return { done: true, value: undefined };
    },
  };
  return {
    body: { kind: 'fixed', length, trailers: null, [Symbol.asyncIterator]: () => it },
    ended: () => ended,
  };
}

/** The client's opening: the preface, SETTINGS and the ACK of the server's. */
function opening(): Uint8Array {
  return new Uint8Array(Buffer.concat([CONNECTION_PREFACE, encodeSettings({}), encodeSettingsAck()]));
}

/** One GET on stream 1. */
function request(): Uint8Array {
  const block = new HpackEncoder().encode([
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'example.test'],
  ]);
  return encodeHeaders(1, block, { endStream: true });
}

/** Node's queueMicrotask resources made during the last serve()'s count (an AsyncResource each). */
let microtasks = 0;

/**
 * Serves one GET answered with `body` (`later`: by a handler that returns a promise); returns the
 * client and the promises made meanwhile.
 */
async function serve(
  body: HttpBody,
  later = false,
): Promise<{ client: MemoryClient; promises: number; served: Promise<void> }> {
  const server = new HttpServer({
    call: () => (later ? Promise.resolve(createResponse(200, { body })) : createResponse(200, { body })),
  });
  const client = new MemoryClient();
  const served = server.serveConnection(client);
  // The session reads: the connection's opening first (its own SETTINGS are queued then), then
  // the request, counting the promises made until its answer is queued.
  await new Promise((r) => setImmediate(r));
  client.send(opening());
  await new Promise((r) => setImmediate(r));
  let promises = 0;
  microtasks = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
      else if (type === 'Microtask') microtasks++;
    },
  });
  hook.enable();
  client.send(request());
  // A handler's promise answers in a microtask: count until then.
  if (later) await new Promise((r) => setImmediate(r));
  hook.disable();
  return { client, promises, served };
}

/** The DATA payloads of stream 1 as text, and whether the last frame of stream 1 ended it. */
async function answer(
  client: MemoryClient,
  served: Promise<void>,
): Promise<{ text: string; endStream: boolean }> {
  // Let the writes and the rest of the body run, then end the connection.
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  client.send(null);
  await served;
  const frames = client.of(1);
  const data = frames.filter((f) => f.type === FrameType.DATA);
  const last = frames[frames.length - 1]!;
  return {
    text: Buffer.concat(data.map((f) => f.payload)).toString(),
    endStream: (last.flags & FrameFlag.END_STREAM) !== 0,
  };
}

describe('HTTP/2 response body at hand', () => {
  // The process's first HTTP/2 connection waits for the server's import of its HTTP/2 side
  // (server.ts): one served first, so the counts below see sessions as they run from then on.
  beforeAll(async () => {
    const client = new MemoryClient();
    const served = new HttpServer({ call: () => createResponse(204) }).serveConnection(client);
    client.send(opening());
    while (client.frames.length === 0) await new Promise((r) => setImmediate(r));
    client.send(null);
    await served;
  });

  it('writes HEADERS and DATA of a sized body whose chunk and end are at hand without a promise', async () => {
    const { body, ended } = upstreamLike(['hello, world'], true);
    const { client, promises, served } = await serve(body);
    // Before: sendStream and sendChunk were async functions (3+ promises per response).
    expect(promises).toBe(0);
    expect(ended()).toBe(true);
    const frames = client.of(1);
    expect(frames.map((f) => [f.type, f.flags & FrameFlag.END_STREAM])).toEqual([
      [FrameType.HEADERS, 0],
      [FrameType.DATA, FrameFlag.END_STREAM],
    ]);
    expect(await answer(client, served)).toEqual({ text: 'hello, world', endStream: true });
  });

  it("waits for a handler's promise with one promise of its own", async () => {
    const { body, ended } = upstreamLike(['hello, world'], true);
    const { client, promises, served } = await serve(body, true);
    // The handler's promise, the session's then() on it and the flush's then(), and the count's
    // own two (its setImmediate promise and the await on it); no queueMicrotask resource. Before
    // 0b805cb: an async function and its await, and queueMicrotask's resource (6).
    expect(promises + microtasks).toBe(5);
    expect(ended()).toBe(true);
    expect(await answer(client, served)).toEqual({ text: 'hello, world', endStream: true });
  });

  it('flushes an answer that came later without a queueMicrotask resource', async () => {
    const { body } = upstreamLike(['hello, world'], true);
    const { client, served } = await serve(body, true);
    // The answer came outside the received chunk's handling, so its flush was scheduled: by a
    // then() on a settled promise (before: queueMicrotask, an AsyncResource and a bound function).
    expect(microtasks).toBe(0);
    expect(client.of(1).length).toBe(2);
    expect(await answer(client, served)).toEqual({ text: 'hello, world', endStream: true });
  });

  it('still reads the end of a sized body when only next() can take it', async () => {
    const { body, ended } = upstreamLike(['hello, world'], false);
    const { client, served } = await serve(body);
    expect(await answer(client, served)).toEqual({ text: 'hello, world', endStream: true });
    expect(ended()).toBe(true);
  });

  it('sends every chunk in order when a later one is not at hand', async () => {
    const { body, ended } = upstreamLike(['one ', 'two ', null, 'three'], true);
    const { client, served } = await serve(body);
    expect(await answer(client, served)).toEqual({ text: 'one two three', endStream: true });
    expect(ended()).toBe(true);
  });
});
