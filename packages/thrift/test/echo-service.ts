/**
 * The hand-built Echo service of the interop suites, on Loch's side (handler and call helper)
 * and on npm thrift's side (a client and processor written the way its generator writes them).
 *   args   {1: string text, 2: i64 big, 3: list<i32> nums, 4: bool flag}
 *   result {0: string success} = "text:big:sum(nums):flag:tenant-header"
 */
import { createRequire } from 'node:module';
import {
  createReply,
  type ProtocolReader,
  type ProtocolWriter,
  TApplicationException,
  TApplicationExceptionType,
  type ThriftClient,
  type ThriftHandler,
  TType,
} from '../src/index.js';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift ships no types for its internals.
export const thrift: any = require('thrift');

export interface EchoArgs {
  text: string;
  big: bigint;
  nums: number[];
  flag: boolean;
}

export const calls: EchoArgs[] = [
  { text: 'hi', big: 1n << 40n, nums: [1, 2, 3], flag: true },
  { text: 'snø', big: -(1n << 62n), nums: [], flag: false },
  { text: 'big', big: 9223372036854775807n, nums: Array.from({ length: 300 }, (_, i) => i), flag: true },
];

export function expected(a: EchoArgs, tenant = ''): string {
  return `${a.text}:${a.big}:${a.nums.reduce((x, y) => x + y, 0)}:${a.flag}:${tenant}`;
}

export function writeArgs(a: EchoArgs): (w: ProtocolWriter) => void {
  return (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 1);
    w.writeString(a.text);
    w.writeFieldBegin(TType.I64, 2);
    w.writeI64(a.big);
    w.writeFieldBegin(TType.LIST, 3);
    w.writeListBegin(TType.I32, a.nums.length);
    for (const n of a.nums) w.writeI32(n);
    w.writeFieldBegin(TType.BOOL, 4);
    w.writeBool(a.flag);
    w.writeFieldStop();
    w.writeStructEnd();
  };
}

export function readArgs(r: ProtocolReader): EchoArgs {
  const a: EchoArgs = { text: '', big: 0n, nums: [], flag: false };
  r.readStructBegin();
  for (;;) {
    const t = r.readFieldBegin();
    if (t === TType.STOP) break;
    if (r.fieldId === 1 && t === TType.STRING) a.text = r.readString();
    else if (r.fieldId === 2 && t === TType.I64) a.big = r.readI64();
    else if (r.fieldId === 3 && t === TType.LIST) {
      const n = r.readListBegin();
      for (let i = 0; i < n; i++) a.nums.push(r.readI32());
      r.readListEnd();
    } else if (r.fieldId === 4 && t === TType.BOOL) a.flag = r.readBool();
    else r.skip(t);
  }
  r.readStructEnd();
  return a;
}

export function readResult(r: ProtocolReader): string {
  let s = '';
  r.readStructBegin();
  for (;;) {
    const t = r.readFieldBegin();
    if (t === TType.STOP) break;
    if (r.fieldId === 0 && t === TType.STRING) s = r.readString();
    else r.skip(t);
  }
  r.readStructEnd();
  return s;
}

/** Loch's Echo handler. Method "fail" answers UNKNOWN_METHOD. */
export const echoHandler: ThriftHandler = {
  async call(req) {
    const a = readArgs(req.reader());
    if (req.header.name !== 'echo') {
      throw new TApplicationException(TApplicationExceptionType.UNKNOWN_METHOD, `unknown ${req.header.name}`);
    }
    const reply = createReply(req, (w) => {
      w.writeStructBegin();
      w.writeFieldBegin(TType.STRING, 0);
      w.writeString(expected(a, req.frame.headers.get('tenant') ?? ''));
      w.writeFieldStop();
      w.writeStructEnd();
    });
    return { ...reply, headers: new Map([['served-by', 'loch']]) };
  },
};

/** Calls echo with Loch's client. */
export async function lochEcho(client: ThriftClient, a: EchoArgs, method = 'echo'): Promise<string> {
  const res = await client.call(method, writeArgs(a));
  return readResult(res!.reader());
}

const T = thrift.Thrift.Type;
const M = thrift.Thrift.MessageType;

// biome-ignore lint/suspicious/noExplicitAny: npm thrift protocol objects are untyped.
type NpmProtocol = any;

