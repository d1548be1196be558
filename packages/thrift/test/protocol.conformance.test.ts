/**
 * One conformance suite for every protocol (binary, compact): round trips of every type,
 * skipping, message bounds, truncation, limits and corrupt input give the same results.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createReader,
  createWriter,
  MessageBoundsFinder,
  MessageType,
  type ProtocolName,
  peekMessageHeader,
  peekSeqId,
  readMessageHeader,
  readStruct,
  rewriteMessageName,
  rewriteSeqId,
  skipValue,
  ThriftProtocolError,
  type ThriftStruct,
  TType,
  transcodeMessage,
  writeStruct,
} from '../src/index.js';
import { structArb } from './arbitraries.js';

function encodeMessage(protocol: ProtocolName, s: ThriftStruct, name = 'method', seqId = 7): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin(name, MessageType.CALL, seqId);
  writeStruct(w, s);
  w.writeMessageEnd();
  return w.finishCopy();
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ThriftProtocolError) return e.code;
    throw e;
  }
  return undefined;
}

/** A list nested `depth` deep: list<list<...<i32>>> with one element per level. */
function nestedLists(protocol: ProtocolName, depth: number): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin('deep', MessageType.CALL, 1);
  w.writeStructBegin();
  w.writeFieldBegin(TType.LIST, 1);
  for (let i = 0; i < depth; i++) w.writeListBegin(TType.LIST, 1);
  w.writeListBegin(TType.I32, 0);
  w.writeFieldEnd();
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

