/**
 * The native request encoder (@loch/native gateway_json.cc `encode`, driven by
 * src/codec/native-json.ts NativeJsonEncoder) against what it stands in for: the body decoded as
 * the route decodes it (fatal UTF-8, BOM dropped), JSON.parse, and JsonToThriftCompiler's writer.
 * For generated IDLs (every type, defaults, required fields, unions, recursion, map keys of every
 * type) and generated JSON (every accepted spelling, plus wrong types, unknown keys, duplicates,
 * nulls, out-of-range numbers), in compact and pretty form, raw and corrupted: where the native
 * side writes, it writes the writer's bytes exactly; where JavaScript refuses, it refuses too.
 * It may refuse a few spellings JavaScript accepts (gateway_json.cc lists them): the route then
 * takes the JavaScript path, so those only cost time, and the tests bound how often.
 */
import { createWriter, type ProtocolName } from '@loch/thrift';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { JsonText } from '../src/codec/json-text.js';
import { NativeJsonEncoder } from '../src/codec/native-json.js';
import {
  GatewayRequestError,
  type IdlType,
  JsonToThriftCompiler,
  loadIdl,
  type StructDef,
} from '../src/index.js';

const protocols: ProtocolName[] = ['binary', 'compact'];
// The property tests run thousands of cases: allow for a busy CI machine.
vi.setConfig({ testTimeout: 120_000 });
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Outcome = { bytes: string } | { error: string };

function viaJs(def: StructDef, body: Uint8Array, protocol: ProtocolName): Outcome {
  try {
    const text = utf8.decode(body);
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: 'not an object' };
    const w = createWriter(protocol);
    new JsonToThriftCompiler().struct(def)(w, v);
    return { bytes: Buffer.from(w.finish()).toString('hex') };
  } catch (e) {
    if (e instanceof GatewayRequestError || e instanceof SyntaxError || e instanceof TypeError) {
      return { error: (e as Error).name };
    }
    throw e;
  }
}

function viaNative(def: StructDef, body: Uint8Array, protocol: ProtocolName, out = new JsonText()): Outcome {
  const enc = NativeJsonEncoder.create(def, protocol);
  if (enc === undefined) throw new Error('no native encoder');
  const start = out.pos;
  if (!enc.encode(body, out)) {
    expect(out.pos).toBe(start);
    return { error: 'refused' };
  }
  return { bytes: out.buf.toString('hex', start, out.pos) };
}

/** Native writes JavaScript's bytes or refuses; refuses wherever JavaScript does. True: native wrote. */
function agree(def: StructDef, body: Uint8Array, protocol: ProtocolName): boolean {
  const js = viaJs(def, body, protocol);
  const native = viaNative(def, body, protocol);
  const ctx = `${protocol} ${JSON.stringify(Buffer.from(body).toString())} js: ${JSON.stringify(js)}`;
  if ('error' in js) expect(native, ctx).toEqual({ error: 'refused' });
  else if ('bytes' in native) expect(native, ctx).toEqual(js);
  return 'bytes' in native;
}

// ---- JSON values generated from IDL types ----

const b64 = (b: Uint8Array, form: number): string => {
  const s = Buffer.from(b).toString(form >= 2 ? 'base64url' : 'base64');
  return form % 2 === 1 ? s.replace(/=+$/, '') : s;
};

/** Whether jsonArb mixes in values of wrong types (set per property). */
let noise = true;

/** JSON values of type `t`: mostly accepted spellings, sometimes (with `noise`) wrong ones. */
function jsonArb(t: IdlType, depth: number): fc.Arbitrary<unknown> {
  if (!noise) return rightArb(t, depth);
  const wrong = fc.oneof(
    fc.constant(null),
    fc.constant('x'),
    fc.constant(1.5),
    fc.constant([]),
    fc.constant({}),
    fc.constant(true),
  );
  return fc.oneof({ weight: 12, arbitrary: rightArb(t, depth) }, { weight: 1, arbitrary: wrong });
}

