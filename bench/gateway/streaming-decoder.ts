/**
 * The alternative the gateway's converter was measured against (issue 19: "measure JSON.parse
 * plus an IDL-compiled writer against a streaming decoder and keep the faster"): a JSON
 * decoder compiled per IDL struct that scans the request bytes once and writes Thrift binary
 * as it goes, building no JavaScript objects. Thrift wants a container's size before its
 * elements, so list and map headers are written with a placeholder size and patched when the
 * container ends (binary protocol only: compact's varint sizes cannot be patched in place).
 * Bench-only: it checks types but not required fields or unknown keys, which would only make
 * it slower. See convert.ts for the numbers; @loch/gateway keeps JSON.parse + compiled writer.
 */

import type { IdlType, StructDef } from '@loch/gateway';
import { type BinaryWriter, TType } from '@loch/thrift';

const utf8 = new TextDecoder();

/** A cursor over JSON bytes. */
class Json {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  ws(): number {
    const b = this.b;
    let c = b[this.pos] as number;
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++this.pos] as number;
    return c;
  }
  expect(c: number): void {
    if (this.ws() !== c) throw new SyntaxError(`expected ${String.fromCharCode(c)} at ${this.pos}`);
    this.pos++;
  }
  /** A string at pos (after ws); escapes go through JSON.parse. */
  string(): string {
    this.expect(0x22);
    const b = this.b;
    const start = this.pos;
    let escaped = false;
    for (;;) {
      const c = b[this.pos++];
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        this.pos++;
      } else if (c === undefined) throw new SyntaxError('unterminated string');
    }
    const raw = b.subarray(start, this.pos - 1);
    return escaped ? (JSON.parse(`"${utf8.decode(raw)}"`) as string) : utf8.decode(raw);
  }
  /** The bytes of a string value without decoding (for byte-matching keys). */
  keyBytes(): [number, number] {
    this.expect(0x22);
    const start = this.pos;
    while (this.b[this.pos] !== 0x22) this.pos++;
    this.pos++;
    return [start, this.pos - 1];
  }
  number(): number {
    this.ws();
    const start = this.pos;
    const b = this.b;
    let c = b[this.pos] as number;
    while ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) {
      c = b[++this.pos] as number;
    }
    return Number(utf8.decode(b.subarray(start, this.pos)));
  }
  literal(): boolean {
    const c = this.ws();
    if (c === 0x74) {
      this.pos += 4;
      return true;
    }
    if (c === 0x66) {
      this.pos += 5;
      return false;
    }
    throw new SyntaxError(`expected a bool at ${this.pos}`);
  }
}

type Decode = (j: Json, w: BinaryWriter) => void;

function ttype(t: IdlType): TType {
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

/** Patches the 4-byte big-endian size at `at` of a binary container header. */
function patchSize(w: BinaryWriter, at: number, n: number): void {
  w.buf[at] = n >>> 24;
  w.buf[at + 1] = n >>> 16;
  w.buf[at + 2] = n >>> 8;
  w.buf[at + 3] = n;
}

/** Compiles streaming decoders for the types of one IDL. */
export class StreamingDecoderCompiler {
  private readonly structs = new Map<StructDef, Decode>();

  value(t: IdlType): Decode {
    switch (t.kind) {
      case 'bool':
        return (j, w) => w.writeBool(j.literal());
      case 'byte':
        return (j, w) => w.writeByte(j.number());
      case 'i16':
        return (j, w) => w.writeI16(j.number());
      case 'i32':
        return (j, w) => w.writeI32(j.number());
      case 'i64':
        return (j, w) => {
          const s = j.ws() === 0x22 ? j.string() : String(j.number());
          w.writeI64(s.length <= 15 ? Number(s) : BigInt(s));
        };
      case 'double':
        return (j, w) => w.writeDouble(j.number());
      case 'string':
        return (j, w) => w.writeString(j.string());
      case 'binary':
        return (j, w) => w.writeBinary(Buffer.from(j.string(), 'base64'));
      case 'enum': {
        const def = t.def;
        return (j, w) => w.writeI32(j.ws() === 0x22 ? (def.byName.get(j.string()) as number) : j.number());
      }
      case 'list':
      case 'set': {
        const elem = this.value(t.elem);
        const et = ttype(t.elem);
        return (j, w) => {
          j.expect(0x5b);
          w.writeListBegin(et, 0);
          const at = w.pos - 4;
          let n = 0;
          if (j.ws() === 0x5d) j.pos++;
          else {
            for (;;) {
              elem(j, w);
              n++;
              if (j.ws() === 0x2c) j.pos++;
              else break;
            }
            j.expect(0x5d);
          }
          patchSize(w, at, n);
        };
      }
      case 'map': {
        const value = this.value(t.value);
        const kt = ttype(t.key);
        const vt = ttype(t.value);
        return (j, w) => {
          j.expect(0x7b);
          w.writeMapBegin(kt, vt, 0);
          const at = w.pos - 4;
          let n = 0;
          if (j.ws() === 0x7d) j.pos++;
          else {
            for (;;) {
              w.writeString(j.string());
              j.expect(0x3a);
              value(j, w);
              n++;
              if (j.ws() === 0x2c) j.pos++;
              else break;
            }
            j.expect(0x7d);
          }
          patchSize(w, at, n);
        };
      }
      case 'struct':
        return this.struct(t.def);
    }
  }

  struct(def: StructDef): Decode {
    const known = this.structs.get(def);
    if (known !== undefined) return known;
    let impl: Decode = () => {};
    const slot: Decode = (j, w) => impl(j, w);
    this.structs.set(def, slot);
    const names = def.fields.map((f) => Buffer.from(f.name));
    const decoders = def.fields.map((f) => this.value(f.type));
    const types = def.fields.map((f) => ttype(f.type));
    const ids = def.fields.map((f) => f.id);
    impl = (j, w) => {
      j.expect(0x7b);
      if (j.ws() === 0x7d) {
        j.pos++;
        w.writeFieldStop();
        return;
      }
      for (;;) {
        const [s, e] = j.keyBytes();
        let i = 0;
        for (; i < names.length; i++) {
          const n = names[i] as Buffer;
          if (n.length === e - s && n.equals(j.b.subarray(s, e))) break;
        }
        if (i === names.length) throw new SyntaxError('unknown field');
        j.expect(0x3a);
        w.writeFieldBegin(types[i] as TType, ids[i] as number);
        (decoders[i] as Decode)(j, w);
        if (j.ws() === 0x2c) j.pos++;
        else break;
      }
      j.expect(0x7d);
      w.writeFieldStop();
    };
    return slot;
  }
}

/** Decodes a JSON text into the binary encoding of `def`. */
export function decodeStreaming(decode: Decode, bytes: Uint8Array, w: BinaryWriter): void {
  decode(new Json(bytes), w);
}
