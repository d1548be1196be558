/**
 * The native Thrift -> JSON converter (@loch/native gateway_json.cc, driven by
 * src/codec/native-json.ts) against the JavaScript emitters it stands in for
 * (ThriftToJsonCompiler): for generated IDLs and generated Thrift bytes (every IDL type, map keys
 * of every type, doubles of every kind, strings of any bytes including malformed UTF-8, unknown
 * and wrongly typed fields, undeclared enum values) on both protocols and both i64 renderings,
 * the same JSON bytes and the same end position; for truncated and corrupted bytes, a refusal
 * exactly where JavaScript throws (the route then reads it in JavaScript for the typed error).
 */

import { fileURLToPath } from 'node:url';
import { createRequest, fixedBody, readText } from '@loch/http';
import { loadHeadScan } from '@loch/native';
import {
  createReader,
  createWriter,
  MessageType,
  type ProtocolName,
  type ProtocolReader,
  type ProtocolWriter,
  type ThriftFrame,
  ThriftProtocolError,
  TType,
} from '@loch/thrift';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { JsonText } from '../src/codec/json-text.js';
import { ttypeOf } from '../src/codec/json-to-thrift.js';
import { gatewayJsonNative, NativeJsonEmitter } from '../src/codec/native-json.js';
import { SpanBinaryReader } from '../src/codec/span-reader.js';
import {
  type IdlType,
  JsonToThriftCompiler,
  loadIdl,
  type StructDef,
  ThriftToJsonCompiler,
} from '../src/index.js';
import { GatewayRoute, type ThriftExchange } from '../src/service/gateway-route.js';

const protocols: ProtocolName[] = ['binary', 'compact'];
// The property tests run thousands of cases: allow for a busy CI machine.
vi.setConfig({ testTimeout: 120_000 });

function readerFor(protocol: ProtocolName): ProtocolReader {
  return protocol === 'binary' ? new SpanBinaryReader() : createReader(protocol);
}

type Outcome = { text: string; pos: number } | { error: string };

/** What the JavaScript emitter makes of `bytes` (as the route reads: depth 1, inside the result struct). */
function viaJs(t: IdlType, bytes: Uint8Array, protocol: ProtocolName, i64AsNumber: boolean): Outcome {
  const r = readerFor(protocol).reset(bytes);
  r.depth = 1;
  const out = new JsonText();
  try {
    new ThriftToJsonCompiler({ i64AsNumber }).emitter(t)(r, out);
    return { text: out.toString(), pos: r.pos };
  } catch (e) {
    if (!(e instanceof ThriftProtocolError)) throw e;
    return { error: e.code };
  }
}

/** What the native emitter makes of it ('refused': the caller reads it again in JavaScript). */
function viaNative(
  t: IdlType,
  bytes: Uint8Array,
  protocol: ProtocolName,
  i64AsNumber: boolean,
  out = new JsonText(),
): Outcome {
  const n = NativeJsonEmitter.create(t, { protocol, i64AsNumber });
  if (n === undefined) throw new Error('no native emitter');
  const r = readerFor(protocol).reset(bytes);
  r.depth = 1;
  const start = out.pos;
  if (!n.emit(r, out)) {
    expect(r.pos).toBe(0);
    expect(out.pos).toBe(start);
    return { error: 'refused' };
  }
  return { text: out.buf.toString('utf8', start, out.pos), pos: r.pos };
}

/** Native and JavaScript agree: the same text and end, or a refusal where JavaScript throws. */
function agree(t: IdlType, bytes: Uint8Array, protocol: ProtocolName, i64AsNumber = false): Outcome {
  const js = viaJs(t, bytes, protocol, i64AsNumber);
  const native = viaNative(t, bytes, protocol, i64AsNumber);
  const ctx = `${protocol} ${Buffer.from(bytes).toString('hex')} js: ${JSON.stringify(js)}`;
  if ('error' in js) expect(native, ctx).toEqual({ error: 'refused' });
  else expect(native, ctx).toEqual(js);
  return js;
}

// ---- Thrift values generated straight from IDL types (not through the JSON writer) ----

type Write = (w: ProtocolWriter) => void;

