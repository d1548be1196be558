/**
 * How a parked HTTP/1.1 connection ends (server-connection.ts: onRecv's wake for a parked
 * receive, run()'s hand-over to loop(), woke()'s end and failure): the peer's end, a reset and
 * another receive failure while it waits for its next request or its first one. Each ends the
 * connection once, answers nothing, and only a failure that is not a normal end of a connection
 * reaches onError. These are the close paths bench/http-proxy/close-deopts-2026-12-07.md reads
 * (its .patch moves them; these tests hold with and without it).
 */
import { describe, expect, it } from 'vitest';
import { type PromiseStreamDouble, promiseStream } from '../../test/promise-stream.js';
import { fixedBody } from '../body.js';
import { createResponse } from '../message.js';
import { HttpServer } from '../server.js';
import type { HttpStream, StreamChunk } from '../transport.js';

/** A stream whose receive waits until the test settles it: bytes, the end (null) or a failure. */
function handStream() {
  const writes: string[] = [];
  let settle: ((c: StreamChunk | null) => void) | null = null;
  let fail: ((e: unknown) => void) | null = null;
  let closes = 0;
  const double: PromiseStreamDouble = {
    remoteAddress: { family: 'ipv4', address: '10.0.0.1', port: 1000 },
    localAddress: { family: 'ipv4', address: '10.0.0.2', port: 80 },
    driver: 'legacy',
    closed: false,
    recv() {
      return new Promise((resolve, reject) => {
        settle = resolve;
        fail = reject;
      });
    },
    async writeAll<B extends Uint8Array>(b: B) {
      writes.push(Buffer.from(b).toString('latin1'));
      return b;
    },
    async writev(bufs: readonly Uint8Array[]) {
      for (const b of bufs) writes.push(Buffer.from(b).toString('latin1'));
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async shutdown() {},
    async close() {
      closes++;
      (double as { closed: boolean }).closed = true;
      const s = settle;
      settle = null;
      fail = null;
      s?.(null);
    },
    setNoDelay() {},
  };
  const stream: HttpStream = promiseStream(double);
  const take = () => {
    const s = settle;
    const f = fail;
    settle = null;
    fail = null;
    if (s === null || f === null) throw new Error('no receive is waiting');
    return { s, f };
  };
  return {
    stream,
    writes,
    closes: () => closes,
    send: (text: string) => take().s({ bytes: Buffer.from(text, 'latin1'), release() {} }),
    end: () => take().s(null),
    fail: (e: unknown) => take().f(e),
  };
}

const tick = () => new Promise((r) => setImmediate(r));
const GET = 'GET / HTTP/1.1\r\nHost: t\r\n\r\n';

function errno(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/** A server answering `ok`, its connection served on `a`, and what reached onError. */
function serve(a: ReturnType<typeof handStream>) {
  const errors: unknown[] = [];
  const server = new HttpServer(
    { call: () => createResponse(200, { body: fixedBody('ok') }) },
    { onError: (e) => errors.push(e) },
  );
  const done = server.serveConnection(a.stream);
  return { server, errors, done };
}

describe('a parked HTTP/1.1 connection ends', () => {
  it("at the peer's end: released once, nothing answered, nothing reported", async () => {
    const a = handStream();
    const { server, errors, done } = serve(a);
    a.send(GET);
    await tick();
    expect(a.writes.length).toBe(1);
    a.end();
    await done;
    expect(a.writes.length).toBe(1);
    expect(errors).toEqual([]);
    expect(server.connections).toBe(0);
    expect(a.closes()).toBeGreaterThan(0);
  });

  it('at a reset (ECONNRESET): released, nothing answered, not reported (a normal end)', async () => {
    const a = handStream();
    const { server, errors, done } = serve(a);
    a.send(GET);
    await tick();
    a.fail(errno('ECONNRESET'));
    await done;
    expect(a.writes.length).toBe(1);
    expect(errors).toEqual([]);
    expect(server.connections).toBe(0);
  });

  it('at another receive failure: released, nothing answered, told to onError once', async () => {
    const a = handStream();
    const { server, errors, done } = serve(a);
    a.send(GET);
    await tick();
    const failure = errno('EIO');
    a.fail(failure);
    // The failed connection lingers (half-close, read away) until the stream closes.
    await tick();
    a.stream.close();
    await done;
    expect(a.writes.length).toBe(1);
    expect(errors).toEqual([failure]);
    expect(server.connections).toBe(0);
  });

  it('before its first request: the end and a failure alike, nothing answered', async () => {
    for (const how of ['end', 'fail'] as const) {
      const a = handStream();
      const { server, errors, done } = serve(a);
      await tick();
      if (how === 'end') a.end();
      else a.fail(errno('ECONNRESET'));
      await done;
      expect(a.writes).toEqual([]);
      expect(errors).toEqual([]);
      expect(server.connections).toBe(0);
    }
  });
});
