/**
 * The receive low-water mark a FrameReader allows (recvLowWater) and RecvLowWater, which applies
 * it: 5 at a frame boundary, never more than the bytes still missing of the frame being read
 * (whatever the chunking, the framing, in place or copied, whole frames waiting unpolled), 1
 * where the stream is not length-prefixed; applied to the stream only when it changes, and not
 * asked again of a stream that cannot take it. Real sockets: test/recv-low-water.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createWriter } from '../protocol/factory.js';
import { encodeFrame } from '../transport/codec.js';
import type { FramingName } from '../transport/frame.js';
import { MessageType, TType } from '../types.js';
import { FrameReader, MIN_FRAME_BYTES } from './frame-reader.js';
import { RecvLowWater } from './recv-low-water.js';
import type { ThriftStream } from './stream.js';

const LENGTH_PREFIXED: FramingName[] = ['framed', 'theader', 'ttheader'];

function msg(i: number, padding: number): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin(`m${i}`, MessageType.CALL, i);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, 1);
  w.writeString('p'.repeat(padding));
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

/** A stream for the reader's constructor (the tests feed it themselves), recording marks set. */
function stream(answer: boolean | 'absent' = true): ThriftStream & { marks: number[] } {
  const marks: number[] = [];
  const s = {
    marks,
    closed: false,
    recv: async () => null,
    writev: async () => 0,
    close: async () => {},
  };
  if (answer === 'absent') return s;
  return Object.assign(s, {
    setRecvLowWater(bytes: number): boolean {
      marks.push(bytes);
      return answer;
    },
  });
}

/** A framed binary call of `size` bytes in all (26 or more). */
function rawFrame(size: number): Uint8Array {
  const frame = encodeFrame({ framing: 'framed', protocol: 'binary' }, msg(0, size - 26));
  expect(frame.length).toBe(size);
  return frame;
}

