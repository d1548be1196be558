/**
 * IDL loading: includes, typedefs, enums, constants and defaults, structs, unions,
 * exceptions, services with inheritance across files, annotations; and every kind of bad IDL
 * as an IdlError naming file and line.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IdlError, loadIdl } from '../src/index.js';

const dir = fileURLToPath(new URL('./idl/', import.meta.url));

function loadText(files: Record<string, string>, root = 'main.thrift') {
  return loadIdl(`/virtual/${root}`, {
    readFile: (p) => {
      const name = p.slice('/virtual/'.length);
      const text = files[name];
      if (text === undefined) throw new Error('ENOENT: no such file');
      return text;
    },
  });
}

function idlError(fn: () => unknown): IdlError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(IdlError);
    return e as IdlError;
  }
  throw new Error('expected an IdlError');
}

describe('loadIdl', () => {
  const idl = loadIdl(`${dir}user.thrift`);

  it('reads the root and its includes', () => {
    expect(idl.files).toEqual([`${dir}user.thrift`, `${dir}shared.thrift`]);
    expect([...idl.services.keys()].sort()).toEqual(['UserService', 'shared.Base']);
    expect(idl.enums.get('shared.Status')?.byName.get('DELETED')).toBe(10);
    expect(idl.structs.get('shared.NotFound')?.kind).toBe('exception');
    expect(idl.structs.get('Contact')?.kind).toBe('union');
  });

  it('follows typedefs, including one to an included enum', () => {
    const user = idl.structs.get('User');
    const id = user?.fields.find((f) => f.name === 'id');
    expect(id?.type).toEqual({ kind: 'i64' });
    expect(id?.requiredness).toBe('required');
    const status = user?.fields.find((f) => f.name === 'status');
    expect(status?.type.kind).toBe('enum');
    expect(status?.defaultValue).toBe('ACTIVE');
  });

  it('resolves constants in defaults and recursive struct references', () => {
    const user = idl.structs.get('User');
    expect(user?.fields.find((f) => f.name === 'age')?.defaultValue).toBe(18);
    const manager = user?.fields.find((f) => f.name === 'manager');
    expect(manager?.type.kind === 'struct' && manager.type.def).toBe(user);
  });

  it('flattens inherited functions and builds args and result structs', () => {
    const svc = idl.services.get('UserService');
    expect(svc?.functions.get('ping')?.service).toBe('Base');
    const getUser = svc?.functions.get('getUser');
    expect(getUser?.args.fields.map((f) => [f.id, f.name])).toEqual([[1, 'id']]);
    expect(getUser?.result.fields.map((f) => [f.id, f.name])).toEqual([
      [0, 'success'],
      [1, 'notFound'],
    ]);
    expect(svc?.functions.get('touch')?.oneway).toBe(true);
    expect(svc?.functions.get('deleteUser')?.returns).toBeUndefined();
    expect(svc?.functions.get('search')?.args.fields[1]?.defaultValue).toBe(10);
  });

  it('keeps annotations of functions and fields', () => {
    const hz = idl.services.get('UserService')?.functions.get('getUserHz');
    expect(hz?.annotations.get('api.get')).toBe('/v2/users/:id');
    const req = idl.structs.get('GetUserReq');
    expect(req?.fields[2]?.annotations.get('api.header')).toBe('X-Trace');
  });

  it('takes every constant form as a default', () => {
    const doc = loadText({
      'main.thrift': `
enum E { A, B = 5, C }
const list<string> NAMES = ["x", "y"]
struct S {
  1: i64 big = 9223372036854775807
  2: double d = 1.5
  3: bool flag = 1
  4: map<i32, string> m = { 1: "one" }
  5: list<string> names = NAMES
  6: E e = 6
  7: binary b = "hi"
  8: i16 h = 0x7fff
}`,
    });
    const s = doc.structs.get('S');
    expect(s?.fields.map((f) => f.defaultValue)).toEqual([
      '9223372036854775807',
      1.5,
      true,
      { 1: 'one' },
      ['x', 'y'],
      'C',
      'aGk=',
      32767,
    ]);
    expect(doc.enums.get('E')?.byName.get('C')).toBe(6);
  });
});

describe('bad IDL is a config error naming file and line', () => {
  it('a syntax error', () => {
    const e = idlError(() => loadIdl(`${dir}bad.thrift`));
    expect(e.code).toBe('ERR_GATEWAY_IDL_SYNTAX');
    expect(e.file).toBe(`${dir}bad.thrift`);
    expect(e.line).toBe(6);
    expect(e.message).toMatch(/bad\.thrift:6: /);
  });

  it('an unknown type', () => {
    const e = idlError(() => loadIdl(`${dir}unknown-type.thrift`));
    expect(e.code).toBe('ERR_GATEWAY_IDL_RESOLVE');
    expect(e.message).toBe(`${dir}unknown-type.thrift:3: unknown type Missing`);
  });

  it('a missing file, and a missing include named where it is included', () => {
    expect(idlError(() => loadIdl(`${dir}nope.thrift`)).code).toBe('ERR_GATEWAY_IDL_READ');
    const e = idlError(() => loadText({ 'main.thrift': '\n\ninclude "gone.thrift"\n' }));
    expect(e.code).toBe('ERR_GATEWAY_IDL_READ');
    expect(e.file).toBe('/virtual/main.thrift');
    expect(e.line).toBe(3);
  });

  it('an include cycle', () => {
    const e = idlError(() =>
      loadText({ 'main.thrift': 'include "a.thrift"\n', 'a.thrift': 'include "main.thrift"\n' }),
    );
    expect(e.message).toMatch(/include cycle/);
  });

  it('a default that does not fit its type', () => {
    const e = idlError(() => loadText({ 'main.thrift': 'struct S {\n  1: byte b = 300\n}\n' }));
    expect(e.code).toBe('ERR_GATEWAY_IDL_INVALID');
    expect(e.line).toBe(2);
  });

  it('duplicate field ids, duplicate names, a throws that is not an exception, a typedef cycle', () => {
    expect(idlError(() => loadText({ 'main.thrift': 'struct S {\n 1: i32 a\n 1: i32 b\n}' })).line).toBe(3);
    expect(idlError(() => loadText({ 'main.thrift': 'struct S {}\nstruct S {}' })).message).toMatch(
      /defined twice/,
    );
    expect(
      idlError(() => loadText({ 'main.thrift': 'struct S {}\nservice X {\n void f() throws (1: S s)\n}' }))
        .message,
    ).toMatch(/not an exception/);
    expect(
      idlError(() => loadText({ 'main.thrift': 'typedef A B\ntypedef B A\nstruct S { 1: A a }' })).message,
    ).toMatch(/typedef cycle/);
  });

  it('a service extending an unknown one', () => {
    const e = idlError(() => loadText({ 'main.thrift': '\nservice X extends Y {}\n' }));
    expect(e.message).toBe('/virtual/main.thrift:2: unknown service Y');
  });
});
