/**
 * FrameReader over a scripted stream: frames split at every possible chunk boundary come out
 * whole and in order, earlier payload views survive later reads, pooled chunks are released,
 * and a stream that ends inside a frame is a typed truncation error.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { ThriftProtocolError, ThriftRpcError } from '../errors.js';
import { createWriter } from '../protocol/factory.js';
import { readMessageHeader } from '../protocol/message-header.js';
import { decodeFrame, encodeFrame } from '../transport/codec.js';
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

    it('recycle() reuses its memory and keeps bytes of the next frame already received', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 60 }),
          fc.array(fc.integer({ min: 1, max: 7000 }), { minLength: 1, maxLength: 8 }),
          async (paddings, sizes) => {
            const messages = paddings.map((p) => msg(0, p));
            const frames = messages.map((m) => encodeFrame({ framing, protocol: 'binary' }, m));
            const reader = new FrameReader(scripted(Buffer.concat(frames), sizes));
            const got: Uint8Array[] = [];
            const memory = new Set<ArrayBufferLike>();
            for (;;) {
              const f = await reader.next();
              if (f === null) break;
              got.push(f.payload.slice());
              memory.add(f.payload.buffer);
              reader.recycle();
            }
            expect(got).toEqual(messages);
            // Every frame fits the first 64 KiB buffer once the earlier ones are given back.
            expect(memory.size).toBe(1);
          },
        ),
        { numRuns: 40 },
      );
    });

    it('feed() and poll() give the frames next() would, whatever the chunking; truncation() tells a cut frame', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 20 }),
          fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }),
          (paddings, sizes) => {
            const messages = paddings.map((p) => msg(0, p));
            const wire = Buffer.concat(messages.map((m) => encodeFrame({ framing, protocol: 'binary' }, m)));
            const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
            const got: Uint8Array[] = [];
            let i = 0;
            for (let at = 0; at < wire.byteLength; i++) {
              const n = sizes[i % sizes.length]!;
              // A copy, as a pooled chunk released right after feed() would be overwritten.
              reader.feed(wire.slice(at, at + n));
              at += n;
              for (let f = reader.poll(); f !== null; f = reader.poll()) got.push(f.payload);
              expect(reader.truncation() === null).toBe(reader.buffered === 0);
            }
            expect(got).toEqual(messages);
            expect(reader.truncation()).toBeNull();
          },
        ),
        { numRuns: 40 },
      );
      const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
      reader.feed(encodeFrame({ framing, protocol: 'binary' }, msg(0, 10)).subarray(0, 9));
      expect(reader.poll()).toBeNull();
      expect(reader.truncation()).toSatisfy(
        (e) => e instanceof ThriftProtocolError && e.code === 'ERR_THRIFT_TRUNCATED',
      );
    });

    it('feedChunk() gives the frames feed() would, whole frames as views of chunks kept until recycle(); each chunk released once', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 20 }),
          fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
          (paddings, sizes, recycles) => {
            const messages = paddings.map((p) => msg(0, p));
            const wire = Buffer.concat(messages.map((m) => encodeFrame({ framing, protocol: 'binary' }, m)));
            const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
            let chunks = 0;
            let releases = 0;
            let doubleReleases = 0;
            let inPlace = 0;
            const pool = new Set<ArrayBufferLike>();
            // Frames got since the last recycle(), checked just before it: a chunk released
            // early is poisoned (as the kernel would reuse a pool buffer), so its frames differ.
            let pending: { got: Uint8Array; want: Uint8Array }[] = [];
            let next = 0;
            let i = 0;
            for (let at = 0; at < wire.byteLength; i++) {
              const n = sizes[i % sizes.length]!;
              // A chunk of its own memory (Buffer's slice() would view the wire).
              const bytes = new Uint8Array(wire.subarray(at, at + n));
              pool.add(bytes.buffer);
              chunks++;
              let released = false;
              reader.feedChunk({
                bytes,
                release: () => {
                  if (released) doubleReleases++;
                  released = true;
                  releases++;
                  bytes.fill(0xee);
                },
              });
              at += n;
              for (let f = reader.poll(); f !== null; f = reader.poll()) {
                if (pool.has(f.payload.buffer)) inPlace++;
                pending.push({ got: f.payload, want: messages[next++]! });
              }
              expect(reader.truncation() === null).toBe(reader.buffered === 0);
              if (recycles[i % recycles.length]) {
                for (const { got, want } of pending) expect(got).toEqual(want);
                pending = [];
                reader.recycle();
              }
            }
            for (const { got, want } of pending) expect(got).toEqual(want);
            reader.recycle();
            expect(next).toBe(messages.length);
            expect(reader.truncation()).toBeNull();
            expect(releases).toBe(chunks);
            expect(doubleReleases).toBe(0);
            // A chunk that starts a frame and holds it whole is not copied.
            if (sizes.every((n) => n >= wire.byteLength)) expect(inPlace).toBe(messages.length);
          },
        ),
        { numRuns: 40 },
      );
    });

    it('retainLast(): each frame keeps its chunk until released, whatever recycle() and later chunks do; each chunk released once', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 20 }),
          fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }),
          fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 7 }),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
          (paddings, sizes, delays, recycles) => {
            const messages = paddings.map((p) => msg(0, p));
            const wire = Buffer.concat(messages.map((m) => encodeFrame({ framing, protocol: 'binary' }, m)));
            const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
            let chunks = 0;
            let releases = 0;
            let doubleReleases = 0;
            let inPlace = 0;
            const pool = new Set<ArrayBufferLike>();
            /** Frames not released yet: each is checked intact just before its release. */
            let out: { got: Uint8Array; want: Uint8Array; release: () => void; after: number }[] = [];
            let next = 0;
            let i = 0;
            const releaseDue = (step: number): void => {
              for (const f of out.filter((f) => f.after <= step)) {
                expect(f.got).toEqual(f.want);
                f.release();
              }
              out = out.filter((f) => f.after > step);
            };
            for (let at = 0; at < wire.byteLength; i++) {
              const n = sizes[i % sizes.length]!;
              const bytes = new Uint8Array(wire.subarray(at, at + n));
              pool.add(bytes.buffer);
              chunks++;
              let released = false;
              reader.feedChunk({
                bytes,
                release: () => {
                  if (released) doubleReleases++;
                  released = true;
                  releases++;
                  bytes.fill(0xee);
                },
              });
              at += n;
              for (let f = reader.poll(); f !== null; f = reader.poll()) {
                const share = reader.retainLast();
                if (!pool.has(f.payload.buffer)) {
                  // In the reader's buffer: recycle() governs it, so it is used (checked) at once.
                  expect(share).toBeNull();
                  expect(f.payload).toEqual(messages[next++]);
                  continue;
                }
                inPlace++;
                expect(share).not.toBeNull();
                out.push({
                  got: f.payload,
                  want: messages[next++]!,
                  release: () => share!.release(),
                  after: i + delays[next % delays.length]!,
                });
              }
              if (recycles[i % recycles.length]) reader.recycle();
              releaseDue(i);
            }
            releaseDue(Number.POSITIVE_INFINITY);
            reader.recycle();
            reader.dispose();
            expect(next).toBe(messages.length);
            expect(releases).toBe(chunks);
            expect(doubleReleases).toBe(0);
            if (sizes.every((n) => n >= wire.byteLength)) expect(inPlace).toBe(messages.length);
          },
        ),
        { numRuns: 60 },
      );
    });

    it('retainLast(): a chunk whose frames were all retained goes back with the last release, not at recycle()', () => {
      const a = encodeFrame({ framing, protocol: 'binary' }, msg(0, 100));
      const b = encodeFrame({ framing, protocol: 'binary' }, msg(0, 200));
      const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
      let released = 0;
      reader.feedChunk({ bytes: Buffer.concat([a, b]), release: () => void released++ });
      expect(reader.poll()).not.toBeNull();
      const first = reader.retainLast()!;
      expect(reader.retainLast()).toBeNull(); // once per frame
      reader.recycle();
      expect(reader.poll()).not.toBeNull();
      const second = reader.retainLast()!;
      reader.recycle();
      reader.dispose();
      first.release();
      expect(released).toBe(0);
      second.release();
      expect(released).toBe(1);
      second.release(); // spent references do nothing
      expect(released).toBe(1);
    });

    it('lastWireAt and RetainedChunk.wire(): a framed frame read whole in place is one view of its prefix and payload; one whose prefix came before, or of another framing, has none', () => {
      const a = encodeFrame({ framing, protocol: 'binary' }, msg(0, 100));
      const b = encodeFrame({ framing, protocol: 'binary' }, msg(0, 200));
      const bytes = Buffer.concat([a, b]);
      const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
      reader.feedChunk({ bytes, release: () => {} });
      expect(reader.poll()).not.toBeNull();
      expect(reader.lastWireAt).toBe(framing === 'framed' ? 0 : -1);
      reader.retainLast()!.release();
      const frame = reader.poll()!;
      const share = reader.retainLast()!;
      const at = reader.lastWireAt;
      if (framing !== 'framed') {
        // The wire form is the framed transport's.
        expect(at).toBe(-1);
        share.release();
        reader.dispose();
        return;
      }
      expect(at).toBe(a.byteLength);
      const wire = share.wire(at, frame.wireLength)!;
      expect(wire.buffer).toBe(bytes.buffer);
      expect(wire.byteOffset + 4).toBe(frame.payload.byteOffset);
      expect(Buffer.compare(wire, b)).toBe(0);
      share.release();
      expect(share.wire(at, frame.wireLength)).toBeUndefined(); // released: no bytes to view
      reader.dispose();
      // A chunk that is exactly one frame is its own wire: the chunk's bytes, no view made.
      const whole = new FrameReader(scripted(new Uint8Array(0), [1]), { framing });
      const only = new Uint8Array(b);
      whole.feedChunk({ bytes: only, release: () => {} });
      const one = whole.poll()!;
      const kept = whole.retainLast()!;
      expect(whole.lastWireAt).toBe(0);
      expect(kept.wire(0, one.wireLength)).toBe(only);
      kept.release();
      // A frame whose length prefix came alone in the chunk before (as Go's framed transport
      // writes it): its body is a view of the second chunk, with no prefix before it there.
      const split = new FrameReader(scripted(new Uint8Array(0), [1]), { framing });
      split.feedChunk({ bytes: new Uint8Array(b.subarray(0, 4)), release: () => {} });
      expect(split.poll()).toBeNull();
      split.feedChunk({ bytes: new Uint8Array(b.subarray(4)), release: () => {} });
      expect(split.poll()).not.toBeNull();
      expect(split.retainLast()).not.toBeNull();
      expect(split.lastWireAt).toBe(-1);
      // A frame of the reader's own buffer (not in place): none either.
      const copied = new FrameReader(scripted(new Uint8Array(0), [1]), { framing });
      copied.feed(b);
      expect(copied.poll()).not.toBeNull();
      expect(copied.lastWireAt).toBe(-1);
    });

    it('feedChunk(): a chunk that completes a frame begun in the buffer has only that rest copied; the frames after it are views of it', () => {
      if (framing === 'unframed') return; // no length prefix: such a chunk is copied whole
      const frames = [100, 3000, 200, 300].map((p) =>
        encodeFrame({ framing, protocol: 'binary' }, msg(0, p)),
      );
      const payloads = frames.map((f) => decodeFrame(framing, f).payload);
      const wire = Buffer.concat(frames);
      // The first chunk ends inside the second frame; the second holds its rest and two more.
      const cut = frames[0]!.byteLength + 1000;
      const second = new Uint8Array(wire.subarray(cut));
      const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
      let released = 0;
      reader.feedChunk({ bytes: new Uint8Array(wire.subarray(0, cut)), release: () => void released++ });
      expect(reader.poll()?.payload).toEqual(payloads[0]);
      const first = reader.retainLast()!;
      expect(reader.poll()).toBeNull();
      reader.feedChunk({ bytes: second, release: () => void released++ });
      const got = [
        reader.poll(),
        reader.retainLast(),
        reader.poll(),
        reader.retainLast(),
        reader.poll(),
        reader.retainLast(),
      ];
      expect(reader.poll()).toBeNull();
      expect([got[0]!, got[2]!, got[4]!].map((f) => (f as { payload: Uint8Array }).payload)).toEqual(
        payloads.slice(1),
      );
      // The completed frame is in the reader's buffer; the two after it are views of the chunk.
      expect(
        [got[0]!, got[2]!, got[4]!].map(
          (f) => (f as { payload: Uint8Array }).payload.buffer === second.buffer,
        ),
      ).toEqual([false, true, true]);
      expect(got[1]).toBeNull();
      first.release();
      expect(released).toBe(1);
      (got[3] as { release(): void }).release();
      expect(released).toBe(1);
      (got[5] as { release(): void }).release();
      expect(released).toBe(2);
    });

    it('feedChunk(): a pinned chunk outlives recycle() until dispose(); a frame that lies about its size is refused', () => {
      const frame = encodeFrame({ framing, protocol: 'binary' }, msg(0, 100));
      const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
      let released = 0;
      reader.feedChunk({ bytes: frame.slice(), release: () => void released++ });
      const got = reader.poll();
      expect(got).not.toBeNull();
      reader.pin();
      reader.recycle();
      expect(released).toBe(0);
      reader.dispose();
      expect(released).toBe(1);

      if (framing === 'unframed') return;
      const liar = new FrameReader(scripted(new Uint8Array(0), [1]), { framing, maxFrameSize: 64 });
      let liarReleased = 0;
      liar.feedChunk({ bytes: frame.slice(), release: () => void liarReleased++ });
      expect(() => liar.poll()).toThrow(expect.objectContaining({ code: 'ERR_THRIFT_FRAME_SIZE' }));
      liar.dispose();
      expect(liarReleased).toBe(1);
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

describe.each(['framed', 'theader', 'ttheader'] as FramingName[])(
  'FrameReader.feedChunk, %s, a length prefix received apart (Apache Go writes it alone)',
  (framing) => {
    const framed = (padding: number, i = 0): Uint8Array =>
      encodeFrame({ framing, protocol: 'binary', seqId: i }, msg(i, padding));
    const body = (frame: Uint8Array): Uint8Array => decodeFrame(framing, frame).payload;

    it('the payload is a view of the chunk that holds it, the frames after it too; the chunk goes back once', () => {
      const reader = new FrameReader(scripted(new Uint8Array(0), [1]));
      let released = 0;
      // A first whole frame: the framing is detected.
      reader.feedChunk({ bytes: framed(10), release: () => void released++ });
      expect(reader.poll()).not.toBeNull();
      reader.retainLast()!.release();
      expect(released).toBe(1);
      const call = framed(10_240, 2);
      const next = framed(2_000, 4);
      reader.feed(call.subarray(0, 4)); // the prefix, copied as a server copies chunks under 1 KiB
      expect(reader.poll()).toBeNull();
      const chunk = new Uint8Array(Buffer.concat([call.subarray(4), next]));
      reader.feedChunk({ bytes: chunk, release: () => void released++ });
      const got = reader.poll()!;
      expect(got.payload).toEqual(body(call));
      expect(got.payload.buffer).toBe(chunk.buffer); // not copied into the reader
      expect(got.wireLength).toBe(call.byteLength);
      expect(got.seqId).toBe(2);
      const first = reader.retainLast()!;
      const after = reader.poll()!;
      expect(after.payload).toEqual(body(next));
      expect(after.payload.buffer).toBe(chunk.buffer);
      const second = reader.retainLast()!;
      expect(reader.poll()).toBeNull();
      expect(reader.buffered).toBe(0);
      reader.recycle();
      first.release();
      expect(released).toBe(1);
      second.release();
      expect(released).toBe(2);
    });

    it('a prefix taken out of the buffer goes back before its payload when the chunk is spilled (a later chunk, recycle())', () => {
      for (const spill of ['feed', 'feedChunk', 'recycle'] as const) {
        const reader = new FrameReader(scripted(new Uint8Array(0), [1]), { framing });
        const a = framed(3_000, 0);
        const b = framed(1_500, 2);
        let released = 0;
        reader.feed(a.subarray(0, 4));
        reader.feedChunk({ bytes: a.slice(4), release: () => void released++ });
        if (spill === 'recycle') reader.recycle();
        else if (spill === 'feed') reader.feed(b);
        else reader.feedChunk({ bytes: b.slice(), release: () => void released++ });
        expect(reader.poll()?.payload).toEqual(body(a));
        if (spill !== 'recycle') expect(reader.poll()?.payload).toEqual(body(b));
        expect(reader.poll()).toBeNull();
        reader.recycle();
        reader.dispose();
        expect(released).toBe(spill === 'feedChunk' ? 2 : 1);
      }
    });

    it('a prefix over maxFrameSize (or not positive) is still refused with ERR_THRIFT_FRAME_SIZE, its chunk given back', () => {
      for (const prefix of [
        [0, 0, 1, 0],
        [0, 0, 0, 0],
        [0xff, 0xff, 0xff, 0xf0],
      ]) {
        const reader = new FrameReader(scripted(new Uint8Array(0), [1]), { framing, maxFrameSize: 128 });
        let released = 0;
        reader.feed(new Uint8Array(prefix));
        const payload = msg(0, 300);
        expect(() => {
          reader.feedChunk({ bytes: payload, release: () => void released++ });
          reader.poll();
        }).toThrow(expect.objectContaining({ code: 'ERR_THRIFT_FRAME_SIZE' }));
        reader.dispose();
        expect(released).toBe(1);
      }
    });

    it("any mix of prefixes apart, payloads with the frames after them, recycles and retained frames: feed()'s frames, each chunk released once", () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              padding: fc.integer({ min: 0, max: 3000 }),
              apart: fc.boolean(), // its prefix comes alone, the rest with the next frame when `joined`
              joined: fc.boolean(),
              poll: fc.boolean(), // polled before the next chunk (else spilled by it)
              recycle: fc.boolean(),
            }),
            { minLength: 1, maxLength: 12 },
          ),
          (steps) => {
            const messages = steps.map((s, i) => msg(i, s.padding));
            const frames = messages.map((m, i) =>
              encodeFrame({ framing, protocol: i % 2 === 0 ? 'binary' : 'compact' }, m),
            );
            const chunks: Uint8Array[] = [];
            for (let i = 0; i < frames.length; i++) {
              const f = frames[i]!;
              const tail = steps[i]!.joined && i + 1 < frames.length ? [frames[++i]!] : [];
              if (steps[i]!.apart)
                chunks.push(f.slice(0, 4), new Uint8Array(Buffer.concat([f.subarray(4), ...tail])));
              else chunks.push(new Uint8Array(Buffer.concat([f, ...tail])));
            }
            const reader = new FrameReader(scripted(new Uint8Array(0), [1]), { framing });
            let releases = 0;
            let doubles = 0;
            let out: { got: Uint8Array; want: Uint8Array; share: { release(): void } | null }[] = [];
            let next = 0;
            const drain = (): void => {
              for (let f = reader.poll(); f !== null; f = reader.poll()) {
                out.push({ got: f.payload, want: messages[next++]!, share: reader.retainLast() });
              }
            };
            chunks.forEach((bytes, i) => {
              let released = false;
              reader.feedChunk({
                bytes,
                release: () => {
                  if (released) doubles++;
                  released = true;
                  releases++;
                  bytes.fill(0xee);
                },
              });
              const step = steps[i % steps.length]!;
              if (step.poll) drain();
              if (step.recycle) {
                // Frames in the reader's buffer end here (recycle() governs them); retained ones too.
                for (const o of out) {
                  expect(o.got).toEqual(o.want);
                  o.share?.release();
                }
                out = [];
                reader.recycle();
              }
            });
            drain();
            for (const o of out) {
              expect(o.got).toEqual(o.want);
              o.share?.release();
            }
            reader.recycle();
            reader.dispose();
            expect(next).toBe(messages.length);
            expect(releases).toBe(chunks.length);
            expect(doubles).toBe(0);
          },
        ),
        { numRuns: 50 },
      );
    });
  },
);