describe('FrameReader.recvLowWater', () => {
  it.each(LENGTH_PREFIXED)(
    '%s: 5 at a boundary, the missing count under 5, 5 - n with n bytes of a prefix',
    (framing) => {
      const frame = encodeFrame({ framing, protocol: 'binary', seqId: 1 }, msg(1, 40));
      const reader = new FrameReader(stream(), { framing });
      expect(reader.recvLowWater()).toBe(MIN_FRAME_BYTES);
      for (let k = 1; k < frame.length; k++) {
        reader.feed(frame.subarray(0, k));
        expect(reader.poll()).toBeNull();
        const missing = frame.length - k;
        expect(reader.recvLowWater()).toBe(k < 4 ? 5 - k : Math.min(5, missing));
        reader.feed(frame.subarray(k));
        expect(reader.poll()).not.toBeNull();
        expect(reader.recvLowWater()).toBe(MIN_FRAME_BYTES);
        reader.recycle();
      }
    },
  );

  it('1 for unframed, and while undetected when unframed is accepted; 5 from the start when it is not', () => {
    expect(new FrameReader(stream(), { framing: 'unframed' }).recvLowWater()).toBe(1);
    expect(new FrameReader(stream()).recvLowWater()).toBe(1);
    expect(new FrameReader(stream(), { framings: ['framed', 'unframed'] }).recvLowWater()).toBe(1);
    const refusing = new FrameReader(stream(), { framings: ['framed', 'theader', 'ttheader'] });
    expect(refusing.recvLowWater()).toBe(5);
    // The first frame's bytes before its framing is known (detection needs 6).
    const frame = encodeFrame({ framing: 'framed', protocol: 'binary' }, msg(0, 0));
    refusing.feed(frame.subarray(0, 2));
    expect(refusing.poll()).toBeNull();
    expect(refusing.framing).toBeNull();
    expect(refusing.recvLowWater()).toBe(3);
    // Detected as framed once the whole frame is there, unframed otherwise.
    const auto = new FrameReader(stream());
    auto.feed(frame);
    expect(auto.poll()).not.toBeNull();
    expect(auto.recvLowWater()).toBe(5);
    const unframed = new FrameReader(stream());
    unframed.feed(msg(0, 0));
    expect(unframed.poll()).not.toBeNull();
    expect(unframed.recvLowWater()).toBe(1);
  });

  it('counts past whole frames not yet polled (a server at its call limit), in the buffer and in a held chunk', () => {
    const a = rawFrame(100);
    const b = rawFrame(30);
    const c = rawFrame(26);
    const bytes = new Uint8Array(Buffer.concat([a, b, c]));
    for (const tail of [1, 2, 3, 4, 5, 6, 22, 23, 24, 25, 26]) {
      const cut = bytes.length - tail;
      // In place: the chunk is held; copied: the buffer.
      for (const inPlace of [true, false]) {
        const reader = new FrameReader(stream(), { framing: 'framed' });
        if (inPlace) reader.feedChunk({ bytes: bytes.slice(0, cut), release: () => {} });
        else reader.feed(bytes.subarray(0, cut));
        const received = 26 - tail;
        const expected = received < 4 ? 5 - received : Math.min(5, tail);
        expect(reader.recvLowWater()).toBe(expected);
        expect(reader.poll()).not.toBeNull();
        if (inPlace) reader.retainLast();
        expect(reader.recvLowWater()).toBe(expected);
      }
    }
  });

  it('counts a body held in place whose prefix came in the chunk before (Apache Go writes it alone)', () => {
    const a = rawFrame(3000);
    const b = rawFrame(2000);
    const reader = new FrameReader(stream(), { framing: 'framed' });
    reader.feed(a.subarray(0, 4));
    expect(reader.poll()).toBeNull();
    expect(reader.recvLowWater()).toBe(5);
    // The rest of a and all of b but its last 3 bytes: a's body is held, its prefix taken out.
    reader.feedChunk({
      bytes: new Uint8Array(Buffer.concat([a.subarray(4), b.subarray(0, -3)])),
      release: () => {},
    });
    expect(reader.recvLowWater()).toBe(3);
    expect(reader.poll()?.wireLength).toBe(3000);
    reader.retainLast();
    expect(reader.recvLowWater()).toBe(3);
    expect(reader.poll()).toBeNull();
    expect(reader.recvLowWater()).toBe(3);
  });

  it('never holds back a byte the reader needs, whatever the frames and the chunking (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...LENGTH_PREFIXED),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        (framing, paddings, sizes, inPlace) => {
          const frames = paddings.map((p, i) =>
            encodeFrame({ framing, protocol: 'binary', seqId: i }, msg(i, p)),
          );
          const bytes = new Uint8Array(Buffer.concat(frames));
          const ends: number[] = [];
          let end = 0;
          for (const f of frames) ends.push((end += f.length));
          const s = stream();
          const reader = new FrameReader(s, { framing });
          const applied = new RecvLowWater(s);
          let at = 0;
          let got = 0;
          for (let i = 0; at < bytes.length; i++) {
            const n = Math.min(sizes[i % sizes.length]!, bytes.length - at);
            const chunk = bytes.slice(at, at + n);
            at += n;
            if (inPlace) reader.feedChunk({ bytes: chunk, release: () => {} });
            else reader.feed(chunk);
            while (reader.poll() !== null) {
              if (inPlace) reader.retainLast();
              got++;
            }
            reader.recycle();
            // The bytes the reader needs before its next frame is whole: the mark must not exceed them.
            const mark = reader.recvLowWater();
            if (got === frames.length) expect(mark).toBe(5);
            else {
              expect(mark).toBeGreaterThanOrEqual(1);
              expect(mark).toBeLessThanOrEqual(Math.min(5, ends[got]! - at));
            }
            // What RecvLowWater applies (its shortcut at a boundary included) is the reader's mark.
            applied.update(reader);
            expect(applied.mark).toBe(mark);
            expect(s.marks.at(-1) ?? 1).toBe(mark);
          }
          expect(got).toBe(frames.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a bad prefix holds nothing back (poll() reports it)', () => {
    const reader = new FrameReader(stream(), { framing: 'framed' });
    reader.feed(new Uint8Array([0, 0, 0, 0, 1]));
    expect(reader.recvLowWater()).toBe(1);
    reader.feed(new Uint8Array([0xff, 0xff, 0xff, 0xf0]));
    expect(reader.recvLowWater()).toBe(1);
  });
});

