/**
 * Write progress (ByteStream.sentBytes, read with sentBytes()): the bytes the kernel took of a
 * stream's writes grow while one large write is still in flight, each time the reader makes room,
 * not only when the write completes; HTTP's write deadline counts on it (an idle-progress
 * deadline, as nginx's send_timeout). On every driver over real sockets.
 */
import { describe, expect, it } from 'vitest';
import { sentBytes } from '../../src/net/runtime-stream.js';
import type { ByteStream } from '../../src/stream.js';
import { driverCases, portOf, useDriver } from './drivers.js';

const cases = await driverCases();

/** More than loopback's send and receive buffers hold together (autotuned: a few MiB each). */
const SIZE = 64 * 1024 * 1024;

/** Waits (a bounded number of turns) until `stream`'s write progress is past `than`. */
async function progressPast(stream: ByteStream, than: number): Promise<number> {
  for (let i = 0; i < 500 && sentBytes(stream) <= than; i++) await new Promise((r) => setTimeout(r, 10));
  return sentBytes(stream);
}

/** Reads and drops at least `n` bytes (or up to the end); the count read. */
async function drain(stream: ByteStream, n: number): Promise<number> {
  let got = 0;
  while (got < n) {
    const chunk = await stream.recv();
    if (chunk === null) break;
    got += chunk.bytes.byteLength;
    chunk.release();
  }
  return got;
}

describe.each(cases)('write progress: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('sentBytes grows during one large write as the reader makes room, and ends at its size', async () => {
    const d = driver();
    const listener = res.add(await d.listenTcp({ host: '127.0.0.1', port: 0 }));
    const accepted = listener.accept();
    const client = res.add(await d.connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    const server = res.add(await accepted);
    expect(sentBytes(server)).toBe(0);

    let written: 'pending' | 'done' | 'failed' = 'pending';
    const settled = new Promise<void>((resolve) => {
      server.writeTo(new Uint8Array(SIZE), {
        onWritten(error) {
          written = error === undefined ? 'done' : 'failed';
          resolve();
        },
      });
    });
    // The kernel takes what the socket buffers hold; the rest waits for the reader.
    const first = await progressPast(server, 0);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(SIZE);

    // The reader takes 8 MiB: the kernel takes more of the same write, which is still in flight.
    const read = await drain(client, 8 * 1024 * 1024);
    const second = await progressPast(server, first);
    expect(second).toBeGreaterThan(first);
    expect(written).toBe('pending');

    expect(await drain(client, SIZE - read)).toBe(SIZE - read);
    await settled;
    expect(written).toBe('done');
    expect(sentBytes(server)).toBe(SIZE);
  });
});
