/**
 * JSON -> Thrift: writers compiled once per IDL type that take a value from JSON.parse and
 * write it with a @loch/thrift ProtocolWriter, following the IDL exactly: i64 from a decimal
 * string or an exact (safe-integer) number, binary from base64, enums by name or declared
 * number, sets and lists from arrays, maps from objects (non-string keys spelled as JSON
 * strings: `{"42": ...}` for a map<i32,...>), doubles also as "NaN"/"Infinity"/"-Infinity",
 * required fields checked, defaults applied to absent fields, unions holding exactly one
 * field, unknown fields rejected. Errors are GatewayRequestError with the value's JSON path
 * (filled as the error unwinds, so the path costs nothing when the input is good). `null` is
 * an absent field. Not for text parameters (text-params.ts turns those into JSON values first).
 */
import { type ProtocolWriter, TType } from '@loch/thrift';
import { GatewayRequestError, UNKNOWN_FIELD } from '../errors.js';
import type { FieldDef, IdlType, StructDef } from '../idl/model.js';

/** Writes one value of a compiled type. */
export type ValueWriter = (w: ProtocolWriter, value: unknown) => void;

/** The wire type id of an IDL type. */
export function ttypeOf(t: IdlType): TType {
  switch (t.kind) {
    case 'bool':
      return TType.BOOL;
    case 'byte':
      return TType.BYTE;
    case 'i16':
      return TType.I16;
    case 'i32':
    case 'enum':
      return TType.I32;
    case 'i64':
      return TType.I64;
    case 'double':
      return TType.DOUBLE;
    case 'string':
    case 'binary':
      return TType.STRING;
    case 'struct':
      return TType.STRUCT;
    case 'list':
      return TType.LIST;
    case 'set':
      return TType.SET;
    case 'map':
      return TType.MAP;
  }
}

function bad(reason: string): never {
  throw new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', reason);
}

/** Rethrows `e` with one more path segment when it is a request error. */
function within(e: unknown, segment: string): never {
  if (e instanceof GatewayRequestError) e.segments.push(segment);
  throw e;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

const INT_TEXT = /^-?(0|[1-9][0-9]*)$/;

function intOf(v: unknown, min: number, max: number, kind: string): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && INT_TEXT.test(v)) n = Number(v);
  else return bad(`expected an ${kind}, got ${describe(v)}`);
  if (!Number.isInteger(n) || n < min || n > max) bad(`${describe(v)} is not an ${kind}`);
  return n;
}

/**
 * The value of a decimal integer string of at most 15 digits (exact as a double), spelled as
 * INT_TEXT allows (optional `-`, no leading zeros); NaN for anything else (longer ones
 * included: the caller checks those with INT_TEXT and BigInt). A loop over the characters:
 * the regular expression and Number() cost more than the digits on i64 fields.
 */
function shortIntText(s: string): number {
  const n = s.length;
  const neg = n > 0 && s.charCodeAt(0) === 0x2d;
  let i = neg ? 1 : 0;
  if (n - i < 1 || n - i > 15) return Number.NaN;
  let c = s.charCodeAt(i) - 0x30;
  if (c === 0) return n - i === 1 ? 0 : Number.NaN;
  if (c < 1 || c > 9) return Number.NaN;
  let v = c;
  for (i++; i < n; i++) {
    c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return Number.NaN;
    v = v * 10 + c;
  }
  return neg ? -v : v;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function writeI64(w: ProtocolWriter, v: unknown): void {
  if (typeof v === 'number') {
    // A number is taken only when exact: JSON.parse already rounded anything past 2^53.
    if (!Number.isSafeInteger(v)) bad(`${v} is not an exact i64: send it as a string`);
    w.writeI64(v);
    return;
  }
  if (typeof v === 'string') {
    const n = shortIntText(v);
    if (!Number.isNaN(n)) {
      w.writeI64(n);
      return;
    }
  }
  if (typeof v !== 'string' || !INT_TEXT.test(v)) bad(`expected an i64, got ${describe(v)}`);
  const s = v as string;
  const b = BigInt(s);
  if (b < I64_MIN || b > I64_MAX) bad(`${s} is out of the i64 range`);
  w.writeI64(b);
}

function writeDouble(w: ProtocolWriter, v: unknown): void {
  if (typeof v === 'number') w.writeDouble(v);
  else if (v === 'NaN') w.writeDouble(Number.NaN);
  else if (v === 'Infinity') w.writeDouble(Number.POSITIVE_INFINITY);
  else if (v === '-Infinity') w.writeDouble(Number.NEGATIVE_INFINITY);
  else if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) w.writeDouble(Number(v));
  else bad(`expected a double, got ${describe(v)}`);
}

