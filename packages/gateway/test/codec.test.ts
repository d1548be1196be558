/**
 * JSON <-> Thrift conversion compiled from an IDL: every IDL type both ways on both protocols,
 * the strictness rules (unknown fields with their path, required fields, ranges, exact i64,
 * base64, enums, unions), defaults, and property tests: random IDLs (generated as .thrift text
 * and loaded) with random values, JSON -> Thrift -> JSON is the identity.
 */
import { fileURLToPath } from 'node:url';
import { createReader, createWriter, type ProtocolName, TType } from '@loch/thrift';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GatewayRequestError,
  type IdlType,
  JsonToThriftCompiler,
  loadIdl,
  type StructDef,
  ThriftToJsonCompiler,
} from '../src/index.js';

const idl = loadIdl(fileURLToPath(new URL('./idl/user.thrift', import.meta.url)));
const User = idl.structs.get('User') as StructDef;
const protocols: ProtocolName[] = ['binary', 'compact'];

function roundTrip(
  def: StructDef,
  value: unknown,
  protocol: ProtocolName = 'binary',
  i64AsNumber = false,
): string {
  const w = createWriter(protocol);
  new JsonToThriftCompiler().struct(def)(w, value);
  const r = createReader(protocol).reset(w.finish());
  return new ThriftToJsonCompiler({ i64AsNumber }).struct(def)(r);
}

function rejection(def: StructDef, value: unknown): GatewayRequestError {
  try {
    roundTrip(def, value);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayRequestError);
    return e as GatewayRequestError;
  }
  throw new Error('expected a GatewayRequestError');
}

const full = {
  id: '9007199254740993',
  name: 'Ada ✓ "quoted" \\ \n',
  age: 36,
  status: 'DELETED',
  addresses: [{ city: 'Paris', zip: '75001' }, { city: 'Oslo' }],
  tags: ['a', 'b'],
  notes: { '1': 'one', '-7': 'minus seven' },
  avatar: Buffer.from([0, 1, 2, 250, 255]).toString('base64'),
  score: 1.25,
  admin: true,
  level: -128,
  rank: 32767,
  contact: { phone: '+33' },
  groups: { g: ['-9223372036854775808', '9223372036854775807', '0'] },
  manager: { id: '1', name: 'Boss', age: 70, status: 'SUSPENDED' },
};

describe.each(protocols)('every IDL type both ways (%s)', (protocol) => {
  it('a struct with every type round-trips exactly', () => {
    const got = roundTrip(User, full, protocol);
    expect(JSON.parse(got), got).toEqual(full);
  });

  it('strings read as the JSON text JSON.stringify writes (every ASCII character, escapes, non-ASCII)', () => {
    const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c));
    for (const name of [...ascii, ascii.join(''), 'plain text', 'é', '✓ "q"', '😀', 'a\u2028b', '']) {
      expect(roundTrip(User, { id: '1', name }, protocol)).toBe(
        `{"id":"1","name":${JSON.stringify(name)},"age":18,"status":"ACTIVE"}`,
      );
    }
  });

  it('answers larger than the text buffer grow it (long strings, many elements)', () => {
    const big = {
      id: '1',
      name: 'x'.repeat(5000),
      tags: Array.from({ length: 500 }, (_, i) => `tag ${i} ✓`),
      notes: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [String(i), 'n'.repeat(i)])),
    };
    expect(JSON.parse(roundTrip(User, big, protocol))).toEqual({ ...big, age: 18, status: 'ACTIVE' });
  });

  it('doubles JSON cannot hold travel as strings', () => {
    for (const score of ['NaN', 'Infinity', '-Infinity']) {
      expect(JSON.parse(roundTrip(User, { id: '1', score }, protocol)).score).toBe(score);
    }
  });

  it('i64 as numbers on request', () => {
    const out = JSON.parse(
      roundTrip(User, { id: '-12', groups: { x: ['5'] } }, protocol, true).replace(/^/, ''),
    );
    expect(out.id).toBe(-12);
    expect(out.groups.x).toEqual([5]);
  });
});