/** A stream whose receives wait until it is closed (then end). */
function silent(): ThriftStream & { closed: boolean } {
  const waiting: ((c: ThriftRecvChunk | null) => void)[] = [];
  const s = {
    closed: false,
    recv: () => new Promise<ThriftRecvChunk | null>((resolve) => waiting.push(resolve)),
    writev: async () => 0,
    close: async () => {
      s.closed = true;
      for (const w of waiting.splice(0)) w(null);
    },
  };
  return s;
}

describe('FrameReader receive timeouts', () => {
  it('never fires early, also when a shorter deadline shortens the running sweep', async () => {
    vi.useFakeTimers({
      toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'],
    });
    try {
      const long = silent();
      const longNext = new FrameReader(long, { idleTimeout: 4000 }).next().catch((e) => e);
      await vi.advanceTimersByTimeAsync(900);
      const short = silent();
      let shortError: unknown;
      const shortNext = new FrameReader(short, { idleTimeout: 100 }).next().catch((e) => {
        shortError = e;
      });
      await vi.advanceTimersByTimeAsync(95);
      expect(short.closed).toBe(false);
      expect(shortError).toBeUndefined();
      await vi.advanceTimersByTimeAsync(200);
      await shortNext;
      expect(shortError).toBeInstanceOf(ThriftRpcError);
      expect(short.closed).toBe(true);
      expect(long.closed).toBe(false);
      await vi.advanceTimersByTimeAsync(5000);
      expect((await longNext).code).toBe('ERR_THRIFT_TIMEOUT');
    } finally {
      vi.useRealTimers();
    }
  });

  it('arms no timer per receive: deadlines go to the thread sweep', async () => {
    const frames = Array.from({ length: 50 }, (_, i) =>
      encodeFrame({ framing: 'framed', protocol: 'binary' }, msg(i * 2, 8)),
    );
    const stream = scripted(Buffer.concat(frames), [5, 40]);
    const reader = new FrameReader(stream, { idleTimeout: 60_000, readTimeout: 30_000 });
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    try {
      let n = 0;
      while ((await reader.next()) !== null) n++;
      expect(n).toBe(50);
      expect(stream.delivered).toBeGreaterThan(50);
      expect(setTimeoutSpy).not.toHaveBeenCalled();
    } finally {
      setTimeoutSpy.mockRestore();
    }
  });

  it('a receive past its deadline closes the stream and throws ERR_THRIFT_TIMEOUT', async () => {
    let wake: ((c: ThriftRecvChunk | null) => void) | undefined;
    const frame = encodeFrame({ framing: 'framed', protocol: 'binary' }, msg(0, 8));
    let sent = false;
    const stream: ThriftStream & { closed: boolean } = {
      closed: false,
      recv() {
        if (!sent) {
          sent = true;
          // Half a frame, then nothing: the message deadline applies.
          return Promise.resolve({ bytes: frame.subarray(0, 6), release() {} });
        }
        return new Promise((resolve) => {
          wake = resolve;
        });
      },
      async writev() {
        return 0;
      },
      async close() {
        stream.closed = true;
        wake?.(null);
      },
    };
    const reader = new FrameReader(stream, { idleTimeout: 0, readTimeout: 30 });
    await expect(reader.next()).rejects.toSatisfy(
      (e) =>
        e instanceof ThriftRpcError &&
        e.code === 'ERR_THRIFT_TIMEOUT' &&
        e.message === 'message not complete after 30 ms',
    );
    expect(stream.closed).toBe(true);
  });
});