const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

/** Decodes standard or URL-safe base64 (padding optional); anything else is a 400. */
export function decodeBase64(v: unknown): Uint8Array {
  if (typeof v !== 'string' || !BASE64.test(v)) return bad(`expected base64, got ${describe(v)}`);
  return Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64');
}

/**
 * A list<string>: the element check and write inline (the common list of tags, names, ids),
 * not a call of the string writer per element.
 */
function writeStringList(w: ProtocolWriter, v: unknown): void {
  if (!Array.isArray(v)) bad(`expected an array, got ${describe(v)}`);
  const a = v as unknown[];
  w.writeListBegin(TType.STRING, a.length);
  for (let i = 0; i < a.length; i++) {
    const e = a[i];
    if (typeof e !== 'string') {
      within(
        new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', `expected a string, got ${describe(e)}`),
        `[${i}]`,
      );
    }
    w.writeString(e as string);
  }
  w.writeListEnd();
}

/** Deepest nesting of structs in one value (as @loch/thrift's readers allow by default). */
const MAX_DEPTH = 64;
/** Structs being written right now (writing is synchronous, so one counter serves). */
const nesting = { depth: 0 };

/** Options of a JsonToThriftCompiler. */
export interface JsonToThriftOptions {
  /**
   * Generate each struct's field writer as code (`new Function`, default true): one property
   * read and one writer call per field at their own places, which V8 caches and inlines; a
   * loop over the fields is one megamorphic property read and one megamorphic call for all of
   * them. Where code generation from strings is forbidden (`--disallow-code-generation-from-strings`)
   * the loop is used anyway.
   */
  readonly generated?: boolean;
}

/** Compiles writers for the types of one IDL; struct writers are shared (and may recurse). */
export class JsonToThriftCompiler {
  private readonly structs = new Map<StructDef, ValueWriter>();
  private readonly generated: boolean;

  constructor(options: JsonToThriftOptions = {}) {
    this.generated = options.generated ?? true;
  }