describe('requests follow the IDL', () => {
  it('applies defaults to absent fields (constants and enum members)', () => {
    expect(JSON.parse(roundTrip(User, { id: 7 }))).toEqual({ id: '7', age: 18, status: 'ACTIVE' });
  });

  it('accepts i64 as exact numbers or strings, enums by number, ints as decimal strings', () => {
    expect(JSON.parse(roundTrip(User, { id: 42, status: 10, rank: '12' }))).toMatchObject({
      id: '42',
      status: 'DELETED',
      rank: 12,
    });
  });

  it('null is an absent field', () => {
    expect(JSON.parse(roundTrip(User, { id: '1', name: null, tags: null }))).toEqual({
      id: '1',
      age: 18,
      status: 'ACTIVE',
    });
  });

  it('rejects unknown fields naming their path', () => {
    expect(rejection(User, { id: 1, nmae: 'x' }).message).toBe('nmae: unknown field');
    expect(rejection(User, { id: 1, manager: { id: 2, emial: 'x' } }).message).toBe(
      'manager.emial: unknown field',
    );
    expect(rejection(User, { id: 1, addresses: [{ city: 'a' }, { city: 'b', zap: 1 }] }).message).toBe(
      'addresses[1].zap: unknown field',
    );
  });

  it("rejects JSON.parse's own __proto__ key as an unknown field", () => {
    expect(rejection(User, JSON.parse('{"id":1,"__proto__":{"admin":true}}')).message).toBe(
      '__proto__: unknown field',
    );
  });

  it('checks required fields, at any depth', () => {
    expect(rejection(User, { name: 'x' }).message).toBe('id: required field missing');
    expect(rejection(User, { id: 1, addresses: [{ zip: '1' }] }).message).toBe(
      'addresses[0].city: required field missing',
    );
  });

  it('checks types and ranges', () => {
    const cases: [unknown, string][] = [
      [{ id: 1, level: 128 }, 'level'],
      [{ id: 1, rank: -32769 }, 'rank'],
      [{ id: 1, age: 2 ** 31 }, 'age'],
      [{ id: 1, age: 1.5 }, 'age'],
      [{ id: 2 ** 53 }, 'id'],
      [{ id: '9223372036854775808' }, 'id'],
      [{ id: '12a' }, 'id'],
      [{ id: 1, admin: 'yes' }, 'admin'],
      [{ id: 1, name: 5 }, 'name'],
      [{ id: 1, avatar: 'not base64!' }, 'avatar'],
      [{ id: 1, status: 'GONE' }, 'status'],
      [{ id: 1, status: 3 }, 'status'],
      [{ id: 1, tags: 'a' }, 'tags'],
      [{ id: 1, notes: { x: 'y' } }, 'notes["x"]'],
      [{ id: 1, notes: { '0x10': 'y' } }, 'notes["0x10"]'],
      [{ id: 1, notes: { '1e3': 'y' } }, 'notes["1e3"]'],
      [{ id: 1, notes: { ' 7': 'y' } }, 'notes[" 7"]'],
      [{ id: 1, notes: [] }, 'notes'],
      [{ id: 1, score: 'fast' }, 'score'],
      [{ id: 1, manager: 'boss' }, 'manager'],
    ];
    for (const [value, path] of cases) expect(rejection(User, value).path, JSON.stringify(value)).toBe(path);
  });

  it('bounds the nesting of a recursive struct (400, not a stack overflow)', () => {
    let deep: Record<string, unknown> = { id: 0 };
    for (let i = 1; i < 100; i++) deep = { id: i, manager: deep };
    const e = rejection(User, deep);
    expect(e.reason).toMatch(/nested deeper than 64/);
    expect(e.path.startsWith('manager.manager.')).toBe(true);
    // And the counter is back at zero: a normal value right after is fine.
    expect(JSON.parse(roundTrip(User, { id: 1, manager: { id: 2 } })).manager.id).toBe('2');
  });

  it('a set holds each element once (by its encoding)', () => {
    expect(rejection(User, { id: 1, tags: ['a', 'b', 'a'] }).message).toBe('tags[2]: duplicate set element');
    const doc = loadIdl('/gen/sets.thrift', {
      readFile: () => 'enum C { RED = 1 }\nstruct S {\n 1: set<i64> ids\n 2: set<C> cs\n}\n',
    });
    const S = doc.structs.get('S') as StructDef;
    expect(rejection(S, { ids: ['1', 1] }).path).toBe('ids[1]');
    expect(rejection(S, { cs: ['RED', 1] }).path).toBe('cs[1]');
    expect(JSON.parse(roundTrip(S, { ids: ['1', '2'], cs: ['RED'] }))).toEqual({
      ids: ['1', '2'],
      cs: ['RED'],
    });
  });

  it('a union holds exactly one field', () => {
    expect(rejection(User, { id: 1, contact: {} }).path).toBe('contact');
    expect(rejection(User, { id: 1, contact: { email: 'a', phone: 'b' } }).message).toMatch(/exactly one/);
  });
});