/** Per-protocol hand-built corrupt bodies (after a valid message header). */
const corrupt: Record<ProtocolName, { name: string; body: number[]; code: string }[]> = {
  binary: [
    {
      name: 'negative string length',
      body: [11, 0, 1, 0xff, 0xff, 0xff, 0xff],
      code: 'ERR_THRIFT_NEGATIVE_SIZE',
    },
    {
      name: 'negative list size',
      body: [15, 0, 1, 8, 0xff, 0xff, 0xff, 0xfe],
      code: 'ERR_THRIFT_NEGATIVE_SIZE',
    },
    {
      name: 'list size larger than the bytes',
      body: [15, 0, 1, 8, 0x10, 0, 0, 0, 0],
      code: 'ERR_THRIFT_SIZE_LIMIT',
    },
    { name: 'bad field type', body: [99, 0, 1], code: 'ERR_THRIFT_BAD_TYPE' },
  ],
  compact: [
    {
      name: 'varint over 5 bytes',
      body: [0x15, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      code: 'ERR_THRIFT_BAD_VARINT',
    },
    {
      name: 'i64 varint over 10 bytes',
      body: [0x16, ...Array(10).fill(0xff), 1],
      code: 'ERR_THRIFT_BAD_VARINT',
    },
    {
      name: 'negative string length',
      body: [0x18, 0xff, 0xff, 0xff, 0xff, 0x0f],
      code: 'ERR_THRIFT_NEGATIVE_SIZE',
    },
    {
      name: 'list size larger than the bytes',
      body: [0x19, 0xf5, 0x80, 0x80, 0x04],
      code: 'ERR_THRIFT_SIZE_LIMIT',
    },
    { name: 'bad field type', body: [0x1e], code: 'ERR_THRIFT_BAD_TYPE' },
  ],
};

describe.each(['binary', 'compact'] as const)('%s protocol conformance', (protocol) => {
  it('round-trips any struct in a message', () => {
    fc.assert(
      fc.property(
        structArb(3),
        fc.string({ maxLength: 20 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (s, name, seqId) => {
          const bytes = encodeMessage(protocol, s, name, seqId);
          const r = createReader(protocol).reset(bytes);
          const header = r.readMessageBegin();
          expect(header).toEqual({ name, type: MessageType.CALL, seqId });
          expect(readStruct(r)).toEqual(s);
          expect(r.pos).toBe(bytes.byteLength);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('skips exactly what it reads, and finds message bounds in a stream', () => {
    const finder = new MessageBoundsFinder();
    fc.assert(
      fc.property(structArb(3), fc.integer({ min: 0, max: 1000 }), (s, seqId) => {
        const bytes = encodeMessage(protocol, s, 'm', seqId);
        const r = createReader(protocol).reset(bytes);
        r.readMessageBegin();
        const bodyStart = r.pos;
        expect(skipValue(protocol, TType.STRUCT, bytes, bodyStart)).toBe(bytes.byteLength);
        // Two messages back to back plus a partial third: bounds of each, then -1.
        const stream = new Uint8Array(bytes.byteLength * 3 - 1);
        stream.set(bytes, 0);
        stream.set(bytes, bytes.byteLength);
        stream.set(bytes.subarray(0, bytes.byteLength - 1), bytes.byteLength * 2);
        expect(finder.find(protocol, stream, 0)).toBe(bytes.byteLength);
        expect(finder.seqId).toBe(seqId);
        expect(finder.find(protocol, stream, bytes.byteLength)).toBe(bytes.byteLength * 2);
        expect(finder.find(protocol, stream, bytes.byteLength * 2)).toBe(-1);
      }),
      { numRuns: 200 },
    );
  });

  it('answers -1 for every strict prefix and a typed truncation error when decoding one', () => {
    const finder = new MessageBoundsFinder();
    fc.assert(
      fc.property(structArb(2), (s) => {
        const bytes = encodeMessage(protocol, s);
        for (let cut = 0; cut < bytes.byteLength; cut++) {
          expect(finder.find(protocol, bytes, 0, cut)).toBe(-1);
          const code = codeOf(() => {
            const r = createReader(protocol).reset(bytes, 0, cut);
            r.readMessageBegin();
            readStruct(r);
          });
          expect(['ERR_THRIFT_TRUNCATED', 'ERR_THRIFT_SIZE_LIMIT']).toContain(code);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('writes and reads every scalar at its edges', () => {
    const w = createWriter(protocol);
    const i64s = [
      0n,
      1n,
      -1n,
      2n ** 31n,
      -(2n ** 31n) - 1n,
      2n ** 32n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      0x123456789abcdefn,
    ];
    for (const v of i64s) w.writeI64(v);
    w.writeI64(Number.MAX_SAFE_INTEGER);
    w.writeI64(-Number.MAX_SAFE_INTEGER);
    w.writeI16(-32768);
    w.writeI16(32767);
    w.writeI32(-2147483648);
    w.writeI32(2147483647);
    w.writeByte(-128);
    w.writeByte(127);
    w.writeDouble(-0);
    w.writeDouble(Number.NaN);
    w.writeDouble(Number.POSITIVE_INFINITY);
    w.writeDouble(5e-324);
    w.writeBool(true);
    w.writeBool(false);
    w.writeString('héllo wörld ☃ 𝄞');
    w.writeString('x'.repeat(300));
    w.writeBinary(new Uint8Array([0, 255, 128]));
    w.writeUuid('00112233-4455-6677-8899-aabbccddeeff');
    const r = createReader(protocol).reset(w.finishCopy());
    for (const v of i64s) expect(r.readI64()).toBe(v);
    expect(r.readI64()).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    r.readI64Split();
    expect(r.i64Hi).toBe(-2097152);
    expect(r.i64Lo).toBe(1);
    expect([r.readI16(), r.readI16(), r.readI32(), r.readI32(), r.readByte(), r.readByte()]).toEqual([
      -32768, 32767, -2147483648, 2147483647, -128, 127,
    ]);
    expect(Object.is(r.readDouble(), -0)).toBe(true);
    expect(r.readDouble()).toBeNaN();
    expect(r.readDouble()).toBe(Number.POSITIVE_INFINITY);
    expect(r.readDouble()).toBe(5e-324);
    expect([r.readBool(), r.readBool()]).toEqual([true, false]);
    expect(r.readString()).toBe('héllo wörld ☃ 𝄞');
    expect(r.readString()).toBe('x'.repeat(300));
    expect(Array.from(r.readBinary())).toEqual([0, 255, 128]);
    expect(r.readUuid()).toBe('00112233-4455-6677-8899-aabbccddeeff');
    expect(r.remaining).toBe(0);
  });

  it("keeps a string value's leading U+FEFF (a decoder must not drop it as a BOM)", () => {
    const w = createWriter(protocol);
    w.writeString('\uFEFFalice');
    w.writeString('\uFEFF');
    const r = createReader(protocol).reset(w.finishCopy());
    expect(r.readString()).toBe('\uFEFFalice');
    expect(r.readString()).toBe('\uFEFF');
  });

  it('reads i64 split into halves the same as the bigint', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
        const w = createWriter(protocol);
        w.writeI64(v);
        const r = createReader(protocol).reset(w.finishCopy());
        r.readI64Split();
        expect((BigInt(r.i64Hi) << 32n) | BigInt(r.i64Lo)).toBe(v);
        const w2 = createWriter(protocol);
        w2.writeI64Split(r.i64Hi, r.i64Lo);
        expect(w2.finishCopy()).toEqual(w.finishCopy());
      }),
    );
  });

  it('rejects out-of-range values on write', () => {
    const w = createWriter(protocol);
    expect(codeOf(() => w.writeI16(40000))).toBe('ERR_THRIFT_INVALID_DATA');
    expect(codeOf(() => w.writeI32(2 ** 31))).toBe('ERR_THRIFT_INVALID_DATA');
    expect(codeOf(() => w.writeByte(1.5))).toBe('ERR_THRIFT_INVALID_DATA');
    expect(codeOf(() => w.writeI64(2n ** 63n))).toBe('ERR_THRIFT_INVALID_DATA');
    expect(codeOf(() => w.writeUuid('not-a-uuid'))).toBe('ERR_THRIFT_INVALID_DATA');
  });

  it('stops depth bombs in read, skip and the bounds finder', () => {
    const ok = nestedLists(protocol, 60);
    const bomb = nestedLists(protocol, 200);
    const finder = new MessageBoundsFinder();
    expect(finder.find(protocol, ok)).toBe(ok.byteLength);
    expect(codeOf(() => finder.find(protocol, bomb))).toBe('ERR_THRIFT_DEPTH_LIMIT');
    const r = createReader(protocol).reset(bomb);
    r.readMessageBegin();
    expect(codeOf(() => readStruct(r))).toBe('ERR_THRIFT_DEPTH_LIMIT');
    const r2 = createReader(protocol, { maxDepth: 10 }).reset(ok);
    r2.readMessageBegin();
    expect(codeOf(() => r2.skip(TType.STRUCT))).toBe('ERR_THRIFT_DEPTH_LIMIT');
  });

  it('enforces string and container limits', () => {
    const w = createWriter(protocol);
    w.writeString('abcdef');
    w.writeListBegin(TType.I32, 5);
    for (let i = 0; i < 5; i++) w.writeI32(i);
    const bytes = w.finishCopy();
    const r = createReader(protocol, { maxStringLength: 5, maxContainerSize: 4 }).reset(bytes);
    expect(codeOf(() => r.readString())).toBe('ERR_THRIFT_SIZE_LIMIT');
    const r2 = createReader(protocol, { maxContainerSize: 4 }).reset(bytes);
    r2.readString();
    expect(codeOf(() => r2.readListBegin())).toBe('ERR_THRIFT_SIZE_LIMIT');
  });

  it.each(corrupt[protocol])('rejects $name with $code', ({ body, code }) => {
    const w = createWriter(protocol);
    w.writeMessageBegin('m', MessageType.CALL, 1);
    w.writeRaw(new Uint8Array(body));
    const bytes = w.finishCopy();
    const r = createReader(protocol).reset(bytes);
    r.readMessageBegin();
    expect(codeOf(() => readStruct(r))).toBe(code);
    if (code === 'ERR_THRIFT_SIZE_LIMIT') {
      // In a stream the rest of a large container may still arrive: the finder waits for it
      // (the framing's size limit bounds how long; see the transport suite).
      expect(new MessageBoundsFinder().find(protocol, bytes)).toBe(-1);
    } else {
      expect(codeOf(() => new MessageBoundsFinder().find(protocol, bytes))).toBe(code);
    }
  });

  it('never throws anything but a typed error on random or mutated bytes', () => {
    const finder = new MessageBoundsFinder();
    const onlyTyped = (fn: () => unknown): void => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(ThriftProtocolError);
      }
    };
    fc.assert(
      fc.property(
        structArb(2),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 64 }),
        (s, mutations, random) => {
          const bytes = encodeMessage(protocol, s);
          for (const [at, v] of mutations) bytes[at % bytes.byteLength] = v;
          for (const input of [bytes, random]) {
            onlyTyped(() => finder.find(protocol, input));
            onlyTyped(() => {
              const r = createReader(protocol).reset(input);
              r.readMessageBegin();
              readStruct(r);
            });
            onlyTyped(() => skipValue(protocol, TType.STRUCT, input));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects a bad message header', () => {
    const bytes = new Uint8Array(protocol === 'binary' ? [0x80, 0x02, 0, 1, 0, 0, 0, 0] : [0x82, 0x22, 0, 0]);
    expect(codeOf(() => createReader(protocol).reset(bytes).readMessageBegin())).toBe(
      'ERR_THRIFT_BAD_VERSION',
    );
    const badType = new Uint8Array(
      protocol === 'binary' ? [0x80, 0x01, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0] : [0x82, 0xe1, 0, 0],
    );
    expect(codeOf(() => createReader(protocol).reset(badType).readMessageBegin())).toBe(
      'ERR_THRIFT_BAD_VERSION',
    );
  });

  it("peekMessageHeader gives readMessageHeader's type and seq id, and its errors, without the name", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.constantFrom(MessageType.CALL, MessageType.REPLY, MessageType.EXCEPTION, MessageType.ONEWAY),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (name, type, seqId) => {
          const w = createWriter(protocol);
          w.writeMessageBegin(name, type, seqId);
          w.writeStructBegin();
          w.writeFieldStop();
          w.writeStructEnd();
          const bytes = w.finishCopy();
          const out = { type: 0, seqId: 0 };
          peekMessageHeader(protocol, bytes, out);
          const header = readMessageHeader(protocol, bytes);
          expect(out).toEqual({ type: header.type, seqId: header.seqId });
          expect(out).toEqual({ type, seqId });
        },
      ),
      { numRuns: 100 },
    );
    const badType = new Uint8Array(
      protocol === 'binary' ? [0x80, 0x01, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0] : [0x82, 0xe1, 0, 0],
    );
    const out = { type: 0, seqId: 0 };
    expect(codeOf(() => peekMessageHeader(protocol, badType, out))).toBe('ERR_THRIFT_BAD_VERSION');
    const whole = encodeMessage(protocol, { kind: 'struct', fields: [] }, 'm', 3);
    expect(codeOf(() => peekMessageHeader(protocol, whole.subarray(0, 2), out))).toBe('ERR_THRIFT_TRUNCATED');
  });

  it('peeks and rewrites seq ids without touching the body', () => {
    fc.assert(
      fc.property(
        structArb(2),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (s, a, b) => {
          const bytes = encodeMessage(protocol, s, 'rename', a);
          expect(peekSeqId(protocol, bytes)).toBe(a);
          const out = rewriteSeqId(protocol, bytes.slice(), b);
          expect(readMessageHeader(protocol, out)).toEqual({
            name: 'rename',
            type: MessageType.CALL,
            seqId: b,
          });
          expect(out).toEqual(encodeMessage(protocol, s, 'rename', b));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('renames a message without touching its type, seq id or body', () => {
    fc.assert(
      fc.property(
        structArb(2),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 300 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (s, from, to, seqId) => {
          const out = rewriteMessageName(protocol, encodeMessage(protocol, s, from, seqId), to);
          expect(out).toEqual(encodeMessage(protocol, s, to, seqId));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('transcodes a message to the other protocol and back', () => {
    const other: ProtocolName = protocol === 'binary' ? 'compact' : 'binary';
    fc.assert(
      fc.property(structArb(3), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (s, seqId) => {
        const bytes = encodeMessage(protocol, s, 'm', seqId);
        const there = transcodeMessage(bytes, protocol, other);
        expect(there).toEqual(encodeMessage(other, s, 'm', seqId));
        expect(transcodeMessage(there, other, protocol)).toEqual(bytes);
      }),
      { numRuns: 100 },
    );
  });

  it('round-trips empty containers and bool fields in any order', () => {
    const w = createWriter(protocol);
    w.writeStructBegin();
    w.writeFieldBegin(TType.BOOL, 5);
    w.writeBool(true);
    w.writeFieldBegin(TType.BOOL, 1);
    w.writeBool(false);
    w.writeFieldBegin(TType.MAP, 300);
    w.writeMapBegin(TType.STRING, TType.I32, 0);
    w.writeFieldBegin(TType.LIST, -3);
    w.writeListBegin(TType.BOOL, 3);
    w.writeBool(true);
    w.writeBool(false);
    w.writeBool(true);
    w.writeFieldStop();
    w.writeStructEnd();
    const r = createReader(protocol).reset(w.finishCopy());
    const s = readStruct(r);
    expect(s.fields.map((f) => [f.id, f.type])).toEqual([
      [5, TType.BOOL],
      [1, TType.BOOL],
      [300, TType.MAP],
      [-3, TType.LIST],
    ]);
    expect(s.fields[0]!.value).toBe(true);
    expect(s.fields[1]!.value).toBe(false);
    expect((s.fields[2]!.value as { entries: readonly unknown[] }).entries).toEqual([]);
    expect((s.fields[3]!.value as { items: readonly unknown[] }).items).toEqual([true, false, true]);
  });
});

describe('binary protocol specifics', () => {
  it('peekSeqId and peekMessageHeader read a strict header from its bytes as a reader does: the same values or the same error, for any bytes after 0x80 0x01', () => {
    const outcome = (fn: () => unknown): unknown => {
      try {
        return fn();
      } catch (error) {
        return codeOf(() => {
          throw error;
        });
      }
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: -2, max: 40 }),
        fc.uint8Array({ maxLength: 48 }),
        (b2, type, len, rest) => {
          // 0x80 0x01, any byte, a type (0-6: the bad ones too), a name length (negative, past
          // the end, or within), then whatever bytes.
          const head = [
            0x80,
            0x01,
            b2,
            type,
            (len >>> 24) & 0xff,
            (len >>> 16) & 0xff,
            (len >>> 8) & 0xff,
            len & 0xff,
          ];
          const bytes = new Uint8Array([...head, ...rest]);
          const read = (): { type: number; seqId: number } => {
            const r = createReader('binary').reset(bytes);
            const seqId = r.skipMessageBegin();
            return { type: r.messageType, seqId };
          };
          const expected = outcome(read);
          expect(outcome(() => peekSeqId('binary', bytes))).toEqual(
            typeof expected === 'object' ? (expected as { seqId: number }).seqId : expected,
          );
          const out = { type: 0, seqId: 0 };
          expect(
            outcome(() => {
              peekMessageHeader('binary', bytes, out);
              return out;
            }),
          ).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads old-style (unversioned) message headers unless strictRead', () => {
    const w = createWriter('binary');
    const old = new (w.constructor as typeof import('../src/index.js').BinaryWriter)({ strictWrite: false });
    old.writeMessageBegin('legacy', MessageType.ONEWAY, 42);
    writeStruct(old, { kind: 'struct', fields: [{ id: 1, type: TType.I32, value: 5 }] });
    const bytes = old.finishCopy();
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0, 0, 6]);
    expect(readMessageHeader('binary', bytes)).toEqual({
      name: 'legacy',
      type: MessageType.ONEWAY,
      seqId: 42,
    });
    expect(new MessageBoundsFinder().find('binary', bytes)).toBe(bytes.byteLength);
    const peeked = { type: 0, seqId: 0 };
    peekMessageHeader('binary', bytes, peeked);
    expect(peeked).toEqual({ type: MessageType.ONEWAY, seqId: 42 });
    expect(rewriteSeqId('binary', bytes.slice(), 9)).toEqual(
      (() => {
        const o = new (w.constructor as typeof import('../src/index.js').BinaryWriter)({
          strictWrite: false,
        });
        o.writeMessageBegin('legacy', MessageType.ONEWAY, 9);
        writeStruct(o, { kind: 'struct', fields: [{ id: 1, type: TType.I32, value: 5 }] });
        return o.finishCopy();
      })(),
    );
    expect(codeOf(() => createReader('binary', { strictRead: true }).reset(bytes).readMessageBegin())).toBe(
      'ERR_THRIFT_BAD_VERSION',
    );
  });
});