  /** The writer of a value of type `t`. */
  value(t: IdlType): ValueWriter {
    switch (t.kind) {
      case 'bool':
        return (w, v) => {
          if (typeof v !== 'boolean') bad(`expected a bool, got ${describe(v)}`);
          w.writeBool(v as boolean);
        };
      case 'byte':
        return (w, v) => w.writeByte(intOf(v, -128, 127, 'byte'));
      case 'i16':
        return (w, v) => w.writeI16(intOf(v, -32768, 32767, 'i16'));
      case 'i32':
        return (w, v) => w.writeI32(intOf(v, -0x80000000, 0x7fffffff, 'i32'));
      case 'i64':
        return writeI64;
      case 'double':
        return writeDouble;
      case 'string':
        return (w, v) => {
          if (typeof v !== 'string') bad(`expected a string, got ${describe(v)}`);
          w.writeString(v as string);
        };
      case 'binary':
        return (w, v) => w.writeBinary(decodeBase64(v));
      case 'enum': {
        const def = t.def;
        return (w, v) => {
          const n =
            typeof v === 'string'
              ? def.byName.get(v)
              : typeof v === 'number' && def.byValue.has(v)
                ? v
                : undefined;
          if (n === undefined) bad(`${describe(v)} is not a ${def.name}`);
          w.writeI32(n as number);
        };
      }
      case 'list':
      case 'set': {
        const elem = this.value(t.elem);
        const type = ttypeOf(t.elem);
        const isSet = t.kind === 'set';
        if (t.kind === 'list' && t.elem.kind === 'string') return writeStringList;
        return (w, v) => {
          if (!Array.isArray(v)) bad(`expected an array, got ${describe(v)}`);
          const a = v as unknown[];
          if (!isSet) {
            w.writeListBegin(type, a.length);
            for (let i = 0; i < a.length; i++) {
              try {
                elem(w, a[i]);
              } catch (e) {
                within(e, `[${i}]`);
              }
            }
            w.writeListEnd();
            return;
          }
          // A set holds each element once: two elements are the same when their encodings are
          // ("1" and 1 as i64, "RED" and 1 as an enum).
          w.writeSetBegin(type, a.length);
          const seen = new Set<string>();
          for (let i = 0; i < a.length; i++) {
            const start = w.pos;
            try {
              elem(w, a[i]);
            } catch (e) {
              within(e, `[${i}]`);
            }
            const encoded = Buffer.from(w.buf.buffer, w.buf.byteOffset + start, w.pos - start).toString(
              'latin1',
            );
            if (seen.has(encoded))
              within(new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', 'duplicate set element'), `[${i}]`);
            seen.add(encoded);
          }
          w.writeSetEnd();
        };
      }
      case 'map': {
        const key = this.value(t.key);
        const keyOf = mapKeyReader(t.key);
        const value = this.value(t.value);
        const kt = ttypeOf(t.key);
        const vt = ttypeOf(t.value);
        return (w, v) => {
          if (v === null || typeof v !== 'object' || Array.isArray(v))
            bad(`expected an object, got ${describe(v)}`);
          const o = v as Record<string, unknown>;
          const keys = Object.keys(o);
          w.writeMapBegin(kt, vt, keys.length);
          for (const k of keys) {
            try {
              key(w, keyOf(k));
              value(w, o[k]);
            } catch (e) {
              within(e, `[${JSON.stringify(k)}]`);
            }
          }
          w.writeMapEnd();
        };
      }
      case 'struct':
        return this.struct(t.def);
    }
  }

  /** The writer of a struct, union or exception (also used for args structs). */
  struct(def: StructDef): ValueWriter {
    const known = this.structs.get(def);
    if (known !== undefined) return known;
    // Filled below; a recursive type reaches this entry through `slot`.
    let impl: ValueWriter = () => {};
    const slot: ValueWriter = (w, v) => impl(w, v);
    this.structs.set(def, slot);
    impl = this.compileStruct(def);
    // Writers compiled from now on call the struct's writer itself, not through the slot.
    this.structs.set(def, impl);
    return impl;
  }

  private compileStruct(def: StructDef): ValueWriter {
    const n = def.fields.length;
    const names: string[] = [];
    const ids: number[] = [];
    const types: TType[] = [];
    const writers: ValueWriter[] = [];
    const required: boolean[] = [];
    const defaults: unknown[] = [];
    const byName = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const f = def.fields[i] as FieldDef;
      names.push(f.name);
      ids.push(f.id);
      types.push(ttypeOf(f.type));
      writers.push(this.value(f.type));
      required.push(f.requiredness === 'required');
      defaults.push(f.defaultValue);
      byName.set(f.name, i);
    }
    const isUnion = def.kind === 'union';
    const what = def.name;
    if (this.generated) {
      const generated = generatedStructWriter(def, names, ids, types, writers, required, defaults, byName);
      if (generated !== undefined) return generated;
    }
    const writeFields = (w: ProtocolWriter, o: Record<string, unknown>): void => {
      let present = 0;
      let seen = 0;
      w.writeStructBegin();
      for (let i = 0; i < n; i++) {
        const name = names[i] as string;
        let fv = o[name];
        if (fv !== undefined) seen++;
        if (fv === undefined || fv === null) {
          fv = defaults[i];
          if (fv === undefined) {
            if (required[i]) {
              const e = new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', 'required field missing');
              e.segments.push(name);
              throw e;
            }
            continue;
          }
          if (isUnion) continue; // a union's default never selects its member
        }
        present++;
        w.writeFieldBegin(types[i] as TType, ids[i] as number);
        try {
          (writers[i] as ValueWriter)(w, fv);
        } catch (e) {
          within(e, name);
        }
      }
      w.writeFieldStop();
      w.writeStructEnd();
      if (seen !== countKeys(o)) {
        for (const k in o) {
          if (!byName.has(k)) {
            const e = new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', UNKNOWN_FIELD);
            e.segments.push(k);
            throw e;
          }
        }
      }
      if (isUnion && present !== 1) bad(`a ${what} union holds exactly one field, got ${present}`);
    };
    return (w, v) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) notObject(what, v);
      // A recursive struct (User.manager: User) nests as deep as the client sends: bound it
      // before the stack does.
      if (nesting.depth >= MAX_DEPTH) tooDeep();
      nesting.depth++;
      try {
        writeFields(w, v as Record<string, unknown>);
      } finally {
        nesting.depth--;
      }
    };
  }
}

/**
 * The writer of struct `def` as generated code: the object and depth checks, then for each
 * field, in IDL order, a read of the property by its literal name, the default / required /
 * union rules, the field header and a call of the field's own writer, then the stop and the
 * unknown-key check; the same rules as the loop in compileStruct, unrolled. Names reach the code only as JSON string literals and
 * numbers as numbers; everything else is passed in. Undefined when code generation is refused.
 */
