/**
 * Upstream reuse is decided on the wire: a pooled HTTP/1.1 connection goes back to the pool only
 * when nothing was read past the end of its response and nothing arrived before its next request
 * was written. Each case scripts a raw upstream that sends bytes it should not (a second
 * response behind the first, a body longer than its Content-Length, a body after a 304 or a
 * HEAD answer, data after the last chunk, data while idle), then sends a second request through
 * the same pool and checks that it reaches a fresh connection and gets the fresh answer, never
 * the injected bytes. Every driver.
 */
import type { Socket } from 'node:net';
import { createRequest, fixedBody, readText, streamBody } from '@loch/http';
import { endpoint, HttpConnector, ProtocolError, UnifiedL4Connector } from '@loch/transports';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, eventually, fdCount, fdsBackTo, onRequestHeads, RawPeer } from './harness.js';

const drivers = await driverCases();

/** The answer every later connection gets: proves the second request reached a fresh one. */
const FRESH = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh';
const INJECTED = 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nINJECTED!';

describe.each(drivers)('upstream reuse on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: HttpConnector | undefined;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });

  afterEach(async () => {
    connector?.close();
    connector = undefined;
    for (const close of closers.splice(0).reverse()) await close();
    await runtime.close();
  });

  function make(): HttpConnector {
    const l4 = new UnifiedL4Connector({ runtime });
    connector = new HttpConnector(l4);
    return connector;
  }

  /**
   * An upstream whose first connection answers its first request with `first` (written in one
   * write unless `then` is given: then `then` is written after `first` on its own, once the
   * client read the answer) and every later request with INJECTED-marked bytes; every later
   * connection answers FRESH.
   */
  async function scripted(
    first: string,
    then?: string,
  ): Promise<{
    peer: RawPeer;
    heads: string[];
    sendLate: () => void;
    firstSocket: () => Socket | undefined;
  }> {
    const heads: string[] = [];
    let socket0: Socket | undefined;
    const peer = await new RawPeer((s, index) => {
      if (index === 0) socket0 = s;
      onRequestHeads(s, (head, n) => {
        heads.push(`${index}:${head.split('\r\n')[0]}`);
        if (index > 0) s.write(FRESH);
        else if (n === 0) s.write(first);
        else s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nREUSED');
      });
    }).listen();
    closers.push(() => peer.close());
    return {
      peer,
      heads,
      sendLate: () => {
        if (then !== undefined) socket0?.write(then);
      },
      firstSocket: () => socket0,
    };
  }

  /** Sends `GET /second` and expects the fresh connection's answer. */
  async function expectFreshSecond(c: HttpConnector, port: number, heads: string[]): Promise<void> {
    const res = await c.request(endpoint(`http://127.0.0.1:${port}`), createRequest('GET', '/second'));
    expect(res.status).toBe(200);
    expect(await readText(res.body)).toBe('fresh');
    expect(heads.at(-1)).toBe('1:GET /second HTTP/1.1');
    expect(c.stats()).toMatchObject({ reused: 0 });
  }

  async function first(
    c: HttpConnector,
    port: number,
    method = 'GET',
  ): Promise<{ status: number; body: string }> {
    const res = await c.request(endpoint(`http://127.0.0.1:${port}`), createRequest(method, '/first'));
    return { status: res.status, body: await readText(res.body) };
  }

  run('a second response in the same read as the first is never served to the next request', async () => {
    const up = await scripted(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1${INJECTED}`);
    const fds = fdCount();
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectFreshSecond(c, up.peer.port, up.heads);
    // The dirty connection was closed, not parked.
    expect(await eventually(() => up.firstSocket()?.closed === true)).toBe(true);
    c.close();
    expect(await fdsBackTo(fds)).toBeLessThanOrEqual(fds);
  });

  run('a body longer than its Content-Length closes the connection', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1XYZ');
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('a 304 carrying a body (Content-Length: 10) followed by a response is not reused', async () => {
    const up = await scripted(`HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n${INJECTED}`);
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 304, body: '' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('a 204 followed by bytes is not reused', async () => {
    const up = await scripted(`HTTP/1.1 204 No Content\r\n\r\n${INJECTED}`);
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 204, body: '' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('a HEAD answer followed by the body it must not have is not reused', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nINJECTED!');
    const c = make();
    expect(await first(c, up.peer.port, 'HEAD')).toEqual({ status: 200, body: '' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('data after the last chunk of a chunked response is not reused', async () => {
    const up = await scripted(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nA1\r\n0\r\n\r\n${INJECTED}`,
    );
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('data after chunked trailers is not reused', async () => {
    const up = await scripted(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nA1\r\n0\r\nX-T: 1\r\n\r\n${INJECTED}`,
    );
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('even a stray CRLF after a response closes the connection (as nginx)', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1\r\n');
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('a response arriving in a later read while the connection is idle evicts it', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1', INJECTED);
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    expect(c.stats()).toMatchObject({ idle: 1 });
    up.sendLate();
    expect(await eventually(() => c.stats().idle === 0)).toBe(true);
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  // The legacy driver (node:net, epoll) reads a socket only in the loop's poll phase, after a
  // write made in the same tick, so it cannot order the two (nginx has the same window): the
  // guarantee is the io_uring driver's, whose completions arrive in kernel order.
  const runUring = name === 'uring' ? run : it.skip;
  runUring('bytes that arrived before the next request was written are never its answer', async () => {
    // The injected response is in the kernel's receive queue of the idle connection before the
    // connection is taken and the request written, but its completion has not reached
    // JavaScript yet (the request is sent from the upstream's own write callback, in the same
    // tick): the bytes predate the request, whatever order the completions are seen in.
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1');
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    expect(c.stats()).toMatchObject({ idle: 1 });
    const res = await new Promise<Awaited<ReturnType<HttpConnector['request']>>>((resolve, reject) => {
      up.firstSocket()!.write(INJECTED, () => {
        c.request(endpoint(`http://127.0.0.1:${up.peer.port}`), createRequest('GET', '/second')).then(
          resolve,
          reject,
        );
      });
    });
    expect(await readText(res.body)).toBe('fresh');
    expect(up.heads.at(-1)).toBe('1:GET /second HTTP/1.1');
  });

  run('an answer that comes before the request body was sent closes the connection (as nginx)', async () => {
    // The upstream answers at the head (a 401 to an upload, say) while the body still streams:
    // it may take the rest of the body for its next request, so the connection is not kept.
    const up = await scripted('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope');
    const c = make();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* upload() {
      yield Buffer.from('GET /smuggled HTTP/1.1\r\n');
      await gate;
      yield Buffer.from('Host: x\r\n\r\n');
    }
    const res = await c.request(
      endpoint(`http://127.0.0.1:${up.peer.port}`),
      createRequest('POST', '/first', { body: streamBody(upload(), { length: 35 }) }),
    );
    expect(res.status).toBe(401);
    release();
    expect(await readText(res.body)).toBe('nope');
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  run('a POST answered after its whole body is reused', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1');
    const c = make();
    const res = await c.request(
      endpoint(`http://127.0.0.1:${up.peer.port}`),
      createRequest('POST', '/first', { body: fixedBody('payload') }),
    );
    expect(await readText(res.body)).toBe('A1');
    expect(c.stats()).toMatchObject({ idle: 1 });
  });

  run('a clean response is reused (the checks do not refuse honest peers)', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1');
    const c = make();
    expect(await first(c, up.peer.port)).toEqual({ status: 200, body: 'A1' });
    const res = await c.request(
      endpoint(`http://127.0.0.1:${up.peer.port}`),
      createRequest('GET', '/second'),
    );
    expect(await readText(res.body)).toBe('REUSED');
    expect(c.stats()).toMatchObject({ reused: 1, created: 1 });
  });

  run('an unsolicited 101 is a ProtocolError (502) and the connection is dropped', async () => {
    const up = await scripted(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: evil\r\n\r\n',
    );
    const c = make();
    const error = await c
      .request(endpoint(`http://127.0.0.1:${up.peer.port}`), createRequest('GET', '/first'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).status).toBe(502);
    expect(c.stats()).toMatchObject({ idle: 0, active: 0 });
    await expectFreshSecond(c, up.peer.port, up.heads);
  });

  for (const [what, response] of [
    [
      'Content-Length with Transfer-Encoding',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nA1\r\n0\r\n\r\n',
    ],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nA1X'],
  ] as const) {
    run(`a response with ${what} is a ProtocolError and never reused`, async () => {
      const up = await scripted(response + INJECTED);
      const c = make();
      const error = await c
        .request(endpoint(`http://127.0.0.1:${up.peer.port}`), createRequest('GET', '/first'))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProtocolError);
      await expectFreshSecond(c, up.peer.port, up.heads);
    });
  }

  run('Transfer-Encoding without chunked is read to the close and never reused', async () => {
    const up = await scripted('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil-close');
    const c = make();
    const res = await c.request(endpoint(`http://127.0.0.1:${up.peer.port}`), createRequest('GET', '/first'));
    expect(res.status).toBe(200);
    // The upstream keeps the connection open: end it so the close-delimited body ends.
    setTimeout(() => up.firstSocket()?.end(), 50);
    expect(await readText(res.body)).toBe('until-close');
    await expectFreshSecond(c, up.peer.port, up.heads);
  });
});
