/**
 * TLS on the legacy driver (node:net sockets, the JavaScript record layer) under the receive
 * budgets (@loch/uring-runtime, "Receive budgets"), issue 16: a Python peer floods TLS
 * connections whose readers read on but keep every plaintext chunk (a proxy whose upstream write
 * waits keeps its chunk), and what the readers hold stays within the stream and worker caps; a
 * new TLS connection is served meanwhile, and a flooded stream reads on once its reader lets
 * go. The record layer gives each ciphertext chunk back only once the plaintext made from it is
 * released, so the socket below pauses at its caps as a plain one does (before, ciphertext was
 * released at once and the plaintext counted nowhere: every stream held what the flood sent).
 */
import type { ChildProcess } from 'node:child_process';
import { TlsServerContext, type TlsStream, tlsAccept } from '@loch/tls';
import { createRuntime, type RecvChunk, type Runtime, TcpListener } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { flood } from './flood.js';
import { eventually, fdCount, nodeClient, roundTrip } from './harness.js';

const KIB = 1024;
const MIB = KIB * KIB;
const STREAM_CAP = 256 * KIB;
const WORKER_CAP = 2 * MIB;
const STREAMS = 12;

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('TLS on the legacy driver under the receive budgets', () => {
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

  it('flooded streams whose readers keep their chunks hold at most the caps; another connection is served; a stream reads on once its reader lets go', async () => {
    runtime = await createRuntime({
      driver: 'legacy',
      log: () => undefined,
      buffers: { streamBytes: STREAM_CAP, workerBytes: WORKER_CAP },
    });
    const rt = runtime;
    const fdsBefore = fdCount();
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime: rt });
    closers.push(() => listener.close());
    const port = (listener.localAddress as { port: number }).port;
    const flooding = flood(port, STREAMS, pki.caFile);
    const streams: TlsStream[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const stream = await tlsAccept(await listener.accept(), context);
      expect(stream.recordLayer).toBe('javascript');
      streams.push(stream);
      closers.push(() => stream.close());
    }
    child = await flooding;
    // Readers that read on and keep every chunk (plaintext held per stream), until drained.
    let draining = false;
    const kept: RecvChunk[] = [];
    const held = streams.map(() => 0);
    const received = streams.map(() => 0);
    streams.forEach((stream, i) => {
      void (async () => {
        for (;;) {
          const next = await stream.recv().catch(() => null);
          if (next === null) return;
          received[i]! += next.bytes.byteLength;
          if (draining) next.release();
          else {
            held[i]! += next.bytes.byteLength;
            kept.push(next);
          }
        }
      })();
    });
    let maxStream = 0;
    let maxWorker = 0;
    const sample = () => {
      const s = rt.bufferStats()!;
      maxStream = Math.max(maxStream, s.peakStreamHeld, ...held);
      maxWorker = Math.max(
        maxWorker,
        s.held,
        s.peakHeld,
        held.reduce((a, b) => a + b, 0),
      );
    };
    for (let i = 0; i < 50; i++) {
      sample();
      await tick(20);
    }
    // (Before: the plaintext counted nowhere, each stream held what the peer sent, hundreds of MiB.)
    expect(maxStream).toBeLessThanOrEqual(STREAM_CAP);
    expect(maxWorker).toBeLessThanOrEqual(WORKER_CAP);
    expect(rt.bufferStats()!.stops).toBeGreaterThan(0);

    // A new TLS connection is served meanwhile.
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
    draining = true;
    for (const chunk of kept.splice(0)) chunk.release();
    expect(await eventually(() => received[0]! - before >= 4 * MIB, 15_000)).toBe(true);
    expect(rt.bufferStats()!.held).toBeLessThanOrEqual(WORKER_CAP);

    // Everything goes back: no bytes held and no descriptor left once the streams are closed.
    child.kill('SIGKILL');
    child = undefined;
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    expect(await eventually(() => rt.bufferStats()!.held === 0 && fdCount() <= fdsBefore, 10_000)).toBe(true);
  }, 40_000);
});
