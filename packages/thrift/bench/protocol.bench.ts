/**
 * Encode, decode and skip throughput of Loch's binary and compact protocols against npm
 * thrift's TBinaryProtocol and TCompactProtocol, on the same three structs (small, nested,
 * large list). Both sides run the same schema-less walk over the same value tree, so only the
 * protocol implementations differ. Run: pnpm --filter @loch/thrift bench
 */
import { createRequire } from 'node:module';
import { bench, describe } from 'vitest';
import {
  createReader,
  createWriter,
  type ProtocolName,
  readStruct,
  skipValue,
  type ThriftList,
  type ThriftMap,
  type ThriftStruct,
  type ThriftValue,
  TType,
  writeStruct,
} from '../src/index.js';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift ships no types for its internals.
const thrift: any = require('thrift');

const small: ThriftStruct = {
  kind: 'struct',
  fields: [
    { id: 1, type: TType.I32, value: 123456 },
    { id: 2, type: TType.STRING, value: 'hello world' },
    { id: 3, type: TType.BOOL, value: true },
    { id: 4, type: TType.I64, value: 9876543210n },
    { id: 5, type: TType.DOUBLE, value: 3.5 },
  ],
};

function item(i: number): ThriftStruct {
  return {
    kind: 'struct',
    fields: [
      { id: 1, type: TType.I32, value: i },
      { id: 2, type: TType.STRING, value: `item-${i}` },
      {
        id: 3,
        type: TType.MAP,
        value: {
          kind: 'map',
          keyType: TType.STRING,
          valueType: TType.I64,
          entries: [
            ['a', BigInt(i)],
            ['b', BigInt(i * 1000)],
          ],
        },
      },
      { id: 4, type: TType.LIST, value: { kind: 'list', elemType: TType.I16, items: [1, 2, 3, 4] } },
    ],
  };
}

const nested: ThriftStruct = {
  kind: 'struct',
  fields: [
    {
      id: 1,
      type: TType.LIST,
      value: { kind: 'list', elemType: TType.STRUCT, items: Array.from({ length: 10 }, (_, i) => item(i)) },
    },
    {
      id: 2,
      type: TType.STRUCT,
      value: { kind: 'struct', fields: [{ id: 1, type: TType.STRUCT, value: small }] },
    },
  ],
};

const largeList: ThriftStruct = {
  kind: 'struct',
  fields: [
    {
      id: 1,
      type: TType.LIST,
      value: { kind: 'list', elemType: TType.I32, items: Array.from({ length: 5000 }, (_, i) => i * 7919) },
    },
    {
      id: 2,
      type: TType.LIST,
      value: { kind: 'list', elemType: TType.STRING, items: Array.from({ length: 500 }, (_, i) => `s${i}`) },
    },
  ],
};

// biome-ignore lint/suspicious/noExplicitAny: npm thrift protocol objects.
type Npm = any;

function npmWriteValue(p: Npm, type: number, v: ThriftValue): unknown {
  switch (type) {
    case TType.BOOL:
      return p.writeBool(v);
    case TType.BYTE:
      return p.writeByte(v);
    case TType.I16:
      return p.writeI16(v);
    case TType.I32:
      return p.writeI32(v);
    case TType.I64:
      return p.writeI64(Number(v));
    case TType.DOUBLE:
      return p.writeDouble(v);
    case TType.STRING:
      return p.writeString(v);
    case TType.STRUCT:
      return npmWriteStruct(p, v as ThriftStruct);
    case TType.LIST: {
      const l = v as ThriftList;
      p.writeListBegin(l.elemType, l.items.length);
      for (const x of l.items) npmWriteValue(p, l.elemType, x);
      return p.writeListEnd();
    }
    case TType.MAP: {
      const m = v as ThriftMap;
      p.writeMapBegin(m.keyType, m.valueType, m.entries.length);
      for (const [k, x] of m.entries) {
        npmWriteValue(p, m.keyType, k);
        npmWriteValue(p, m.valueType, x);
      }
      return p.writeMapEnd();
    }
  }
}

