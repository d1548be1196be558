/**
 * H2FrameOutput's arena against a stream that records each writeTo: what one flush hands the
 * stream (one piece or several), that an idle arena is reused from its start, that small frames
 * not queued yet move with a frame that did not fit, and that no byte queued or in flight is
 * ever written again. Over TLS each piece above 4 KiB is a TLS record of its own, so pieces per
 * write are records per response (bench/results/http2.md, 11,268 B over h2).
 */
import { describe, expect, it } from 'vitest';
import { H2FrameOutput, type H2OutputHost } from '../../src/h2/server-output.js';
import type { HttpStream } from '../../src/transport.js';

/** A stream that keeps each writeTo's pieces (copied, and the views themselves) until told done. */
class RecordingStream {
  writes: { views: Uint8Array[]; bytes: Uint8Array[] }[] = [];
  writeTo(data: Uint8Array | readonly Uint8Array[]): void {
    const views = data instanceof Uint8Array ? [data] : [...data];
    this.writes.push({ views, bytes: views.map((v) => v.slice()) });
  }
}

function setup(): { output: H2FrameOutput; stream: RecordingStream; finishWrite: () => void } {
  const stream = new RecordingStream();
  const host: H2OutputHost = {
    writeStarted() {},
    writeRefused(error) {
      throw error;
    },
    onWritten() {},
  };
  const output = new H2FrameOutput(stream as unknown as HttpStream, host, 1 << 20);
  // Fed frames flush when told (as the session does after a received chunk), not at a microtask.
  output.inFeed = true;
  const finishWrite = () => {
    output.writeEnded();
    output.flushPending();
  };
  return { output, stream, finishWrite };
}

/** Reserves a frame of `n` octets filled with `fill`. */
function frame(output: H2FrameOutput, n: number, fill: number): void {
  const at = output.reserve(n);
  output.arena.fill(fill, at, at + n);
}

/** The pieces of a write as [octets, fill of the first octet] pairs. */
const shape = (w: { bytes: Uint8Array[] }) => w.bytes.map((b) => [b.length, b[0]]);

describe('H2FrameOutput arena', () => {
  it('sends a response after an idle one as one piece from the same arena (one TLS record)', () => {
    const { output, stream, finishWrite } = setup();
    // An 11,268 B answer: HEADERS (~60 B) and its DATA frame, twice, each after the last was written.
    frame(output, 60, 1);
    frame(output, 9 + 11_268, 2);
    output.flush();
    finishWrite();
    frame(output, 60, 3);
    frame(output, 9 + 11_268, 4);
    output.flush();
    expect(stream.writes).toHaveLength(2);
    expect(shape(stream.writes[1]!)).toEqual([[60 + 9 + 11_268, 3]]);
    // No buffer per response: the second write is a view of the first one's arena.
    expect(stream.writes[1]!.views[0]!.buffer).toBe(stream.writes[0]!.views[0]!.buffer);
    // Only small frames move along: a run above 4 KiB is queued as it is, not copied.
    finishWrite();
    frame(output, 5_000, 5);
    frame(output, 5_000, 6);
    frame(output, 9 + 11_268, 7);
    output.flush();
    expect(shape(stream.writes[2]!)).toEqual([
      [10_000, 5],
      [9 + 11_268, 7],
    ]);
  });

  it('moves small unqueued frames into the next arena with a frame that did not fit', () => {
    const { output, stream } = setup();
    frame(output, 12_000, 1);
    output.flush(); // in flight: its bytes must stay as they are
    frame(output, 60, 2);
    frame(output, 9 + 11_268, 3);
    frame(output, 60, 4);
    frame(output, 9 + 11_268, 5);
    const inFlight = stream.writes[0]!;
    output.writeEnded();
    output.flushPending();
    // The first HEADERS went along with its DATA, the second pair fits after them in one arena
    // of its own size: two pieces of HEADERS + DATA, not four.
    expect(shape(stream.writes[1]!)).toEqual([
      [60 + 9 + 11_268, 2],
      [60 + 9 + 11_268, 4],
    ]);
    expect(inFlight.views[0]).toEqual(inFlight.bytes[0]);
    // Each piece holds its frames in order.
    const first = stream.writes[1]!.bytes[0]!;
    expect(first[59]).toBe(2);
    expect(first[60]).toBe(3);
    expect(first.at(-1)).toBe(3);
  });

  it('never writes over frames queued behind a frame made elsewhere, nor over a write in flight', () => {
    const { output, stream, finishWrite } = setup();
    frame(output, 100, 1);
    output.queue(new Uint8Array(17).fill(9)); // our SETTINGS or GOAWAY: the arena's frames are queued
    frame(output, 16_000, 2); // does not fit: a new arena, the queued bytes stay as they are
    output.flush();
    const w = stream.writes[0]!;
    expect(shape(w)).toEqual([
      [100, 1],
      [17, 9],
      [16_000, 2],
    ]);
    w.views.forEach((v, i) => {
      expect(v).toEqual(w.bytes[i]);
    });
    // While that write is in flight, new frames never start the arena again.
    frame(output, 100, 3);
    frame(output, 16_000, 4);
    w.views.forEach((v, i) => {
      expect(v).toEqual(w.bytes[i]);
    });
    finishWrite();
    expect(shape(stream.writes[1]!)).toEqual([[16_100, 3]]);
  });
});
