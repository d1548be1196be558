/**
 * FrameReader over a scripted stream: frames split at every possible chunk boundary come out
 * whole and in order, earlier payload views survive later reads, pooled chunks are released,
 * and a stream that ends inside a frame is a typed truncation error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ThriftProtocolError } from '../errors.js';
import { createWriter } from '../protocol/factory.js';
import { readMessageHeader } from '../protocol/message-header.js';
import { encodeFrame } from '../transport/codec.js';
import type { FramingName } from '../transport/frame.js';
import { MessageType, TType } from '../types.js';
import { FrameReader } from './frame-reader.js';
import type { ThriftRecvChunk, ThriftStream } from './stream.js';

/** Delivers `bytes` in chunks of the given sizes, counting releases. */
function scripted(
  bytes: Uint8Array,
  sizes: number[],
): ThriftStream & { released: number; delivered: number } {
  let at = 0;
  let i = 0;
  const s = {
    released: 0,
    delivered: 0,
    closed: false,
    async recv(): Promise<ThriftRecvChunk | null> {
      if (at >= bytes.byteLength) return null;
      const n = Math.max(1, sizes[i++ % sizes.length]!);
      const chunk = bytes.slice(at, at + n);
      at += n;
      s.delivered++;
      return { bytes: chunk, release: () => void s.released++ };
    },
    async writev(): Promise<number> {
      return 0;
    },
    async close(): Promise<void> {
      s.closed = true;
    },
  };
  return s;
}

function msg(i: number, padding: number): Uint8Array {
  const w = createWriter(i % 2 === 0 ? 'binary' : 'compact');
  w.writeMessageBegin(`m${i}`, MessageType.CALL, i);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, 1);
  w.writeString('p'.repeat(padding));
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

describe.each(['unframed', 'framed', 'theader', 'ttheader'] as FramingName[])(
  'FrameReader, %s',
  (framing) => {
    it('yields every frame whole whatever the chunking', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 6 }),
          fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }),
          async (paddings, sizes) => {
            // Unframed streams cannot switch protocol mid-stream with auto-detection per stream.
            const messages = paddings.map((p, i) => msg(framing === 'unframed' ? 0 : i, p));
            const frames = messages.map((m, i) =>
              encodeFrame(
                { framing, protocol: framing === 'unframed' || i % 2 === 0 ? 'binary' : 'compact' },
                m,
              ),
            );
            const stream = scripted(Buffer.concat(frames), sizes);
            const reader = new FrameReader(stream);
            const got = [];
            for (;;) {
              const f = await reader.next();
              if (f === null) break;
              got.push(f);
            }
            expect(reader.framing).toBe(framing);
            expect(got.map((f) => f.payload)).toEqual(messages);
            expect(got.map((f) => readMessageHeader(f.protocol, f.payload).seqId)).toEqual(
              messages.map((_, i) => (framing === 'unframed' ? 0 : i)),
            );
            expect(stream.released).toBe(stream.delivered);
          },
        ),
        { numRuns: 40 },
      );
    });

    it('fails with ERR_THRIFT_TRUNCATED when the stream ends inside a frame', async () => {
      const frame = encodeFrame({ framing, protocol: 'binary' }, msg(0, 10));
      const reader = new FrameReader(scripted(frame.subarray(0, frame.byteLength - 1), [7]));
      await expect(reader.next()).rejects.toSatisfy(
        (e) => e instanceof ThriftProtocolError && e.code === 'ERR_THRIFT_TRUNCATED',
      );
    });
  },
);
