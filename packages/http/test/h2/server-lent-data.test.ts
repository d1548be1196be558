/**
 * Large DATA payloads lent to the output (h2c: views of the body's chunk, not copies) reach the
 * client byte for byte, and the body's next step waits until no write reads the chunk: every
 * body here reuses ONE buffer for all its chunks, overwriting it at each step, as a proxied
 * upstream body's receive buffer is reused once given back. Twenty such bodies at once on one
 * connection, sized and streamed, with the client's default windows and with a small stream
 * window that splits chunks across WINDOW_UPDATEs; node:http2 (nghttp2) reads them, both drivers
 * (the legacy driver copies the payloads: the same bytes must arrive).
 */
import * as http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import { streamBody } from '../../src/body.js';
import { createResponse } from '../../src/message.js';
import { availableDrivers, startServer } from '../server-harness.js';

const drivers = await availableDrivers();

/** A chunk's size: four full DATA frames (a provided receive buffer's 64 KiB). */
const CHUNK = 64 * 1024;
/** Not a multiple of the chunk or of a frame: the last chunk is a part of the buffer. */
const BODY = 300_001;
const STREAMS = 20;

/** The body's byte at `i` for stream `seed`: different per stream and per chunk. */
const byteAt = (seed: number, i: number) => (i * 31 + seed * 7 + (i >> 16) * 13) & 0xff;

function expected(seed: number): Buffer {
  const b = Buffer.alloc(BODY);
  for (let i = 0; i < BODY; i++) b[i] = byteAt(seed, i);
  return b;
}

/** Yields the body from one buffer, written over before each chunk (and poisoned after the last). */
async function* reusedBuffer(seed: number): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(CHUNK);
  for (let at = 0; at < BODY; at += CHUNK) {
    const n = Math.min(CHUNK, BODY - at);
    for (let i = 0; i < n; i++) buf[i] = byteAt(seed, at + i);
    yield n === CHUNK ? buf : buf.subarray(0, n);
  }
  buf.fill(0xee);
}

describe.each(drivers)('HTTP/2 lent DATA payloads (%s)', (driver) => {
  it.each([
    ['default windows', 65_535],
    ['a 20,000-byte stream window', 20_000],
  ])('bodies whose chunks share one reused buffer arrive whole (%s)', async (_name, initialWindowSize) => {
    const running = await startServer(
      driver,
      {},
      {
        call: (req) => {
          const seed = Number(req.target.slice(1));
          // Odd streams sized (END_STREAM on the last DATA), even ones streamed (an empty DATA ends them).
          return createResponse(200, {
            body: streamBody(reusedBuffer(seed), seed % 2 === 1 ? { length: BODY } : {}),
          });
        },
      },
    );
    const client = http2.connect(`http://127.0.0.1:${running.port}`, { settings: { initialWindowSize } });
    const fetch = (seed: number) =>
      new Promise<Buffer>((resolve, reject) => {
        const req = client.request({ ':path': `/${seed}` });
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => resolve(Buffer.concat(parts)));
        req.on('error', reject);
        req.end();
      });
    try {
      const seeds = Array.from({ length: STREAMS }, (_, i) => i + 1);
      const bodies = await Promise.all(seeds.map(fetch));
      for (const [i, body] of bodies.entries()) {
        expect(body.length).toBe(BODY);
        expect(Buffer.compare(body, expected(seeds[i]!))).toBe(0);
      }
    } finally {
      client.close();
      await running.stop();
    }
    expect(running.errors).toEqual([]);
  });
});
