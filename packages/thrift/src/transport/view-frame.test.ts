/**
 * ViewFrame (issue 15): a decoded frame's payload is a range of the bytes it was decoded from,
 * its view made on the first read of `payload` and the same view after; the seq id and the
 * message header are read by offset, never past the payload's range (the bytes around it may
 * be a whole receive buffer holding other frames).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ThriftProtocolError } from '../errors.js';
import { BinaryWriter } from '../protocol/binary.js';
import { createWriter } from '../protocol/factory.js';
import { peekFrameHeader, peekMessageHeader } from '../protocol/message-header.js';
import { FrameReader } from '../rpc/frame-reader.js';
import { MessageType, type ProtocolName } from '../types.js';
import { decodeFrame, decodeFrameBody, encodeFrame } from './codec.js';
import { type FramingName, ViewFrame } from './frame.js';
import { THeaderTransform } from './theader.js';

function message(protocol: ProtocolName, name: string, seqId: number, body = 40, strict = true): Uint8Array {
  const w = protocol === 'binary' ? new BinaryWriter({ strictWrite: strict }) : createWriter(protocol);
  w.writeMessageBegin(name, MessageType.CALL, seqId);
  w.writeStructBegin();
  w.writeFieldBegin(11, 1);
  w.writeString('x'.repeat(body));
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

const lengthFramings: FramingName[] = ['framed', 'theader', 'ttheader'];

describe('ViewFrame', () => {
  it('a decoded frame makes its payload view on the first read of payload, a view of the bytes it came in, the same one after', () => {
    for (const framing of lengthFramings) {
      const payload = message('binary', 'echo', 7);
      const wire = encodeFrame({ framing, protocol: 'binary' }, payload);
      const frame = decodeFrame(framing, wire);
      expect(frame).toBeInstanceOf(ViewFrame);
      expect(Object.hasOwn(frame, 'payload')).toBe(false);
      expect(frame.bytes).toBe(wire);
      expect(frame.payloadLength).toBe(payload.length);
      expect(frame.payloadEnd).toBe(wire.length);
      const view = frame.payload;
      expect(view.buffer).toBe(wire.buffer);
      expect(view.byteOffset).toBe(wire.byteOffset + frame.payloadStart);
      expect(Buffer.compare(view, payload)).toBe(0);
      expect(frame.payload).toBe(view);
      expect(frame.seqId).toBe(7);
    }
  });

  it('a spread copies no payload; naming it does', () => {
    const frame = decodeFrame(
      'framed',
      encodeFrame({ framing: 'framed', protocol: 'binary' }, message('binary', 'a', 1)),
    );
    expect('payload' in { ...frame }).toBe(false);
    expect({ ...frame, payload: frame.payload }.payload).toBe(frame.payload);
  });

  it('an inflated THeader payload is bytes of its own, its view given', () => {
    const payload = message('compact', 'zipped', 3, 500);
    const spec = {
      framing: 'theader' as const,
      protocol: 'compact' as const,
      seqId: 3,
      transforms: [THeaderTransform.ZLIB],
    };
    const frame = decodeFrame('theader', encodeFrame(spec, payload));
    expect(Buffer.compare(frame.payload, payload)).toBe(0);
    expect(frame.bytes).toBe(frame.payload);
    expect([frame.payloadStart, frame.payloadEnd]).toEqual([0, payload.length]);
  });

  it('seq ids and message headers read by offset agree with the payload view, every protocol and header style, other frames around', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<ProtocolName>('binary', 'compact'),
        fc.boolean(),
        fc.string({ maxLength: 30 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 300 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          // A strict binary header whose name runs on: read past the payload, it would parse.
          fc.constant(new Uint8Array([0x80, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42])),
        ),
        (protocol, strict, name, seqId, body, before, after) => {
          const payload = message(protocol, name, seqId, body, strict);
          const framed = encodeFrame({ framing: 'framed', protocol }, payload);
          // The frame in the middle of a buffer, other bytes really around it (a lying strict
          // header among them), decoded where it lies as FrameReader.decodeWhole does.
          const bytes = new Uint8Array([...before, ...framed, ...after]);
          const frame = decodeFrameBody('framed', bytes, before.length + 4, before.length + framed.length, {
            protocol,
          });
          expect(frame.bytes).toBe(bytes);
          expect(frame.seqId).toBe(seqId);
          const out = { type: 0, seqId: 0 };
          peekFrameHeader(frame, out);
          expect(out).toEqual({ type: MessageType.CALL, seqId });
          expect(Buffer.compare(frame.payload, payload)).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a strict binary header whose name length runs past the payload is not read past it: decoding throws as the view does', () => {
    const payload = message('binary', 'echo', 9);
    // The name's length says 1 byte more than the payload holds; the frame is followed by bytes
    // that would make a whole header of it were the payload's range not kept.
    expect(payload.length).toBeLessThan(256);
    payload[7] = payload.length - 12 + 1;
    const framed = encodeFrame({ framing: 'framed', protocol: 'binary' }, payload);
    const bytes = new Uint8Array([...framed, 0, 0, 0, 42, 1, 2, 3, 4]);
    expect(() => peekMessageHeader('binary', payload, { type: 0, seqId: 0 })).toThrow(ThriftProtocolError);
    expect(() => decodeFrame('framed', bytes.subarray(0, framed.length))).toThrow(ThriftProtocolError);
    const reader = new FrameReader(null as never, { framing: 'framed' });
    reader.feed(bytes);
    expect(() => reader.poll()).toThrow(ThriftProtocolError);
  });
});
