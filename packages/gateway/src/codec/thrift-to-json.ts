/**
 * Thrift -> JSON text: emitters compiled once per IDL type that read with a @loch/thrift
 * ProtocolReader and write JSON text as UTF-8 bytes into a JsonText buffer (json-text.ts), with
 * no intermediate object tree and no string per value: field names are pre-encoded, numbers
 * and booleans are formatted in place, printable ASCII strings are copied byte for byte and
 * only other strings go through JSON.stringify (for escaping). i64 is a JSON string by default
 * (`"9007199254740993"`: exact in every client; the `i64AsNumber` option writes bare digits,
 * and a field annotated `api.js_conv` stays a string), binary is base64, enums are names (an
 * undeclared value stays a number), doubles that JSON cannot hold are
 * "NaN"/"Infinity"/"-Infinity", map keys are JSON strings. Fields of the wire that the IDL does
 * not know, or of another type than it declares, are skipped (an older IDL still reads a newer
 * server's answer). The string-returning readers (`value`, `struct`, `fields`) wrap the
 * emitters. Not for requests (json-to-thrift.ts).
 */
import { type ProtocolReader, TType } from '@loch/thrift';
import type { IdlType, StructDef } from '../idl/model.js';
import { JsonText, utf8Bytes } from './json-text.js';
import { ttypeOf } from './json-to-thrift.js';
import { SpanBinaryReader } from './span-reader.js';

/** Reads one value and returns its JSON text. */
export type JsonReader = (r: ProtocolReader) => string;

/** Reads one value and writes its JSON text into `out`. */
export type JsonEmitter = (r: ProtocolReader, out: JsonText) => void;

/**
 * Reads a struct's fields and writes them as `"a":1,"b":2` (no braces) into `out`, each with a
 * leading comma when `comma` is true or a field was written before it.
 */
export type JsonFieldsEmitter = (r: ProtocolReader, out: JsonText, comma: boolean) => void;

