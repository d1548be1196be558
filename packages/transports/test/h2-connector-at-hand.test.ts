/**
 * H2Connector's response body over an in-memory h2c server (no sockets, so what arrives in one
 * read is exact): a body whose DATA came with its head is handed on without a promise
 * (nextNow), its end gives the stream slot back, and a body not at hand still streams.
 */
import {
  createRequest,
  type HttpStream,
  nextNow,
  type StreamChunk,
  type StreamRecvTarget,
  type StreamWriteTarget,
} from '@loch/http';
import {
  encodeData,
  encodeHeaders,
  encodeSettings,
  encodeSettingsAck,
  FrameFlag,
  FrameType,
  HpackEncoder,
} from '@loch/http/h2';
import { endpoint } from '@loch/transports';
import { H2Connector } from '@loch/transports/h2';
import { plainFacts } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';

/** The next request is answered with its head only (its body comes with `finish`). */
let holdNext = false;

/**
 * An h2c server played in memory: SETTINGS first; every request HEADERS it is written gets
 * `:status 200` and, unless `holdNext` was set, the body 'hello' in DATA in the same read.
 */
class MemoryH2Server implements HttpStream {
  readonly remoteAddress = { family: 'ipv4', address: '127.0.0.1', port: 80 } as const;
  readonly localAddress = { family: 'ipv4', address: '127.0.0.1', port: 50000 } as const;
  readonly driver = 'legacy' as const;
  readonly facts = plainFacts(this.remoteAddress);
  closed = false;
  /** Streams answered with a head only (their DATA comes with `finish`). */
  readonly held: number[] = [];
  #ready: Uint8Array[] = [encodeSettings({ maxConcurrentStreams: 100 })];
  #waiting: StreamRecvTarget | null = null;
  readonly #hpack = new HpackEncoder();

  recvTo(target: StreamRecvTarget): void {
    if (this.#ready.length === 0 && !this.closed) {
      this.#waiting = target;
      return;
    }
    const chunk = this.#take();
    queueMicrotask(() => target.onRecv(chunk, undefined));
  }

  #take(): StreamChunk | null {
    if (this.#ready.length === 0) return null;
    const bytes = new Uint8Array(Buffer.concat(this.#ready));
    this.#ready = [];
    return { bytes, release: () => {} };
  }

  #push(...frames: Uint8Array[]): void {
    this.#ready.push(...frames);
    const w = this.#waiting;
    if (w === null) return;
    this.#waiting = null;
    const chunk = this.#take();
    queueMicrotask(() => w.onRecv(chunk, undefined));
  }

  /** The body of a held stream, and its end. */
  finish(id: number, text: string): void {
    this.#push(encodeData(id, new TextEncoder().encode(text), { endStream: true }));
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: StreamWriteTarget): void {
    const out: Uint8Array[] = [];
    for (const b of data instanceof Uint8Array ? [data] : data) {
      let at = b.length >= 24 && b[0] === 0x50 && b[1] === 0x52 ? 24 : 0;
      while (at + 9 <= b.length) {
        const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
        const type = b[at + 3]!;
        const flags = b[at + 4]!;
        const id = ((b[at + 5]! & 0x7f) << 24) | (b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!;
        if (type === FrameType.SETTINGS && (flags & FrameFlag.ACK) === 0) out.push(encodeSettingsAck());
        else if (type === FrameType.HEADERS) {
          const late = holdNext;
          holdNext = false;
          out.push(encodeHeaders(id, this.#hpack.encode([[':status', '200']]), { endStream: false }));
          if (late) this.held.push(id);
          else out.push(encodeData(id, new TextEncoder().encode('hello'), { endStream: true }));
        }
        at += 9 + length;
      }
    }
    queueMicrotask(() => target.onWritten(undefined));
    if (out.length > 0) this.#push(...out);
  }

  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    const w = this.#waiting;
    this.#waiting = null;
    if (w !== null) queueMicrotask(() => w.onRecv(null, undefined));
  }
  setNoDelay(): void {}
}

function connector(): { h2: H2Connector; servers: MemoryH2Server[] } {
  const servers: MemoryH2Server[] = [];
  const h2 = new H2Connector({
    async connect() {
      const s = new MemoryH2Server();
      servers.push(s);
      return s;
    },
  });
  return { h2, servers };
}

const key = endpoint('http://upstream.test:80');

describe('H2Connector response bodies', () => {
  it('a body that came with its head: nextNow() hands its chunk and its end, and the end gives the slot back', async () => {
    const { h2 } = connector();
    const res = await h2.request(key, createRequest('GET', '/now', { headers: { host: 'upstream.test' } }));
    expect(h2.stats().streams).toBe(1);
    const it = res.body[Symbol.asyncIterator]();
    const first = nextNow(it);
    expect(Buffer.from(first!.value as Uint8Array).toString()).toBe('hello');
    expect(h2.stats().streams).toBe(1);
    expect(nextNow(it)).toEqual({ done: true, value: undefined });
    expect(h2.stats().streams).toBe(0);
    // Past its end it stays ended, and the slot is not given back twice.
    expect(nextNow(it)).toEqual({ done: true, value: undefined });
    expect(h2.stats().streams).toBe(0);
    h2.close();
  });

  it('a body not at hand: nextNow() is null, next() waits for it, and its end gives the slot back', async () => {
    const { h2, servers } = connector();
    holdNext = true;
    const res = await h2.request(key, createRequest('GET', '/late', { headers: { host: 'upstream.test' } }));
    const it = res.body[Symbol.asyncIterator]();
    expect(nextNow(it)).toBeNull();
    const step = it.next();
    servers[0]!.finish(servers[0]!.held[0]!, 'later');
    const r = await step;
    expect(Buffer.from(r.value as Uint8Array).toString()).toBe('later');
    expect(h2.stats().streams).toBe(1);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(h2.stats().streams).toBe(0);
    expect(nextNow(it)).toEqual({ done: true, value: undefined });
    h2.close();
  });

  it('many requests at once share one session and each gets its answer', async () => {
    const { h2 } = connector();
    const first = await h2.request(key, createRequest('GET', '/0', { headers: { host: 'upstream.test' } }));
    for await (const _ of first.body) {
      // drained
    }
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        h2.request(key, createRequest('GET', `/${i + 1}`, { headers: { host: 'upstream.test' } })),
      ),
    );
    for (const res of all) {
      const it = res.body[Symbol.asyncIterator]();
      expect(nextNow(it)?.done).toBe(false);
      expect(nextNow(it)?.done).toBe(true);
    }
    expect(h2.stats()).toMatchObject({ created: 1, streams: 0 });
    h2.close();
  });
});