describe('replies are read leniently where the IDL allows', () => {
  it('skips fields the IDL does not know and fields of another type', () => {
    const w = createWriter('binary');
    w.writeStructBegin();
    w.writeFieldBegin(10, 1); // id: i64
    w.writeI64(5n);
    w.writeFieldBegin(11, 99); // unknown field
    w.writeString('new');
    w.writeFieldBegin(8, 2); // name declared string, sent as i32
    w.writeI32(3);
    w.writeFieldStop();
    const r = createReader('binary').reset(w.finish());
    expect(JSON.parse(new ThriftToJsonCompiler().struct(User)(r))).toEqual({ id: '5' });
  });

  it.each(protocols)(
    'skips containers of other element types whole, nested containers included (%s)',
    (protocol) => {
      const w = createWriter(protocol);
      w.writeStructBegin();
      // notes: map<i32, string>, sent as map<map<struct, i32>, string>: the nested map's types
      // must not be taken for the outer one's (they were: its value skipped as an i32).
      w.writeFieldBegin(TType.MAP, 7);
      w.writeMapBegin(TType.MAP, TType.STRING, 1);
      w.writeMapBegin(TType.STRUCT, TType.I32, 0);
      w.writeString(' ');
      // tags: set<string>, sent as a set of lists of i32.
      w.writeFieldBegin(TType.SET, 6);
      w.writeSetBegin(TType.LIST, 2);
      w.writeListBegin(TType.I32, 0);
      w.writeListBegin(TType.I32, 1);
      w.writeI32(7);
      w.writeFieldBegin(TType.I64, 1);
      w.writeI64(5n);
      w.writeFieldStop();
      const r = createReader(protocol).reset(w.finish());
      expect(new ThriftToJsonCompiler().struct(User)(r)).toBe('{"notes":{},"tags":[],"id":"5"}');
    },
  );

  it('an undeclared enum value stays a number', () => {
    const w = createWriter('compact');
    w.writeStructBegin();
    w.writeFieldBegin(8, 4);
    w.writeI32(77);
    w.writeFieldStop();
    expect(new ThriftToJsonCompiler().struct(User)(createReader('compact').reset(w.finish()))).toBe(
      '{"status":77}',
    );
  });
});

// ---- property tests over generated IDLs ----

interface GenType {
  idl: string;
  arb: fc.Arbitrary<unknown>;
}

const ENUM = 'enum Color { RED = 1, GREEN = 2, BLUE = 40 }';
const noMinusZero = (d: number): unknown =>
  Object.is(d, -0)
    ? 0
    : Number.isNaN(d)
      ? 'NaN'
      : d === Infinity
        ? 'Infinity'
        : d === -Infinity
          ? '-Infinity'
          : d;
const text = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => s !== '__proto__');

const scalars: GenType[] = [
  { idl: 'bool', arb: fc.boolean() },
  { idl: 'byte', arb: fc.integer({ min: -128, max: 127 }) },
  { idl: 'i16', arb: fc.integer({ min: -32768, max: 32767 }) },
  { idl: 'i32', arb: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
  { idl: 'i64', arb: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) },
  { idl: 'double', arb: fc.double().map(noMinusZero) },
  { idl: 'string', arb: text },
  { idl: 'binary', arb: fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b).toString('base64')) },
  { idl: 'Color', arb: fc.constantFrom('RED', 'GREEN', 'BLUE') },
];
const keys: GenType[] = [
  { idl: 'string', arb: text },
  { idl: 'i32', arb: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(String) },
  { idl: 'i64', arb: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) },
  { idl: 'Color', arb: fc.constantFrom('RED', 'GREEN', 'BLUE') },
];

