/**
 * In-ring TLS under the receive budgets (@loch/uring-runtime, "Receive budgets"): a Python peer
 * floods TLS connections whose readers are blocked (they keep every chunk they got, like a proxy
 * whose upstream write waits), and what the server holds stays bounded: the plaintext the readers
 * hold within the stream and worker caps, and the ciphertext a session keeps while it waits for
 * plaintext buffers within a buffer's worth (its recv stops; the peer meets TCP backpressure).
 * Liveness: a flooded stream reads on once its reader does. io_uring only (the ring carries TLS).
 */
import type { ChildProcess } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TlsServerContext, type TlsStream, tlsAccept } from '@loch/tls';
import { createRuntime, type RecvChunk, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { flood } from './flood.js';
import { eventually, nodeClient, roundTrip, uringTest } from './harness.js';

const test = await uringTest();
const KIB = 1024;
const MIB = KIB * KIB;

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('in-ring TLS under the receive budgets', () => {
  let pki: TestPki;
  let runtime: Runtime | undefined;
  let child: ChildProcess | undefined;
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.remove());
  afterEach(async () => {
    child?.kill('SIGKILL');
    child = undefined;
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await runtime?.close();
    runtime = undefined;
  });

  /**
   * Accepts `n` flooded TLS connections whose readers read on but keep every chunk (never
   * released) until `drain()`, then release them at once.
   */
  async function acceptFlooded(rt: Runtime, n: number) {
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => listener.close());
    const port = (listener.localAddress as { port: number }).port;
    const flooding = flood(port, n, pki.caFile);
    // Every handshake first (the flooder sends once all are done).
    const streams: TlsStream[] = [];
    for (let i = 0; i < n; i++) {
      const stream = await tlsAccept(await listener.accept(), context);
      expect(stream.recordLayer).toBe('ring');
      streams.push(stream);
      closers.push(() => stream.close());
    }
    child = await flooding;
    let draining = false;
    const kept: RecvChunk[] = [];
    const received = streams.map(() => 0);
    streams.forEach((stream, i) => {
      void (async () => {
        for (;;) {
          const next = await stream.recv().catch(() => null);
          if (next === null) return;
          received[i]! += next.bytes.byteLength;
          if (draining) next.release();
          else kept.push(next);
        }
      })();
    });
    const drain = () => {
      draining = true;
      for (const chunk of kept.splice(0)) chunk.release();
    };
    return { streams, received, drain, context, port };
  }

  test('a session waiting for plaintext buffers stops its recv: the flood waits in TCP, and the stream reads on later', async () => {
    // 8 plaintext buffers of 16 KiB for 4 flooded streams whose readers keep every chunk: the
    // pool empties at once, and then every session waits for a buffer while its peer sends on.
    runtime = await createRuntime({
      driver: 'uring',
      log: () => undefined,
      uring: { plainCount: 8, plainSize: 16 * KIB },
    });
    const rssBefore = process.memoryUsage().rss;
    const { received, drain } = await acceptFlooded(runtime, 4);
    // The flood goes on for a second (the peer offers hundreds of MiB a second on loopback)...
    await tick(1000);
    // The pool, plus one buffer of its own per stream: a reader holding none gets its records
    // decrypted into the (64 KiB) provided buffer their ciphertext came in when the pool is out.
    expect(received.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(8 * 16 * KIB + 4 * 64 * KIB);
    // ...and the server's memory follows the pool, not the flood: without the pause every byte
    // sent is copied into a waiting session.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MIB);

    // Every stream reads on once its reader does: 4 MiB more each, through paused recvs resumed.
    const before = [...received];
    drain();
    expect(await eventually(() => received.every((n, i) => n - before[i]! >= 4 * MIB), 15_000)).toBe(true);
    // (Before the pause: 1.1 GiB more by now, and the other streams starved behind the first.)
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * MIB);
  }, 30_000);

  test('flooded streams whose readers keep their chunks stay within the stream and worker caps; another connection is served', async () => {
    const STREAM_CAP = 256 * KIB;
    const WORKER_CAP = 2 * MIB;
    runtime = await createRuntime({
      driver: 'uring',
      log: () => undefined,
      buffers: { streamBytes: STREAM_CAP, workerBytes: WORKER_CAP },
    });
    const rt = runtime;
    // 12 flooded streams want 3 MiB at their caps, more than the worker's 2 MiB.
    let maxStream = 0;
    let maxWorker = 0;
    const { streams, received, drain, context } = await acceptFlooded(rt, 12);
    const sample = () => {
      const s = rt.bufferStats()!;
      maxWorker = Math.max(maxWorker, s.held, s.peakHeld);
      maxStream = Math.max(maxStream, s.peakStreamHeld);
    };
    for (let i = 0; i < 50; i++) {
      sample();
      await tick(20);
    }
    // (Before TLS counted in the budgets: one stream held 6 MiB, the thread 8 MiB, the whole
    // plaintext pool.)
    expect(maxStream).toBeLessThanOrEqual(STREAM_CAP);
    expect(maxWorker).toBeLessThanOrEqual(WORKER_CAP);
    // The budget was really reached: streams stopped for room, the flood waits in TCP.
    expect(rt.bufferStats()!.stops).toBeGreaterThan(0);
    // A new TLS connection is served meanwhile.
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => listener.close());
    const port = (listener.localAddress as { port: number }).port;
    const echoed = (async () => {
      const stream = await tlsAccept(await listener.accept(), context);
      const chunk = await stream.recv();
      await stream.writeAll(new Uint8Array(chunk!.bytes));
      chunk!.release();
      await stream.close();
    })();
    const socket = await nodeClient(port, { ca: pki.ca, servername: 'localhost' });
    expect((await roundTrip(socket, Buffer.from('ping'))).toString()).toBe('ping');
    socket.destroy();
    await echoed;
    sample();
    expect(maxStream).toBeLessThanOrEqual(STREAM_CAP);
    expect(maxWorker).toBeLessThanOrEqual(WORKER_CAP);

    // A flooded stream reads on once its reader does: 4 MiB more, beyond every cap.
    const before = received[0]!;
    drain();
    expect(await eventually(() => received[0]! - before >= 4 * MIB, 15_000)).toBe(true);
    expect(streams.length).toBe(12);
  }, 30_000);

  test('past the worker cap (plain streams keep their chunks), a TLS stream holding at most one chunk reads on and a new TLS connection is served', async () => {
    // Plain streams within their base always read, so idle ones that each keep a chunk can hold
    // more than the worker's cap; TLS then must not wait for held bytes to come down (they may
    // never: nothing obliges those readers to let go).
    const WORKER_CAP = 256 * KIB;
    runtime = await createRuntime({
      driver: 'uring',
      log: () => undefined,
      buffers: { streamBytes: 128 * KIB, workerBytes: WORKER_CAP },
      uring: { plainCount: 64, plainSize: 16 * KIB },
    });
    const rt = runtime;
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const tlsListener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => tlsListener.close());
    const tlsPort = (tlsListener.localAddress as { port: number }).port;
    // An echo server whose reader gives each chunk back once echoed (holds at most one).
    void (async () => {
      for (;;) {
        const raw = await tlsListener.accept().catch(() => null);
        if (raw === null) return;
        void (async () => {
          const stream = await tlsAccept(raw, context, { plainHttp: 'hand-over' }).catch(async (error) => {
            // Plain HTTP: answer 400 naming the request line the ring handed over.
            const e = error as {
              received?: Uint8Array;
              stream?: { writeAll(b: Uint8Array): Promise<unknown>; close(): Promise<unknown> };
            };
            const line = Buffer.from(e.received ?? [])
              .toString()
              .split('\r\n')[0]!;
            await e.stream?.writeAll(
              Buffer.from(
                `HTTP/1.1 400 Bad Request\r\ncontent-length: ${line.length}\r\nconnection: close\r\n\r\n${line}`,
              ),
            );
            await e.stream?.close();
            return null;
          });
          if (stream === null) return;
          closers.push(() => stream.close());
          for (;;) {
            const chunk = await stream.recv().catch(() => null);
            if (chunk === null) break;
            await stream.writeAll(new Uint8Array(chunk.bytes)).catch(() => undefined);
            chunk.release();
          }
          await stream.close().catch(() => undefined);
        })();
      }
    })();
    // A bounded wait: a hang fails the test instead of the run.
    const within = <T>(p: Promise<T>, what: string): Promise<T> =>
      Promise.race([
        p,
        tick(10_000).then(() => {
          throw new Error(`${what}: no answer in 10 s`);
        }),
      ]);
    /** Sends `data` on a TLS client and waits for the echo of all of it. */
    const echoOnce = (socket: TLSSocket, data: Buffer): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const parts: Buffer[] = [];
        let got = 0;
        const onData = (b: Buffer) => {
          parts.push(b);
          got += b.byteLength;
          if (got >= data.byteLength) {
            socket.off('data', onData);
            socket.off('error', reject);
            resolve(Buffer.concat(parts));
          }
        };
        socket.on('data', onData);
        socket.on('error', reject);
        socket.write(data);
      });
    // A TLS keep-alive client from before the plain streams fill the thread.
    const early = await within(
      nodeClient(tlsPort, { ca: pki.ca, servername: 'localhost' }),
      'first handshake',
    );
    closers.push(async () => early.destroy());
    const message = Buffer.alloc(3000, 0x61);
    expect((await within(echoOnce(early, message), 'first echo')).equals(message)).toBe(true);

    // 24 plain connections whose readers keep every chunk: 4 flood, 20 send 48 KiB each. The
    // flooders grow until the share is held (so the kernel's ring is empty), the others read
    // within their base whatever the thread holds (so held passes the worker cap).
    const plain = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => plain.close());
    const plainPort = (plain.localAddress as { port: number }).port;
    const kept: RecvChunk[] = [];
    closers.push(async () => {
      for (const chunk of kept.splice(0)) chunk.release();
    });
    const clients: Socket[] = [];
    closers.push(async () => {
      for (const c of clients) c.destroy();
    });
    for (let i = 0; i < 24; i++) {
      const client = netConnect(plainPort, '127.0.0.1');
      client.on('error', () => undefined);
      clients.push(client);
      // The first 4 flood (they take the share and the kernel's ring), the rest send one piece.
      client.write(Buffer.alloc(i < 4 ? MIB : 48 * KIB, 0x62));
      const stream = await plain.accept();
      closers.push(() => stream.close());
      void (async () => {
        for (;;) {
          const chunk = await stream.recv().catch(() => null);
          if (chunk === null) return;
          kept.push(chunk);
        }
      })();
      // Each flooder in turn, until it stopped for room: the first ones' growth takes the kernel's ring.
      if (i < 4) expect(await eventually(() => rt.bufferStats()!.waiting > i, 10_000)).toBe(true);
    }
    expect(await eventually(() => rt.bufferStats()!.held > WORKER_CAP, 10_000)).toBe(true);
    // The kernel's ring is empty: the share (192 KiB) lets it hold 3 buffers, and all are out.
    expect(rt.bufferStats()!.buffersInUse).toBeGreaterThanOrEqual(3);

    // The early TLS stream's reader holds at most one chunk: it keeps being served, request
    // after request (each plaintext buffer it gives back must come back to the ring).
    for (let i = 0; i < 40; i++) {
      expect((await within(echoOnce(early, message), `echo ${i} on the early stream`)).equals(message)).toBe(
        true,
      );
    }
    // A new TLS connection completes its handshake and is served.
    const late = await within(nodeClient(tlsPort, { ca: pki.ca, servername: 'localhost' }), 'new handshake');
    closers.push(async () => late.destroy());
    for (let i = 0; i < 10; i++) {
      expect((await within(echoOnce(late, message), `echo ${i} on the new stream`)).equals(message)).toBe(
        true,
      );
    }
    // Plain HTTP to the TLS port still gets its 400: the bytes a heap read took are handed over.
    const plainAnswer = new Promise<string>((resolve) => {
      const s = netConnect(tlsPort, '127.0.0.1');
      let text = '';
      s.on('data', (b: Buffer) => {
        text += b.toString();
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
      s.write('GET /plain HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    expect(await within(plainAnswer, 'plain HTTP answer')).toMatch(
      /^HTTP\/1.1 400[\s\S]*GET \/plain HTTP\/1.1$/,
    );
    expect(rt.bufferStats()!.held).toBeGreaterThan(WORKER_CAP);
  }, 60_000);
});
