/**
 * Thrift peers for loch's end-to-end tests, all on loopback: npm `thrift` servers and clients
 * (framed binary and compact, written the way its generator writes them, for any method),
 * Debian python3-thrift servers and clients (test/thrift/python/thrift_peer.py, /usr/bin/python3),
 * and a @loch/thrift server on the runtime (every framing, TTHeader included, which no other
 * peer here speaks). The one IDL: `string <method>(1: string text)`; a server answers
 * "<name>:<method>:<text>" (Loch's adds the framing and protocol it saw). Not a test file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  createReply,
  createWriter,
  encodeFrame,
  type FramingName,
  MessageType,
  type ProtocolName,
  type ProtocolReader,
  type ProtocolWriter,
  TApplicationException,
  TApplicationExceptionType,
  ThriftClient,
  ThriftServer,
  TType,
} from '@loch/thrift';
import { type Runtime, TcpListener, TcpStream } from '@loch/uring-runtime';
import { type FramedUpstream, framedUpstream } from '../thrift-peers.js';

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: npm thrift ships no types for its internals.
export const thrift: any = require('thrift');

export const PYTHON = '/usr/bin/python3';
export const hasPython = existsSync(PYTHON);
const PY_SCRIPT = fileURLToPath(new URL('./python/thrift_peer.py', import.meta.url));

/** Writes the args (or result) struct `{fid: string text}` with Loch's writer. */
export function writeText(text: string, fid = 1): (w: ProtocolWriter) => void {
  return (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, fid);
    w.writeString(text);
    w.writeFieldStop();
    w.writeStructEnd();
  };
}

/** Reads the first string field of a struct with Loch's reader. */
export function readText(r: ProtocolReader): string {
  let s = '';
  r.readStructBegin();
  for (;;) {
    const t = r.readFieldBegin();
    if (t === TType.STOP) break;
    if (t === TType.STRING && s === '') s = r.readString();
    else r.skip(t);
  }
  r.readStructEnd();
  return s;
}

const T = thrift.Thrift.Type;
const M = thrift.Thrift.MessageType;

// biome-ignore lint/suspicious/noExplicitAny: npm thrift protocol objects are untyped.
type NpmProtocol = any;

function npmReadText(p: NpmProtocol): string {
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

function npmWriteText(p: NpmProtocol, text: string, fid: number): void {
  p.writeStructBegin('s');
  p.writeFieldBegin('f', T.STRING, fid);
  p.writeString(text);
  p.writeFieldEnd();
  p.writeFieldStop();
  p.writeStructEnd();
}

/** A running npm thrift server. */
export interface NpmUpstream {
  readonly port: number;
  /** Connections it accepted so far. */
  connections(): number;
  /** Texts of the oneway calls it received. */
  readonly oneways: string[];
  close(): Promise<void>;
}

/** An npm thrift server (framed, binary or compact) answering every method as `name`. */
export async function npmUpstream(name: string, protocol: ProtocolName = 'binary'): Promise<NpmUpstream> {
  const oneways: string[] = [];
  const processor = {
    process(input: NpmProtocol, output: NpmProtocol): void {
      const r = input.readMessageBegin();
      const text = npmReadText(input);
      input.readMessageEnd();
      if (r.mtype === M.ONEWAY) {
        oneways.push(text);
        return;
      }
      output.writeMessageBegin(r.fname, M.REPLY, r.rseqid);
      npmWriteText(output, `${name}:${r.fname}:${text}`, 0);
      output.writeMessageEnd();
      output.flush();
    },
  };
  const server: Server = thrift.createMultiplexServer(processor, {
    transport: thrift.TFramedTransport,
    protocol: protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
  });
  let accepted = 0;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => accepted,
    oneways,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An npm thrift client over framed binary or compact, calling any method name. */
export class NpmClient {
  _seqid = 0;
  _reqs: Record<number, (err: unknown, result?: string) => void> = {};
  // biome-ignore lint/suspicious/noExplicitAny: npm thrift's connection is untyped.
  connection: any;

  /** Called by npm thrift's createClient, as generated clients are. */
  constructor(
    readonly output: NpmProtocol,
    readonly pClass: NpmProtocol,
  ) {}

  /** Connects to 127.0.0.1:port. */
  static async connect(
    port: number,
    protocol: ProtocolName = 'binary',
    transport: 'framed' | 'header' | 'buffered' = 'framed',
  ): Promise<NpmClient> {
    const header = transport === 'header';
    const connection = thrift.createConnection('127.0.0.1', port, {
      transport: transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport,
      protocol: header
        ? thrift.THeaderProtocol
        : protocol === 'binary'
          ? thrift.TBinaryProtocol
          : thrift.TCompactProtocol,
    });
    connection.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      connection.once('connect', resolve);
      connection.once('error', reject);
    });
    const client = thrift.createClient(NpmClient, connection) as NpmClient;
    client.connection = connection;
    if (header && protocol === 'compact') client.output.setProtocolId(2);
    // npm thrift hands a reply to `recv_<name>`: answer every name.
    const proxied = new Proxy(client, {
      get: (target, p, receiver) =>
        typeof p === 'string' && p.startsWith('recv_')
          ? target.recv.bind(target)
          : Reflect.get(target, p, receiver),
    });
    connection.client = proxied;
    return proxied;
  }

  new_seqid(): number {
    return (this._seqid += 1);
  }

  /** Calls `method(text)`; resolves the result or rejects with the TApplicationException. */
  call(method: string, text: string): Promise<string> {
    const seqid = this.new_seqid();
    return new Promise((resolve, reject) => {
      this._reqs[seqid] = (err, result) => (err ? reject(err) : resolve(result!));
      this.write(method, M.CALL, seqid, text);
    });
  }

  /** Sends `method(text)` as ONEWAY. */
  oneway(method: string, text: string): void {
    this.write(method, M.ONEWAY, this.new_seqid(), text);
  }

  private write(method: string, type: number, seqid: number, text: string): void {
    const p = new this.pClass(this.output);
    p.writeMessageBegin(method, type, seqid);
    npmWriteText(p, text, 1);
    p.writeMessageEnd();
    // THeaderProtocol frames the message itself; the others leave it to the transport.
    p.flush ? p.flush() : this.output.flush();
  }

  recv(input: NpmProtocol, mtype: number, rseqid: number): void {
    const cb = this._reqs[rseqid] ?? (() => {});
    delete this._reqs[rseqid];
    if (mtype === M.EXCEPTION) {
      const x = new thrift.Thrift.TApplicationException();
      x.read(input);
      input.readMessageEnd();
      cb(x);
      return;
    }
    const s = npmReadText(input);
    input.readMessageEnd();
    cb(null, s);
  }

  close(): void {
    this.connection.end();
  }
}

