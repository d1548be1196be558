/**
 * H2ClientSession's per-exchange shortcuts, against a scripted in-memory server (no sockets, so
 * what arrives in one read is exact): a response body whose DATA came in the read of its head is
 * taken without a promise (nextNow), and the requests opened in one turn leave in one write.
 */
import { describe, expect, it } from 'vitest';
import { nextNow } from '../src/body.js';
import { H2ClientSession } from '../src/h2/client-session.js';
import {
  encodeData,
  encodeHeaders,
  encodeSettings,
  encodeSettingsAck,
  FrameFlag,
  FrameType,
} from '../src/h2/frames.js';
import { HpackEncoder } from '../src/h2/hpack-encoder.js';
import { deadlines } from '../src/internal/deadlines.js';
import { createRequest } from '../src/message.js';
import type { StreamChunk } from '../src/transport.js';
import { promiseStream } from './promise-stream.js';

interface Frame {
  type: number;
  flags: number;
  streamId: number;
}

/** A server played by hand: what the client wrote (per write), and chunks to hand it. */
class ScriptedServer {
  /** The frames of each write the client made, in order (the preface skipped). */
  readonly writes: Frame[][] = [];
  readonly remoteAddress = { family: 'ipv4', address: '127.0.0.1', port: 443 } as const;
  readonly localAddress = { family: 'ipv4', address: '127.0.0.1', port: 50000 } as const;
  readonly driver = 'legacy' as const;
  closed = false;
  #ready: Uint8Array[] = [];
  #waiting: ((chunk: StreamChunk | null) => void) | null = null;
  readonly #hpack = new HpackEncoder();