const trickyDoubles = [
  0,
  -0,
  1,
  -1,
  0.1,
  0.1 + 0.2,
  1 / 3,
  5e-324,
  -5e-324,
  2.2250738585072014e-308,
  1.7976931348623157e308,
  1e21,
  1e20,
  123456789012345680000,
  1e-6,
  1e-7,
  1.5e-7,
  0.000001234,
  100,
  1e100,
  -1e-100,
  2 ** 53,
  2 ** 53 + 2,
  4.35,
  0.5,
  (2 ** 53 + 1) * 1.0000001,
  NaN,
  Infinity,
  -Infinity,
  1234567890123456 / 1e20,
  123e-20,
  1e22,
];
const doubleArb = fc.oneof(
  fc.double(),
  fc.constantFrom(...trickyDoubles),
  fc.integer().map((i) => i / 1000),
);

/** UTF-8 edge cases: surrogates, overlongs, past U+10FFFF, cut sequences, BOM, controls, quotes. */
const trickyBytes: number[][] = [
  [0xed, 0xa0, 0x80],
  [0xed, 0x9f, 0xbf],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xe0, 0xa0],
  [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf4, 0x8f, 0xbf, 0xbf],
  [0xf5, 0x80],
  [0x80],
  [0xbf, 0x41],
  [0xef, 0xbb, 0xbf, 0x41],
  [0xe2, 0x80, 0xa8, 0xe2, 0x80, 0xa9],
  [0x22, 0x5c, 0x00, 0x1f, 0x7f, 0x08, 0x0c],
  [0xf0, 0x9f, 0x98],
  [0xf0, 0x9f, 0x98, 0x80, 0xff],
  [0xe2, 0x82, 0x41, 0xe2, 0x82, 0xac],
];
const byteStringArb = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc.array(fc.constantFrom(...trickyBytes), { maxLength: 4 }).map((parts) => Uint8Array.from(parts.flat())),
  fc
    .tuple(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom(...trickyBytes))
    .map(([s, b]) => Uint8Array.from([...Buffer.from(s), ...b, ...Buffer.from(s)])),
);
const textArb: fc.Arbitrary<Write> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 16 }).map((s) => (w: ProtocolWriter) => w.writeString(s)),
  fc.string({ maxLength: 16 }).map((s) => (w: ProtocolWriter) => w.writeString(s)),
  byteStringArb.map((b) => (w: ProtocolWriter) => w.writeBinary(b)),
);

/** A value of any type (for fields the IDL does not know and must be skipped): its type and writer. */
function anyArb(depth: number): fc.Arbitrary<[TType, Write]> {
  const scalar: fc.Arbitrary<[TType, Write]> = fc.oneof(
    fc.boolean().map((v) => [TType.BOOL, (w: ProtocolWriter) => w.writeBool(v)] as [TType, Write]),
    fc
      .integer({ min: -128, max: 127 })
      .map((v) => [TType.BYTE, (w: ProtocolWriter) => w.writeByte(v)] as [TType, Write]),
    fc
      .integer({ min: -32768, max: 32767 })
      .map((v) => [TType.I16, (w: ProtocolWriter) => w.writeI16(v)] as [TType, Write]),
    fc.integer().map((v) => [TType.I32, (w: ProtocolWriter) => w.writeI32(v)] as [TType, Write]),
    fc
      .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
      .map((v) => [TType.I64, (w: ProtocolWriter) => w.writeI64(v)] as [TType, Write]),
    doubleArb.map((v) => [TType.DOUBLE, (w: ProtocolWriter) => w.writeDouble(v)] as [TType, Write]),
    textArb.map((f) => [TType.STRING, f] as [TType, Write]),
  );
  if (depth <= 0) return scalar;
  const inner = anyArb(depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: scalar },
    fc.tuple(scalar, fc.nat({ max: 3 })).chain(([[t], n]) =>
      fc
        .array(
          scalar.filter(([u]) => u === t),
          { minLength: n, maxLength: n },
        )
        .map(
          (els) =>
            [
              TType.LIST,
              (w: ProtocolWriter) => {
                w.writeListBegin(t, els.length);
                for (const [, f] of els) f(w);
              },
            ] as [TType, Write],
        ),
    ),
    fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), inner), { maxLength: 3 }).map(
      (fields) =>
        [
          TType.STRUCT,
          (w: ProtocolWriter) => {
            w.writeStructBegin();
            for (const [id, [t, f]] of fields) {
              w.writeFieldBegin(t, id);
              f(w);
            }
            w.writeFieldStop();
            w.writeStructEnd();
          },
        ] as [TType, Write],
    ),
    fc.tuple(inner, inner).map(
      ([[kt, kf], [vt, vf]]) =>
        [
          TType.MAP,
          (w: ProtocolWriter) => {
            w.writeMapBegin(kt, vt, 2);
            kf(w);
            vf(w);
            kf(w);
            vf(w);
          },
        ] as [TType, Write],
    ),
  );
}