/** A @loch/thrift server on `runtime` answering "name:framing:protocol:method:text" in any framing. */
export async function lochUpstream(
  name: string,
  runtime: Runtime,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = new ThriftServer(
    {
      call(req) {
        const text = readText(req.reader());
        const f = req.frame;
        const reply = createReply(
          req,
          writeText(`${name}:${f.framing}:${f.protocol}:${req.header.name}:${text}`, 0),
        );
        // Headers travel both ways: the caller's `tenant` comes back as `seen-tenant`.
        const tenant = f.headers.get('tenant');
        return tenant === undefined ? reply : { ...reply, headers: new Map([['seen-tenant', tenant]]) };
      },
    },
    { maxConcurrentCalls: 16 },
  );
  const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
  const address = listener.localAddress;
  void server.serve(listener);
  return { port: address.family === 'unix' ? 0 : address.port, close: () => server.close() };
}

/** A @loch/thrift client on `runtime` (TTHeader, THeader...) to 127.0.0.1:port. */
export async function lochClient(
  port: number,
  runtime: Runtime,
  options: {
    framing: FramingName;
    protocol: ProtocolName;
    headers?: ReadonlyMap<string, string>;
    intHeaders?: ReadonlyMap<number, string>;
    transforms?: readonly number[];
  },
): Promise<ThriftClient> {
  const stream = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
  return new ThriftClient(stream, { ...options, timeout: 10_000 });
}

/** Calls `method(text)` with Loch's client and reads the string result. */
export async function lochCall(client: ThriftClient, method: string, text: string): Promise<string> {
  const res = await client.call(method, writeText(text));
  return readText(res!.reader());
}

/** A running python3-thrift server. */
export interface PythonUpstream {
  readonly port: number;
  readonly child: ChildProcess;
  close(): Promise<void>;
}

/** Starts `thrift_peer.py server <transport> <name>`. */
export async function pythonUpstream(transport: 'framed' | 'header', name: string): Promise<PythonUpstream> {
  const child = spawn(PYTHON, [PY_SCRIPT, 'server', transport, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number.parseInt(d, 10)));
    child.once('exit', (code) => reject(new Error(`python server exited ${code}`)));
  });
  return {
    port,
    child,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs `thrift_peer.py client ...` to its end; resolves its output lines. */
export function pythonClient(
  port: number,
  transport: 'framed' | 'header',
  protocol: ProtocolName,
  method: string,
  texts: readonly string[],
  headers: Record<string, string> = {},
): Promise<string[]> {
  const args = [PY_SCRIPT, 'client', String(port), transport, protocol, method, texts.join(',')];
  for (const [k, v] of Object.entries(headers)) args.push(`${k}=${v}`);
  const child = spawn(PYTHON, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (err += b));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) =>
      code === 0
        ? resolve(out.trim().split('\n'))
        : reject(new Error(`python client exited ${code}: ${err}`)),
    );
  });
}

/**
 * A framed-binary upstream that misbehaves on purpose, by method name: `extra` answers and
 * sends 3 bytes more in the same write, `wrongseq` answers with another seq id, `appex` answers
 * an EXCEPTION message (WRONG_METHOD_NAME "raw says no"); any other name is answered properly. Counts connections (to see whether loch reused one).
 */
export async function misbehavingUpstream(): Promise<FramedUpstream> {
  return framedUpstream('framed', ({ header: { name, seqId } }) => {
    let payload: Uint8Array;
    if (name === 'appex') {
      const x = new TApplicationException(TApplicationExceptionType.WRONG_METHOD_NAME, 'raw says no');
      payload = x.toMessage('binary', name, seqId);
    } else {
      const w = createWriter('binary');
      w.writeMessageBegin(name, MessageType.REPLY, name === 'wrongseq' ? seqId + 1 : seqId);
      writeText(`raw:${name}`, 0)(w);
      w.writeMessageEnd();
      payload = w.finish();
    }
    const extra = name === 'extra' ? Buffer.from([0, 0, 0]) : Buffer.alloc(0);
    return Buffer.concat([encodeFrame({ framing: 'framed', protocol: 'binary' }, payload), extra]);
  });
}
