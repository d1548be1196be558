/**
 * Generated struct writers write what the field loop writes (bytes, or the error and its path)
 * for good and bad values of an IDL with every type, unions, defaults and recursion.
 * i64 from JSON strings: what INT_TEXT spells (optional `-`, no leading zeros, digits only) is
 * written exactly, short ones (up to 15 digits) without a bigint and longer ones through one,
 * to the i64 range; everything else is a 400. Checked against BigInt over generated text.
 */
import { fileURLToPath } from 'node:url';
import { BinaryReader, BinaryWriter } from '@loch/thrift';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GatewayRequestError } from '../errors.js';
import { loadIdl } from '../idl/load.js';
import type { StructDef } from '../idl/model.js';
import { JsonToThriftCompiler } from './json-to-thrift.js';

const writeI64 = new JsonToThriftCompiler().value({ kind: 'i64' });

/** The i64 `text` is written as, or the error. */
function written(text: unknown): bigint | GatewayRequestError {
  const w = new BinaryWriter();
  try {
    writeI64(w, text);
  } catch (e) {
    if (e instanceof GatewayRequestError) return e;
    throw e;
  }
  expect(w.pos).toBe(8);
  return new BinaryReader().reset(w.finish()).readI64();
}

describe('i64 from JSON text', () => {
  it.each([
    ['0', 0n],
    ['-0', 0n],
    ['7', 7n],
    ['-7', -7n],
    ['999999999999999', 999999999999999n],
    ['-999999999999999', -999999999999999n],
    ['1000000000000000', 1000000000000000n],
    ['9007199254740993', 9007199254740993n],
    ['9223372036854775807', 9223372036854775807n],
    ['-9223372036854775808', -9223372036854775808n],
  ])('%s is written exactly', (text, want) => {
    expect(written(text)).toBe(want);
  });

  it.each([
    '',
    '-',
    '--1',
    '+1',
    '01',
    '-01',
    '00',
    '1e3',
    ' 1',
    '1 ',
    '1.0',
    '0x10',
    '12a',
    '١٢',
    '9223372036854775808',
    '-9223372036854775809',
    '00000000000000000001',
  ])('%j is refused', (text) => {
    const got = written(text);
    expect(got).toBeInstanceOf(GatewayRequestError);
    expect((got as GatewayRequestError).code).toBe('ERR_GATEWAY_BAD_VALUE');
  });

  it('property: decimal text is written as BigInt reads it, anything else refused', () => {
    const digits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 20 });
    const text = fc.oneof(
      fc.tuple(fc.constantFrom('', '-'), digits).map(([s, d]) => s + d),
      fc.string({ unit: fc.constantFrom(...'0123456789-+ e.x'), maxLength: 8 }),
    );
    fc.assert(
      fc.property(text, (t) => {
        const canonical = /^-?(0|[1-9][0-9]*)$/.test(t);
        const b = canonical ? BigInt(t) : undefined;
        const got = written(t);
        if (b !== undefined && b >= -(2n ** 63n) && b < 2n ** 63n) expect(got).toBe(b);
        else expect(got).toBeInstanceOf(GatewayRequestError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('generated struct writers', () => {
  const idl = loadIdl(fileURLToPath(new URL('../../test/idl/user.thrift', import.meta.url)));
  const User = idl.structs.get('User') as StructDef;
  const values: unknown[] = [
    { id: '1' },
    { id: 7, name: 'n', age: null, status: 'DELETED', tags: ['a'], contact: { email: 'e' } },
    { id: '1', addresses: [{ city: 'Paris', zip: '75001' }, { city: 'Oslo' }], manager: { id: '2' } },
    { id: '1', notes: { '1': 'x' }, groups: { g: ['-9223372036854775808'] }, avatar: 'AAE=' },
    {},
    { id: '1', emial: 'x' },
    { id: '1', addresses: [{ zip: '1' }] },
    { id: '1', addresses: [{ city: 'a', town: 'b' }] },
    { id: '1', contact: {} },
    { id: '1', contact: { email: 'a', phone: 'b' } },
    { id: '1', manager: { id: '2', manager: { id: 'x' } } },
    { id: '1', age: 'old' },
    [],
    null,
    'x',
  ];

  /** Bytes written, or the error's code, message and path. */
  function outcome(generated: boolean, value: unknown): string {
    const w = new BinaryWriter();
    try {
      new JsonToThriftCompiler({ generated }).struct(User)(w, value);
      return Buffer.from(w.finish()).toString('hex');
    } catch (e) {
      const x = e as GatewayRequestError;
      return `${x.code} ${x.message} ${x.segments.join('/')}`;
    }
  }

  it.each(values.map((v) => [JSON.stringify(v), v]))('write %s as the field loop does', (_, value) => {
    expect(outcome(true, value)).toBe(outcome(false, value));
  });

  it("a union member's default never selects it; a struct's default is written", () => {
    const doc = loadIdl('/virtual/u.thrift', {
      readFile: () =>
        'union U {\n  1: string a = "x"\n  2: string b\n}\nstruct S {\n  1: string a = "x"\n  2: U u\n}\n',
    });
    for (const [name, value] of [
      ['U', { b: 'y' }],
      ['U', {}],
      ['S', {}],
      ['S', { u: { b: 'y' } }],
    ] as const) {
      const def = doc.structs.get(name) as StructDef;
      const run = (generated: boolean): string => {
        const w = new BinaryWriter();
        try {
          new JsonToThriftCompiler({ generated }).struct(def)(w, value);
          return Buffer.from(w.finish()).toString('hex');
        } catch (e) {
          return (e as Error).message;
        }
      };
      expect(run(true), `${name} ${JSON.stringify(value)}`).toBe(run(false));
    }
  });

  it('a recursive struct is bounded at the same depth', () => {
    let deep: Record<string, unknown> = { id: '1' };
    for (let i = 0; i < 100; i++) deep = { id: '1', manager: deep };
    const got = outcome(true, deep);
    expect(got).toMatch(/nested deeper than 64 structs/);
    expect(got).toBe(outcome(false, deep));
  });
});

describe('list<string>', () => {
  const write = new JsonToThriftCompiler().value({ kind: 'list', elem: { kind: 'string' } });

  it('writes the elements as the string writer does', () => {
    const w = new BinaryWriter();
    write(w, ['a', '', 'grüße', 'x'.repeat(40)]);
    const want = new BinaryWriter();
    want.writeListBegin(11, 4);
    for (const s of ['a', '', 'grüße', 'x'.repeat(40)]) want.writeString(s);
    expect(Buffer.from(w.finish()).toString('hex')).toBe(Buffer.from(want.finish()).toString('hex'));
  });

  it.each([
    [['a', 2], 'expected a string, got number 2', '[1]'],
    [[null], 'expected a string, got null', '[0]'],
    [['a', 'b', ['c']], 'expected a string, got an array', '[2]'],
    ['a', 'expected an array, got string "a"', ''],
    [{ 0: 'a' }, 'expected an array, got an object', ''],
  ])('refuses %j', (value, message, path) => {
    let error: unknown;
    try {
      write(new BinaryWriter(), value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GatewayRequestError);
    expect((error as GatewayRequestError).message).toContain(message);
    expect((error as GatewayRequestError).segments.join('')).toBe(path);
  });
});
