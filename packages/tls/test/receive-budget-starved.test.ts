/**
 * In-ring TLS: a stream's cap holds while its session waits for plaintext buffers (issue 16).
 * A session starved of plaintext buffers keeps the ciphertext it received; when its reader
 * lets go of its chunks, the stream's next recv may take the allowance those chunks freed, and
 * the ciphertext kept before it becomes plaintext on top once buffers come back. The ring
 * counts what such a session holds as taken by the next recv (native/src/ring_tls.cc,
 * ArmTlsRecv), so the stream never holds more than its cap. And whatever flooded readers keep, a
 * new connection's request is decrypted: a reader holding no plaintext gets it in the buffer its
 * ciphertext came in when the pool has none for it, and the pool's last buffers never go to a
 * flooded stream's backlog (FeedConn). io_uring only (the ring carries TLS).
 */
import type { ChildProcess } from 'node:child_process';
import { TlsServerContext, type TlsStream, tlsAccept } from '@loch/tls';
import { createRuntime, type RecvChunk, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { flood } from './flood.js';
import { nodeClient, roundTrip, uringTest } from './harness.js';

const test = await uringTest();
const KIB = 1024;

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('in-ring TLS: a starved session and its stream cap', () => {
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

  test('flooded streams whose readers let go of their chunks in bursts, the plaintext pool scarce: no stream holds more than its cap', async () => {
    // 8 plaintext buffers of 16 KiB for 6 flooded streams: sessions wait for buffers most of the
    // time and keep ciphertext meanwhile (up to 64 KiB each). A 64 KiB cap per stream.
    const STREAM_CAP = 64 * KIB;
    runtime = await createRuntime({
      driver: 'uring',
      log: () => undefined,
      buffers: { streamBytes: STREAM_CAP, workerBytes: 2 * 1024 * KIB },
      uring: { plainCount: 8, plainSize: 16 * KIB },
    });
    const rt = runtime;
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => listener.close());
    const port = (listener.localAddress as { port: number }).port;
    const N = 6;
    const flooding = flood(port, N, pki.caFile);
    const streams: TlsStream[] = [];
    for (let i = 0; i < N; i++) {
      const stream = await tlsAccept(await listener.accept(), context);
      expect(stream.recordLayer).toBe('ring');
      streams.push(stream);
      closers.push(() => stream.close());
    }
    child = await flooding;
    // Each reader keeps its chunks (a proxy whose upstream write waits) and lets go of all of
    // them at once when it holds half its cap: its stream's next recv then has room while its
    // session may still hold ciphertext from before.
    let stopped = false;
    const kept: RecvChunk[][] = streams.map(() => []);
    const received = streams.map(() => 0);
    const readers = streams.map(async (stream, i) => {
      let holding = 0;
      while (!stopped) {
        const chunk = await stream.recv().catch(() => null);
        if (chunk === null) return;
        received[i]! += chunk.bytes.byteLength;
        kept[i]!.push(chunk);
        holding += chunk.bytes.byteLength;
        if (holding >= STREAM_CAP / 2) {
          for (const c of kept[i]!.splice(0)) c.release();
          holding = 0;
        }
      }
    });
    let maxStream = 0;
    for (let i = 0; i < 100; i++) {
      maxStream = Math.max(maxStream, rt.bufferStats()!.peakStreamHeld);
      await tick(20);
    }
    stopped = true;
    // The flood went on (every stream read well past its cap) and the sessions did starve.
    for (const n of received) expect(n).toBeGreaterThan(4 * STREAM_CAP);
    // (Before the ring counted a starved session's ciphertext: 80 KiB in one stream.)
    expect(maxStream).toBeLessThanOrEqual(STREAM_CAP);
    for (const chunks of kept) for (const c of chunks.splice(0)) c.release();
    child.kill('SIGKILL');
    await Promise.all(readers.map((r) => r.catch(() => undefined)));
  }, 30_000);

  test('flooded readers that let go of everything at once, then keep what they get (a slow upstream): a new connection is answered', async () => {
    // 16 plaintext buffers of 16 KiB (the last 2 the reserve) for 6 flooded streams.
    runtime = await createRuntime({
      driver: 'uring',
      log: () => undefined,
      buffers: { streamBytes: 256 * KIB, workerBytes: 2 * 1024 * KIB },
      uring: { plainCount: 16, plainSize: 16 * KIB },
    });
    const rt = runtime;
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => listener.close());
    const port = (listener.localAddress as { port: number }).port;
    const N = 6;
    const flooding = flood(port, N, pki.caFile);
    const streams: TlsStream[] = [];
    for (let i = 0; i < N; i++) {
      const stream = await tlsAccept(await listener.accept(), context);
      streams.push(stream);
      closers.push(() => stream.close());
    }
    child = await flooding;
    // The readers keep every chunk: the pool runs out and the sessions keep a backlog each.
    const kept: RecvChunk[] = [];
    let draining = false;
    const readers = streams.map(async (stream) => {
      for (;;) {
        const chunk = await stream.recv().catch(() => null);
        if (chunk === null) return;
        if (draining) chunk.release();
        else kept.push(chunk);
      }
    });
    for (let i = 0; i < 50 && kept.length < 14; i++) await tick(20);
    expect(kept.length).toBeGreaterThanOrEqual(14);
    await tick(200);
    // Every reader lets go of all it holds at once (their upstream writes went out), then keeps
    // what comes next (the next writes wait behind a slow upstream). Before, streams whose reader
    // held none took the reserve with their backlogs, and a new request got no buffer at all.
    for (const chunk of kept.splice(0)) chunk.release();
    await tick(300);
    const answered = (async () => {
      const stream = await tlsAccept(await listener.accept(), context);
      closers.push(() => stream.close());
      const chunk = await stream.recv();
      await stream.writeAll(new Uint8Array(chunk!.bytes));
      chunk!.release();
      await stream.close();
    })();
    const socket = await nodeClient(port, { ca: pki.ca, servername: 'localhost' });
    // A bound for liveness (before: never answered), not a latency target.
    const answer = await Promise.race([
      roundTrip(socket, Buffer.from('ping')).then((b) => b.toString()),
      tick(5000).then(() => 'no answer in 5 s'),
    ]);
    socket.destroy();
    expect(answer).toBe('ping');
    await answered;
    draining = true;
    for (const chunk of kept.splice(0)) chunk.release();
    child.kill('SIGKILL');
    await Promise.all(readers.map((r) => r.catch(() => undefined)));
  }, 30_000);
});
