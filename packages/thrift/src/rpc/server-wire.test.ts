/**
 * A framed call relayed as it came (issue 15): with `callsInPlace`, ThriftRequest.wire() is the
 * call's frame exactly as received (its length prefix and payload, one view of the received
 * chunk) when the prefix came in the same receive as the payload, and undefined otherwise (a
 * lone prefix: the bytes before the payload are not the call's); ThriftReply.wire is written as
 * the one buffer it is to a framed caller, and only when its prefix gives the rest of it as the
 * reply payload's length.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { echoCall } from '../../test/echo-call.js';
import { createReader } from '../protocol/factory.js';
import { encodeFrame } from '../transport/codec.js';
import type { FramingName } from '../transport/frame.js';
import { MessageType, TType } from '../types.js';
import { FrameReader } from './frame-reader.js';
import { createReply, type ThriftHandler, type ThriftReply, ThriftServer } from './server.js';
import type { ThriftRecvTarget, ThriftWriteTarget } from './stream.js';

/** Binary `echo(1: string text)` calls with texts of the given sizes, framed with `framing`. */
function calls(sizes: readonly number[], framing: FramingName = 'framed') {
  const texts = sizes.map((n, i) => `${i}:`.padEnd(n, 'x'));
  const frames = texts.map((text, i) => echoCall(text, i, framing));
  return { texts, frames, wire: new Uint8Array(Buffer.concat(frames)) };
}

/**
 * A connection on the promise-free pair delivering `wire` in chunks of the given sizes (cycled),
 * each its own memory; records every writeTo as given (one buffer, or an array of them).
 */
function pooled(wire: Uint8Array, sizes: readonly number[]) {
  let at = 0;
  let i = 0;
  const s = {
    writes: [] as (Uint8Array | Uint8Array[])[],
    chunks: [] as Uint8Array[],
    closed: false,
    recv(): Promise<null> {
      throw new Error('recv() used');
    },
    writev(): Promise<number> {
      throw new Error('writev() used');
    },
    recvTo(target: ThriftRecvTarget): void {
      queueMicrotask(() => {
        if (at >= wire.byteLength) return target.onRecv(null, undefined);
        const n = Math.max(1, sizes[i++ % sizes.length]!);
        const bytes = wire.slice(at, Math.min(wire.byteLength, at + n));
        at += bytes.byteLength;
        s.chunks.push(bytes);
        target.onRecv({ bytes, release() {} }, undefined);
      });
    },
    writeTo(data: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
      s.writes.push(data instanceof Uint8Array ? data.slice() : data.map((b) => b.slice()));
      queueMicrotask(() => target.onWritten(undefined));
    },
    async close(): Promise<void> {
      s.closed = true;
    },
  };
  return s;
}

/** Every byte written, in order. */
function writtenBytes(s: { writes: (Uint8Array | Uint8Array[])[] }): Buffer {
  return Buffer.concat(s.writes.flatMap((w) => (w instanceof Uint8Array ? [w] : w)));
}

/** The texts of the replies in `bytes`. */
function repliesOf(bytes: Uint8Array): string[] {
  const reader = new FrameReader(null as never);
  reader.feed(bytes);
  const texts: string[] = [];
  for (let f = reader.poll(); f !== null; f = reader.poll()) {
    const r = createReader(f.protocol).reset(f.payload);
    expect(r.readMessageBegin().type).toBe(MessageType.REPLY);
    r.readStructBegin();
    r.readFieldBegin();
    texts.push(r.readString());
  }
  return texts;
}

const ticks = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** The echo reply of `text` to `request`. */
function echoReply(request: Parameters<ThriftHandler['call']>[0], text: string) {
  return createReply(request, (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 0);
    w.writeString(text);
    w.writeFieldStop();
    w.writeStructEnd();
  });
}