function rightArb(t: IdlType, depth: number): fc.Arbitrary<unknown> {
  const intArb = (min: number, max: number): fc.Arbitrary<unknown> =>
    fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min, max }) },
      { weight: 1, arbitrary: fc.integer({ min, max }).map(String) },
      { weight: 1, arbitrary: fc.constantFrom(min - 1, max + 1, '007', '-0', -0, '1e2', 1e2) },
    );
  switch (t.kind) {
    case 'bool':
      return fc.boolean();
    case 'byte':
      return intArb(-128, 127);
    case 'i16':
      return intArb(-32768, 32767);
    case 'i32':
      return intArb(-(2 ** 31), 2 ** 31 - 1);
    case 'i64':
      return fc.oneof(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
        fc.maxSafeInteger(),
        fc.constantFrom('9223372036854775808', '-9223372036854775809', 2 ** 53, '01', '-0', 0),
      );
    case 'double':
      return fc.oneof(
        { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
        { weight: 1, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', '1.5', ' 2 ', '0x10') },
      );
    case 'string':
      return fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary', maxLength: 8 }),
        fc.constantFrom('\u0000"\\/\b\f\n\r\t', '\ufeff', '\u2028'),
      );
    case 'binary':
      return fc.tuple(fc.uint8Array({ maxLength: 12 }), fc.nat({ max: 3 })).map(([b, form]) => b64(b, form));
    case 'enum':
      return fc.oneof(
        fc.constantFrom(...t.def.byName.keys()),
        fc.constantFrom(...t.def.byValue.keys()),
        fc.constant('PURPLE'),
      );
    case 'list':
      return depth <= 0 ? fc.constant([]) : fc.array(jsonArb(t.elem, depth - 1), { maxLength: 4 });
    case 'set':
      return depth <= 0
        ? fc.constant([])
        : fc.oneof(
            fc.uniqueArray(rightArb(t.elem, depth - 1), { maxLength: 4, selector: (e) => JSON.stringify(e) }),
            fc.array(rightArb(t.elem, depth - 1), { maxLength: 4 }),
          );
    case 'map': {
      if (depth <= 0) return fc.constant({});
      const key = keyArb(t.key);
      if (key === undefined) return fc.constant({});
      return fc
        .array(fc.tuple(key, jsonArb(t.value, depth - 1)), { maxLength: 5 })
        .map((entries) => Object.fromEntries(entries));
    }
    case 'struct': {
      const def = t.def;
      if (depth <= 0) return fc.constant({});
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const f of def.fields) record[f.name] = jsonArb(f.type, depth - 1);
      const fields = fc.record(record, { requiredKeys: [] });
      const one =
        def.fields.length === 0
          ? fields
          : fc
              .constantFrom(...def.fields)
              .chain((f) => jsonArb(f.type, depth - 1).map((v) => ({ [f.name]: v })));
      // Keys in IDL order (as clients built from the IDL send them) or shuffled.
      const shuffled = fields.chain((o) =>
        fc
          .shuffledSubarray(Object.entries(o), { minLength: Object.keys(o).length })
          .map((entries) => Object.fromEntries(entries)),
      );
      return fc.oneof(
        { weight: def.kind === 'union' ? 1 : 4, arbitrary: fields },
        { weight: def.kind === 'union' ? 1 : 3, arbitrary: shuffled },
        { weight: def.kind === 'union' ? 6 : 1, arbitrary: one },
        { weight: 1, arbitrary: fields.map((o) => ({ ...o, emial: 1 })) },
      );
    }
  }
}

/** JSON object keys for a map key type (undefined: keys of structs and containers, not generated). */
function keyArb(t: IdlType): fc.Arbitrary<string> | undefined {
  switch (t.kind) {
    case 'string':
      return fc.oneof(
        fc.string({ maxLength: 6 }),
        fc.nat({ max: 20 }).map(String),
        fc.constantFrom('__proto__', '4294967294', '4294967295', '01'),
      );
    case 'bool':
      return fc.constantFrom('true', 'false', 'yes');
    case 'byte':
    case 'i16':
    case 'i32':
      return fc.oneof(
        fc.integer({ min: -200, max: 200 }).map(String),
        fc.constantFrom('01', '1e2', ' 1', '99999999999'),
      );
    case 'i64':
      return fc.oneof(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
        fc.nat({ max: 30 }).map(String),
      );
    case 'double':
      return fc.oneof(
        fc.double({ noNaN: true }).map(String),
        fc.constantFrom('NaN', '-0', '1e400', '.5', ' 1', '0x1F'),
      );
    case 'binary':
      return fc.uint8Array({ maxLength: 6 }).map((b) => b64(b, 0));
    case 'enum':
      return fc.constantFrom(...t.def.byName.keys(), '1');
    default:
      return undefined;
  }
}

const baseTypes = ['bool', 'byte', 'i16', 'i32', 'i64', 'double', 'string', 'binary', 'Color'];
function typeTextArb(structs: string[], depth: number): fc.Arbitrary<string> {
  const leaves = fc.constantFrom(...baseTypes, ...structs);
  if (depth <= 0) return leaves;
  const inner = typeTextArb(structs, depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: leaves },
    inner.map((t) => `list<${t}>`),
    inner.map((t) => `set<${t}>`),
    fc.tuple(fc.constantFrom(...baseTypes), inner).map(([k, v]) => `map<${k},${v}>`),
  );
}

