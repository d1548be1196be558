/**
 * Framings: round trips of every framing (fast-check), detection, splitting a stream, re-framing,
 * hand-checked THeader/TTHeader vectors from the published layouts, and every framing error.
 */
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createWriter,
  decodeFrame,
  decodeTHeader,
  decodeTTHeader,
  detectFraming,
  encodeFrame,
  FrameSplitter,
  type FramingName,
  frameSize,
  MessageType,
  type ProtocolName,
  readMessageHeader,
  reframe,
  setHeaderSeqId,
  THeaderTransform,
  type ThriftStruct,
  ThriftTransportError,
  TTHeaderIntKey,
  writeStruct,
} from '../src/index.js';
import { structArb } from './arbitraries.js';

function message(protocol: ProtocolName, s: ThriftStruct, seqId: number, name = 'call'): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin(name, MessageType.CALL, seqId);
  writeStruct(w, s);
  return w.finishCopy();
}

function hex(s: string): Uint8Array {
  return new Uint8Array(
    s
      .split(/\s+/)
      .filter(Boolean)
      .map((h) => Number.parseInt(h, 16)),
  );
}

function transportCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ThriftTransportError) return e.code;
    throw e;
  }
  return undefined;
}

const framings: FramingName[] = ['unframed', 'framed', 'theader', 'ttheader'];
const headerMap = fc
  .array(fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 30 })), { maxLength: 5 })
  .map((e) => new Map(e));
const intHeaderMap = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.string({ maxLength: 30 })), { maxLength: 5 })
  .map((e) => new Map(e));

describe.each(framings)('%s framing', (framing) => {
  it('round-trips messages with headers, found in a stream one after another', () => {
    const splitter = new FrameSplitter();
    fc.assert(
      fc.property(
        fc.constantFrom<ProtocolName>('binary', 'compact'),
        structArb(2),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        headerMap,
        intHeaderMap,
        fc.boolean(),
        (protocol, s, seqId, headers, intHeaders, zlib) => {
          const payload = message(protocol, s, seqId);
          const spec = {
            framing,
            protocol,
            headers: framing === 'theader' || framing === 'ttheader' ? headers : new Map<string, string>(),
            intHeaders: framing === 'ttheader' ? intHeaders : new Map<number, string>(),
            transforms: framing === 'theader' && zlib ? [THeaderTransform.ZLIB] : [],
          };
          const one = encodeFrame(spec, payload);
          const stream = new Uint8Array(one.byteLength * 2);
          stream.set(one);
          stream.set(one, one.byteLength);
          expect(detectFraming(stream)).toEqual({
            framing,
            protocol: framing === 'theader' || framing === 'ttheader' ? null : protocol,
          });
          expect(splitter.find(framing, stream, 0, stream.byteLength - 1)).toBe(one.byteLength);
          expect(splitter.find(framing, stream, one.byteLength, stream.byteLength)).toBe(stream.byteLength);
          expect(splitter.find(framing, stream, one.byteLength, stream.byteLength - 1)).toBe(-1);
          const frame = decodeFrame(framing, stream.subarray(0, one.byteLength));
          expect(frame.framing).toBe(framing);
          expect(frame.protocol).toBe(protocol);
          expect(frame.seqId).toBe(seqId);
          expect(frame.payload).toEqual(payload);
          expect(frame.headers).toEqual(spec.headers);
          expect(frame.intHeaders).toEqual(spec.intHeaders);
          expect(frame.transforms).toEqual(spec.transforms);
          expect(frame.wireLength).toBe(one.byteLength);
        },
      ),
      { numRuns: 150 },
    );
  });

  it.each(framings)('re-frames into %s with a new seq id and headers', (target) => {
    const payload = message(
      'binary',
      { kind: 'struct', fields: [{ id: 1, type: 11, value: 'x' }] },
      5,
      'Echo',
    );
    const frame = decodeFrame(framing, encodeFrame({ framing, protocol: 'binary' }, payload.slice()));
    const headers = new Map([['route', 'blue']]);
    const out = Buffer.concat(reframe(frame, { framing: target, seqId: 900, headers }));
    const back = decodeFrame(target, out);
    expect(back.seqId).toBe(900);
    expect(readMessageHeader('binary', back.payload)).toEqual({
      name: 'Echo',
      type: MessageType.CALL,
      seqId: 900,
    });
    if (target === 'theader' || target === 'ttheader') expect(back.headers).toEqual(headers);
  });
});