/** Thrift bytes of a value of `t`: declared fields in any order (repeated too), unknown ones, wrong types. */
function valueArb(t: IdlType, depth: number): fc.Arbitrary<Write> {
  switch (t.kind) {
    case 'bool':
      return fc.boolean().map((v) => (w) => w.writeBool(v));
    case 'byte':
      return fc.integer({ min: -128, max: 127 }).map((v) => (w) => w.writeByte(v));
    case 'i16':
      return fc.integer({ min: -32768, max: 32767 }).map((v) => (w) => w.writeI16(v));
    case 'i32':
      return fc.integer().map((v) => (w) => w.writeI32(v));
    case 'i64':
      return fc
        .oneof(
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          fc.constantFrom(
            0n,
            -1n,
            2n ** 53n,
            2n ** 53n + 1n,
            -(2n ** 53n) - 1n,
            -(2n ** 63n),
            2n ** 63n - 1n,
          ),
        )
        .map((v) => (w) => w.writeI64(v));
    case 'double':
      return doubleArb.map((v) => (w) => w.writeDouble(v));
    case 'string':
      return textArb;
    case 'binary':
      return fc.uint8Array({ maxLength: 20 }).map((b) => (w) => w.writeBinary(b));
    case 'enum':
      return fc
        .oneof(fc.constantFrom(...t.def.byValue.keys()), fc.integer())
        .map((v) => (w) => w.writeI32(v));
    case 'list':
    case 'set': {
      const elemType = ttypeOf(t.elem);
      const wrong = anyArb(0).filter(([u]) => u !== elemType);
      return fc
        .oneof(
          {
            weight: 4,
            arbitrary: depth <= 0 ? fc.constant([]) : fc.array(valueArb(t.elem, depth - 1), { maxLength: 4 }),
          },
          { weight: 1, arbitrary: fc.constant<Write[]>([]) },
        )
        .chain((els) =>
          fc.oneof(
            {
              weight: 5,
              arbitrary: fc.constant((w: ProtocolWriter) => {
                if (t.kind === 'set') w.writeSetBegin(elemType, els.length);
                else w.writeListBegin(elemType, els.length);
                for (const f of els) f(w);
              }),
            },
            // Elements of another type than the IDL's: skipped, an empty array.
            {
              weight: 1,
              arbitrary: fc.tuple(wrong, fc.nat({ max: 3 })).map(([[u, f], n]) => (w: ProtocolWriter) => {
                w.writeListBegin(u, n);
                for (let i = 0; i < n; i++) f(w);
              }),
            },
          ),
        );
    }
    case 'map': {
      const kt = ttypeOf(t.key);
      const vt = ttypeOf(t.value);
      const entries =
        depth <= 0
          ? fc.constant([])
          : fc.array(fc.tuple(valueArb(t.key, depth - 1), valueArb(t.value, depth - 1)), { maxLength: 4 });
      return fc.oneof(
        {
          weight: 5,
          arbitrary: entries.map((es) => (w: ProtocolWriter) => {
            w.writeMapBegin(kt, vt, es.length);
            for (const [k, v] of es) {
              k(w);
              v(w);
            }
          }),
        },
        {
          weight: 1,
          arbitrary: anyArb(0)
            .filter(([u]) => u !== vt)
            .map(([u, f]) => (w: ProtocolWriter) => {
              w.writeMapBegin(kt, u, 1);
              valueDefault(t.key)(w);
              f(w);
            }),
        },
      );
    }
    case 'struct': {
      const def = t.def;
      const ids = new Set(def.fields.map((f) => f.id));
      const declared = def.fields.map((f) =>
        (depth <= 0 && isComposite(f.type) ? fc.constant(null) : valueArb(f.type, depth - 1)).map((v) =>
          v === null ? null : ([ttypeOf(f.type), f.id, v] as [TType, number, Write]),
        ),
      );
      const unknown = fc
        .tuple(
          fc.integer({ min: -32768, max: 32767 }).filter((id) => !ids.has(id)),
          anyArb(depth > 0 ? 1 : 0),
        )
        .map(([id, [u, f]]) => [u, id, f] as [TType, number, Write]);
      const wrongType =
        def.fields.length === 0
          ? unknown
          : fc
              .tuple(fc.constantFrom(...def.fields), anyArb(0))
              .map(([f, [u, g]]) =>
                u === ttypeOf(f.type)
                  ? ([TType.I16, f.id, (w: ProtocolWriter) => w.writeI16(1)] as [TType, number, Write])
                  : ([u, f.id, g] as [TType, number, Write]),
              );
      const field = fc.oneof(
        { weight: 6, arbitrary: declared.length === 0 ? unknown : fc.oneof(...declared) },
        { weight: 1, arbitrary: unknown },
        { weight: 1, arbitrary: wrongType },
      );
      return fc.array(field, { maxLength: 6 }).map((fields) => (w: ProtocolWriter) => {
        w.writeStructBegin();
        for (const f of fields) {
          if (f === null) continue;
          w.writeFieldBegin(f[0], f[1]);
          f[2](w);
          w.writeFieldEnd();
        }
        w.writeFieldStop();
        w.writeStructEnd();
      });
    }
  }
}