describe('RecvLowWater', () => {
  it('sets 5 once for frames received whole, lowers it for a frame short of 1-4 bytes, raises it after', () => {
    const s = stream();
    const reader = new FrameReader(s, { framing: 'framed' });
    const mark = new RecvLowWater(s);
    const frame = rawFrame(200);
    for (let i = 0; i < 10; i++) {
      mark.update(reader);
      reader.feed(frame);
      expect(reader.poll()).not.toBeNull();
      reader.recycle();
    }
    mark.update(reader);
    expect(s.marks).toEqual([5]);
    reader.feed(frame.subarray(0, 198));
    expect(reader.poll()).toBeNull();
    mark.update(reader);
    expect(mark.mark).toBe(2);
    reader.feed(frame.subarray(198));
    expect(reader.poll()).not.toBeNull();
    mark.update(reader);
    mark.update(reader);
    expect(s.marks).toEqual([5, 2, 5]);
  });

  it.each([1, 2, 3, 4])(
    'lowers the mark for a frame missing %i byte(s), whether its body is copied or held in place, and raises it after',
    (missing) => {
      for (const inPlace of [false, true]) {
        const s = stream();
        const reader = new FrameReader(s, { framing: 'framed' });
        const mark = new RecvLowWater(s);
        const first = rawFrame(300);
        const second = rawFrame(200);
        mark.update(reader);
        // The prefix alone first (Apache Go writes it so), then one chunk with the rest of the
        // first frame and all but the last `missing` bytes of the second: a chunk that carries the
        // first frame's whole rest is held in place (not copied) when fed as a chunk.
        reader.feed(first.subarray(0, 4));
        expect(reader.poll()).toBeNull();
        mark.update(reader);
        const chunk = new Uint8Array(
          Buffer.concat([first.subarray(4), second.subarray(0, second.length - missing)]),
        );
        if (inPlace) reader.feedChunk({ bytes: chunk, release: () => {} });
        else reader.feed(chunk);
        mark.update(reader);
        expect(mark.mark).toBe(missing);
        expect(reader.poll()?.wireLength).toBe(300);
        if (inPlace) reader.retainLast();
        mark.update(reader);
        expect(mark.mark).toBe(missing);
        expect(reader.poll()).toBeNull();
        reader.feed(second.subarray(second.length - missing));
        expect(reader.poll()?.wireLength).toBe(200);
        reader.recycle();
        mark.update(reader);
        expect(mark.mark).toBe(5);
        expect(s.marks).toEqual([5, missing, 5]);
      }
    },
  );

  it('asks nothing of a stream without the call, and stops asking one that answers false (the legacy driver)', () => {
    const none = stream('absent');
    const unmarked = new RecvLowWater(none);
    unmarked.update(new FrameReader(none, { framing: 'framed' }));
    expect(unmarked.mark).toBe(1);
    const legacy = stream(false);
    const reader = new FrameReader(legacy, { framing: 'framed' });
    const mark = new RecvLowWater(legacy);
    mark.update(reader);
    reader.feed(rawFrame(30).subarray(0, 28));
    mark.update(reader);
    expect(legacy.marks).toEqual([5]);
    expect(mark.mark).toBe(1);
  });

  it('sets nothing on an unframed stream (the default mark is right there)', () => {
    const s = stream();
    const reader = new FrameReader(s, { framing: 'unframed' });
    new RecvLowWater(s).update(reader);
    expect(s.marks).toEqual([]);
  });
});