describe('TTHeader vectors (hand-derived from the Kitex layout)', () => {
  // LENGTH=27 | MAGIC 1000 | FLAGS 0000 | SEQ 1 | HEADER SIZE 3 words |
  // protocol 00, transforms 00, INT_KEY_VALUE 10, count 0001, key 0006 (TO_SERVICE), len 0003 "svc" |
  // payload 01..05
  const basic = hex(
    '00 00 00 1b 10 00 00 00 00 00 00 01 00 03 00 00 10 00 01 00 06 00 03 73 76 63 01 02 03 04 05',
  );
  // LENGTH=31 | MAGIC | FLAGS 0001 | SEQ 01020304 | 5 words | protocol 02 (compact), 00 |
  // KEY_VALUE 01, count 0001, "a" -> "bc" | ACL_TOKEN 11, "tk" | 3 bytes padding | payload 78
  const full = hex(
    '00 00 00 1f 10 00 00 01 01 02 03 04 00 05 02 00 01 00 01 00 01 61 00 02 62 63 11 00 02 74 6b 00 00 00 78',
  );

  it('encodes the int-header vector byte for byte and decodes it back', () => {
    const spec = {
      framing: 'ttheader' as const,
      protocol: 'binary' as const,
      seqId: 1,
      intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'svc']]),
    };
    expect(encodeFrame(spec, hex('01 02 03 04 05'))).toEqual(basic);
    const f = decodeTTHeader(basic);
    expect(f.seqId).toBe(1);
    expect(f.protocol).toBe('binary');
    expect(f.intHeaders).toEqual(new Map([[6, 'svc']]));
    expect(f.payload).toEqual(hex('01 02 03 04 05'));
  });

  it('encodes string headers, an ACL token, flags and padding', () => {
    const spec = {
      framing: 'ttheader' as const,
      protocol: 'compact' as const,
      seqId: 0x01020304,
      flags: 1,
      headers: new Map([['a', 'bc']]),
      aclToken: 'tk',
    };
    expect(encodeFrame(spec, hex('78'))).toEqual(full);
    const f = decodeTTHeader(full);
    expect([f.flags, f.seqId, f.protocol, f.aclToken]).toEqual([1, 0x01020304, 'compact', 'tk']);
    expect(f.headers).toEqual(new Map([['a', 'bc']]));
  });

  it("keeps a header value's and key's leading U+FEFF", () => {
    const spec = {
      framing: 'ttheader' as const,
      protocol: 'binary' as const,
      seqId: 1,
      headers: new Map([['\uFEFFk', '\uFEFFv']]),
      intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, '\uFEFFsvc']]),
    };
    const f = decodeTTHeader(encodeFrame(spec, hex('78')));
    expect(f.headers).toEqual(new Map([['\uFEFFk', '\uFEFFv']]));
    expect(f.intHeaders).toEqual(new Map([[6, '\uFEFFsvc']]));
  });

  it('rewrites the header seq id in place', () => {
    const copy = basic.slice();
    setHeaderSeqId(copy, 0x7fffffff);
    expect(decodeTTHeader(copy).seqId).toBe(0x7fffffff);
  });

  it('rejects unknown info ids, protocol ids, transforms and bad header sizes', () => {
    const badInfo = basic.slice();
    badInfo[16] = 0x42;
    expect(transportCode(() => decodeTTHeader(badInfo))).toBe('ERR_THRIFT_BAD_HEADER');
    const protobuf = basic.slice();
    protobuf[14] = 4;
    expect(transportCode(() => decodeTTHeader(protobuf))).toBe('ERR_THRIFT_UNKNOWN_PROTOCOL');
    const transform = basic.slice();
    transform[15] = 1;
    expect(transportCode(() => decodeTTHeader(transform))).toBe('ERR_THRIFT_UNKNOWN_TRANSFORM');
    const tooBig = basic.slice();
    tooBig[13] = 9;
    expect(transportCode(() => decodeTTHeader(tooBig))).toBe('ERR_THRIFT_BAD_HEADER');
    const truncatedString = basic.slice();
    truncatedString[22] = 9; // "svc" claims 9 bytes inside a 12-byte block
    expect(transportCode(() => decodeTTHeader(truncatedString))).toBe('ERR_THRIFT_BAD_HEADER');
  });
});

