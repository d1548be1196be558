/**
 * What a burst of head deadlines costs the server, counted rather than timed (issue 16's
 * slowloris: 10,000 heads armed within a second expire within a second, and every other
 * connection of the worker waits behind that work): many connections each send one byte of a
 * head and stop; their deadlines expire together. Each is answered 408 and closed with one
 * HttpTimeoutError made (a second one per connection doubled the stack captures of the burst),
 * the 408 answer is made once for the burst, not once per connection, and the expiries are
 * spread over turns of the event loop (at most a batch per pass) so I/O runs between them.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { H1ServerConnection } from '../src/h1/server-connection.js';
import { HttpServer } from '../src/server.js';
import { availableDrivers, type InProcess, startServer } from './server-harness.js';

/** HttpTimeoutErrors and plain answers made, counted by the mocks below. */
const made = vi.hoisted(() => ({ timeouts: 0, answers: 0 }));

vi.mock('../src/errors.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/errors.js')>();
  class CountedTimeoutError extends real.HttpTimeoutError {
    constructor(...args: ConstructorParameters<typeof real.HttpTimeoutError>) {
      super(...args);
      made.timeouts++;
    }
  }
  return { ...real, HttpTimeoutError: CountedTimeoutError };
});

vi.mock('../src/internal/answers.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/internal/answers.js')>();
  return {
    ...real,
    plainResponse: (status: number, code: string) => {
      made.answers++;
      return real.plainResponse(status, code);
    },
  };
});

const drivers = await availableDrivers();
/** Connections whose heads expire together. */
const N = 200;
/** The sweep's batch (EXPIRE_BATCH in src/server.ts). */
const BATCH = 32;
/** Idle keep-alive connections beside the burst. */
const IDLE = 1000;

/** Opens `n` connections that each send one byte of a head; resolves when all were closed, with what each got. */
async function oneByteHeads(port: number, n: number): Promise<string[]> {
  const answers: string[] = [];
  const ends: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.setEncoding('latin1');
    answers.push('');
    socket.on('data', (d: string) => {
      answers[i] += d;
    });
    ends.push(new Promise<void>((r) => socket.on('close', () => r())));
    socket.once('connect', () => socket.write('G'));
  }
  await Promise.all(ends);
  return answers;
}

describe.each(drivers)('a burst of head deadlines (driver %s)', (driver) => {
  let s: InProcess | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it(`${N} heads cut together: one HttpTimeoutError each, one 408 answer made for all`, async () => {
    made.timeouts = 0;
    made.answers = 0;
    s = await startServer(driver, { timeouts: { head: 300, idle: 30_000 } });
    const answers = await oneByteHeads(s.port, N);
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 408 /);
    expect(made.timeouts).toBe(N);
    expect(made.answers).toBe(1);
  });

  it(`${N} heads cut together are expired at most ${BATCH} per pass, with I/O turns between passes`, async () => {
    s = await startServer(driver, { timeouts: { head: 300, idle: 30_000 } });
    // Expiries between two consecutive check phases of the event loop (a setImmediate chain):
    // one pass of the sweep's, plus the tick's own pass when its timer fired in that turn.
    const perTurn: number[] = [0];
    const real = H1ServerConnection.prototype.expire;
    const spy = vi.spyOn(H1ServerConnection.prototype, 'expire').mockImplementation(function (
      this: H1ServerConnection<unknown>,
    ) {
      perTurn[perTurn.length - 1]!++;
      real.call(this);
    });
    let ticking = true;
    const tick = () => {
      if (!ticking) return;
      perTurn.push(0);
      setImmediate(tick);
    };
    setImmediate(tick);
    try {
      const answers = await oneByteHeads(s.port, N);
      for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      ticking = false;
      spy.mockRestore();
    }
    const busy = perTurn.filter((n) => n > 0);
    expect(busy.reduce((a, b) => a + b, 0)).toBe(N);
    expect(Math.max(...busy)).toBeLessThanOrEqual(2 * BATCH);
    expect(busy.length).toBeGreaterThanOrEqual(Math.ceil(N / (2 * BATCH)));
  });

  it(`a burst behind ${IDLE} idle connections reads each deadline about once: passes go on where the last stopped`, async () => {
    s = await startServer(driver, { timeouts: { head: 300, idle: 30_000 } });
    const port = s.port;
    // Idle keep-alive connections first (the live set's order): every pass that started over
    // read their deadlines again.
    const idle: net.Socket[] = [];
    await Promise.all(
      Array.from({ length: IDLE }, () => {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => {});
        idle.push(socket);
        return new Promise<void>((answered) => {
          socket.once('connect', () => socket.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n'));
          socket.once('data', () => answered());
        });
      }),
    );
    // Counts reads of every live connection's deadline between the burst's first and last expiry.
    const live = (s.server as unknown as { live: Set<{ deadline: number }> }).live;
    let counting = false;
    let reads = 0;
    const watch = (c: { deadline: number }) => {
      // The connection's own getter (H1ServerConnection keeps the value in another field).
      const read = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(c), 'deadline')!.get!;
      Object.defineProperty(c, 'deadline', {
        get: () => {
          if (counting) reads++;
          return read.call(c);
        },
        configurable: true,
      });
    };
    for (const c of live) watch(c);
    const add = live.add.bind(live);
    live.add = (c) => {
      watch(c);
      return add(c);
    };
    const real = H1ServerConnection.prototype.expire;
    let expired = 0;
    const spy = vi.spyOn(H1ServerConnection.prototype, 'expire').mockImplementation(function (
      this: H1ServerConnection<unknown>,
    ) {
      counting = ++expired < N;
      real.call(this);
    });
    // Ticks of the sweep within the burst: each starts one pass over the live set.
    let ticks = 0;
    const onSweep = HttpServer.prototype.onSweep;
    const tickSpy = vi.spyOn(HttpServer.prototype, 'onSweep').mockImplementation(function (
      this: HttpServer<never>,
      now: number,
    ) {
      if (counting) ticks++;
      return onSweep.call(this, now);
    });
    try {
      const answers = await oneByteHeads(port, N);
      for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      spy.mockRestore();
      tickSpy.mockRestore();
      for (const socket of idle) socket.destroy();
    }
    expect(expired).toBe(N);
    // At most one read of each live connection per sweep over the set: the one the burst's
    // first pass started, and one per tick that fell within the burst.
    expect(reads).toBeLessThanOrEqual((ticks + 1) * (IDLE + N));
  });
});
