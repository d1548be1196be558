/**
 * Answers' heads are encoded into pieces of a reused per-thread write slab
 * (src/internal/write-slab.ts), lent to the write they go out in and given back only when that
 * write completed. Here: a write whose bytes are read late (a stream double that reads the lent
 * memory only when it completes the write, as the kernel does with a queued or partial send)
 * sees its head byte-exact while other connections' answers go through the slab many times over
 * (fails when pieces are given back at the start of their write); and on both runtime drivers,
 * answers written in one write of lent pieces to a client that stopped reading (the write waits
 * in the kernel, its bytes not yet copied) arrive byte-exact after another client's answers
 * wrapped the slab several times meanwhile (fails likewise). The HTTP/1.1 client's request heads
 * follow the same rule (a piece lent to the request's first write): held writes with and without
 * a body, and one cut by a close, read their head byte-exact while other requests turn the slab
 * over; on both drivers, a request head whose write waits for an upstream that stopped reading
 * arrives byte-exact after other exchanges wrapped the slab (each fails when the client gives its
 * piece back before the write completed).
 */
import * as net from 'node:net';
import { plainFacts, sentBytes } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody, streamBody } from '../src/body.js';
import { HttpClient } from '../src/h1/client.js';
import { encodeRequestHead } from '../src/h1/encoder.js';
import { HttpHeaders } from '../src/headers.js';
import { lendBytes, writeSlabStats } from '../src/internal/write-slab.js';
import { createRequest, createResponse } from '../src/message.js';
import { HttpServer } from '../src/server.js';
import type { HttpStream, StreamChunk, StreamRecvTarget, StreamWriteTarget } from '../src/transport.js';
import { availableDrivers, connectTo, type InProcess, startServer } from './server-harness.js';

/** Every answer says which request it answers, in a field and its body. */
function answer(target: string) {
  return createResponse(200, { headers: { 'x-id': target }, body: fixedBody(target) });
}

