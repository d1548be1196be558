// Property tests of the wire codec as a whole: random frame sequences survive encode -> decode
// at random chunk boundaries, and arbitrary bytes never make a decoder fail with anything but
// its typed errors (bad input must not crash a worker).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Http2ConnectionError, Http2StreamError } from '../../src/h2/errors.js';
import { Http2FrameDecoder } from '../../src/h2/frame-decoder.js';
import {
  encodeData,
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodePriority,
  encodeRstStream,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
} from '../../src/h2/frames.js';
import { HpackDecoder } from '../../src/h2/hpack-decoder.js';
import { concat, decodeChunks, type FrameEvent, FrameRecorder, mergeData } from './frame-recorder.js';

const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const streamId = fc.integer({ min: 1, max: 0x7fffffff });
const payload = fc.uint8Array({ maxLength: 40000 });
const pad = fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined });

/** A frame and the event(s) the decoder must report for it. */
type Framed = { bytes: Uint8Array; events: FrameEvent[] };

// The cast narrows the event objects' `t` strings to FrameEvent's literal tags.
const frame = fc.oneof(
  fc
    .tuple(streamId, fc.uint8Array({ maxLength: 16000 }), fc.boolean(), pad)
    .map(([id, data, endStream, padLength]) => ({
      bytes: encodeData(id, data, padLength === undefined ? { endStream } : { endStream, padLength }),
      events: [
        {
          t: 'data',
          streamId: id,
          data: toHex(data),
          endStream,
          flow: data.length + (padLength === undefined ? 0 : 1 + padLength),
        },
      ],
    })),
  fc
    .tuple(
      streamId,
      payload,
      fc.boolean(),
      pad,
      fc.option(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 1, max: 256 }))),
    )
    .filter(([id, , , , p]) => p === null || p[1] !== id)
    .map(([id, block, endStream, padLength, p]) => {
      const priority = p === null ? undefined : { exclusive: p[0], dependency: p[1], weight: p[2] };
      const options = {
        endStream,
        ...(padLength === undefined ? {} : { padLength }),
        ...(priority === undefined ? {} : { priority }),
      };
      return {
        bytes: encodeHeaders(id, block, options),
        events: [{ t: 'headers', streamId: id, block: toHex(block), endStream, priority: priority ?? null }],
      };
    }),
  fc.tuple(streamId, fc.integer({ min: 0, max: 0xffffffff })).map(([id, code]) => ({
    bytes: encodeRstStream(id, code),
    events: [{ t: 'rst', streamId: id, errorCode: code }],
  })),
  fc
    .tuple(streamId, fc.boolean(), fc.integer({ min: 0, max: 0x7fffffff }), fc.integer({ min: 1, max: 256 }))
    .filter(([id, , dep]) => id !== dep)
    .map(([id, exclusive, dependency, weight]) => ({
      bytes: encodePriority(id, { exclusive, dependency, weight }),
      events: [{ t: 'priority', streamId: id, priority: { exclusive, dependency, weight } }],
    })),
  fc.tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.boolean()).map(([data, ack]) => ({
    bytes: encodePing(data, ack),
    events: [{ t: 'ping', data: toHex(data), ack }],
  })),
  fc
    .tuple(
      fc.integer({ min: 0, max: 0x7fffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.uint8Array({ maxLength: 100 }),
    )
    .map(([last, code, debug]) => ({
      bytes: encodeGoaway(last, code, debug),
      events: [{ t: 'goaway', lastStreamId: last, errorCode: code, debug: toHex(debug) }],
    })),
  fc
    .tuple(fc.integer({ min: 0, max: 0x7fffffff }), fc.integer({ min: 1, max: 0x7fffffff }))
    .map(([id, inc]) => ({
      bytes: encodeWindowUpdate(id, inc),
      events: [{ t: 'window', streamId: id, increment: inc }],
    })),
  fc
    .record(
      {
        headerTableSize: fc.nat(),
        maxConcurrentStreams: fc.nat(),
        initialWindowSize: fc.integer({ min: 0, max: 0x7fffffff }),
      },
      { requiredKeys: [] },
    )
    .map((settings) => ({ bytes: encodeSettings(settings), events: [{ t: 'settings', settings }] })),
  fc.constant({ bytes: encodeSettingsAck(), events: [{ t: 'settingsAck' } as FrameEvent] }),
) as fc.Arbitrary<Framed>;

/** Cuts `bytes` at the given fractions. */
function cut(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}

describe('codec properties', () => {
  it('any frame sequence decodes to what was encoded, however the bytes are chunked', () => {
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
        (frames, cuts) => {
          const bytes = concat(encodeSettings({}), ...frames.map((f) => f.bytes));
          const r = decodeChunks(cut(bytes, cuts), { role: 'client' });
          expect(r.error).toBeNull();
          expect(r.events).toEqual(
            mergeData([{ t: 'settings', settings: {} }, ...frames.flatMap((f) => f.events)]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes after the preface: only typed errors, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), (noise, settingsFirst) => {
        const rec = new FrameRecorder();
        const d = new Http2FrameDecoder(rec, { role: 'client' });
        try {
          d.feed(settingsFirst ? concat(encodeSettings({}), noise) : noise);
        } catch (e) {
          expect(e).toBeInstanceOf(Http2ConnectionError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary header blocks: only typed errors, never a crash, and the decoder stays usable or fails typed', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 }), (blocks) => {
        const d = new HpackDecoder({ maxHeaderListSize: 2000 });
        for (const b of blocks) {
          try {
            d.decodeToList(b);
          } catch (e) {
            if (e instanceof Http2StreamError) continue;
            expect(e).toBeInstanceOf(Http2ConnectionError);
            return;
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
