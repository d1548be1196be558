/**
 * Write progress of a TLS stream (ByteStream.sentBytes, read with sentBytes()): the ciphertext
 * the kernel took grows while one large write is still in flight, each time the reader makes
 * room, not only when the write completes; HTTP's write deadline counts on it (an idle-progress
 * deadline, as nginx's send_timeout). Fed from JavaScript on every driver, and in the ring
 * (io_uring: the ring's own count of the records it sent).
 */
import { TlsServerContext, type TlsStream } from '@loch/tls';
import { createRuntime, type Runtime, sentBytes } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';
import { driverCases, eventually, LochTlsServer, nodeClient } from './harness.js';

const cases = await driverCases();
/** More than loopback's socket buffers hold (autotuned: a few MiB each). */
const SIZE = 48 * 1024 * 1024;

const layers = cases.flatMap((c) => [
  { ...c, ring: false },
  ...(c.name === 'uring' ? [{ ...c, ring: true }] : []),
]);

describe.each(layers)('TLS write progress: $name driver, ring $ring', ({ name, skip, ring }) => {
  const run = skip === undefined ? it : it.skip;
  let pki: TestPki;
  let runtime: Runtime | undefined;
  let server: LochTlsServer | undefined;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.remove());
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await runtime?.close();
    runtime = undefined;
  });

  run('sentBytes grows during one large write as the reader makes room', async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    const context = new TlsServerContext({
      certificates: [{ chain: pki.localhost.chain, key: pki.localhost.key }],
    });
    let tls: TlsStream | undefined;
    let written: 'pending' | 'done' | 'failed' = 'pending';
    let finish!: () => void;
    const finished = new Promise<void>((r) => {
      finish = r;
    });
    server = await new LochTlsServer(
      runtime,
      context,
      async (stream) => {
        tls = stream;
        await new Promise<void>((resolve) => {
          stream.writeTo(new Uint8Array(SIZE), {
            onWritten(error) {
              written = error === undefined ? 'done' : 'failed';
              resolve();
            },
          });
        });
        await finished;
      },
      { ring },
    ).listen();
    const socket = await nodeClient(server.port, { ca: pki.ca, servername: 'localhost' });
    socket.pause();
    expect(await eventually(() => tls !== undefined && sentBytes(tls) > 0)).toBe(true);
    expect(tls!.recordLayer).toBe(ring ? 'ring' : 'javascript');
    // Let what the socket buffers take settle: then nothing moves while the reader waits.
    let first = sentBytes(tls!);
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 20));
      first = sentBytes(tls!);
    }
    expect(first).toBeLessThan(SIZE);

    // The reader takes 8 MiB: the stream below takes more ciphertext of the same write.
    let read = 0;
    socket.on('data', (b: Buffer) => {
      read += b.length;
      if (read >= 8 * 1024 * 1024) socket.pause();
    });
    socket.resume();
    expect(await eventually(() => sentBytes(tls!) > first, 5000)).toBe(true);
    expect(written).toBe('pending');
    socket.destroy();
    finish();
  });
});