function isComposite(t: IdlType): boolean {
  return t.kind === 'struct' || t.kind === 'list' || t.kind === 'set' || t.kind === 'map';
}

/** A fixed value of a key type (for maps whose values are of the wrong type). */
function valueDefault(t: IdlType): Write {
  const f = fc.sample(valueArb(t, 0), { numRuns: 1, seed: 1 })[0];
  return f as Write;
}

/** Random IDLs as .thrift text: structs over every type, map keys of every type, js_conv, recursion. */
const baseTypes = ['bool', 'byte', 'i16', 'i32', 'i64', 'double', 'string', 'binary', 'Color'];
function typeTextArb(structs: string[], depth: number): fc.Arbitrary<string> {
  const leaves = fc.constantFrom(...baseTypes, ...structs);
  if (depth <= 0) return leaves;
  const inner = typeTextArb(structs, depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: leaves },
    inner.map((t) => `list<${t}>`),
    inner.map((t) => `set<${t}>`),
    fc.tuple(fc.oneof(leaves, inner), inner).map(([k, v]) => `map<${k},${v}>`),
  );
}
const idlTextArb: fc.Arbitrary<{ text: string; root: string }> = fc
  .array(fc.array(fc.tuple(fc.integer({ min: 1, max: 80 }), fc.boolean()), { minLength: 1, maxLength: 6 }), {
    minLength: 1,
    maxLength: 3,
  })
  .chain((shapes) => {
    let acc: fc.Arbitrary<{ decls: string[]; names: string[] }> = fc.constant({ decls: [], names: ['Node'] });
    shapes.forEach((fieldShapes, index) => {
      acc = acc.chain(({ decls, names }) =>
        fc.tuple(...fieldShapes.map(() => typeTextArb(names, 2))).map((types) => {
          const used = new Set<number>();
          const fields = types
            .map((t, i) => {
              let id = fieldShapes[i]?.[0] ?? i;
              while (used.has(id) || id === 0) id++;
              used.add(id);
              const conv = fieldShapes[i]?.[1] ? ' (api.js_conv = "true")' : '';
              return `  ${id}: optional ${t} f${i}${conv}`;
            })
            .join('\n');
          return { decls: [...decls, `struct S${index} {\n${fields}\n}`], names: [...names, `S${index}`] };
        }),
      );
    });
    return acc.map(({ decls, names }) => ({
      text: [
        'enum Color { RED = 1, GREEN = 2, BLUE = 40, NEG = -3 }',
        'struct Node { 1: optional list<Node> kids, 2: optional i64 v, 3: optional map<i64,Node> m, 4: optional bool b }',
        ...decls,
      ].join('\n'),
      root: names[names.length - 1] as string,
    }));
  });

function encode(protocol: ProtocolName, write: Write): Uint8Array {
  const w = createWriter(protocol);
  write(w);
  return w.finishCopy();
}