const FIXED = [
  'enum Color { RED = 1, GREEN = 2, BLUE = 40, NEG = -3 }',
  'struct Node { 1: optional list<Node> kids, 2: optional i64 v, 3: optional map<i64,Node> m, 4: optional bool b }',
  'struct Defaults { 1: i32 n = 7, 2: bool on = true, 3: bool off = false, 4: string s = "d", 5: list<Color> cs = [RED, BLUE], 6: required string must, 7: optional double d = 1.5, 8: i64 big = 9007199254740993, 9: binary bin = "AQI=" }',
  'union U { 1: string a, 2: i32 b = 3, 3: Node n }',
];

const idlArb: fc.Arbitrary<StructDef> = fc
  .array(
    fc.array(fc.tuple(fc.integer({ min: 1, max: 80 }), fc.constantFrom('optional', 'required', '')), {
      minLength: 1,
      maxLength: 6,
    }),
    {
      minLength: 1,
      maxLength: 3,
    },
  )
  .chain((shapes) => {
    let acc: fc.Arbitrary<{ decls: string[]; names: string[] }> = fc.constant({
      decls: [],
      names: ['Node', 'Defaults', 'U'],
    });
    shapes.forEach((fieldShapes, index) => {
      acc = acc.chain(({ decls, names }) =>
        fc.tuple(...fieldShapes.map(() => typeTextArb(names, 2))).map((types) => {
          const used = new Set<number>();
          const fields = types.map((t, i) => {
            let id = fieldShapes[i]?.[0] ?? 1;
            while (used.has(id)) id++;
            used.add(id);
            return `  ${id}: ${fieldShapes[i]?.[1] ?? ''} ${t} f${i}`;
          });
          return {
            decls: [...decls, `struct S${index} {\n${fields.join('\n')}\n}`],
            names: [...names, `S${index}`],
          };
        }),
      );
    });
    return acc.map(({ decls, names }) => {
      const text = [...FIXED, ...decls].join('\n');
      return loadIdl('/gen/gen.thrift', { readFile: () => text }).structs.get(
        names[names.length - 1] as string,
      ) as StructDef;
    });
  });

const fixed = loadIdl('/fixed/fixed.thrift', { readFile: () => FIXED.join('\n') });
const fixedStruct = (name: string): StructDef => fixed.structs.get(name) as StructDef;

