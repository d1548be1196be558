/**
 * The same gateway as a Node user writes it today: node:http, JSON.parse, the classes the
 * Thrift compiler generates for bench.thrift (written here in the shape `thrift --gen js:node`
 * gives them: read/write per struct, a client with per-seqid callbacks) and npm thrift 0.22's
 * framed binary connection; i64 answered as strings as the Loch gateway does.
 * Usage: tsx node-gateway.ts <port> <upstream port>
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift's protocol objects are untyped
const thrift: any = require('thrift');
// npm thrift's exact decimal <-> Int64 conversion (what its JSON protocol uses; `new Int64(text)`
// would read the text as hex, and Int64's toString() rounds past 2^53).
// biome-ignore lint/suspicious/noExplicitAny: see above
const Int64Util: any = require('thrift/lib/nodejs/lib/thrift/int64_util.js');
// biome-ignore lint/suspicious/noExplicitAny: see above
type P = any;
const T = thrift.Thrift.Type;
const M = thrift.Thrift.MessageType;

const [port, upstreamPort] = process.argv.slice(2).map(Number) as [number, number];

/** Generated-style Entry. */
class Entry {
  id: P = null;
  name: string | null = null;
  score: number | null = null;
  active: boolean | null = null;
  tags: string[] | null = null;
  constructor(args?: Partial<Entry>) {
    if (args) Object.assign(this, args);
  }
  read(input: P): void {
    input.readStructBegin();
    for (;;) {
      const f = input.readFieldBegin();
      if (f.ftype === T.STOP) break;
      switch (f.fid) {
        case 1:
          if (f.ftype === T.I64) this.id = input.readI64();
          else input.skip(f.ftype);
          break;
        case 2:
          if (f.ftype === T.STRING) this.name = input.readString();
          else input.skip(f.ftype);
          break;
        case 3:
          if (f.ftype === T.DOUBLE) this.score = input.readDouble();
          else input.skip(f.ftype);
          break;
        case 4:
          if (f.ftype === T.BOOL) this.active = input.readBool();
          else input.skip(f.ftype);
          break;
        case 5:
          if (f.ftype === T.LIST) {
            this.tags = [];
            const l = input.readListBegin();
            for (let i = 0; i < l.size; i++) this.tags.push(input.readString());
            input.readListEnd();
          } else input.skip(f.ftype);
          break;
        default:
          input.skip(f.ftype);
      }
      input.readFieldEnd();
    }
    input.readStructEnd();
  }
  write(output: P): void {
    output.writeStructBegin('Entry');
    if (this.id !== null) {
      output.writeFieldBegin('id', T.I64, 1);
      output.writeI64(this.id);
      output.writeFieldEnd();
    }
    if (this.name !== null) {
      output.writeFieldBegin('name', T.STRING, 2);
      output.writeString(this.name);
      output.writeFieldEnd();
    }
    if (this.score !== null) {
      output.writeFieldBegin('score', T.DOUBLE, 3);
      output.writeDouble(this.score);
      output.writeFieldEnd();
    }
    if (this.active !== null) {
      output.writeFieldBegin('active', T.BOOL, 4);
      output.writeBool(this.active);
      output.writeFieldEnd();
    }
    if (this.tags !== null) {
      output.writeFieldBegin('tags', T.LIST, 5);
      output.writeListBegin(T.STRING, this.tags.length);
      for (const t of this.tags) output.writeString(t);
      output.writeListEnd();
      output.writeFieldEnd();
    }
    output.writeFieldStop();
    output.writeStructEnd();
  }
}