/** A random field type: scalars, containers of them, and (given) earlier structs. */
function typeArb(structs: GenType[], depth: number): fc.Arbitrary<GenType> {
  const leaves = fc.constantFrom(...scalars, ...structs);
  if (depth <= 0) return leaves;
  const inner = typeArb(structs, depth - 1);
  return fc.oneof(
    { weight: 3, arbitrary: leaves },
    inner.map((t) => ({ idl: `list<${t.idl}>`, arb: fc.array(t.arb, { maxLength: 4 }) })),
    // Elements unique by their JSON text (equal JSON, equal encoding: the IDL types are the same).
    inner.map((t) => ({
      idl: `set<${t.idl}>`,
      arb: fc.uniqueArray(t.arb, { maxLength: 4, selector: (e) => JSON.stringify(e) }),
    })),
    fc.tuple(fc.constantFrom(...keys), inner).map(([k, v]) => ({
      idl: `map<${k.idl},${v.idl}>`,
      arb: fc
        .uniqueArray(fc.tuple(k.arb as fc.Arbitrary<string>, v.arb), { maxLength: 4, selector: (e) => e[0] })
        .map((entries) => Object.fromEntries(entries)),
    })),
  );
}

/** A random IDL of up to 3 structs (each may use the earlier ones) and the last one's values. */
const idlArb: fc.Arbitrary<{ text: string; name: string; value: fc.Arbitrary<unknown> }> = fc
  .array(
    fc.tuple(fc.boolean(), fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 6 })),
    {
      minLength: 1,
      maxLength: 3,
    },
  )
  .chain((shapes) => {
    // Build struct by struct, each from the types generated so far.
    let acc: fc.Arbitrary<{ decls: string[]; structs: GenType[] }> = fc.constant({ decls: [], structs: [] });
    shapes.forEach(([isUnion, seeds], index) => {
      acc = acc.chain(({ decls, structs }) =>
        fc.tuple(...seeds.map(() => typeArb(structs, 2))).map((types) => {
          const name = `S${index}`;
          const fields = types.map((t, i) => `  ${i + 1}: optional ${t.idl} f${i}`);
          const record: Record<string, fc.Arbitrary<unknown>> = {};
          types.forEach((t, i) => {
            record[`f${i}`] = t.arb;
          });
          const arb = isUnion
            ? fc.oneof(...types.map((t, i) => t.arb.map((v) => ({ [`f${i}`]: v }))))
            : fc.record(record, { requiredKeys: [] });
          return {
            decls: [...decls, `${isUnion ? 'union' : 'struct'} ${name} {\n${fields.join('\n')}\n}`],
            structs: [...structs, { idl: name, arb }],
          };
        }),
      );
    });
    return acc.map(({ decls, structs }) => {
      const last = structs[structs.length - 1] as GenType;
      return { text: `${ENUM}\n${decls.join('\n')}\n`, name: last.idl, value: last.arb };
    });
  });

describe('property: JSON -> Thrift -> JSON is the identity for generated IDLs', () => {
  it.each(protocols)('%s', (protocol) => {
    fc.assert(
      fc.property(
        idlArb.chain((g) => g.value.map((v) => ({ ...g, v }))),
        ({ text, name, v }) => {
          const doc = loadIdl('/gen/gen.thrift', { readFile: () => text });
          const def = doc.structs.get(name) as StructDef;
          expect(JSON.parse(roundTrip(def, v, protocol))).toEqual(v);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('values of a wrong JSON type are rejected, never written or crashed on', () => {
    const types: IdlType[] = User.fields.map((f) => f.type);
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.jsonValue(), (t, junk) => {
        const w = createWriter('binary');
        try {
          new JsonToThriftCompiler().value(t)(w, junk);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayRequestError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