describe('native JSON -> Thrift (requests)', () => {
  describe.each(protocols)('%s', (protocol) => {
    it("property: generated IDLs and JSON give the writer's bytes, or a refusal where JavaScript refuses", () => {
      let wrote = 0;
      let jsWrote = 0;
      noise = false;
      fc.assert(
        fc.property(
          idlArb.chain((def) =>
            fc.tuple(fc.constant(def), jsonArb({ kind: 'struct', def }, 3), fc.boolean()),
          ),
          ([def, value, pretty]) => {
            const text = JSON.stringify(value, null, pretty ? 2 : undefined) ?? 'null';
            if ('bytes' in viaJs(def, Buffer.from(text), protocol)) jsWrote++;
            if (agree(def, Buffer.from(text), protocol)) wrote++;
          },
        ),
        { numRuns: 500 },
      );
      noise = true;
      // The refusals of spellings JavaScript accepts stay rare.
      expect(wrote).toBeGreaterThan(jsWrote * 0.85);
      expect(jsWrote).toBeGreaterThan(80);
    });

    it('property: corrupted and truncated JSON is refused wherever JavaScript refuses it', () => {
      fc.assert(
        fc.property(
          idlArb.chain((def) =>
            fc.tuple(
              fc.constant(def),
              jsonArb({ kind: 'struct', def }, 3),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
              fc.option(fc.nat()),
            ),
          ),
          ([def, value, flips, cut]) => {
            const bytes = Buffer.from(JSON.stringify(value) ?? 'null');
            for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
            agree(def, cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1)), protocol);
          },
        ),
        { numRuns: 800 },
      );
    });

    it('defaults, required fields and unions as the writer applies them', () => {
      const D = fixedStruct('Defaults');
      const U = fixedStruct('U');
      for (const [def, text, writes] of [
        [D, '{"must":"m"}', true],
        [D, '{"must":"m","n":null,"on":false,"d":null}', true],
        [D, '{"n":1}', false], // required field missing
        [D, '{"must":null}', false],
        [U, '{"a":"x"}', true],
        [U, '{"b":null,"a":"x"}', true],
        [U, '{}', false], // a union's default never selects its member
        [U, '{"a":"x","b":1}', false],
        [U, '{"n":{"kids":[{},{"v":"5"}]}}', true],
      ] as const) {
        const body = Buffer.from(text);
        const js = viaJs(def, body, protocol);
        expect('bytes' in js, text).toBe(writes);
        expect(viaNative(def, body, protocol), text).toEqual(writes ? js : { error: 'refused' });
      }
    });

    it('map keys in Object.keys order (array indices first, ascending), every key type', () => {
      const K = loadIdl('/k/k.thrift', {
        readFile: () =>
          'enum Color { RED = 1 }\nstruct K { 1: map<string,i32> s, 2: map<i32,i32> i, 3: map<double,i32> d, 4: map<bool,i32> b, 5: map<i64,i32> l, 6: map<Color,i32> e, 7: map<binary,i32> x, 8: map<byte,i32> y, 9: map<i16,i32> z }',
      }).structs.get('K') as StructDef;
      const text =
        '{"s":{"b":1,"10":2,"a":3,"2":4,"4294967295":5,"01":6,"4294967294":7},"i":{"-1":1,"3":2,"0":3},' +
        '"d":{"NaN":1,"-0":2,"1.5":3,"Infinity":4,"1e3":5},"b":{"true":1,"false":2},"l":{"-9223372036854775808":1,"7":2},' +
        '"e":{"RED":1},"x":{"AAEC":1,"":2},"y":{"-128":1},"z":{"300":1}}';
      const js = viaJs(K, Buffer.from(text), protocol);
      expect(js).toHaveProperty('bytes');
      expect(viaNative(K, Buffer.from(text), protocol)).toEqual(js);
    });

    it("containers of every length have the writer's headers (compact short and long forms)", () => {
      const L = loadIdl('/l/l.thrift', {
        readFile: () =>
          'struct L { 1: list<i32> l, 2: set<string> s, 3: map<string,list<i32>> m, 4: list<list<i32>> ll }',
      }).structs.get('L') as StructDef;
      for (const n of [0, 1, 14, 15, 16, 127, 128, 300]) {
        const ints = Array.from({ length: n }, (_, i) => i * 1000);
        const value = {
          l: ints,
          s: ints.map((i) => `s${i}`),
          m: Object.fromEntries(ints.map((i) => [`k${i}`, ints.slice(0, i % 17)])),
          ll: [ints, [], ints.slice(0, 15)],
        };
        expect(agree(L, Buffer.from(JSON.stringify(value)), protocol), String(n)).toBe(true);
        // A set with a duplicate element is JavaScript's 400: refused.
        if (n > 0)
          expect(agree(L, Buffer.from(JSON.stringify({ s: [...value.s, 's0'] })), protocol)).toBe(false);
      }
    });

    it('struct nesting past 64 is refused, as the writer refuses it', () => {
      const N = fixedStruct('Node');
      const nest = (n: number): string => (n === 0 ? '{}' : `{"kids":[${nest(n - 1)}]}`);
      expect(agree(N, Buffer.from(nest(63)), protocol)).toBe(true);
      expect(viaJs(N, Buffer.from(nest(64)), protocol)).toHaveProperty('error');
      expect(agree(N, Buffer.from(nest(64)), protocol)).toBe(false);
      // Arrays nested deeper than the scanner goes are refused, not a stack overflow.
      const deep = Buffer.from(`{"kids":[{"v":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`);
      expect(agree(N, deep, protocol)).toBe(false);
    });
  });

  it('refused spellings that JavaScript accepts take the JavaScript path with the same result', () => {
    const D = fixedStruct('Defaults');
    for (const text of [
      '\ufeff{"must":"m"}', // a BOM (the route's decoder drops it)
      '{"must":"m","must":"n"}', // a duplicate key: JSON.parse keeps the last
      '{"mu\\u0073t":"m"}', // an escaped key
      '{"must":"\\ud800"}', // a lone surrogate: U+FFFD in Thrift
      '{"must":"m","d":"1.5"}', // a double as text other than NaN/Infinity
      '{"must":"m","cs":["R\\u0045D"]}', // an escaped enum name
    ]) {
      const body = Buffer.from(text);
      expect(viaJs(D, body, 'binary'), text).toHaveProperty('bytes');
      expect(viaNative(D, body, 'binary'), text).toEqual({ error: 'refused' });
    }
  });

  it('grows a small output buffer and writes after what it holds', () => {
    const D = fixedStruct('Defaults');
    const body = Buffer.from(JSON.stringify({ must: 'x'.repeat(5000) }));
    const out = new JsonText();
    out.ascii('HEAD');
    const native = viaNative(D, body, 'compact', out);
    expect(native).toEqual(viaJs(D, body, 'compact'));
    expect(out.buf.toString('latin1', 0, 4)).toBe('HEAD');
  });
});