describe('THeader', () => {
  // LENGTH=21 | MAGIC 0fff | FLAGS 0000 | SEQ 5 | 2 words | protocol 0, 0 transforms,
  // KEY_VALUE 1, count 1, "k" -> "v" | payload 80 01 00 01 ... (not decoded here)
  const vector = hex('00 00 00 15 0f ff 00 00 00 00 00 05 00 02 00 00 01 01 01 6b 01 76 aa bb cc');

  it('matches the hand-derived vector', () => {
    expect(
      encodeFrame(
        { framing: 'theader', protocol: 'binary', seqId: 5, headers: new Map([['k', 'v']]) },
        hex('aa bb cc'),
      ),
    ).toEqual(vector);
    const f = decodeTHeader(vector);
    expect([f.seqId, f.protocol, f.headers.get('k')]).toEqual([5, 'binary', 'v']);
  });

  it('reads zlib payloads and bounds their inflated size', () => {
    const payload = new Uint8Array(4096).fill(7);
    const framed = encodeFrame(
      { framing: 'theader', protocol: 'compact', seqId: 1, transforms: [1] },
      payload,
    );
    expect(framed.byteLength).toBeLessThan(200);
    expect(decodeTHeader(framed).payload).toEqual(payload);
    expect(transportCode(() => decodeTHeader(framed, 1000))).toBe('ERR_THRIFT_TRANSFORM_FAILED');
    const corrupt = framed.slice();
    corrupt[corrupt.byteLength - 3]! ^= 0xff;
    corrupt[20]! ^= 0xff;
    expect(transportCode(() => decodeTHeader(corrupt))).toBe('ERR_THRIFT_TRANSFORM_FAILED');
    expect(deflateSync(payload).byteLength).toBeLessThan(200);
  });

  it('rejects unknown transforms and protocol ids', () => {
    const snappy = hex('00 00 00 0e 0f ff 00 00 00 00 00 05 00 01 00 01 03 00');
    expect(transportCode(() => decodeTHeader(snappy))).toBe('ERR_THRIFT_UNKNOWN_TRANSFORM');
    const json = hex('00 00 00 0e 0f ff 00 00 00 00 00 05 00 01 01 00 00 00');
    expect(transportCode(() => decodeTHeader(json))).toBe('ERR_THRIFT_UNKNOWN_PROTOCOL');
    const badVarint = hex('00 00 00 12 0f ff 00 00 00 00 00 05 00 02 ff ff ff ff ff ff 00 00');
    expect(transportCode(() => decodeTHeader(badVarint))).toBe('ERR_THRIFT_BAD_HEADER');
    expect(
      transportCode(() =>
        encodeFrame({ framing: 'theader', protocol: 'binary', seqId: 1, transforms: [3] }, hex('00')),
      ),
    ).toBe('ERR_THRIFT_UNKNOWN_TRANSFORM');
  });
});

describe('random and mutated frames', () => {
  it('give only typed errors', () => {
    const splitter = new FrameSplitter({ maxFrameSize: 1 << 16 });
    fc.assert(
      fc.property(
        fc.constantFrom<FramingName>(...framings),
        structArb(1),
        headerMap,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (framing, s, headers, mutations) => {
          const bytes = encodeFrame(
            {
              framing,
              protocol: 'compact',
              headers: framing === 'theader' || framing === 'ttheader' ? headers : new Map(),
            },
            message('compact', s, 3),
          );
          for (const [at, v] of mutations) bytes[at % bytes.byteLength] = v;
          try {
            const d = detectFraming(bytes);
            if (!d) return;
            const end = splitter.find(d.framing, bytes, 0, bytes.byteLength);
            if (end < 0) return;
            decodeFrame(d.framing, bytes.subarray(0, end));
          } catch (e) {
            expect(
              e instanceof ThriftTransportError || (e as { code?: string }).code?.startsWith('ERR_THRIFT_'),
            ).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('frame sizes and detection', () => {
  it('rejects negative, zero and oversized lengths', () => {
    expect(transportCode(() => frameSize(hex('ff ff ff ff'), 0, 4, 1024))).toBe('ERR_THRIFT_FRAME_SIZE');
    expect(transportCode(() => frameSize(hex('80 00 00 00'), 0, 4, 1024))).toBe('ERR_THRIFT_FRAME_SIZE');
    expect(transportCode(() => frameSize(hex('00 00 00 00'), 0, 4, 1024))).toBe('ERR_THRIFT_FRAME_SIZE');
    expect(transportCode(() => frameSize(hex('00 00 04 01'), 0, 4, 1024))).toBe('ERR_THRIFT_FRAME_SIZE');
    expect(frameSize(hex('00 00 04 00'), 0, 4, 1024)).toBe(1028);
    expect(frameSize(hex('00 00 04'), 0, 3, 1024)).toBe(-1);
    const splitter = new FrameSplitter({ maxFrameSize: 64 });
    expect(transportCode(() => splitter.find('framed', hex('00 00 01 00 80 01'), 0, 6))).toBe(
      'ERR_THRIFT_FRAME_SIZE',
    );
    // An unframed message that keeps growing past the limit without ending.
    const big = message(
      'binary',
      { kind: 'struct', fields: [{ id: 1, type: 11, value: 'y'.repeat(200) }] },
      1,
    );
    expect(transportCode(() => splitter.find('unframed', big, 0, 100))).toBe('ERR_THRIFT_FRAME_SIZE');
  });

  it('rejects bytes that match no framing', () => {
    const http = new TextEncoder().encode('GET / HTTP/1.1\r\n');
    expect(transportCode(() => detectFraming(http))).toBe('ERR_THRIFT_UNKNOWN_FRAMING');
    expect(detectFraming(http, 0, 3)).toBeNull();
    expect(transportCode(() => decodeFrame('framed', hex('00 00 00 02 41 42')))).toBe(
      'ERR_THRIFT_UNKNOWN_PROTOCOL',
    );
  });
});
