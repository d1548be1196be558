/**
 * In-ring TLS's send from the thread's hot buffer (native/src/ring_tls.cc, Ring::SendHot; issue
 * 13): a write whose conn has nothing queued is sealed into one buffer per thread and handed to
 * send(2) at once, so a proxied body's records are written where the last write's were (in cache)
 * instead of into a conn's own buffer; what the socket does not take goes to the conn's buffer
 * and the ring's sends, as before. Counted with @loch/native's tlsBufferStats() (growths of a
 * conn's own buffer past what an idle conn keeps) on the test's thread, which runs the ring.
 * Skipped where io_uring cannot serve.
 */

import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { loadNative, type NativeBinding } from '@loch/native';
import type { TlsStream } from '@loch/tls';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { RuntimeScope } from '../../uring-runtime/test/runtime-scope.js';
import { makeTestPki, type TestPki } from './certs.js';
import { eventually, type LochTlsServer, ringClient, ringServer, uringTest } from './harness.js';

const test = await uringTest();
const loaded = loadNative();
const binding: NativeBinding | undefined = 'error' in loaded ? undefined : loaded.binding;
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** Write `i` of a test: `size` bytes of one value, so a lost, doubled or reordered write shows. */
function pattern(i: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(i % 251);
}

describe('in-ring TLS sends from the hot buffer (uring driver)', () => {
  const scope = new RuntimeScope();
  afterEach(() => scope.close());

  const serve = (handler: (stream: TlsStream) => Promise<void>) => ringServer(scope, pki, handler);

  const client = (server: LochTlsServer) => ringClient(scope, pki, server);

  test('answers of 60,000 B to a reading peer grow no conn buffer: each goes out from the hot buffer', async () => {
    // One answer per request byte, after the previous one was read whole (the socket has room).
    const server = await serve(async (stream) => {
      let i = 0;
      for (;;) {
        const chunk = await stream.recv();
        if (chunk === null) break;
        chunk.release();
        await stream.writeAll(pattern(i++, 60_000));
      }
      await stream.shutdown();
    });
    const socket = await client(server);
    // The first answer meets a connection whose windows still open (the kernel may take part of
    // it): counted from the second on.
    let start = binding!.tlsBufferStats();
    for (let i = 0; i < 9; i++) {
      if (i === 1) start = binding!.tlsBufferStats();
      const got = await new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        let n = 0;
        const onData = (b: Buffer) => {
          parts.push(b);
          n += b.byteLength;
          if (n < 60_000) return;
          socket.off('data', onData);
          resolve(Buffer.concat(parts));
        };
        socket.on('data', onData);
        socket.write('x');
      });
      expect(got.byteLength).toBe(60_000);
      expect(got.every((b) => b === i % 251)).toBe(true);
    }
    // Before the hot buffer each answer grew the conn's output past 16 KiB (8 growths; with
    // LOCH_TLS_DIRECT_SEND=0, the old path, still so).
    expect(binding!.tlsBufferStats().grows - start.grows).toBe(0);
  });

  test('a peer that reset: a 60,000 B write fails with the send error, as does the next, and the stream closes', async () => {
    // The writes go to send(2) from the hot buffer (the conn has nothing queued) and meet the
    // reset: this write and the next fail, none hangs (the test's timeout), close() completes
    // (afterEach awaits the server's handler).
    const results: unknown[] = [];
    let handshaken!: () => void;
    const ready = new Promise<void>((resolve) => {
      handshaken = resolve;
    });
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const server = await serve(async (stream) => {
      try {
        // The client's first byte: the handshake is done on both ends (a reset before the
        // server read the client's Finished would fail the handshake instead).
        (await stream.recv())?.release();
        handshaken();
        // Until the reset reached the ring: the read ends or fails.
        try {
          for (;;) {
            const chunk = await stream.recv();
            if (chunk === null) break;
            chunk.release();
          }
        } catch {
          // ECONNRESET
        }
        for (let i = 0; i < 2; i++)
          results.push(
            await stream.writeAll(pattern(i, 60_000)).then(
              () => 'written',
              (error: unknown) => error,
            ),
          );
      } finally {
        finished();
      }
    });
    // A TLS client over a TCP socket of its own, to reset that socket (RST) once handshaken.
    const raw = connect(server.port, '127.0.0.1');
    const socket = tlsConnect({ socket: raw, ca: pki.ca, servername: 'localhost' });
    socket.on('error', () => undefined);
    scope.defer(() => socket.destroy());
    await once(socket, 'secureConnect');
    socket.write('x');
    await ready;
    raw.resetAndDestroy();
    await done;
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r).toBeInstanceOf(Error);
      expect((r as { code?: string }).code).toMatch(/^(ECONNRESET|EPIPE)$/);
    }
  });

  test('a reader that stalls: what the socket did not take goes through the ring, whole and in order', async () => {
    // 100 writes of 100,000 B started at once (10 MB: more than the kernel holds for a reader
    // that does not read), then the end.
    const count = 100;
    const size = 100_000;
    let written = 0;
    const server = await serve(async (stream) => {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < count; i++)
        writes.push(stream.writeAll(pattern(i, size)).then(() => void written++));
      await Promise.all(writes);
      await stream.shutdown();
    });
    const socket = await client(server);
    socket.pause();
    // The writes complete only as the reader takes their bytes: stalled, some wait.
    expect(await eventually(() => written > 0)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(written).toBeLessThan(count);
    const parts: Buffer[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      socket.on('data', (b: Buffer) => parts.push(b));
      socket.once('end', () => resolve());
      socket.once('error', reject);
    });
    socket.resume();
    await ended;
    const all = Buffer.concat(parts);
    expect(all.byteLength).toBe(count * size);
    for (let i = 0; i < count; i++) {
      const at = i * size;
      // First and last byte of each write, and every byte of it counted as its value.
      expect(all[at]).toBe(i % 251);
      expect(all[at + size - 1]).toBe(i % 251);
      expect(all.subarray(at, at + size).every((b) => b === i % 251)).toBe(true);
    }
    expect(written).toBe(count);
  });
});
