/**
 * Thrift -> JSON text in @loch/native (native/src/gateway_json.cc): the plan of an IDL type,
 * compiled once per route from the same IDL model and the same rules as ThriftToJsonCompiler
 * (thrift-to-json.ts), and the call that reads a reply's value through it. The JavaScript
 * emitters stay the reference and the fallback: the native side writes the same bytes for
 * every input they accept, and refuses (returns false here) whatever they would throw on, so
 * the caller then runs the JavaScript emitter, which throws the typed error. Used for struct,
 * list, set and map values (where the time goes); scalars stay in JavaScript. Not for requests.
 */
import { type GatewayJsonPlan, loadGatewayJson, type NativeGatewayJson } from '@loch/native';
import { createWriter, DEFAULT_MAX_DEPTH, type ProtocolName, type ProtocolReader } from '@loch/thrift';
import type { IdlType, StructDef } from '../idl/model.js';
import type { JsonText } from './json-text.js';
import { JsonToThriftCompiler, ttypeOf } from './json-to-thrift.js';

// Node kinds of the plan (gateway_json.cc's Kind).
const K_BOOL = 1;
const K_BYTE = 2;
const K_I16 = 3;
const K_I32 = 4;
const K_I64_STR = 5;
const K_I64_NUM = 6;
const K_DOUBLE = 7;
const K_STRING = 8;
const K_BINARY = 9;
const K_ENUM = 10;
const K_LIST = 11;
const K_SET = 12;
const K_MAP = 13;
const K_STRUCT = 14;
/** Words per struct field (gateway_json.cc's kFieldWords). */
const FIELD_WORDS = 8;

/**
 * The one switch between the native converter and the JavaScript emitters. Native when the
 * addon loads and has the converter: it reads a 10 KiB reply into JSON several times faster
 * than V8 can (no per-value calls, doubles formatted without a string each). JavaScript where
 * it does not load (no compiler at install, another platform) or when LOCH_GATEWAY_NATIVE_JSON=0
 * (to compare the two, or to rule the native side out): the output is the same either way.
 */
function nativeConverter(): NativeGatewayJson | undefined {
  if (process.env.LOCH_GATEWAY_NATIVE_JSON === '0') return undefined;
  const loaded = loadGatewayJson();
  return 'gatewayJson' in loaded ? loaded.gatewayJson : undefined;
}

let converter: NativeGatewayJson | null | undefined = null;

/** The native converter, looked up once per thread (undefined: use the JavaScript emitters). */
export function gatewayJsonNative(): NativeGatewayJson | undefined {
  if (converter === null) converter = nativeConverter();
  return converter;
}

/** Builds one plan (words and text) from IDL types, mirroring ThriftToJsonCompiler.emitter. */
class PlanBuilder {
  readonly words: number[] = [];
  private readonly text: number[] = [];
  private readonly structs = new Map<StructDef, number>();
  private readonly enums = new Map<unknown, number>();
  private readonly encoder = new TextEncoder();

  /** Encodes field defaults (requests) in this protocol; undefined: no defaults (replies). */
  private readonly writers: JsonToThriftCompiler | undefined;

  constructor(
    private readonly i64AsNumber: boolean,
    private readonly defaultsIn?: ProtocolName,
  ) {
    this.writers = defaultsIn === undefined ? undefined : new JsonToThriftCompiler();
  }

  /** A field default's value as Thrift bytes in the plan's protocol ([off, len]; len -1: none). */
  private defaultOf(t: IdlType, value: unknown): [number, number] {
    if (this.writers === undefined || this.defaultsIn === undefined || value === undefined) return [0, -1];
    const w = createWriter(this.defaultsIn);
    this.writers.value(t)(w, value);
    const bytes = w.finish();
    const off = this.text.length;
    for (const b of bytes) this.text.push(b);
    return [off, bytes.length];
  }

  private textOf(s: string): [number, number] {
    const bytes = this.encoder.encode(s);
    const off = this.text.length;
    for (const b of bytes) this.text.push(b);
    return [off, bytes.length];
  }

  /** The word offset of the node of `t` (the same `asString` rule as emitter()). */
  node(t: IdlType, asString = false): number {
    const w = this.words;
    switch (t.kind) {
      case 'bool':
        return this.leaf(K_BOOL);
      case 'byte':
        return this.leaf(K_BYTE);
      case 'i16':
        return this.leaf(K_I16);
      case 'i32':
        return this.leaf(K_I32);
      case 'i64':
        return this.leaf(this.i64AsNumber && !asString ? K_I64_NUM : K_I64_STR);
      case 'double':
        return this.leaf(K_DOUBLE);
      case 'string':
        return this.leaf(K_STRING);
      case 'binary':
        return this.leaf(K_BINARY);
      case 'enum': {
        const known = this.enums.get(t.def);
        if (known !== undefined) return known;
        const entries = [...t.def.byValue].map(([v, name]) => [v, ...this.textOf(JSON.stringify(name))]);
        const at = w.length;
        w.push(K_ENUM, entries.length);
        for (const e of entries) w.push(...e);
        this.enums.set(t.def, at);
        return at;
      }
      case 'list':
      case 'set': {
        const elem = this.node(t.elem, asString);
        const at = w.length;
        w.push(t.kind === 'set' ? K_SET : K_LIST, elem, ttypeOf(t.elem));
        return at;
      }
      case 'map': {
        const key = this.node(t.key, true);
        const value = this.node(t.value, asString);
        const at = w.length;
        w.push(K_MAP, key, value, ttypeOf(t.key), ttypeOf(t.value));
        return at;
      }
      case 'struct':
        return this.struct(t.def);
    }
  }

