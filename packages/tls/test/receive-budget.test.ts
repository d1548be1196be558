/**
 * In-ring TLS under the receive budgets (@loch/uring-runtime, "Receive budgets"): a Python peer
 * floods TLS connections whose readers are blocked (they keep every chunk they got, like a proxy
 * whose upstream write waits), and what the server holds stays bounded: the plaintext the readers
 * hold within the stream and worker caps, and the ciphertext a session keeps while it waits for
 * plaintext buffers within a buffer's worth (its recv stops; the peer meets TCP backpressure).
 * Liveness: a flooded stream reads on once its reader does. io_uring only (the ring carries TLS).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TlsServerContext, type TlsStream, tlsAccept } from '@loch/tls';
import { createRuntime, type RecvChunk, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { driverCases, nodeClient, roundTrip } from './harness.js';

const uring = (await driverCases()).find((d) => d.name === 'uring')!;
const test = uring.skip === undefined ? it : it.skip;
const FLOOD = fileURLToPath(new URL('./fixtures/tls-flood.py', import.meta.url));
const KIB = 1024;
const MIB = KIB * KIB;

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds; fails after `ms`. */
async function eventuallyAsync(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await tick(20);
  }
}

/** Starts the TLS flooder; resolves once its handshakes are done. */
function flood(port: number, n: number, caFile: string): Promise<ChildProcess> {
  const child = spawn('python3', [FLOOD, String(port), String(n), caFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    const early = (code: number | null) => reject(new Error(`flooder exited with ${code}`));
    child.once('exit', early);
    child.stdout!.once('data', () => {
      child.off('exit', early);
      resolve(child);
    });
  });
}

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
    expect(received.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(8 * 16 * KIB);
    // ...and the server's memory follows the pool, not the flood: without the pause every byte
    // sent is copied into a waiting session.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MIB);

    // Every stream reads on once its reader does: 4 MiB more each, through paused recvs resumed.
    const before = [...received];
    drain();
    await eventuallyAsync(() => received.every((n, i) => n - before[i]! >= 4 * MIB), 15_000);
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
    await eventuallyAsync(() => received[0]! - before >= 4 * MIB, 15_000);
    expect(streams.length).toBe(12);
  }, 30_000);
});