/** Generated-style Item. */
class Item {
  id: P = null;
  title: string | null = null;
  count: number | null = null;
  entries: Entry[] | null = null;
  attrs: Record<string, string> | null = null;
  read(input: P): void {
    input.readStructBegin();
    for (;;) {
      const f = input.readFieldBegin();
      if (f.ftype === T.STOP) break;
      switch (f.fid) {
        case 1:
          this.id = input.readI64();
          break;
        case 2:
          this.title = input.readString();
          break;
        case 3:
          this.count = input.readI32();
          break;
        case 4: {
          this.entries = [];
          const l = input.readListBegin();
          for (let i = 0; i < l.size; i++) {
            const e = new Entry();
            e.read(input);
            this.entries.push(e);
          }
          input.readListEnd();
          break;
        }
        case 5: {
          this.attrs = {};
          const m = input.readMapBegin();
          for (let i = 0; i < m.size; i++) {
            const k = input.readString();
            this.attrs[k] = input.readString();
          }
          input.readMapEnd();
          break;
        }
        default:
          input.skip(f.ftype);
      }
      input.readFieldEnd();
    }
    input.readStructEnd();
  }
  write(output: P): void {
    output.writeStructBegin('Item');
    output.writeFieldBegin('id', T.I64, 1);
    output.writeI64(this.id);
    output.writeFieldEnd();
    if (this.title !== null) {
      output.writeFieldBegin('title', T.STRING, 2);
      output.writeString(this.title);
      output.writeFieldEnd();
    }
    if (this.count !== null) {
      output.writeFieldBegin('count', T.I32, 3);
      output.writeI32(this.count);
      output.writeFieldEnd();
    }
    if (this.entries !== null) {
      output.writeFieldBegin('entries', T.LIST, 4);
      output.writeListBegin(T.STRUCT, this.entries.length);
      for (const e of this.entries) e.write(output);
      output.writeListEnd();
      output.writeFieldEnd();
    }
    if (this.attrs !== null) {
      output.writeFieldBegin('attrs', T.MAP, 5);
      output.writeMapBegin(T.STRING, T.STRING, Object.keys(this.attrs).length);
      for (const [k, v] of Object.entries(this.attrs)) {
        output.writeString(k);
        output.writeString(v);
      }
      output.writeMapEnd();
      output.writeFieldEnd();
    }
    output.writeFieldStop();
    output.writeStructEnd();
  }
}

/** Generated-style client. */
class BenchClient {
  _seqid = 0;
  _reqs: Record<number, (err: unknown, result?: Item) => void> = {};
  constructor(
    readonly output: P,
    readonly pClass: P,
  ) {}
  echo(item: Item): Promise<Item> {
    this._seqid += 1;
    const seqid = this._seqid;
    return new Promise((resolve, reject) => {
      this._reqs[seqid] = (err, result) => (err ? reject(err) : resolve(result as Item));
      const p = new this.pClass(this.output);
      p.writeMessageBegin('echo', M.CALL, seqid);
      p.writeStructBegin('echo_args');
      p.writeFieldBegin('item', T.STRUCT, 1);
      item.write(p);
      p.writeFieldEnd();
      p.writeFieldStop();
      p.writeStructEnd();
      p.writeMessageEnd();
      this.output.flush();
    });
  }
  recv_echo(input: P, mtype: number, rseqid: number): void {
    const cb = this._reqs[rseqid] ?? (() => {});
    delete this._reqs[rseqid];
    if (mtype === M.EXCEPTION) {
      const x = new thrift.Thrift.TApplicationException();
      x.read(input);
      input.readMessageEnd();
      cb(x);
      return;
    }
    let success: Item | undefined;
    input.readStructBegin();
    for (;;) {
      const f = input.readFieldBegin();
      if (f.ftype === T.STOP) break;
      if (f.fid === 0) {
        success = new Item();
        success.read(input);
      } else input.skip(f.ftype);
      input.readFieldEnd();
    }
    input.readStructEnd();
    input.readMessageEnd();
    cb(success === undefined ? new Error('echo failed: unknown result') : null, success);
  }
}

// What the handler code does around the generated classes: JSON in, JSON out.
function itemFromJson(o: P): Item {
  const item = new Item();
  item.id = Int64Util.fromDecimalString(String(o.id));
  item.title = o.title ?? null;
  item.count = o.count ?? null;
  item.entries =
    o.entries?.map(
      (e: P) =>
        new Entry({
          id: Int64Util.fromDecimalString(String(e.id)),
          name: e.name,
          score: e.score,
          active: e.active,
          tags: e.tags,
        }),
    ) ?? null;
  item.attrs = o.attrs ?? null;
  return item;
}

function itemToJson(i: Item): unknown {
  return {
    id: Int64Util.toDecimalString(i.id),
    title: i.title ?? undefined,
    count: i.count ?? undefined,
    entries: i.entries?.map((e) => ({
      id: Int64Util.toDecimalString(e.id),
      name: e.name,
      score: e.score,
      active: e.active,
      tags: e.tags,
    })),
    attrs: i.attrs ?? undefined,
  };
}

const connections = Array.from({ length: 8 }, () => {
  const c = thrift.createConnection('127.0.0.1', upstreamPort, {
    transport: thrift.TFramedTransport,
    protocol: thrift.TBinaryProtocol,
  });
  c.on('error', (e: unknown) => console.error(e));
  return thrift.createClient(BenchClient, c) as BenchClient;
});
let next = 0;

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: P;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      res.writeHead(400).end();
      return;
    }
    const client = connections[next++ % connections.length] as BenchClient;
    client.echo(itemFromJson(body.item)).then(
      (item) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(itemToJson(item)));
      },
      () => res.writeHead(502).end(),
    );
  });
}).listen(port, '127.0.0.1', () => console.log(`node gateway on ${port}`));
process.on('SIGTERM', () => process.exit(0));