describe('FrameReader passes its options to the frame decoders', () => {
  /** An old-style (unversioned) binary call: name length, name, type, seq id, then its body. */
  function oldStyleCall(seqId: number): Uint8Array {
    const name = Buffer.from('ping');
    const b = Buffer.alloc(4 + name.length + 1 + 4 + 1);
    b.writeInt32BE(name.length, 0);
    name.copy(b, 4);
    b[8] = MessageType.CALL;
    b.writeInt32BE(seqId, 9);
    b[13] = TType.STOP;
    return new Uint8Array(b);
  }

  it('protocol: an unversioned binary payload, which cannot be sniffed, is decoded as the option says', () => {
    const frame = encodeFrame({ framing: 'framed', protocol: 'binary' }, oldStyleCall(77));
    for (const chunked of [false, true]) {
      const told = new FrameReader(scripted(new Uint8Array(0), [1]), {
        framing: 'framed',
        protocol: 'binary',
      });
      const untold = new FrameReader(scripted(new Uint8Array(0), [1]), { framing: 'framed' });
      const give = (reader: FrameReader): void => {
        if (chunked) reader.feedChunk({ bytes: frame.slice(), release: () => {} });
        else reader.feed(frame);
      };
      give(told);
      const got = told.poll();
      expect(got?.protocol).toBe('binary');
      expect(got?.seqId).toBe(77);
      give(untold);
      expect(() => untold.poll()).toThrow(expect.objectContaining({ code: 'ERR_THRIFT_UNKNOWN_PROTOCOL' }));
    }
  });

  it('maxFrameSize: bounds a THeader zlib payload as it is inflated', () => {
    // 64 KiB of one byte deflate to a few hundred: the frame passes the length check, its
    // inflated payload does not (16 MiB, the default, would let it through).
    const payload = msg(0, 64 * 1024);
    const frame = encodeFrame({ framing: 'theader', protocol: 'binary', transforms: [1] }, payload);
    expect(frame.byteLength).toBeLessThan(4096);
    const small = new FrameReader(scripted(new Uint8Array(0), [1]), {
      framing: 'theader',
      maxFrameSize: 4096,
    });
    small.feed(frame);
    expect(() => small.poll()).toThrow();
    const large = new FrameReader(scripted(new Uint8Array(0), [1]), { framing: 'theader' });
    large.feed(frame);
    expect(large.poll()?.payload).toEqual(payload);
  });
});