function npmWriteArgs(p: NpmProtocol, a: EchoArgs): void {
  p.writeStructBegin('echo_args');
  p.writeFieldBegin('text', T.STRING, 1);
  p.writeString(a.text);
  p.writeFieldEnd();
  p.writeFieldBegin('big', T.I64, 2);
  p.writeI64(new thrift.Int64(BigInt.asUintN(64, a.big).toString(16).padStart(16, '0')));
  p.writeFieldEnd();
  p.writeFieldBegin('nums', T.LIST, 3);
  p.writeListBegin(T.I32, a.nums.length);
  for (const n of a.nums) p.writeI32(n);
  p.writeListEnd();
  p.writeFieldEnd();
  p.writeFieldBegin('flag', T.BOOL, 4);
  p.writeBool(a.flag);
  p.writeFieldEnd();
  p.writeFieldStop();
  p.writeStructEnd();
}

function npmReadArgs(p: NpmProtocol): EchoArgs {
  const a: EchoArgs = { text: '', big: 0n, nums: [], flag: false };
  p.readStructBegin();
  for (;;) {
    const f = p.readFieldBegin();
    if (f.ftype === T.STOP) break;
    if (f.fid === 1) a.text = p.readString();
    else if (f.fid === 2) a.big = BigInt.asIntN(64, BigInt(`0x${p.readI64().toOctetString()}`));
    else if (f.fid === 3) {
      const l = p.readListBegin();
      for (let i = 0; i < l.size; i++) a.nums.push(p.readI32());
      p.readListEnd();
    } else if (f.fid === 4) a.flag = p.readBool();
    else p.skip(f.ftype);
    p.readFieldEnd();
  }
  p.readStructEnd();
  return a;
}

/** An npm thrift client class for Echo, shaped like generated code. */
export class NpmEchoClient {
  _seqid = 0;
  _reqs: Record<number, (err: unknown, result?: string) => void> = {};
  constructor(
    readonly output: NpmProtocol,
    readonly pClass: NpmProtocol,
  ) {}
  new_seqid(): number {
    return (this._seqid += 1);
  }
  echo(a: EchoArgs, method = 'echo'): Promise<string> {
    this._seqid = this.new_seqid();
    return new Promise((resolve, reject) => {
      this._reqs[this._seqid] = (err, result) => (err ? reject(err) : resolve(result!));
      const p = new this.pClass(this.output);
      p.writeMessageBegin(method, M.CALL, this._seqid);
      npmWriteArgs(p, a);
      p.writeMessageEnd();
      p.flush ? p.flush() : this.output.flush();
    });
  }
  recv_echo(input: NpmProtocol, mtype: number, rseqid: number): void {
    this.recv(input, mtype, rseqid);
  }
  recv_fail(input: NpmProtocol, mtype: number, rseqid: number): void {
    this.recv(input, mtype, rseqid);
  }
  private recv(input: NpmProtocol, mtype: number, rseqid: number): void {
    const cb = this._reqs[rseqid] ?? (() => {});
    delete this._reqs[rseqid];
    if (mtype === M.EXCEPTION) {
      const x = new thrift.Thrift.TApplicationException();
      x.read(input);
      input.readMessageEnd();
      cb(x);
      return;
    }
    let s = '';
    input.readStructBegin();
    for (;;) {
      const f = input.readFieldBegin();
      if (f.ftype === T.STOP) break;
      if (f.fid === 0) s = input.readString();
      else input.skip(f.ftype);
      input.readFieldEnd();
    }
    input.readStructEnd();
    input.readMessageEnd();
    cb(null, s);
  }
}

/** An npm thrift processor for Echo, shaped like generated code. */
export class NpmEchoProcessor {
  process(input: NpmProtocol, output: NpmProtocol): void {
    const r = input.readMessageBegin();
    const a = npmReadArgs(input);
    input.readMessageEnd();
    const headers = typeof input.trans.getReadHeaders === 'function' ? input.trans.getReadHeaders() : {};
    if (r.fname !== 'echo') {
      output.writeMessageBegin(r.fname, M.EXCEPTION, r.rseqid);
      const x = new thrift.Thrift.TApplicationException(1, `unknown ${r.fname}`);
      x.code = 1; // npm thrift 0.22 writes `code`, not `type`, as field 2
      x.write(output);
    } else {
      if (typeof output.trans.setWriteHeader === 'function') output.trans.setWriteHeader('served-by', 'npm');
      output.writeMessageBegin('echo', M.REPLY, r.rseqid);
      output.writeStructBegin('echo_result');
      output.writeFieldBegin('success', T.STRING, 0);
      output.writeString(expected(a, headers.tenant ?? ''));
      output.writeFieldEnd();
      output.writeFieldStop();
      output.writeStructEnd();
    }
    output.writeMessageEnd();
    output.flush();
  }
}
