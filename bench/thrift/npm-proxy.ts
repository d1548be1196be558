/**
 * The Thrift proxy a Node user would write today with npm `thrift` (0.22), as the benchmark's
 * baseline: framed binary both ways, one npm thrift client connection to the upstream per
 * downstream connection, and per call what generated code does: the processor decodes the
 * call's args struct, the handler calls the same method through the connection's client (which
 * encodes the args again, matches the reply by seq id and decodes the result), and the result
 * is encoded into the reply. Speaks the benchmark's IDL, `string bench(1: string text)`: like
 * generated code, the client has one `recv_<method>` per IDL method (npm thrift's connection
 * hands a reply to `client["recv_" + name]`); a reply to any other name is an error.
 *
 * Usage: tsx npm-proxy.ts <port> <upstream port>
 */
import { createRequire } from 'node:module';
import * as net from 'node:net';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift ships no types for its internals.
const thrift: any = require('thrift');
const T = thrift.Thrift.Type;
const M = thrift.Thrift.MessageType;

// biome-ignore lint/suspicious/noExplicitAny: npm thrift protocol objects are untyped.
type Protocol = any;

function readText(p: Protocol): string {
  let s = '';
  p.readStructBegin();
  for (;;) {
    const f = p.readFieldBegin();
    if (f.ftype === T.STOP) break;
    if (f.ftype === T.STRING && s === '') s = p.readString();
    else p.skip(f.ftype);
    p.readFieldEnd();
  }
  p.readStructEnd();
  return s;
}

function writeText(p: Protocol, text: string, fid: number): void {
  p.writeStructBegin('s');
  p.writeFieldBegin('text', T.STRING, fid);
  p.writeString(text);
  p.writeFieldEnd();
  p.writeFieldStop();
  p.writeStructEnd();
}

/** The client npm thrift's createClient builds, as generated code has it (any method name). */
class UpstreamClient {
  _seqid = 0;
  _reqs: Record<number, (err: unknown, result?: string) => void> = {};
  constructor(
    readonly output: Protocol,
    readonly pClass: Protocol,
  ) {}
  new_seqid(): number {
    return (this._seqid += 1);
  }
  call(method: string, text: string, cb: (err: unknown, result?: string) => void): void {
    const seqid = this.new_seqid();
    this._reqs[seqid] = cb;
    const p = new this.pClass(this.output);
    p.writeMessageBegin(method, M.CALL, seqid);
    writeText(p, text, 1);
    p.writeMessageEnd();
    this.output.flush();
  }
  /** What generated code has for `bench` (npm thrift's connection calls it by the reply's name). */
  recv_bench(input: Protocol, mtype: number, rseqid: number): void {
    const cb = this._reqs[rseqid] ?? (() => {});
    delete this._reqs[rseqid];
    if (mtype === M.EXCEPTION) {
      const x = new thrift.Thrift.TApplicationException();
      x.read(input);
      input.readMessageEnd();
      cb(x);
      return;
    }
    const s = readText(input);
    input.readMessageEnd();
    cb(null, s);
  }
}

const [port, upstreamPort] = process.argv.slice(2).map(Number);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const connection = thrift.createConnection('127.0.0.1', upstreamPort, {
    transport: thrift.TFramedTransport,
    protocol: thrift.TBinaryProtocol,
  });
  connection.on('error', () => socket.destroy());
  const client = thrift.createClient(UpstreamClient, connection) as UpstreamClient;
  socket.on('error', () => connection.end());
  socket.on('close', () => connection.end());
  const processor = {
    process(input: Protocol, output: Protocol): void {
      const r = input.readMessageBegin();
      const text = readText(input);
      input.readMessageEnd();
      client.call(r.fname, text, (err, result) => {
        if (err) {
          const x = new thrift.Thrift.TApplicationException(
            thrift.Thrift.TApplicationExceptionType.INTERNAL_ERROR,
            String((err as Error).message ?? err),
          );
          output.writeMessageBegin(r.fname, M.EXCEPTION, r.rseqid);
          x.write(output);
        } else {
          output.writeMessageBegin(r.fname, M.REPLY, r.rseqid);
          writeText(output, result!, 0);
        }
        output.writeMessageEnd();
        output.flush();
      });
    },
  };
  // What npm thrift's own server does per connection (lib/nodejs/lib/thrift/server.js).
  socket.on(
    'data',
    thrift.TFramedTransport.receiver((transportWithData: Protocol) => {
      const input = new thrift.TBinaryProtocol(transportWithData);
      const output = new thrift.TBinaryProtocol(
        new thrift.TFramedTransport(undefined, (buf: Buffer) => socket.write(buf)),
      );
      try {
        for (;;) {
          processor.process(input, output);
          transportWithData.commitPosition();
        }
      } catch (err) {
        if (
          err instanceof thrift.InputBufferUnderrunError ||
          (err as Error).message === 'Invalid type: undefined'
        )
          transportWithData.rollbackPosition();
        else socket.destroy();
      }
    }),
  );
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`npm thrift proxy on ${port}\n`));