describe('native Thrift -> JSON', () => {
  it('the addon has the converter', () => {
    expect(gatewayJsonNative()).toBeDefined();
  });

  describe.each(protocols)('%s', (protocol) => {
    it("property: generated IDLs and bytes give the JavaScript emitters' JSON, byte for byte", () => {
      fc.assert(
        fc.property(
          idlTextArb.chain(({ text, root }) => {
            const def = loadIdl('/gen/gen.thrift', { readFile: () => text }).structs.get(root) as StructDef;
            const t: IdlType = { kind: 'struct', def };
            return fc.tuple(fc.constant(t), valueArb(t, 3), fc.boolean());
          }),
          ([t, write, i64AsNumber]) => {
            const bytes = encode(protocol, write);
            const js = agree(t, bytes, protocol, i64AsNumber);
            expect(js).not.toHaveProperty('error');
          },
        ),
        { numRuns: 400 },
      );
    });

    it('property: truncated and corrupted bytes are refused exactly where JavaScript throws', () => {
      let refused = 0;
      let read = 0;
      fc.assert(
        fc.property(
          idlTextArb.chain(({ text, root }) => {
            const def = loadIdl('/gen/gen.thrift', { readFile: () => text }).structs.get(root) as StructDef;
            const t: IdlType = { kind: 'struct', def };
            return fc.tuple(
              fc.constant(t),
              valueArb(t, 3),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
              fc.option(fc.nat()),
            );
          }),
          ([t, write, flips, cut]) => {
            const bytes = encode(protocol, write);
            for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
            const input = cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
            const js = agree(t, input, protocol);
            if ('error' in js) refused++;
            else read++;
          },
        ),
        { numRuns: 600 },
      );
      // Both sides of the property were exercised.
      expect(refused).toBeGreaterThan(50);
      expect(read).toBeGreaterThan(50);
    });
  });

  const idl = loadIdl('/t/t.thrift', {
    readFile: () =>
      [
        'enum Color { RED = 1, GREEN = 2 }',
        'struct P { 1: optional double d, 2: optional string s, 3: optional binary b, 4: optional i64 n }',
        'struct Node { 1: optional list<Node> kids }',
        'struct K { 1: optional map<double,i32> d, 2: optional map<bool,i32> b, 3: optional map<P,i32> s, 4: optional map<list<string>,i32> l, 5: optional map<Color,i32> e, 6: optional map<binary,i32> bin }',
      ].join('\n'),
  });
  const struct = (name: string): IdlType => ({ kind: 'struct', def: idl.structs.get(name) as StructDef });
  const P = struct('P');

  it.each(protocols)('doubles are written as Number.prototype.toString writes them (%s)', (protocol) => {
    fc.assert(
      fc.property(doubleArb, (d) => {
        const bytes = encode(protocol, (w) => {
          w.writeStructBegin();
          w.writeFieldBegin(TType.DOUBLE, 1);
          w.writeDouble(d);
          w.writeFieldStop();
        });
        const js = agree(P, bytes, protocol);
        expect(js).toHaveProperty('text');
      }),
      { numRuns: 3000 },
    );
    for (const d of trickyDoubles) {
      const bytes = encode(protocol, (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.DOUBLE, 1);
        w.writeDouble(d);
        w.writeFieldStop();
      });
      const expected = Number.isFinite(d) ? String(d) : `"${String(d)}"`;
      expect(viaNative(P, bytes, protocol, false)).toEqual({ text: `{"d":${expected}}`, pos: bytes.length });
    }
  });

  it.each(protocols)(
    'strings of any bytes: escapes, U+FEFF kept, malformed UTF-8 as U+FFFD (%s)',
    (protocol) => {
      fc.assert(
        fc.property(byteStringArb, (b) => {
          const bytes = encode(protocol, (w) => {
            w.writeStructBegin();
            w.writeFieldBegin(TType.STRING, 2);
            w.writeBinary(b);
            w.writeFieldBegin(TType.STRING, 3);
            w.writeBinary(b);
            w.writeFieldStop();
          });
          agree(P, bytes, protocol);
        }),
        { numRuns: 2000 },
      );
      const bom = encode(protocol, (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRING, 2);
        w.writeBinary(Uint8Array.from([0xef, 0xbb, 0xbf, 0x61, 0xed, 0xa0, 0x80, 0x0a]));
        w.writeFieldStop();
      });
      expect(viaNative(P, bom, protocol, false)).toMatchObject({
        text: '{"s":"\ufeffa\ufffd\ufffd\ufffd\\n"}',
      });
    },
  );

  it.each(protocols)('map keys of every type are JSON strings (%s)', (protocol) => {
    const K = struct('K');
    fc.assert(
      fc.property(valueArb(K, 3), (write) => {
        agree(K, encode(protocol, write), protocol);
      }),
      { numRuns: 500 },
    );
  });

  it.each(protocols)('nesting deeper than the reader allows is refused (%s)', (protocol) => {
    const N = struct('Node');
    const nested =
      (levels: number): Write =>
      (w) => {
        w.writeStructBegin();
        if (levels > 0) {
          w.writeFieldBegin(TType.LIST, 1);
          w.writeListBegin(TType.STRUCT, 1);
          nested(levels - 1)(w);
        }
        w.writeFieldStop();
      };
    // Depth 1 (the result struct) + 2 per level: 31 levels read, 32 do not (limit 64).
    expect(agree(N, encode(protocol, nested(31)), protocol)).toHaveProperty('text');
    expect(agree(N, encode(protocol, nested(32)), protocol)).toEqual({ error: 'ERR_THRIFT_DEPTH_LIMIT' });
  });

  it('grows a small output buffer and writes after what it holds', () => {
    const bytes = encode('binary', (w) => {
      w.writeFieldBegin(TType.STRING, 2);
      w.writeString('x'.repeat(5000));
      w.writeFieldStop();
    });
    const out = new JsonText();
    out.ascii('[1,');
    expect(out.buf.length).toBeLessThan(5000);
    expect(viaNative(P, bytes, 'binary', false, out)).toEqual({
      text: `{"s":"${'x'.repeat(5000)}"}`,
      pos: bytes.length,
    });
    expect(out.toString().slice(0, 9)).toBe('[1,{"s":"');
  });

  it('refuses a wrong plan or arguments with a typed error, not a crash', () => {
    const native = gatewayJsonNative();
    if (native === undefined) throw new Error('no converter');
    expect(() => native.compile(Int32Array.from([99]), new Uint8Array(0))).toThrow(RangeError);
    expect(() =>
      native.compile(Int32Array.from([14, 1, 0, 1, 11, 0, 50, 0, 0, 0, -1]), new Uint8Array(4)),
    ).toThrow(RangeError);
    expect(() => native.compile(Int32Array.from([11, 7, 11]), new Uint8Array(0))).toThrow(RangeError);
    const plan = native.compile(Int32Array.from([8]), new Uint8Array(0));
    const io = Int32Array.from([0, 10, 0, 0, 64, 0, 0, 0]);
    expect(() => native.emit(plan, 0, new Uint8Array(4), new Uint8Array(8), io)).toThrow(RangeError);
    expect(() => native.emit(plan, 3, new Uint8Array(16), new Uint8Array(8), io)).toThrow(RangeError);
    expect(() => native.emit({} as never, 0, new Uint8Array(16), new Uint8Array(8), io)).toThrow(TypeError);
    // Another External of the addon is not a plan.
    const scan = loadHeadScan();
    if (!('headScan' in scan)) throw new Error(scan.error);
    const other = scan.headScan.bind(new Int32Array(64), new Uint8Array(64));
    expect(() => native.emit(other as never, 0, new Uint8Array(16), new Uint8Array(8), io)).toThrow(
      TypeError,
    );
    io[1] = 1;
    expect(native.emit(plan, 0, Uint8Array.from([0, 0, 0, 0]), new Uint8Array(8), io)).toBe(2);
  });
});

