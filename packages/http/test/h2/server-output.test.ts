/**
 * H2FrameOutput's arena against a stream that records each writeTo: what one flush hands the
 * stream (one piece or several), that an idle arena is reused from its start, that small frames
 * not queued yet move with a frame that did not fit, and that no byte queued or in flight is
 * ever written again. Over TLS each piece above 4 KiB is a TLS record of its own, so pieces per
 * write are records per response (bench/results/http2.md, 11,268 B over h2). Arenas come from
 * and go back to the thread's pool (arena-pool.ts): only once no write reads them.
 */
import { describe, expect, it } from 'vitest';
import { ARENA_SIZE, pooledArenas } from '../../src/h2/arena-pool.js';
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
    output.writeEnded(true);
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
    const big = ARENA_SIZE - 5_000; // does not fit after the two 5,000 B frames
    frame(output, 5_000, 5);
    frame(output, 5_000, 6);
    frame(output, big, 7);
    output.flush();
    expect(shape(stream.writes[2]!)).toEqual([
      [10_000, 5],
      [big, 7],
    ]);
  });

  it('moves small unqueued frames into the next arena with a frame that did not fit', () => {
    const { output, stream } = setup();
    // In flight: its bytes must stay as they are; one HEADERS + 11 KB DATA pair fits after it.
    frame(output, ARENA_SIZE - 20_000, 1);
    output.flush();
    frame(output, 60, 2);
    frame(output, 9 + 11_268, 3);
    frame(output, 60, 4);
    frame(output, 9 + 11_268, 5);
    const inFlight = stream.writes[0]!;
    output.writeEnded(true);
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

describe('H2FrameOutput arena pool', () => {
  /** The distinct buffers a list of writes' pieces are views of. */
  const buffers = (writes: { views: Uint8Array[] }[]) =>
    new Set(writes.flatMap((w) => w.views.map((v) => v.buffer)));

  it('a connection that always has a write in flight reuses the arenas of ended writes, not one per response', () => {
    const { output, stream, finishWrite } = setup();
    // As at h2load -c16 -m16: each response's frames are queued while the previous write is in
    // flight, so none fits the arena the write reads; 11,268 B answers, two per arena.
    frame(output, 60, 0);
    output.flush();
    for (let i = 1; i <= 40; i++) {
      frame(output, 60, i);
      frame(output, 9 + 11_268, i);
      // The write in flight still reads what was queued, whatever the frames after it took.
      const inFlight = stream.writes.at(-1)!;
      inFlight.views.forEach((v, j) => {
        expect(Buffer.compare(v, inFlight.bytes[j]!)).toBe(0);
      });
      finishWrite();
    }
    expect(stream.writes.length).toBeGreaterThan(20);
    // Before the pool: one new arena per response or two (30 buffers and more).
    expect(buffers(stream.writes).size).toBeLessThanOrEqual(4);
  });

  it('never hands out an arena a write in flight reads, nor one of a connection that ended', () => {
    const a = setup();
    const b = setup();
    frame(a.output, 9 + 11_268, 1);
    a.output.flush();
    frame(a.output, 9 + 11_268, 2); // the first arena is in flight: a second one
    frame(b.output, 9 + 11_268, 3);
    frame(b.output, 9 + 11_268, 4);
    b.output.flush();
    const inFlight = a.stream.writes[0]!;
    expect(inFlight.views[0]).toEqual(inFlight.bytes[0]);
    expect(b.stream.writes[0]!.views[0]!.buffer).not.toBe(inFlight.views[0]!.buffer);
    // a's connection ends while its write is in flight: its arenas are never pooled again.
    const pooled = pooledArenas();
    a.output.discard();
    a.output.writeEnded(false);
    expect(pooledArenas()).toBe(pooled);
    b.finishWrite();
    frame(b.output, 9 + 11_268, 5);
    expect(inFlight.views[0]).toEqual(inFlight.bytes[0]);
  });

  it('two full DATA frames share one arena, so a large answer takes half the arenas', () => {
    const { output, stream } = setup();
    frame(output, 60, 1);
    frame(output, 9 + 16_384, 2);
    frame(output, 9 + 16_384, 3);
    output.flush();
    // With 24 KiB arenas: [[60 + 16,393, 1], [16,393, 3]], a new arena for the second frame.
    expect(shape(stream.writes[0]!)).toEqual([[60 + 2 * (9 + 16_384), 1]]);
  });

  it('an idle connection holds no arena, and the next response takes one from the pool', () => {
    const { output, stream, finishWrite } = setup();
    frame(output, 60, 1);
    frame(output, 9 + 11_268, 1);
    output.flush();
    const pooled = pooledArenas();
    finishWrite();
    expect(output.arena.length).toBe(0);
    expect(pooledArenas()).toBe(pooled + 1);
    const other = setup();
    frame(other.output, 9 + 16_384, 2); // a full DATA frame fits a pooled arena
    other.output.flush();
    expect(other.stream.writes[0]!.views[0]!.buffer).toBe(stream.writes[0]!.views[0]!.buffer);
    expect(other.output.arena.length).toBe(ARENA_SIZE);
  });
});

describe('H2FrameOutput lent views', () => {
  /** Settles-so-far of a written() promise. */
  const watch = (p: Promise<void>) => {
    const seen = { settled: false };
    void p.then(() => {
      seen.settled = true;
    });
    return seen;
  };
  const tick = () => new Promise<void>((r) => setImmediate(r));

  it('queues a lent payload as the view itself, behind its frame header, and settles written() once that write ended', async () => {
    const { output, stream, finishWrite } = setup();
    expect(output.lending).toBe(true);
    const payload = new Uint8Array(16_384).fill(7);
    frame(output, 9, 1);
    output.lend(payload);
    const written = watch(output.written());
    output.flush();
    const w = stream.writes[0]!;
    expect(shape(w)).toEqual([
      [9, 1],
      [16_384, 7],
    ]);
    // Not copied: the write reads the lender's own bytes.
    expect(w.views[1]).toBe(payload);
    await tick();
    expect(written.settled).toBe(false);
    // Queued behind the write in flight: waits for the next write, not this one's end.
    frame(output, 9, 2);
    output.lend(payload.subarray(0, 100));
    const next = watch(output.written());
    finishWrite();
    await tick();
    expect(written.settled).toBe(true);
    expect(next.settled).toBe(false);
    expect(w.views[1]).toBe(payload);
    expect(shape(stream.writes[1]!)).toEqual([
      [9, 2],
      [100, 7],
    ]);
    finishWrite();
    await tick();
    expect(next.settled).toBe(true);
    // Nothing queued or in flight: at once.
    const idle = watch(output.written());
    await tick();
    expect(idle.settled).toBe(true);
  });

  it('a connection that ends settles what was never written at once, what is in flight at its end', async () => {
    const { output } = setup();
    output.lend(new Uint8Array(20_000));
    output.flush();
    const inFlight = watch(output.written());
    output.lend(new Uint8Array(20_000));
    const queued = watch(output.written());
    output.discard();
    await tick();
    expect(queued.settled).toBe(true);
    expect(inFlight.settled).toBe(false);
    output.writeEnded(false);
    await tick();
    expect(inFlight.settled).toBe(true);
  });

  it('lends nothing over TLS nor on the legacy driver', () => {
    const host: H2OutputHost = { writeStarted() {}, writeRefused() {}, onWritten() {} };
    const stream = (secure: boolean, driver: string) =>
      ({ facts: { secure }, driver, writeTo() {} }) as unknown as HttpStream;
    expect(new H2FrameOutput(stream(true, 'uring'), host, 1 << 20).lending).toBe(false);
    expect(new H2FrameOutput(stream(false, 'legacy'), host, 1 << 20).lending).toBe(false);
    expect(new H2FrameOutput(stream(false, 'uring'), host, 1 << 20).lending).toBe(true);
  });
});
