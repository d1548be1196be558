/**
 * The test UserService of test/idl/user.thrift on npm `thrift` 0.22, without generated code:
 * values are read and written schema-less (type id, value), with the same behaviour as
 * test/python/user_server.py, so one suite runs against both peers.
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:net';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift has no types for its protocol objects here
export const thrift: any = require('thrift');
// biome-ignore lint/suspicious/noExplicitAny: see above
type P = any;
const T = thrift.Thrift.Type;
const M = thrift.Thrift.MessageType;
const Int64 = createRequire(require.resolve('thrift'))('node-int64');

type Fields = Map<number, [number, unknown]>;

function readValue(p: P, t: number): unknown {
  switch (t) {
    case T.BOOL:
      return p.readBool();
    case T.BYTE:
      return p.readByte();
    case T.I16:
      return p.readI16();
    case T.I32:
      return p.readI32();
    case T.I64:
      return p.readI64();
    case T.DOUBLE:
      return p.readDouble();
    case T.STRING:
      return p.readBinary();
    case T.STRUCT:
      return readStruct(p);
    case T.LIST:
    case T.SET: {
      const h = t === T.LIST ? p.readListBegin() : p.readSetBegin();
      const items: unknown[] = [];
      for (let i = 0; i < h.size; i++) items.push(readValue(p, h.etype));
      if (t === T.LIST) p.readListEnd();
      else p.readSetEnd();
      return [h.etype, items];
    }
    case T.MAP: {
      const h = p.readMapBegin();
      const items: [unknown, unknown][] = [];
      for (let i = 0; i < h.size; i++) items.push([readValue(p, h.ktype), readValue(p, h.vtype)]);
      p.readMapEnd();
      return [h.ktype, h.vtype, items];
    }
  }
  throw new Error(`type ${t}`);
}

function readStruct(p: P): Fields {
  const out: Fields = new Map();
  p.readStructBegin();
  for (;;) {
    const f = p.readFieldBegin();
    if (f.ftype === T.STOP) break;
    out.set(f.fid, [f.ftype, readValue(p, f.ftype)]);
    p.readFieldEnd();
  }
  p.readStructEnd();
  return out;
}

function writeValue(p: P, t: number, v: unknown): unknown {
  switch (t) {
    case T.BOOL:
      return p.writeBool(v);
    case T.BYTE:
      return p.writeByte(v);
    case T.I16:
      return p.writeI16(v);
    case T.I32:
      return p.writeI32(v);
    case T.I64:
      return p.writeI64(v);
    case T.DOUBLE:
      return p.writeDouble(v);
    case T.STRING:
      return p.writeBinary(typeof v === 'string' ? Buffer.from(v) : v);
    case T.STRUCT:
      return writeStruct(p, v as Fields);
    case T.LIST:
    case T.SET: {
      const [et, items] = v as [number, unknown[]];
      if (t === T.LIST) p.writeListBegin(et, items.length);
      else p.writeSetBegin(et, items.length);
      for (const i of items) writeValue(p, et, i);
      if (t === T.LIST) p.writeListEnd();
      else p.writeSetEnd();
      return;
    }
    case T.MAP: {
      const [kt, vt, items] = v as [number, number, [unknown, unknown][]];
      p.writeMapBegin(kt, vt, items.length);
      for (const [k, x] of items) {
        writeValue(p, kt, k);
        writeValue(p, vt, x);
      }
      p.writeMapEnd();
    }
  }
}

function writeStruct(p: P, fields: Fields): void {
  p.writeStructBegin('s');
  for (const id of [...fields.keys()].sort((a, b) => a - b)) {
    const [t, v] = fields.get(id) as [number, unknown];
    p.writeFieldBegin('f', t, id);
    writeValue(p, t, v);
    p.writeFieldEnd();
  }
  p.writeFieldStop();
  p.writeStructEnd();
}

const num = (v: unknown): number =>
  v instanceof Int64 ? (v as { toNumber(): number }).toNumber() : (v as number);
const user = (id: unknown, name: string): Fields =>
  new Map<number, [number, unknown]>([
    [1, [T.I64, id]],
    [2, [T.STRING, name]],
    [4, [T.I32, 1]],
  ]);
const arg = (args: Fields, id: number): unknown => args.get(id)?.[1];
const text = (v: unknown): string => (v === undefined ? '' : Buffer.from(v as Buffer).toString());

let touched = 0;

function call(name: string, args: Fields): Fields | undefined {
  const notFound = (id: unknown): Fields =>
    new Map([
      [
        1,
        [
          T.STRUCT,
          new Map<number, [number, unknown]>([
            [1, [T.STRING, 'user']],
            [2, [T.I64, id]],
          ]),
        ],
      ],
    ]);
  switch (name) {
    case 'getUser': {
      const id = arg(args, 1);
      if (num(id) === 404) return notFound(id);
      return new Map([[0, [T.STRUCT, user(id, `user${num(id)}`)]]]);
    }
    case 'createUser': {
      const u = arg(args, 1) as Fields;
      if (text(u.get(2)?.[1]) === 'invalid') {
        return new Map([
          [
            1,
            [
              T.STRUCT,
              new Map<number, [number, unknown]>([
                [1, [T.STRING, 'bad name']],
                [2, [T.LIST, [T.STRING, ['name']]]],
              ]),
            ],
          ],
        ]);
      }
      return new Map([[0, [T.STRUCT, u]]]);
    }
    case 'deleteUser':
      return num(arg(args, 1)) === 404 ? notFound(arg(args, 1)) : new Map();
    case 'ping':
      return new Map([[0, [T.STRING, `pong:${text(arg(args, 1))}:${touched}`]]]);
    case 'search': {
      const q = text(arg(args, 1));
      const limit = arg(args, 2) as number;
      return new Map([[0, [T.LIST, [T.STRUCT, Array.from({ length: limit }, (_, i) => user(i + 1, q))]]]]);
    }
    case 'statuses': {
      const [, ids] = arg(args, 1) as [number, unknown[]];
      return new Map([[0, [T.MAP, [T.I64, T.I32, ids.map((i) => [i, 2])]]]]);
    }
    case 'getUserHz': {
      const req = arg(args, 1) as Fields;
      return new Map([
        [0, [T.STRUCT, user(req.get(1)?.[1], `${text(req.get(2)?.[1])}|${text(req.get(3)?.[1])}`)]],
      ]);
    }
    case 'getUserResp': {
      const id = (arg(args, 1) as Fields).get(1)?.[1];
      return new Map([
        [
          0,
          [
            T.STRUCT,
            new Map<number, [number, unknown]>([
              [1, [T.I64, id]],
              [2, [T.STRING, `u${num(id)}`]],
              [3, [T.STRING, `etag-${num(id)}`]],
              [4, [T.I32, 203]],
              [5, [T.I64, new Int64('0020000000000001')]],
            ]),
          ],
        ],
      ]);
    }
    case 'echoI64':
      return new Map([[0, [T.I64, arg(args, 1)]]]);
    default:
      return undefined;
  }
}

class UserProcessor {
  process(input: P, output: P): void {
    const m = input.readMessageBegin();
    const args = readStruct(input);
    input.readMessageEnd();
    if (m.fname === 'touch') {
      touched = num(arg(args, 1));
      return;
    }
    const result = call(m.fname, args);
    if (result === undefined) {
      output.writeMessageBegin(m.fname, M.EXCEPTION, m.rseqid);
      const x = new thrift.Thrift.TApplicationException(1, `unknown ${m.fname}`);
      x.code = 1; // npm thrift 0.22 writes `code`, not `type`, as field 2
      x.write(output);
    } else {
      const headers = typeof input.trans.getReadHeaders === 'function' ? input.trans.getReadHeaders() : {};
      const rid = headers['x-request-id'];
      if (rid !== undefined && typeof output.trans.setWriteHeader === 'function')
        output.trans.setWriteHeader('x-request-id', rid);
      output.writeMessageBegin(m.fname, M.REPLY, m.rseqid);
      writeStruct(output, result);
    }
    output.writeMessageEnd();
    output.flush();
  }
}

/** Starts the npm peer; `kind` picks transport and protocol. Resolves its port and a closer. */
export async function startNpmUserServer(
  kind: 'framed-binary' | 'framed-compact' | 'header',
): Promise<{ port: number; close(): Promise<void> }> {
  const options =
    kind === 'header'
      ? { transport: thrift.TBufferedTransport, protocol: thrift.THeaderProtocol }
      : {
          transport: thrift.TFramedTransport,
          protocol: kind === 'framed-binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
        };
  const server: Server = thrift.createMultiplexServer(new UserProcessor(), options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