/** Options of the JSON rendering. */
export interface ThriftToJsonOptions {
  /** Write i64 as JSON numbers (exact digits; JavaScript clients may round them). Default false. */
  readonly i64AsNumber?: boolean;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const TRUE = utf8Bytes('true');
const FALSE = utf8Bytes('false');

function emitDouble(r: ProtocolReader, out: JsonText): void {
  const v = r.readDouble();
  if (Number.isFinite(v)) out.ascii(String(v));
  else out.ascii(Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"');
}

function emitString(r: ProtocolReader, out: JsonText): void {
  if (r instanceof SpanBinaryReader) {
    const start = r.readBinarySpan();
    out.stringAt(r.buf, start, r.pos);
  } else out.string(r.readBinary());
}

function i64Text(r: ProtocolReader): string {
  r.readI64Split();
  const hi = r.i64Hi;
  const lo = r.i64Lo;
  // Within +-2^53 the number is exact: format it without a bigint.
  if (hi >= -0x200000 && hi < 0x200000) return String(hi * 4294967296 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

const emitI64Number: JsonEmitter = (r, out) => out.ascii(i64Text(r));
const emitI64String: JsonEmitter = (r, out) => {
  out.byte(QUOTE);
  out.ascii(i64Text(r));
  out.byte(QUOTE);
};

/** Field ids below this are looked up in an array. */
const DENSE_IDS = 64;

/** How a struct's field loop writes a field: the common scalars inline, the rest through `emit`. */
enum Inline {
  None,
  String,
  Double,
  I64String,
}

interface FieldEmitter {
  /** `"name":` */
  readonly prefix: Uint8Array;
  readonly type: TType;
  readonly emit: JsonEmitter;
  readonly inline: Inline;
}

/** One JsonText per thread for the string-returning readers (reading is synchronous). */
const scratch = new JsonText();

/** Compiles JSON readers for the types of one IDL. */
export class ThriftToJsonCompiler {
  private readonly structs = new Map<StructDef, JsonEmitter>();
  private readonly i64AsNumber: boolean;

  constructor(options: ThriftToJsonOptions = {}) {
    this.i64AsNumber = options.i64AsNumber ?? false;
  }

  /** The reader of a value of type `t`; `asString` forces i64 to a JSON string (api.js_conv). */
  value(t: IdlType, asString = false): JsonReader {
    return toReader(this.emitter(t, asString));
  }

  /** The reader of a struct, union or exception. */
  struct(def: StructDef): JsonReader {
    return toReader(this.structEmitter(def));
  }

  /**
   * The reader of a struct's fields only, without braces: `"a":1,"b":2` (empty when no field
   * is set).
   */
  fields(def: StructDef): JsonReader {
    const emit = this.fieldsEmitter(def);
    return toReader((r, out) => emit(r, out, false));
  }

  /** The emitter of a value of type `t`; `asString` forces i64 to a JSON string (api.js_conv). */
  emitter(t: IdlType, asString = false): JsonEmitter {
    switch (t.kind) {
      case 'bool':
        return (r, out) => out.raw(r.readBool() ? TRUE : FALSE);
      case 'byte':
        return (r, out) => out.int(r.readByte());
      case 'i16':
        return (r, out) => out.int(r.readI16());
      case 'i32':
        return (r, out) => out.int(r.readI32());
      case 'i64':
        return this.i64AsNumber && !asString ? emitI64Number : emitI64String;
      case 'double':
        return emitDouble;
      case 'string':
        return emitString;
      case 'binary':
        return (r, out) => {
          const b = r.readBinary();
          out.byte(QUOTE);
          out.ascii(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64'));
          out.byte(QUOTE);
        };
      case 'enum': {
        const names = new Map<number, Uint8Array>();
        for (const [v, name] of t.def.byValue) names.set(v, utf8Bytes(JSON.stringify(name)));
        return (r, out) => {
          const v = r.readI32();
          const name = names.get(v);
          if (name === undefined) out.int(v);
          else out.raw(name);
        };
      }
      case 'list':
      case 'set': {
        const elem = this.emitter(t.elem, asString);
        const want = ttypeOf(t.elem);
        const isSet = t.kind === 'set';
        return (r, out) => {
          const n = isSet ? r.readSetBegin() : r.readListBegin();
          out.byte(0x5b);
          const et = r.elemType;
          if (et !== want && n > 0) {
            // The type read here, not r.elemType: skipping a nested container overwrites it.
            for (let i = 0; i < n; i++) r.skip(et);
          } else {
            for (let i = 0; i < n; i++) {
              if (i > 0) out.byte(COMMA);
              elem(r, out);
            }
          }
          if (isSet) r.readSetEnd();
          else r.readListEnd();
          out.byte(0x5d);
        };
      }
      case 'map': {
        const key = this.emitter(t.key, true);
        const value = this.emitter(t.value, asString);
        const kt = ttypeOf(t.key);
        const vt = ttypeOf(t.value);
        return (r, out) => {
          const n = r.readMapBegin();
          out.byte(0x7b);
          const wireKt = r.keyType;
          const wireVt = r.valueType;
          if (n > 0 && (wireKt !== kt || wireVt !== vt)) {
            // The types read here, not r.keyType/r.valueType: skipping a nested container
            // overwrites them.
            for (let i = 0; i < n; i++) {
              r.skip(wireKt);
              r.skip(wireVt);
            }
          } else {
            for (let i = 0; i < n; i++) {
              if (i > 0) out.byte(COMMA);
              const start = out.pos;
              key(r, out);
              // Every JSON object key is a string: quote what is not one already.
              if (out.buf[start] !== QUOTE) {
                const text = out.since(start);
                out.pos = start;
                out.text(JSON.stringify(text));
              }
              out.byte(0x3a);
              value(r, out);
            }
          }
          r.readMapEnd();
          out.byte(0x7d);
        };
      }
      case 'struct':
        return this.structEmitter(t.def);
    }
  }

  /** The emitter of a struct, union or exception (recursive types share one entry). */
  structEmitter(def: StructDef): JsonEmitter {
    const known = this.structs.get(def);
    if (known !== undefined) return known;
    let impl: JsonEmitter = () => {};
    const slot: JsonEmitter = (r, out) => impl(r, out);
    this.structs.set(def, slot);
    const fields = this.fieldsEmitter(def);
    impl = (r, out) => {
      out.byte(0x7b);
      fields(r, out, false);
      out.byte(0x7d);
    };
    return slot;
  }

  /** The emitter of a struct's fields (see JsonFieldsEmitter). */
  fieldsEmitter(def: StructDef): JsonFieldsEmitter {
    // A dense table by field id for the common small non-negative ids (an array index instead
    // of a Map lookup per field); a map for the rest.
    const dense: (FieldEmitter | undefined)[] = [];
    const byId = new Map<number, FieldEmitter>();
    for (const f of def.fields) {
      const jsConv = f.annotations.has('api.js_conv');
      const emit = this.emitter(f.type, jsConv);
      const entry: FieldEmitter = {
        prefix: utf8Bytes(`${JSON.stringify(f.name)}:`),
        type: ttypeOf(f.type),
        emit,
        inline:
          emit === emitString
            ? Inline.String
            : emit === emitDouble
              ? Inline.Double
              : emit === emitI64String
                ? Inline.I64String
                : Inline.None,
      };
      if (f.id >= 0 && f.id < DENSE_IDS) dense[f.id] = entry;
      else byId.set(f.id, entry);
    }
    for (let i = 0; i < dense.length; i++) dense[i] ??= undefined; // no holes: one elements kind
    return (r, out, comma) => {
      r.readStructBegin();
      let sep = comma;
      for (;;) {
        const type = r.readFieldBegin();
        if (type === TType.STOP) break;
        const id = r.fieldId;
        const f = id >= 0 && id < DENSE_IDS ? dense[id] : byId.get(id);
        if (f === undefined || f.type !== type) r.skip(type);
        else {
          if (sep) out.byte(COMMA);
          sep = true;
          out.raw(f.prefix);
          // Direct calls for the common scalars: `f.emit` is one call site for every field
          // type, which V8 can neither cache nor inline.
          if (f.inline === Inline.String) emitString(r, out);
          else if (f.inline === Inline.Double) emitDouble(r, out);
          else if (f.inline === Inline.I64String) emitI64String(r, out);
          else f.emit(r, out);
        }
        r.readFieldEnd();
      }
      r.readStructEnd();
    };
  }
}

function toReader(emit: JsonEmitter): JsonReader {
  return (r) => {
    // Nested use (a reader called while another writes) gets its own buffer.
    const out = scratch.pos === 0 ? scratch : new JsonText();
    try {
      emit(r, out);
      return out.toString();
    } finally {
      out.reset();
    }
  };
}
