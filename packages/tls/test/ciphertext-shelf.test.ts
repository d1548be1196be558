/**
 * In-ring TLS's shelf of large ciphertext buffers (native/src/tls_shelf.h; issue 14): a conn
 * whose output grew past what an idle conn keeps (16 KiB) gives that buffer to its thread's
 * shelf when it goes idle or closes, and the next conn whose output grows takes it instead of
 * allocating (and faulting in) a new one; the shelf holds at most 2 MiB and the thread's idle
 * memory trim empties it. Counted with @loch/native's tlsBufferStats() on the test's thread,
 * which runs the ring. Skipped where io_uring cannot serve.
 */

import type { TLSSocket } from 'node:tls';
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

/** The shelf's bound (kTlsShelfBytes). */
const SHELF_BYTES = 2 * 1024 * 1024;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** Answers every request (one chunk: a decimal byte count) with that many bytes in one write. */
async function sized(stream: TlsStream): Promise<void> {
  for (;;) {
    const chunk = await stream.recv();
    if (chunk === null) break;
    const n = Number(Buffer.from(chunk.bytes).toString());
    chunk.release();
    await stream.writeAll(new Uint8Array(n).fill(0x61));
  }
  await stream.shutdown();
}

/** Asks `socket` for `n` bytes and resolves once all of them arrived. */
function fetchBytes(socket: TLSSocket, n: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (b: Buffer) => {
      got += b.byteLength;
      if (got < n) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
    socket.write(String(n));
  });
}

describe('in-ring TLS ciphertext buffer shelf (uring driver)', () => {
  const scope = new RuntimeScope();
  afterEach(async () => {
    await scope.close();
    binding?.trimMemory();
  });

  const serve = () => ringServer(scope, pki, sized);

  const client = (server: LochTlsServer) => ringClient(scope, pki, server);

  test('a burst after the first takes the buffer an idle conn gave up, on the same conn and on the next', async () => {
    const server = await serve();
    binding!.trimMemory();
    const start = binding!.tlsBufferStats();
    expect(start.shelfBytes).toBe(0);
    const socket = await client(server);
    for (let i = 0; i < 8; i++) await fetchBytes(socket, 200_000);
    // Each 200 KB answer grows the output past 16 KiB; every one after the first finds the
    // previous answer's buffer, given up when its send completed and the conn went idle.
    const one = binding!.tlsBufferStats();
    expect(one.grows - start.grows).toBe(8);
    expect(one.shelfHits - start.shelfHits).toBeGreaterThanOrEqual(7);

    socket.destroy();
    const other = await client(server);
    await fetchBytes(other, 200_000);
    const two = binding!.tlsBufferStats();
    expect(two.grows - one.grows).toBe(1);
    expect(two.shelfHits - one.shelfHits).toBe(1);
  });

  test('holds at most 2 MiB, and the idle memory trim empties it', async () => {
    const server = await serve();
    binding!.trimMemory();
    // Six conns answered 900 KB each at once: about 5.4 MB of buffers given up, more than the
    // shelf may keep.
    const sockets = await Promise.all(Array.from({ length: 6 }, () => client(server)));
    await Promise.all(sockets.map((s) => fetchBytes(s, 900_000)));
    for (const s of sockets) s.destroy();
    expect(await eventually(() => server.outcomes.length === 6)).toBe(true);
    // The conns close as the ring sees each end; the shelf never passes its bound meanwhile.
    let most = 0;
    await eventually(() => {
      most = Math.max(most, binding!.tlsBufferStats().shelfBytes);
      return most > SHELF_BYTES / 2;
    });
    expect(most).toBeGreaterThan(SHELF_BYTES / 2);
    expect(most).toBeLessThanOrEqual(SHELF_BYTES);
    binding!.trimMemory();
    expect(binding!.tlsBufferStats().shelfBytes).toBe(0);
  });
});