/** `payload` framed into one new buffer, and the payload as its view from the 5th byte. */
function framedWire(payload: Uint8Array): { wire: Uint8Array; payload: Uint8Array } {
  const wire = encodeFrame({ framing: 'framed', protocol: 'binary' }, payload);
  return { wire, payload: wire.subarray(4) };
}

describe('ThriftServer: a framed call and its reply relayed as they came', () => {
  it('wire() is the call exactly as received, a view of its chunk, whenever its prefix came with its payload; undefined otherwise', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1100, max: 5000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 12_000 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom<FramingName>('framed', 'theader', 'ttheader'),
        async (sizes, chunkSizes, framing) => {
          const { texts, frames, wire } = calls(sizes, framing);
          const stream = pooled(wire, chunkSizes);
          const got: (Uint8Array | undefined)[] = [];
          const expected: boolean[] = [];
          const handler: ThriftHandler = {
            call(request) {
              const id = request.header.seqId;
              const w = request.wire?.();
              got[id] = w === undefined ? undefined : w.slice();
              // In place (a view of a received chunk, each its own memory from offset 0) with
              // room for the prefix before the payload in that chunk: the prefix came with it.
              const payload = request.frame.payload;
              const inPlace = stream.chunks.some((c) => c.buffer === payload.buffer);
              expected[id] = framing === 'framed' && inPlace && payload.byteOffset >= 4;
              if (w !== undefined) expect(w.buffer).toBe(payload.buffer);
              const r = request.reader();
              r.readFieldBegin();
              return echoReply(request, r.readString());
            },
          };
          await new ThriftServer(handler, { callsInPlace: true, replyOrder: 'request' }).handleConnection(
            stream,
          );
          await ticks(4);
          expect(repliesOf(writtenBytes(stream))).toEqual(texts);
          for (let i = 0; i < frames.length; i++) {
            expect(got[i] !== undefined).toBe(expected[i]);
            if (got[i] !== undefined) expect(Buffer.compare(got[i]!, frames[i]!)).toBe(0);
          }
          // Received in one chunk: every framed call is given whole.
          if (framing === 'framed' && chunkSizes.every((n) => n >= wire.byteLength))
            expect(got.every((w) => w !== undefined)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a lone length prefix (the payload in the next receive) gives no wire: the bytes before the payload are not the call', async () => {
    // The first call whole (the framing is known from then on), the second's prefix alone.
    const { texts, frames, wire } = calls([3000, 4000]);
    const stream = pooled(wire, [frames[0]!.byteLength, 4, frames[1]!.byteLength - 4]);
    const got: (Uint8Array | undefined)[] = [];
    const inChunk: number[] = [];
    const handler: ThriftHandler = {
      call(request) {
        got.push(request.wire?.());
        inChunk.push(stream.chunks.findIndex((c) => c.buffer === request.frame.payload.buffer));
        const r = request.reader();
        r.readFieldBegin();
        return echoReply(request, r.readString());
      },
    };
    await new ThriftServer(handler, { callsInPlace: true, replyOrder: 'request' }).handleConnection(stream);
    await ticks(4);
    expect(repliesOf(writtenBytes(stream))).toEqual(texts);
    // Both payloads are in place: the first in the first chunk, with its prefix (a wire) ...
    expect(inChunk).toEqual([0, 2]);
    expect(Buffer.compare(got[0]!, frames[0]!)).toBe(0);
    // ... the second in the third, its prefix having come alone in the second: no wire.
    expect(got[1]).toBeUndefined();
  });

  it("a reply's payloadLength stands for payload.length in the wire's check: a reply whose payload is never to be read is written as its wire, and one whose payloadLength disagrees with the wire is framed anew", async () => {
    const { texts, wire } = calls([2000, 3000, 4000]);
    const stream = pooled(wire, [wire.byteLength]);
    const payloadReads: number[] = [];
    const handler: ThriftHandler = {
      call(request): ThriftReply {
        const r = request.reader();
        r.readFieldBegin();
        const framed = framedWire(echoReply(request, r.readString()).payload);
        const id = request.header.seqId;
        // id 1: a payloadLength one more than the wire's prefix gives: the wire is not used.
        const payloadLength = framed.payload.length + (id === 1 ? 1 : 0);
        return {
          get payload() {
            payloadReads.push(id);
            return framed.payload;
          },
          wire: framed.wire,
          payloadLength,
        };
      },
    };
    await new ThriftServer(handler, {
      callsInPlace: true,
      replyOrder: 'request',
      maxConcurrentCalls: 1,
    }).handleConnection(stream);
    await ticks(4);
    expect(repliesOf(writtenBytes(stream))).toEqual(texts);
    expect(stream.writes.map((w) => w instanceof Uint8Array)).toEqual([true, false, true]);
    // Only the reply framed anew read its payload.
    expect([...new Set(payloadReads)]).toEqual([1]);
  });

  it("a reply given with its framed wire is written as that one buffer to a framed caller, whatever memory its payload views; a wire whose prefix does not give the rest of it as the payload's length, or a caller in another framing, gets the payload framed anew", async () => {
    const { texts, wire } = calls([2000, 3000, 4000, 5000, 6000]);
    const stream = pooled(wire, [wire.byteLength]);
    const handler: ThriftHandler = {
      call(request): ThriftReply {
        const r = request.reader();
        r.readFieldBegin();
        const text = r.readString();
        const reply = framedWire(echoReply(request, text).payload);
        const id = request.header.seqId;
        if (id === 0) return reply; // the payload is the wire's view: written as is
        // The payload's bytes in other memory (a copy): the wire is the handler's word, and
        // frames them, so it is written as is (the server compares no views: issue 15).
        if (id === 1) return { payload: reply.payload.slice(), wire: reply.wire };
        if (id === 2) {
          // A wire whose prefix says another length: not used, the reply is framed anew.
          const bad = reply.wire.slice();
          bad[3] = (bad[3]! + 1) & 0xff;
          return { payload: bad.subarray(4), wire: bad };
        }
        // A wire one byte longer than the payload, its prefix saying so: not used.
        if (id === 3)
          return { payload: reply.payload, wire: framedWire(new Uint8Array([...reply.payload, 0])).wire };
        return { payload: reply.payload }; // no wire
      },
    };
    await new ThriftServer(handler, {
      callsInPlace: true,
      replyOrder: 'request',
      maxConcurrentCalls: 1,
    }).handleConnection(stream);
    await ticks(4);
    expect(repliesOf(writtenBytes(stream))).toEqual(texts);
    expect(stream.writes).toHaveLength(5);
    // The two wires that frame their payload went as one buffer; the others as a new prefix and the payload.
    expect(stream.writes[0]).toBeInstanceOf(Uint8Array);
    expect(stream.writes[1]).toBeInstanceOf(Uint8Array);
    for (const w of stream.writes.slice(2)) {
      expect(Array.isArray(w)).toBe(true);
      expect((w as Uint8Array[]).length).toBe(2);
      expect((w as Uint8Array[])[0]!.byteLength).toBe(4);
    }
    // A caller in another framing (THeader) gets its replies in it: a framed wire is not used.
    const other = calls([2000, 3000], 'theader');
    const theader = pooled(other.wire, [other.wire.byteLength]);
    await new ThriftServer(
      {
        call(request): ThriftReply {
          const r = request.reader();
          r.readFieldBegin();
          return framedWire(echoReply(request, r.readString()).payload);
        },
      },
      { callsInPlace: true, replyOrder: 'request' },
    ).handleConnection(theader);
    await ticks(4);
    const bytes = writtenBytes(theader);
    expect(repliesOf(bytes)).toEqual(other.texts);
    const reader = new FrameReader(null as never);
    reader.feed(bytes);
    for (let f = reader.poll(); f !== null; f = reader.poll()) expect(f.framing).toBe('theader');
  });
});