function expected(target: string): string {
  return `HTTP/1.1 200 OK\r\nx-id: ${target}\r\ncontent-length: ${target.length}\r\n\r\n${target}`;
}

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`;

/**
 * A server-side stream double whose writes can be held: a held write's bytes are read from the
 * lent buffers only when the test completes it (as the kernel reads a queued send's memory when
 * it sends it), then its target is told.
 */
class HeldStream implements HttpStream {
  readonly remoteAddress = { family: 'ipv4' as const, address: '10.0.0.1', port: 1000 };
  readonly localAddress = { family: 'ipv4' as const, address: '10.0.0.2', port: 80 };
  readonly driver = 'legacy' as const;
  readonly facts = plainFacts(this.remoteAddress);
  closed = false;
  /** Hold writes instead of completing them at once. */
  hold = false;
  /** Everything written, as read at each write's completion (latin1). */
  out = '';
  /** Writes started and not completed. */
  readonly held: { data: Uint8Array | readonly Uint8Array[]; target: StreamWriteTarget }[] = [];
  private readonly input: string[] = [];
  private reader: StreamRecvTarget | null = null;

  feed(text: string): void {
    const reader = this.reader;
    if (reader === null) {
      this.input.push(text);
      return;
    }
    this.reader = null;
    queueMicrotask(() => reader.onRecv(chunk(text), undefined));
  }

  recvTo(target: StreamRecvTarget): void {
    const text = this.input.shift();
    if (text === undefined) this.reader = target;
    else queueMicrotask(() => target.onRecv(chunk(text), undefined));
  }

  writeTo(data: Uint8Array | readonly Uint8Array[], target: StreamWriteTarget): void {
    this.held.push({ data, target });
    if (!this.hold) this.complete();
  }

  /**
   * Completes the oldest write: its bytes are read now (also for a write that fails: the kernel
   * may read a cancelled write's memory until its completion says it stopped).
   */
  complete(error?: Error): void {
    const w = this.held.shift()!;
    queueMicrotask(() => {
      for (const b of w.data instanceof Uint8Array ? [w.data] : w.data)
        this.out += Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
      w.target.onWritten(error as never);
    });
  }

  async shutdown(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    const reader = this.reader;
    this.reader = null;
    if (reader !== null) queueMicrotask(() => reader.onRecv(null, undefined));
  }
  setNoDelay(): void {}
}

function chunk(text: string): StreamChunk {
  return { bytes: Buffer.from(text, 'latin1'), release() {} };
}

/** Waits (microtask and macrotask turns, no timer) until `done()`, or fails after `turns`. */
async function until(done: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) await new Promise((r) => setImmediate(r));
  expect(done()).toBe(true);
}

describe('write slab: a lent head stays intact until its write completes', () => {
  it('a held write reads its head byte-exact after other answers went through the slab many times', async () => {
    const server = new HttpServer({ call: (req) => answer(req.target) }, { date: false });
    const slow = new HeldStream();
    slow.hold = true;
    server.attach(slow);
    slow.feed(get('/held-answer'));
    await until(() => slow.held.length === 1);

    // Another connection's answers, one after the other: many slabs' worth of heads.
    const busy = new HeldStream();
    server.attach(busy);
    const made = writeSlabStats.lent;
    let want = '';
    for (let i = 0; i < 400; i++) {
      const target = `/busy/${i}/${'x'.repeat(i % 50)}`;
      want += expected(target);
      busy.feed(get(target));
      await until(() => busy.out.length === want.length);
    }
    expect(busy.out).toBe(want);
    // They were lent from the slab (not their own buffers).
    expect(writeSlabStats.lent - made).toBeGreaterThanOrEqual(400);

    // Now the held write's memory is read, as the kernel would once the peer reads.
    slow.complete();
    await until(() => slow.out.length > 0);
    expect(slow.out).toBe(expected('/held-answer'));
    await slow.close();
    await busy.close();
    await server.close();
  });

  it('pipelined answers held back and written together are byte-exact while the slab turns over', async () => {
    const server = new HttpServer({ call: (req) => answer(req.target) }, { date: false });
    const slow = new HeldStream();
    slow.hold = true;
    server.attach(slow);
    const targets = Array.from({ length: 20 }, (_, i) => `/pipelined/${i}`);
    slow.feed(targets.map(get).join(''));
    await until(() => slow.held.length === 1);
    const busy = new HeldStream();
    server.attach(busy);
    let want = '';
    for (let i = 0; i < 300; i++) {
      const target = `/other/${i}`;
      want += expected(target);
      busy.feed(get(target));
      await until(() => busy.out.length === want.length);
    }
    // The rest of the pipelined answers were waiting behind the held write; complete them all.
    for (let turn = 0; turn < 100 && slow.out.length < targets.map(expected).join('').length; turn++) {
      if (slow.held.length > 0) slow.complete();
      await new Promise((r) => setImmediate(r));
    }
    expect(slow.out).toBe(targets.map(expected).join(''));
    await slow.close();
    await busy.close();
    await server.close();
  });

  it('large pieces are not lent (a stalled write pins at most one slab)', () => {
    const before = writeSlabStats.unlent;
    const big = lendBytes(64 * 1024);
    expect(big.byteLength).toBe(64 * 1024);
    expect(writeSlabStats.unlent).toBe(before + 1);
  });
});

/** The head HttpClient writes for a GET with these fields (the encoder's string form). */
function requestHead(method: string, target: string, fields: Record<string, string>, length = 0): string {
  const framing = length > 0 ? 'length' : 'none';
  return encodeRequestHead(method, target, new HttpHeaders(fields), framing, length, { authority: 't' });
}

const ANSWER_204 = 'HTTP/1.1 204 No Content\r\n\r\n';

/**
 * Another client's `n` exchanges over a stream double that completes writes at once: each
 * request head is a piece of the slab (given back before the next is lent).
 */
async function churnClient(n: number): Promise<void> {
  const stream = new HeldStream();
  const client = new HttpClient(stream, { authority: 't' });
  let want = '';
  for (let i = 0; i < n; i++) {
    const target = `/churn/${i}/${'c'.repeat(i % 40)}`;
    want += requestHead('GET', target, { 'x-id': target });
    stream.feed(ANSWER_204);
    const res = await client.send(createRequest('GET', target, { headers: { 'x-id': target } }));
    expect(res.status).toBe(204);
  }
  expect(stream.out).toBe(want);
  await client.close();
}

describe('write slab: a client request head stays intact until its write completes', () => {
  it('a held bodiless request reads its head byte-exact after other requests turned the slab over', async () => {
    const stream = new HeldStream();
    stream.hold = true;
    const client = new HttpClient(stream, { authority: 't' });
    const fields = { 'x-id': '/held-request', 'x-pad': 'p'.repeat(200) };
    const sent = client.send(createRequest('GET', '/held-request', { headers: fields }));
    await until(() => stream.held.length === 1);
    const lent = writeSlabStats.lent;
    const reused = writeSlabStats.reused;
    await churnClient(400);
    expect(writeSlabStats.lent - lent).toBeGreaterThanOrEqual(400);
    expect(writeSlabStats.reused).toBeGreaterThan(reused);
    stream.feed(ANSWER_204);
    stream.complete();
    expect((await sent).status).toBe(204);
    expect(stream.out).toBe(requestHead('GET', '/held-request', fields));
    expect(client.reusable).toBe(true);
    await client.close();
  });

  it('a held request with a body (head and body in one write) reads its head byte-exact', async () => {
    const stream = new HeldStream();
    stream.hold = true;
    const client = new HttpClient(stream, { authority: 't' });
    const fields = { 'x-id': '/held-upload' };
    const body = 'b'.repeat(300);
    const sent = client.send(
      createRequest('POST', '/held-upload', { headers: fields, body: fixedBody(body) }),
    );
    await until(() => stream.held.length === 1);
    await churnClient(400);
    stream.feed(ANSWER_204);
    stream.complete();
    expect((await sent).status).toBe(204);
    expect(stream.out).toBe(requestHead('POST', '/held-upload', fields, body.length) + body);
    await client.close();
  });

  it('a held write cut by a close keeps its head until its completion reports the cancel', async () => {
    const stream = new HeldStream();
    stream.hold = true;
    const client = new HttpClient(stream, { authority: 't' });
    const fields = { 'x-id': '/cut-request', 'x-pad': 'q'.repeat(100) };
    const sent = client.send(createRequest('GET', '/cut-request', { headers: fields }));
    const failed = sent.then(
      () => null,
      (e: unknown) => e,
    );
    await until(() => stream.held.length === 1);
    // The connection ends while its write is still in the kernel's hands.
    await client.close();
    await churnClient(400);
    // The write's completion: cancelled, its memory read up to now.
    stream.complete(Object.assign(new Error('write cancelled'), { code: 'ECANCELED' }));
    expect(await failed).toBeInstanceOf(Error);
    expect(stream.out).toBe(requestHead('GET', '/cut-request', fields));
  });

  it('a head never written (the body failed before its first chunk) is given back', async () => {
    const stream = new HeldStream();
    const client = new HttpClient(stream, { authority: 't' });
    // Counted over all slabs: the head may be lent from a new slab when the current one is full.
    const lent = writeSlabStats.lent;
    const outstanding = writeSlabStats.lent - writeSlabStats.givenBack;
    const failing: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(new Error('source failed')),
      }),
    };
    await expect(
      client.send(createRequest('POST', '/never', { body: streamBody(failing) })),
    ).rejects.toThrow();
    expect(stream.held.length).toBe(0);
    expect(writeSlabStats.lent).toBeGreaterThan(lent);
    expect(writeSlabStats.lent - writeSlabStats.givenBack).toBe(outstanding);
  });
});

const drivers = await availableDrivers();

/** Body bytes of each answer to the client that stops reading: head + body fit one lent piece. */
const SLOW_BODY = 3900;
/** Requests the stopped client sends per round: their answers fill one held-back write (< 64 KiB). */
const ROUND = 16;

function slowAnswerBody(target: string): string {
  return target.repeat(Math.ceil(SLOW_BODY / target.length)).slice(0, SLOW_BODY);
}

describe.each(drivers)('write slab on the wire (driver %s)', (driver) => {
  let s: InProcess;
  /** Answers made for the stopped client; `handledWake` runs at each. */
  let handled = 0;
  let handledWake: (() => void) | null = null;
  beforeAll(async () => {
    s = await startServer(
      driver,
      // The stopped client's write waits as long as the test needs (the test's timeout bounds it).
      { date: false, timeouts: { write: 600_000 } },
      {
        call(req) {
          if (req.target.startsWith('/slow/')) {
            handled++;
            handledWake?.();
            return createResponse(200, {
              headers: { 'x-id': req.target },
              body: fixedBody(slowAnswerBody(req.target)),
            });
          }
          return answer(req.target);
        },
      },
    );
  });
  afterAll(async () => {
    await s.stop();
  });

  it('answers whose write waits for a client that stopped reading arrive byte-exact after another client wrapped the slab many times', async () => {
    // A client that reads nothing until the end: rounds of pipelined requests, each answered in
    // one write of lent pieces (heads with their bodies copied behind), until the kernel's buffers
    // are full and a write of lent pieces stays in flight (the server does not see the
    // connection idle even after other requests went round).
    const slow = new Peer(await connect(s.port));
    slow.socket.pause();
    const churn = new Peer(await connect(s.port));
    try {
      await stopAndChurn(slow, churn);
    } finally {
      slow.socket.destroy();
      churn.socket.destroy();
    }
  }, 120_000);

  async function stopAndChurn(slow: Peer, churn: Peer): Promise<void> {
    let want = 0;
    const wanted: string[] = [];
    let churned = 0;
    /**
     * Another client's `n` requests, each answered before the next is sent (its piece is given
     * back before the next is lent: pipelined answers crossing a slab's end would leave that slab
     * to the GC instead of reusing it).
     */
    const churnRequests = async (n: number) => {
      for (let k = 0; k < n; k++) {
        const target = `/churn/${churned++}`;
        wanted.push(expected(target));
        want += wanted[wanted.length - 1]!.length;
        churn.socket.write(get(target));
        await churn.until(() => churn.bytes >= want);
      }
    };
    const slowWanted: string[] = [];
    let stalled = false;
    for (let round = 0; round < 2000 && !stalled; round++) {
      const targets = Array.from({ length: ROUND }, (_, k) => `/slow/${round}/${k}`);
      for (const t of targets) {
        const body = slowAnswerBody(t);
        slowWanted.push(`HTTP/1.1 200 OK\r\nx-id: ${t}\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
      const goal = handled + ROUND;
      slow.socket.write(targets.map(get).join(''));
      while (handled < goal) {
        await new Promise<void>((r) => {
          handledWake = r;
        });
        handledWake = null;
      }
      // Other answers go round the server twice: a write the kernel took at once has completed by
      // then, so a connection still not idle has its write waiting for the stopped reader.
      await churnRequests(1);
      await churnRequests(1);
      stalled = s.server.idleConnections < 2;
    }
    expect(stalled).toBe(true);

    // Now heads enough to wrap the 16 KiB slab several times, while that write waits.
    const reused = writeSlabStats.reused;
    const lent = writeSlabStats.lent;
    await churnRequests(600);
    expect(writeSlabStats.lent - lent).toBeGreaterThanOrEqual(600);
    expect(writeSlabStats.reused).toBeGreaterThan(reused);
    expect(churn.text()).toBe(wanted.join(''));

    // The stopped client reads everything: the held write's lent bytes are read only now.
    const slowText = slowWanted.join('');
    slow.socket.resume();
    await slow.until(() => slow.bytes >= slowText.length);
    const text = slow.text();
    expect(text.length).toBe(slowText.length);
    // Compared answer by answer, so a failure names the first damaged one, not 10 MiB of text.
    let at = 0;
    for (const a of slowWanted) {
      if (text.slice(at, at + a.length) !== a) {
        expect(text.slice(at, at + a.length)).toBe(a);
        break;
      }
      at += a.length;
    }
    expect(at).toBe(slowText.length);
  }

  it('a request head whose write waits for an upstream that stopped reading arrives byte-exact after other exchanges wrapped the slab', async () => {
    // The upstream: accepts, reads nothing until the end, answers each request with a 204.
    const accepted: net.Socket[] = [];
    const upstream = net.createServer({ pauseOnConnect: true }, (socket) => {
      socket.on('error', () => {});
      accepted.push(socket);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as net.AddressInfo).port;
    const stream = await connectTo(driver, port);
    const client = new HttpClient(stream, { authority: 't', writeTimeout: 0, responseTimeout: 0 });
    const churnStream = await connectTo(driver, s.port);
    const churn = new HttpClient(churnStream, { authority: 't' });
    let churned = 0;
    /** `n` exchanges of another client with the in-process server: two lent heads each. */
    const churnExchanges = async (n: number) => {
      for (let k = 0; k < n; k++) {
        const target = `/churn-client/${churned++}`;
        const res = await churn.send(createRequest('GET', target));
        expect(await readTextOf(res.body)).toBe(target);
      }
    };
    try {
      await until(() => accepted.length === 1);
      const peer = accepted[0]!;
      // Rounds of bodiless requests with heads just under a lent piece's limit, each answered, until
      // one's write stays in flight: the kernel took less than was written (its buffers are full).
      let want = '';
      let pending: Promise<unknown> | null = null;
      for (let round = 0; round < 5000 && pending === null; round++) {
        const target = `/stalled/${round}`;
        const fields = { 'x-id': target, 'x-pad': String(round % 10).repeat(3400) };
        want += requestHead('GET', target, fields);
        const sent = client.send(createRequest('GET', target, { headers: fields }));
        peer.write(ANSWER_204);
        let done = false;
        void sent.then(() => {
          done = true;
        });
        // Most rounds end within a few turns; one that does not gets two round trips of another
        // connection, by which a write the kernel took at once has completed.
        for (let turn = 0; turn < 20 && !done; turn++) await new Promise((r) => setImmediate(r));
        if (!done) await churnExchanges(2);
        // Less taken than written: the write is in flight with bytes the kernel has not read.
        if (!done && sentBytes(stream) < want.length) pending = sent;
        else await sent;
      }
      expect(pending).not.toBeNull();

      // Heads enough to wrap the 16 KiB slab several times while that write waits.
      const reused = writeSlabStats.reused;
      const lent = writeSlabStats.lent;
      await churnExchanges(300);
      expect(writeSlabStats.lent - lent).toBeGreaterThanOrEqual(600);
      expect(writeSlabStats.reused).toBeGreaterThan(reused);

      // The upstream reads everything now: the waiting write's lent bytes are read only now.
      const chunks: Buffer[] = [];
      let got = 0;
      let wake: (() => void) | null = null;
      peer.on('data', (d: Buffer) => {
        chunks.push(d);
        got += d.length;
        wake?.();
      });
      peer.resume();
      while (got < want.length) {
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = null;
      }
      expect((await pending)!).toMatchObject({ status: 204 });
      const text = Buffer.concat(chunks).toString('latin1');
      // Compared request by request, so a failure names the first damaged head.
      const heads = want.split('\r\n\r\n').slice(0, -1);
      let at = 0;
      for (const h of heads) {
        const one = `${h}\r\n\r\n`;
        if (text.slice(at, at + one.length) !== one) {
          expect(text.slice(at, at + one.length)).toBe(one);
          break;
        }
        at += one.length;
      }
      expect(text).toBe(want);
    } finally {
      await client.close().catch(() => {});
      await churn.close().catch(() => {});
      for (const a of accepted) a.destroy();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  }, 120_000);
});

async function readTextOf(body: AsyncIterable<Uint8Array>): Promise<string> {
  let text = '';
  for await (const c of body) text += Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1');
  return text;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A raw client: counts what arrived; with `step`, pauses each time another step's bytes came. */
class Peer {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  step = 0;
  private wake: (() => void) | null = null;
  constructor(readonly socket: net.Socket) {
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      const was = this.bytes;
      this.bytes += d.length;
      if (this.step > 0 && Math.floor(was / this.step) !== Math.floor(this.bytes / this.step)) socket.pause();
      this.wake?.();
    });
    socket.on('close', () => this.wake?.());
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
  /** Resolves once `done()` holds, looked at whenever bytes arrive (the test's timeout bounds it). */
  async until(done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.socket.destroyed) throw new Error(`connection closed after ${this.bytes} bytes`);
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = null;
    }
  }
}