describe('GatewayRoute answers read natively', () => {
  const user = loadIdl(fileURLToPath(new URL('./idl/user.thrift', import.meta.url)));
  const createUser = user.services.get('UserService')?.functions.get('createUser');
  if (createUser === undefined) throw new Error('no createUser');

  async function answer(protocol: ProtocolName, result: Record<string, unknown>): Promise<[number, string]> {
    const w = createWriter(protocol);
    w.writeMessageBegin('createUser', MessageType.REPLY, 0);
    new JsonToThriftCompiler().struct(createUser!.result)(w, result);
    const payload = w.finishCopy();
    const upstream: ThriftExchange = { send: () => Promise.resolve({ payload } as ThriftFrame) };
    const route = new GatewayRoute({
      idl: user,
      service: 'UserService',
      function: 'createUser',
      path: '/u',
      protocol,
      upstream,
    });
    const res = await route.call(
      createRequest('POST', '/u', { body: fixedBody(Buffer.from('{"user":{"id":"1","name":"n"}}')) }),
      new Map(),
      undefined,
    );
    return [res.status, await readText(res.body)];
  }

  it.each(protocols)('declared exceptions, with fields and without (%s)', async (protocol) => {
    expect(await answer(protocol, { invalid: { reason: 'bad "name"', fields: ['name', 'é'] } })).toEqual([
      422,
      '{"exception":"Invalid","reason":"bad \\"name\\"","fields":["name","é"]}',
    ]);
    expect(await answer(protocol, { invalid: {} })).toEqual([422, '{"exception":"Invalid"}']);
    expect(await answer(protocol, { success: { id: '7', name: 'x', score: 0.1 } })).toEqual([
      200,
      '{"id":"7","name":"x","age":18,"status":"ACTIVE","score":0.1}',
    ]);
  });
});
