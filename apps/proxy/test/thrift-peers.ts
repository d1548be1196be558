/**
 * Thrift peers on node:net for the proxy's thrift tests (not a test file): a client of framed
 * calls, the length-prefixed upstream every scripted test upstream is built on (framedUpstream),
 * an echoing binary upstream, and the echo call (whole, or its args for a ThriftClient) and its
 * reply's reading.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import {
  createReader,
  createWriter,
  decodeFrame,
  encodeFrame,
  type FramingName,
  type MessageHeader,
  MessageType,
  type ProtocolWriter,
  readMessageHeader,
  type ThriftFrame,
  TType,
} from '@loch/thrift';

/** A binary message with an empty struct (a call, reply or oneway of no fields), unframed. */
export function emptyMessage(name: string, type: MessageType, seqId: number): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin(name, type, seqId);
  w.writeStructBegin();
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finishCopy();
}

/** The args struct of `echo(1: string text)`, as `ThriftClient.call(method, write)` takes it. */
export function echoArgs(text: string): (w: ProtocolWriter) => void {
  return (w) => {
    w.writeStructBegin();
    w.writeFieldBegin(TType.STRING, 1);
    w.writeString(text);
    w.writeFieldStop();
    w.writeStructEnd();
  };
}

/** A framed binary CALL of `echo` with seq id `seqId` and `text` as its string field 1. */
export function echoCall(text: string, seqId: number): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin('echo', MessageType.CALL, seqId);
  echoArgs(text)(w);
  return encodeFrame({ framing: 'framed', protocol: 'binary' }, w.finishCopy());
}

/** The message type, seq id and text of a framed binary reply to `echoCall` (as echoUpstream answers). */
export function readEcho(reply: Uint8Array): { type: MessageType; seqId: number; text: string } {
  const r = createReader('binary').reset(decodeFrame('framed', reply).payload);
  const { type, seqId } = r.readMessageBegin();
  r.readStructBegin();
  r.readFieldBegin();
  return { type, seqId, text: r.readString() };
}

/** A node:net client of framed calls, one at a time: `call(frame)` resolves the next whole reply frame. */
export async function netClient(
  port: number,
): Promise<{ call(frame: Uint8Array): Promise<Uint8Array>; close(): void }> {
  const socket = createConnection({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  let waiting: ((frame: Uint8Array) => void) | undefined;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0) && waiting !== undefined) {
      const frame = new Uint8Array(buf.subarray(0, 4 + buf.readUInt32BE(0)));
      buf = buf.subarray(frame.byteLength);
      const w = waiting;
      waiting = undefined;
      w(frame);
    }
  });
  return {
    call(frame) {
      return new Promise((resolve) => {
        waiting = resolve;
        socket.write(frame);
      });
    },
    close: () => socket.destroy(),
  };
}

/** One whole frame a framedUpstream received, and the connection it came on. */
export interface FramedCall {
  /** The frame as received, its length prefix included. */
  readonly bytes: Uint8Array;
  /** `bytes` decoded in the upstream's framing. */
  readonly frame: ThriftFrame;
  /** The message header of the frame's payload. */
  readonly header: MessageHeader;
  readonly socket: Socket;
}

/** A framedUpstream: its port, how many connections it accepted, and its end. */
export interface FramedUpstream {
  readonly port: number;
  connections(): number;
  /** Destroys every open connection and stops listening. */
  close(): Promise<void>;
}

/**
 * A node:net upstream of length-prefixed frames (framed, THeader and TTHeader all begin with a
 * 4-byte big-endian length) for the proxy's thrift tests: it slices each connection's bytes into
 * whole frames by that prefix, decodes each in `framing` and hands it to `answer`, which returns
 * the reply to write (in one write), or nothing when it answers by itself on `call.socket` (later,
 * in pieces, by closing, or never). Writes go out at once (no Nagle delay).
 */
export async function framedUpstream(
  framing: FramingName,
  answer: (call: FramedCall) => Uint8Array | undefined,
): Promise<FramedUpstream> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const bytes = new Uint8Array(buf.subarray(0, 4 + buf.readUInt32BE(0)));
        buf = buf.subarray(bytes.byteLength);
        const frame = decodeFrame(framing, bytes);
        const reply = answer({
          bytes,
          frame,
          header: readMessageHeader(frame.protocol, frame.payload),
          socket,
        });
        if (reply) socket.write(reply);
        // An answer that closed the connection ends its frames.
        if (socket.destroyed) return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => accepted,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A binary upstream (framed, or THeader when `theader`) answering each call with its message
 * echoed back as a REPLY, each reply in one write, except "slow" calls (never answered); records
 * the bytes of every call it got.
 */
export async function echoUpstream(
  theader = false,
): Promise<{ port: number; calls: Uint8Array[]; close(): Promise<void> }> {
  const calls: Uint8Array[] = [];
  const framing = theader ? 'theader' : 'framed';
  const up = await framedUpstream(framing, ({ bytes, frame, header }) => {
    calls.push(bytes);
    if (header.name === 'slow') return;
    const reply = frame.payload.slice();
    reply[3] = MessageType.REPLY; // strict binary: the type is the version word's last byte
    return encodeFrame({ ...frame, framing, protocol: 'binary' }, reply);
  });
  return { port: up.port, calls, close: up.close };
}