function npmWriteStruct(p: Npm, s: ThriftStruct): void {
  p.writeStructBegin('s');
  for (const f of s.fields) {
    p.writeFieldBegin('f', f.type, f.id);
    npmWriteValue(p, f.type, f.value);
    p.writeFieldEnd();
  }
  p.writeFieldStop();
  p.writeStructEnd();
}

function npmReadValue(p: Npm, type: number): unknown {
  switch (type) {
    case TType.BOOL:
      return p.readBool();
    case TType.BYTE:
      return p.readByte();
    case TType.I16:
      return p.readI16();
    case TType.I32:
      return p.readI32();
    case TType.I64:
      return p.readI64();
    case TType.DOUBLE:
      return p.readDouble();
    case TType.STRING:
      return p.readString();
    case TType.STRUCT:
      return npmReadStruct(p);
    case TType.LIST: {
      const h = p.readListBegin();
      const items: unknown[] = [];
      for (let i = 0; i < h.size; i++) items.push(npmReadValue(p, h.etype));
      p.readListEnd();
      return { kind: 'list', elemType: h.etype, items };
    }
    case TType.MAP: {
      const h = p.readMapBegin();
      const entries: unknown[] = [];
      for (let i = 0; i < h.size; i++) entries.push([npmReadValue(p, h.ktype), npmReadValue(p, h.vtype)]);
      p.readMapEnd();
      return { kind: 'map', keyType: h.ktype, valueType: h.vtype, entries };
    }
  }
  throw new Error(`type ${type}`);
}

function npmReadStruct(p: Npm): unknown {
  const fields: unknown[] = [];
  p.readStructBegin();
  for (;;) {
    const f = p.readFieldBegin();
    if (f.ftype === TType.STOP) break;
    fields.push({ id: f.fid, type: f.ftype, value: npmReadValue(p, f.ftype) });
    p.readFieldEnd();
  }
  p.readStructEnd();
  return { kind: 'struct', fields };
}

function npmEncode(protocol: ProtocolName, s: ThriftStruct): Buffer {
  let out: Buffer | undefined;
  const t = new thrift.TBufferedTransport(undefined, (b: Buffer) => {
    out = b;
  });
  const p = protocol === 'binary' ? new thrift.TBinaryProtocol(t) : new thrift.TCompactProtocol(t);
  npmWriteStruct(p, s);
  t.flush();
  return out!;
}

function npmProtocolOver(protocol: ProtocolName, bytes: Buffer): Npm {
  const t = new thrift.TFramedTransport(bytes);
  return protocol === 'binary' ? new thrift.TBinaryProtocol(t) : new thrift.TCompactProtocol(t);
}

const shapes: [string, ThriftStruct][] = [
  ['small', small],
  ['nested', nested],
  ['large list', largeList],
];

for (const protocol of ['binary', 'compact'] as const) {
  for (const [name, s] of shapes) {
    const w = createWriter(protocol, { initialSize: 1 << 16 });
    writeStruct(w, s);
    const bytes = w.finishCopy();
    const npmBytes = npmEncode(protocol, s);
    if (Buffer.compare(Buffer.from(bytes), npmBytes) !== 0)
      throw new Error(`${protocol} ${name}: encodings differ`);
    const reader = createReader(protocol);

    describe(`${protocol} ${name} (${bytes.byteLength} B) encode`, () => {
      bench('loch', () => {
        w.reset();
        writeStruct(w, s);
      });
      bench('npm thrift', () => {
        npmEncode(protocol, s);
      });
    });

    describe(`${protocol} ${name} decode`, () => {
      bench('loch', () => {
        reader.reset(bytes);
        readStruct(reader);
      });
      bench('npm thrift', () => {
        npmReadStruct(npmProtocolOver(protocol, npmBytes));
      });
    });

    describe(`${protocol} ${name} skip`, () => {
      bench('loch', () => {
        skipValue(protocol, TType.STRUCT, bytes);
      });
      bench('npm thrift', () => {
        npmProtocolOver(protocol, npmBytes).skip(TType.STRUCT);
      });
    });
  }
}
