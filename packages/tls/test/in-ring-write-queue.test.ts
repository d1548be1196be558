/**
 * In-ring TLS writes need no write queue (the ring encrypts each write whole, in order), but a
 * uring stream holds at most 1,024 of them in flight (its op count lives in its state bits,
 * issue 18): the writes past that wait in the stream's write queue and go to the ring as earlier
 * ones settle. This checks that path keeps the byte stream whole and in order, settles every
 * write, and that the shutdown after them (queued behind them) comes last. Skipped where io_uring
 * cannot serve.
 */
import type { TLSSocket } from 'node:tls';
import { TlsServerContext, type TlsStream } from '@loch/tls';
import { createRuntime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { RuntimeScope } from '../../uring-runtime/test/runtime-scope.js';
import { makeTestPki, type TestPki } from './certs.js';
import { eventually, LochTlsServer, nodeClient, uringTest } from './harness.js';

const test = await uringTest();
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** Write `i`'s bytes: its number, so a lost, doubled or reordered write shows in the text. */
function piece(i: number): Uint8Array {
  return Buffer.from(`#${String(i).padStart(5, '0')}${'.'.repeat(40)}\n`);
}

/** Everything the peer sends until its end; rejects on a reset or a TLS error. */
function readToEnd(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    socket.on('data', (b: Buffer) => parts.push(b));
    socket.once('end', () => resolve(Buffer.concat(parts).toString('latin1')));
    socket.once('error', reject);
  });
}

describe('in-ring TLS writes past the in-flight bound (uring driver)', () => {
  const scope = new RuntimeScope();
  afterEach(() => scope.close());

  test('1,200 writes started at once reach the peer whole and in order, then the end', async () => {
    const count = 1200;
    let settled = 0;
    let layer = '';
    const runtime = scope.use(await createRuntime({ driver: 'uring', log: () => undefined }));
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
      alpn: ['http/1.1'],
    });
    const server = await new LochTlsServer(runtime, context, async (stream: TlsStream) => {
      layer = stream.recordLayer;
      // Wait for the client's go, then start every write in one synchronous loop: none has
      // completed when the last is called, so the ones past the bound queue.
      const go = await stream.recv();
      go?.release();
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < count; i++)
        writes.push(
          stream.writeAll(piece(i)).then(() => {
            settled++;
          }),
        );
      await stream.shutdown();
      await Promise.all(writes);
    }).listen();
    scope.defer(() => server.close());
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    const text = readToEnd(socket);
    socket.write('go');
    const expected = Array.from({ length: count }, (_, i) => Buffer.from(piece(i)).toString('latin1')).join(
      '',
    );
    expect(await text).toBe(expected);
    socket.destroy();
    await server.next();
    expect(layer).toBe('ring');
    // Every write's promise settled (the handler's Promise.all), not only its bytes sent.
    await eventually(() => settled === count, 5000);
    expect(settled).toBe(count);
  });
});
