/**
 * How a parked HTTP/1.1 connection ends (server-connection.ts: onRecv's wake for a parked
 * receive, run()'s hand-over to loop(), woke()'s end and failure): the peer's end, a reset and
 * another receive failure while it waits for its next request or its first one. Each ends the
 * connection once, answers nothing, and only a failure that is not a normal end of a connection
 * reaches onError. These are the close paths bench/http-proxy/close-deopts-2026-12-07.md reads
 * (its .patch moves them; these tests hold with and without it).
 */
import { describe, expect, it } from 'vitest';
import { handStream } from '../../test/hand-stream.js';
import { fixedBody } from '../body.js';
import { createResponse } from '../message.js';
import { HttpServer } from '../server.js';

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
    a.push(GET);
    await tick();
    expect(a.writes.length).toBe(1);
    expect(a.waiting()).toBe(true);
    a.push(null);
    await done;
    expect(a.writes.length).toBe(1);
    expect(errors).toEqual([]);
    expect(server.connections).toBe(0);
    expect(a.closes()).toBeGreaterThan(0);
  });

  it('at a reset (ECONNRESET): released, nothing answered, not reported (a normal end)', async () => {
    const a = handStream();
    const { server, errors, done } = serve(a);
    a.push(GET);
    await tick();
    expect(a.waiting()).toBe(true);
    a.fail(errno('ECONNRESET'));
    await done;
    expect(a.writes.length).toBe(1);
    expect(errors).toEqual([]);
    expect(server.connections).toBe(0);
  });

  it('at another receive failure: released, nothing answered, told to onError once', async () => {
    const a = handStream();
    const { server, errors, done } = serve(a);
    a.push(GET);
    await tick();
    const failure = errno('EIO');
    expect(a.waiting()).toBe(true);
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
      expect(a.waiting()).toBe(true);
      if (how === 'end') a.push(null);
      else a.fail(errno('ECONNRESET'));
      await done;
      expect(a.writes).toEqual([]);
      expect(errors).toEqual([]);
      expect(server.connections).toBe(0);
    }
  });
});