  /** Bytes for the client's next read (all that is queued arrives in one read). */
  send(...frames: Uint8Array[]): void {
    this.#ready.push(...frames);
    const w = this.#waiting;
    if (w !== null) {
      this.#waiting = null;
      w(this.#take());
    }
  }

  #take(): StreamChunk {
    const bytes = new Uint8Array(Buffer.concat(this.#ready));
    this.#ready = [];
    return { bytes, release: () => {} };
  }

  /** A response head (and body frames) for stream `id`. */
  head(id: number, endStream: boolean, fields: [string, string][] = [[':status', '200']]): Uint8Array {
    return encodeHeaders(id, this.#hpack.encode(fields), { endStream });
  }

  recv(): Promise<StreamChunk | null> {
    if (this.closed) return Promise.resolve(null);
    if (this.#ready.length > 0) return Promise.resolve(this.#take());
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  #record(bufs: readonly Uint8Array[]): Promise<unknown> {
    const frames: Frame[] = [];
    for (const b of bufs) {
      let at = b.length >= 24 && b[0] === 0x50 && b[1] === 0x52 ? 24 : 0;
      while (at + 9 <= b.length) {
        const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
        const streamId = ((b[at + 5]! & 0x7f) << 24) | (b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!;
        frames.push({ type: b[at + 3]!, flags: b[at + 4]!, streamId });
        at += 9 + length;
      }
    }
    this.writes.push(frames);
    return Promise.resolve();
  }

  writeAll(buf: Uint8Array): Promise<unknown> {
    return this.#record([buf]);
  }
  writev(bufs: readonly Uint8Array[]): Promise<unknown> {
    return this.#record(bufs);
  }
  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    const w = this.#waiting;
    this.#waiting = null;
    w?.(null);
  }
  setNoDelay(): void {}
}

const tick = () => new Promise((r) => setImmediate(r));

/** A session past the SETTINGS exchange, no write in flight. */
async function ready(): Promise<{ server: ScriptedServer; session: H2ClientSession }> {
  const server = new ScriptedServer();
  const session = new H2ClientSession(promiseStream(server), { authority: 'example.test' });
  server.send(encodeSettings({ maxConcurrentStreams: 100 }), encodeSettingsAck());
  await tick();
  await tick();
  expect(session.maxConcurrentStreams).toBe(100);
  return { server, session };
}

describe('H2ClientSession, per-exchange shortcuts', () => {
  it('a body whose DATA came with its head is read without waiting (nextNow), then its end', async () => {
    const { server, session } = await ready();
    const pending = session.send(createRequest('GET', '/a', { headers: { host: 'example.test' } }));
    await tick();
    server.send(
      server.head(1, false, [
        [':status', '200'],
        ['content-length', '5'],
      ]),
      encodeData(1, new TextEncoder().encode('hello'), { endStream: true }),
    );
    const res = await pending;
    const it = res.body[Symbol.asyncIterator]();
    const first = nextNow(it);
    expect(first?.done).toBe(false);
    expect(Buffer.from(first!.value as Uint8Array).toString()).toBe('hello');
    expect(nextNow(it)).toEqual({ done: true, value: undefined });
    expect(session.activeStreams).toBe(0);
    await session.close();
  });

  it('a body whose DATA has not come yet: nextNow() says so (null), next() waits for it, and DATA that came meanwhile is at hand', async () => {
    const { server, session } = await ready();
    const pending = session.send(createRequest('GET', '/b', { headers: { host: 'example.test' } }));
    await tick();
    server.send(server.head(1, false));
    const res = await pending;
    const it = res.body[Symbol.asyncIterator]();
    expect(nextNow(it)).toBeNull();
    const step = it.next();
    server.send(encodeData(1, new TextEncoder().encode('la')));
    const r = await step;
    expect(Buffer.from(r.value as Uint8Array).toString()).toBe('la');
    // The rest arrives while nobody waits: at hand from then on.
    server.send(encodeData(1, new TextEncoder().encode('te'), { endStream: true }));
    await tick();
    const rest = nextNow(it);
    expect(Buffer.from(rest!.value as Uint8Array).toString()).toBe('te');
    expect(nextNow(it)).toEqual({ done: true, value: undefined });
    await session.close();
  });

  it("the streams' read deadlines ride on the session's sweep membership (no member per exchange), and still fire", async () => {
    const { server, session } = await ready();
    const before = deadlines.size;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++)
      sends.push(
        session
          // Stream 1 (answered) gets a deadline no loaded machine reaches; the others time out.
          .send(createRequest('GET', `/${i}`, { headers: { host: 'example.test' } }), {
            responseTimeout: i === 0 ? 60_000 : 30,
          })
          .catch((e: unknown) => e),
      );
    await tick();
    expect(deadlines.size - before).toBeLessThanOrEqual(1);
    // Stream 1 is answered; the others time out on the sweep.
    server.send(server.head(1, true));
    const results = await Promise.all(sends);
    expect((results[0] as { status: number }).status).toBe(200);
    for (const r of results.slice(1)) expect((r as Error).name).toBe('HttpTimeoutError');
    expect(session.activeStreams).toBe(0);
    // The RST_STREAMs (CANCEL) of the 15 that timed out went to the server.
    const rst = server.writes.flat().filter((f) => f.type === FrameType.RST_STREAM);
    expect(rst.map((f) => f.streamId)).toEqual(Array.from({ length: 15 }, (_, i) => 3 + 2 * i));
    await session.close();
  });

  it('the requests opened in one turn leave in one write', async () => {
    const { server, session } = await ready();
    const before = server.writes.length;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++)
      sends.push(session.send(createRequest('GET', `/${i}`, { headers: { host: 'example.test' } })));
    await tick();
    const writes = server.writes.slice(before).filter((w) => w.some((f) => f.type === FrameType.HEADERS));
    expect(writes.map((w) => w.filter((f) => f.type === FrameType.HEADERS).length)).toEqual([16]);
    expect(writes[0]!.every((f) => (f.flags & FrameFlag.END_STREAM) !== 0)).toBe(true);
    // Their answers, in one read: every exchange gets its head.
    const answers: Uint8Array[] = [];
    for (let i = 0; i < 16; i++) answers.push(server.head(1 + 2 * i, true));
    server.send(...answers);
    const responses = (await Promise.all(sends)) as { status: number }[];
    expect(responses.map((r) => r.status)).toEqual(new Array(16).fill(200));
    expect(session.activeStreams).toBe(0);
    await session.close();
  });
});