  /** A struct's node; recursive structs refer to the node being built. */
  private struct(def: StructDef): number {
    const known = this.structs.get(def);
    if (known !== undefined) return known;
    const at = this.words.length;
    this.structs.set(def, at);
    const n = def.fields.length;
    // The struct's words first (its fields' nodes follow and are patched in).
    this.words.push(K_STRUCT, n, def.kind === 'union' ? 1 : 0);
    for (let i = 0; i < n * FIELD_WORDS; i++) this.words.push(0);
    def.fields.forEach((f, i) => {
      const [off, len] = this.textOf(`${JSON.stringify(f.name)}:`);
      const node = this.node(f.type, f.annotations.has('api.js_conv'));
      const [defOff, defLen] = this.defaultOf(f.type, f.defaultValue);
      const base = at + 3 + i * FIELD_WORDS;
      this.words[base] = f.id;
      this.words[base + 1] = ttypeOf(f.type);
      this.words[base + 2] = off;
      this.words[base + 3] = len;
      this.words[base + 4] = node;
      this.words[base + 5] = f.requiredness === 'required' ? 1 : 0;
      this.words[base + 6] = defOff;
      this.words[base + 7] = defLen;
    });
    return at;
  }

  private leaf(kind: number): number {
    const at = this.words.length;
    this.words.push(kind);
    return at;
  }

  finish(native: NativeGatewayJson): GatewayJsonPlan {
    return native.compile(Int32Array.from(this.words), Uint8Array.from(this.text));
  }
}

/** One io record per thread (converting is synchronous). */
const io = new Int32Array(8);

/** Reads values of one IDL type into JSON text natively. */
export class NativeJsonEmitter {
  private constructor(
    private readonly native: NativeGatewayJson,
    private readonly plan: GatewayJsonPlan,
    private readonly root: number,
    private readonly protocol: number,
    private readonly maxDepth: number,
  ) {}

  /**
   * The native emitter of values of `t` (read as ThriftToJsonCompiler({ i64AsNumber }).emitter(t)
   * reads them) on `protocol`; undefined when the converter is not there or `t` is a scalar.
   * `maxDepth` is the reader's (routes read with @loch/thrift's default).
   */
  static create(
    t: IdlType,
    options: { i64AsNumber?: boolean; protocol: ProtocolName; maxDepth?: number },
  ): NativeJsonEmitter | undefined {
    if (t.kind !== 'struct' && t.kind !== 'list' && t.kind !== 'set' && t.kind !== 'map') return undefined;
    const native = gatewayJsonNative();
    if (native === undefined) return undefined;
    const b = new PlanBuilder(options.i64AsNumber ?? false);
    const root = b.node(t);
    return new NativeJsonEmitter(
      native,
      b.finish(native),
      root,
      options.protocol === 'compact' ? 1 : 0,
      options.maxDepth ?? DEFAULT_MAX_DEPTH,
    );
  }

  /**
   * Reads one value at `r.pos` and writes its JSON text at `out.pos`; both move past it. False
   * when the input is refused: neither moved, and the JavaScript emitter is to read it (and throw).
   */
  emit(r: ProtocolReader, out: JsonText): boolean {
    io[0] = r.pos;
    io[1] = r.end;
    io[2] = this.protocol;
    io[3] = r.depth;
    io[4] = this.maxDepth;
    io[5] = out.pos;
    for (;;) {
      const s = this.native.emit(this.plan, this.root, r.buf, out.buf, io);
      if (s === 0) {
        r.pos = io[6] as number;
        out.pos = io[7] as number;
        return true;
      }
      if (s !== 1) return false;
      out.expand();
    }
  }
}

/** One io record per thread for requests (encoding is synchronous). */
const encodeIo = new Int32Array(5);

/**
 * Writes a request body's JSON text straight into the Thrift fields of a function's args
 * struct natively, as JSON.parse plus JsonToThriftCompiler's writer write them; refuses what
 * they would reject (and the rarer spellings listed in gateway_json.cc), so the caller then
 * runs JSON.parse and the writer, which answer with the typed error and its path.
 */
export class NativeJsonEncoder {
  private constructor(
    private readonly native: NativeGatewayJson,
    private readonly plan: GatewayJsonPlan,
    private readonly root: number,
    private readonly protocol: number,
  ) {}

  /** The encoder of `args` on `protocol`; undefined when the converter is not there. */
  static create(args: StructDef, protocol: ProtocolName): NativeJsonEncoder | undefined {
    const native = gatewayJsonNative();
    if (native === undefined) return undefined;
    const b = new PlanBuilder(false, protocol);
    const root = b.node({ kind: 'struct', def: args });
    return new NativeJsonEncoder(native, b.finish(native), root, protocol === 'compact' ? 1 : 0);
  }

  /**
   * Writes the fields of the body `json` (UTF-8 JSON text, one object) and the stop at
   * `out.pos`, moving it past them. False when refused (out.pos unchanged).
   */
  encode(json: Uint8Array, out: JsonText): boolean {
    const io = encodeIo;
    for (;;) {
      io[0] = 0;
      io[1] = json.byteLength;
      io[2] = this.protocol;
      io[3] = out.pos;
      const s = this.native.encode(this.plan, this.root, json, out.buf, io);
      if (s === 0) {
        out.pos = io[4] as number;
        return true;
      }
      if (s !== 1) return false;
      out.expand();
    }
  }
}
