/**
 * Answers' heads are encoded into pieces of a reused per-thread write slab
 * (src/internal/write-slab.ts), lent to the write they go out in and given back only when that
 * write completed. Here: a write whose bytes are read late (a stream double that reads the lent
 * memory only when it completes the write, as the kernel does with a queued or partial send)
 * sees its head byte-exact while other connections' answers go through the slab many times over
 * (fails when pieces are given back at the start of their write); and on both runtime drivers,
 * answers written in one write of lent pieces to a client that stopped reading (the write waits
 * in the kernel, its bytes not yet copied) arrive byte-exact after another client's answers
 * wrapped the slab several times meanwhile (fails likewise).
 */
import * as net from 'node:net';
import { plainFacts } from '@loch/uring-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedBody } from '../src/body.js';
import { lendBytes, writeSlabStats } from '../src/internal/write-slab.js';
import { createResponse } from '../src/message.js';
import { HttpServer } from '../src/server.js';
import type { HttpStream, StreamChunk, StreamRecvTarget, StreamWriteTarget } from '../src/transport.js';
import { availableDrivers, type InProcess, startServer } from './server-harness.js';

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

  /** Completes the oldest write: its bytes are read now. */
  complete(): void {
    const w = this.held.shift()!;
    queueMicrotask(() => {
      for (const b of w.data instanceof Uint8Array ? [w.data] : w.data)
        this.out += Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
      w.target.onWritten(undefined);
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
});

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