function generatedStructWriter(
  def: StructDef,
  names: readonly string[],
  ids: readonly number[],
  types: readonly TType[],
  writers: readonly ValueWriter[],
  required: readonly boolean[],
  defaults: readonly unknown[],
  byName: ReadonlyMap<string, number>,
): ValueWriter | undefined {
  const isUnion = def.kind === 'union';
  const lines: string[] = [];
  for (let i = 0; i < names.length; i++) {
    lines.push(`const W${i} = writers[${i}], D${i} = defaults[${i}];`);
  }
  lines.push(
    'return function writeStruct(w, o) {',
    `if (o === null || typeof o !== 'object' || Array.isArray(o)) notObject(${JSON.stringify(def.name)}, o);`,
    'if (nesting.depth >= MAX_DEPTH) tooDeep();',
    'nesting.depth++;',
    'try {',
    'let present = 0, seen = 0, v;',
    'w.writeStructBegin();',
  );
  for (let i = 0; i < names.length; i++) {
    const name = JSON.stringify(names[i]);
    const write = `present++; w.writeFieldBegin(${Number(types[i])}, ${Number(ids[i])}); try { W${i}(w, v); } catch (e) { within(e, ${name}); }`;
    lines.push(`v = o[${name}];`, 'if (v !== undefined) seen++;', 'if (v === undefined || v === null) {');
    if (defaults[i] !== undefined) {
      // A union's default never selects its member.
      if (!isUnion) lines.push(`v = D${i}; ${write}`);
    } else if (required[i]) lines.push(`missing(${name});`);
    lines.push(`} else { ${write} }`);
  }
  lines.push(
    'w.writeFieldStop();',
    'w.writeStructEnd();',
    'if (seen !== countKeys(o)) unknownKey(o, byName);',
  );
  if (isUnion) lines.push(`if (present !== 1) notOne(${JSON.stringify(def.name)}, present);`);
  lines.push('} finally { nesting.depth--; }', '};');
  let factory: (...args: unknown[]) => ValueWriter;
  try {
    factory = new Function(
      'writers',
      'defaults',
      'byName',
      'within',
      'missing',
      'countKeys',
      'unknownKey',
      'notOne',
      'notObject',
      'tooDeep',
      'nesting',
      'MAX_DEPTH',
      `'use strict';\n${lines.join('\n')}`,
    ) as (...args: unknown[]) => ValueWriter;
  } catch (e) {
    if (e instanceof EvalError) return undefined;
    throw e;
  }
  return factory(
    writers,
    defaults,
    byName,
    within,
    missing,
    countKeys,
    unknownKey,
    notOne,
    notObject,
    tooDeep,
    nesting,
    MAX_DEPTH,
  );
}

function notObject(what: string, v: unknown): never {
  return bad(`expected a ${what} object, got ${describe(v)}`);
}

// A recursive struct (User.manager: User) nests as deep as the client sends: bound it before
// the stack does.
function tooDeep(): never {
  return bad(`nested deeper than ${MAX_DEPTH} structs`);
}

function missing(name: string): never {
  const e = new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', 'required field missing');
  e.segments.push(name);
  throw e;
}

/** Throws for the first key of `o` that is no field (some key is: the counts differ). */
function unknownKey(o: Record<string, unknown>, byName: ReadonlyMap<string, number>): void {
  for (const k in o) {
    if (!byName.has(k)) {
      const e = new GatewayRequestError('ERR_GATEWAY_BAD_VALUE', UNKNOWN_FIELD);
      e.segments.push(k);
      throw e;
    }
  }
}

function notOne(what: string, present: number): never {
  return bad(`a ${what} union holds exactly one field, got ${present}`);
}

function countKeys(o: Record<string, unknown>): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/** Turns a JSON object key into the JSON value of a map key of type `t`. */
function mapKeyReader(t: IdlType): (k: string) => unknown {
  switch (t.kind) {
    case 'string':
    case 'binary':
    case 'enum':
    case 'i64':
      return (k) => k;
    case 'bool':
      return (k) =>
        k === 'true' ? true : k === 'false' ? false : bad(`map key ${JSON.stringify(k)} is not a bool`);
    case 'byte':
    case 'i16':
    case 'i32':
      // Decimal digits only: "0x10", "1e3" or " 7" are not how an integer key is spelled.
      return (k) => (INT_TEXT.test(k) ? Number(k) : bad(`map key ${JSON.stringify(k)} is not an integer`));
    case 'double':
      return (k) => {
        if (k === 'NaN' || k === 'Infinity' || k === '-Infinity') return k;
        const n = Number(k);
        return k.trim() !== k || k === '' || Number.isNaN(n)
          ? bad(`map key ${JSON.stringify(k)} is not a number`)
          : n;
      };
    default:
      // Structs and containers as keys: the key is their JSON text.
      return (k) => {
        try {
          return JSON.parse(k);
        } catch {
          return bad(`map key ${JSON.stringify(k)} is not JSON`);
        }
      };
  }
}
