/**
 * A dynamic (schema-less) model of Thrift values, with a reader and writer for any protocol:
 * what a proxy, a debugging tool or a test needs to decode a message without generated code.
 * Not the fast path: generated or hand-written code should call the reader/writer directly.
 */
import { ThriftProtocolError } from '../errors.js';
import { TType } from '../types.js';
import type { ProtocolReader } from './reader.js';
import type { ProtocolWriter } from './writer.js';

/**
 * A Thrift value. bool: boolean; byte, i16, i32, double: number; i64: bigint; string: string
 * (or Uint8Array for binary); uuid: canonical string; struct, list, set, map: the shapes below.
 */
export type ThriftValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | ThriftStruct
  | ThriftList
  | ThriftMap;

/** One field of a struct. */
export interface ThriftField {
  readonly id: number;
  readonly type: TType;
  readonly value: ThriftValue;
}

/** A struct (also a union or an exception): fields in wire order. */
export interface ThriftStruct {
  readonly kind: 'struct';
  readonly fields: readonly ThriftField[];
}

/** A list or set: element type and elements in wire order. */
export interface ThriftList {
  readonly kind: 'list' | 'set';
  readonly elemType: TType;
  readonly items: readonly ThriftValue[];
}

/** A map: key and value types and entries in wire order. */
export interface ThriftMap {
  readonly kind: 'map';
  readonly keyType: TType;
  readonly valueType: TType;
  readonly entries: readonly (readonly [ThriftValue, ThriftValue])[];
}

/** Options of `readValue`. */
export interface ReadValueOptions {
  /** Return strings as raw bytes (Uint8Array) instead of decoding UTF-8. */
  readonly binaryStrings?: boolean;
}

/** Reads one value of `type` into the dynamic model. */
export function readValue(r: ProtocolReader, type: TType, options: ReadValueOptions = {}): ThriftValue {
  switch (type) {
    case TType.BOOL:
      return r.readBool();
    case TType.BYTE:
      return r.readByte();
    case TType.I16:
      return r.readI16();
    case TType.I32:
      return r.readI32();
    case TType.I64:
      return r.readI64();
    case TType.DOUBLE:
      return r.readDouble();
    case TType.STRING:
      return options.binaryStrings ? r.readBinary().slice() : r.readString();
    case TType.UUID:
      return r.readUuid();
    case TType.STRUCT:
      return readStruct(r, options);
    case TType.LIST:
    case TType.SET: {
      const n = type === TType.LIST ? r.readListBegin() : r.readSetBegin();
      const elemType = r.elemType;
      const items: ThriftValue[] = [];
      for (let i = 0; i < n; i++) items.push(readValue(r, elemType, options));
      if (type === TType.LIST) r.readListEnd();
      else r.readSetEnd();
      return { kind: type === TType.LIST ? 'list' : 'set', elemType, items };
    }
    case TType.MAP: {
      const n = r.readMapBegin();
      const keyType = r.keyType;
      const valueType = r.valueType;
      const entries: [ThriftValue, ThriftValue][] = [];
      for (let i = 0; i < n; i++) {
        const k = readValue(r, keyType, options);
        entries.push([k, readValue(r, valueType, options)]);
      }
      r.readMapEnd();
      return { kind: 'map', keyType, valueType, entries };
    }
    default:
      throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `cannot read type ${type}`, r.pos);
  }
}

/** Reads a struct into the dynamic model. */
export function readStruct(r: ProtocolReader, options: ReadValueOptions = {}): ThriftStruct {
  const fields: ThriftField[] = [];
  r.readStructBegin();
  for (;;) {
    const type = r.readFieldBegin();
    if (type === TType.STOP) break;
    const id = r.fieldId;
    fields.push({ id, type, value: readValue(r, type, options) });
    r.readFieldEnd();
  }
  r.readStructEnd();
  return { kind: 'struct', fields };
}

function bad(type: TType, value: unknown): never {
  throw new ThriftProtocolError('ERR_THRIFT_INVALID_DATA', `value ${String(value)} is not of type ${type}`);
}

/** Writes one value of `type` from the dynamic model. */
export function writeValue(w: ProtocolWriter, type: TType, value: ThriftValue): void {
  switch (type) {
    case TType.BOOL:
      if (typeof value !== 'boolean') bad(type, value);
      w.writeBool(value);
      return;
    case TType.BYTE:
      if (typeof value !== 'number') bad(type, value);
      w.writeByte(value);
      return;
    case TType.I16:
      if (typeof value !== 'number') bad(type, value);
      w.writeI16(value);
      return;
    case TType.I32:
      if (typeof value !== 'number') bad(type, value);
      w.writeI32(value);
      return;
    case TType.I64:
      if (typeof value !== 'bigint' && typeof value !== 'number') bad(type, value);
      w.writeI64(value);
      return;
    case TType.DOUBLE:
      if (typeof value !== 'number') bad(type, value);
      w.writeDouble(value);
      return;
    case TType.STRING:
      if (typeof value === 'string') w.writeString(value);
      else if (value instanceof Uint8Array) w.writeBinary(value);
      else bad(type, value);
      return;
    case TType.UUID:
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) bad(type, value);
      w.writeUuid(value);
      return;
    case TType.STRUCT:
      if (typeof value !== 'object' || value instanceof Uint8Array || value.kind !== 'struct')
        bad(type, value);
      writeStruct(w, value);
      return;
    case TType.LIST:
    case TType.SET: {
      if (
        typeof value !== 'object' ||
        value instanceof Uint8Array ||
        (value.kind !== 'list' && value.kind !== 'set')
      ) {
        bad(type, value);
      }
      if (type === TType.LIST) w.writeListBegin(value.elemType, value.items.length);
      else w.writeSetBegin(value.elemType, value.items.length);
      for (const item of value.items) writeValue(w, value.elemType, item);
      if (type === TType.LIST) w.writeListEnd();
      else w.writeSetEnd();
      return;
    }
    case TType.MAP: {
      if (typeof value !== 'object' || value instanceof Uint8Array || value.kind !== 'map') bad(type, value);
      w.writeMapBegin(value.keyType, value.valueType, value.entries.length);
      for (const [k, v] of value.entries) {
        writeValue(w, value.keyType, k);
        writeValue(w, value.valueType, v);
      }
      w.writeMapEnd();
      return;
    }
    default:
      throw new ThriftProtocolError('ERR_THRIFT_BAD_TYPE', `cannot write type ${type}`);
  }
}

/** Writes a struct from the dynamic model (fields in the given order, then the stop marker). */
export function writeStruct(w: ProtocolWriter, s: ThriftStruct): void {
  w.writeStructBegin();
  for (const f of s.fields) {
    w.writeFieldBegin(f.type, f.id);
    writeValue(w, f.type, f.value);
    w.writeFieldEnd();
  }
  w.writeFieldStop();
  w.writeStructEnd();
}
