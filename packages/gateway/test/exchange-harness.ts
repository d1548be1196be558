/**
 * Test support for ClientExchange's connection suites (src/service/*-connection.test.ts): a framed
 * binary node:net upstream under the test's control (each whole call frame it reads goes to the
 * test's Behaviour), the frame edits behaviours answer with (replyTo, seqIdOf, withSeqId), and a
 * ClientExchange to it whose streams count what its connections do on them, each test's made on
 * a runtime of its own and closed after it (exchangeSuite, with packages/uring-runtime's
 * test/runtime-scope.ts). The calls are
 * @loch/thrift's test echo messages (packages/thrift/test/echo-call.ts). Not a test itself.
 */
import { createServer, type Socket } from 'node:net';
import { MessageType } from '@loch/thrift';
import { createRuntime, type DriverName, TcpStream } from '@loch/uring-runtime';
import { afterEach, beforeEach } from 'vitest';
import { RuntimeScope } from '../../uring-runtime/test/runtime-scope.js';
import { ClientExchange, type ClientExchangeOptions } from '../src/index.js';

/** What the upstream does with each whole call frame it reads on a connection (`n`: its index there). */
export type Behaviour = (socket: Socket, frame: Buffer, n: number) => void;

/** A running upstream. */
export interface Upstream {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: Socket[];
  /** Resolves once `n` connections have closed on the upstream's side. */
  closed(n: number): Promise<void>;
}

/** Inside a describe: each test's runtime on `driver` (unless `skip`), its upstreams and exchanges. */
export function exchangeSuite(
  driver: DriverName,
  skip: string | undefined,
  defaults: ClientExchangeOptions = {},
): {
  upstream(behaviour: Behaviour): Promise<Upstream>;
  exchange(port: number, options?: ClientExchangeOptions): { ex: ClientExchange; counts: StreamCounts };
} {
  const scope = new RuntimeScope();
  beforeEach(async () => {
    if (skip !== undefined) return;
    scope.use(await createRuntime({ driver, log: () => undefined }));
  });
  afterEach(() => scope.close());
  return {
    upstream: (behaviour) => startUpstream(scope, behaviour),
    exchange: (port, options = {}) => startExchange(scope, port, { ...defaults, ...options }),
  };
}

/** An upstream that answers every call with its reply (replyTo). */
export const echoBack: Behaviour = (socket, frame) => socket.write(replyTo(frame));

/** Starts an upstream on 127.0.0.1; it and its connections close with `scope`. */
async function startUpstream(scope: RuntimeScope, behaviour: Behaviour): Promise<Upstream> {
  const accepted: Socket[] = [];
  let closedCount = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((socket) => {
    accepted.push(socket);
    // Each reply at once (Nagle would hold a second one for the client's delayed ACK).
    socket.setNoDelay(true);
    let buffered = Buffer.alloc(0);
    let n = 0;
    socket.on('data', (d) => {
      buffered = Buffer.concat([buffered, d]);
      while (buffered.byteLength >= 4 && buffered.byteLength >= 4 + buffered.readUInt32BE(0)) {
        const size = 4 + buffered.readUInt32BE(0);
        const frame = buffered.subarray(0, size);
        buffered = buffered.subarray(size);
        behaviour(socket, frame, n++);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closedCount++;
      for (const w of waiters.filter((w) => w.n <= closedCount)) w.resolve();
    });
  });
  scope.defer(() => new Promise((resolve) => server.close(resolve)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scope.defer(() => {
    for (const socket of accepted) socket.destroy();
  });
  return {
    port: (server.address() as { port: number }).port,
    accepted,
    closed: (n) =>
      closedCount >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
  };
}

/** The framed REPLY to a framed binary call: the call with type REPLY and its first field's id 0. */
export function replyTo(frame: Buffer): Buffer {
  const reply = Buffer.from(frame);
  reply[7] = MessageType.REPLY;
  const field = 16 + reply.readUInt32BE(8);
  reply.writeUInt16BE(0, field + 1);
  return reply;
}

/** The seq id of a framed binary message (call or reply). */
export function seqIdOf(frame: Buffer): number {
  return frame.readInt32BE(12 + frame.readUInt32BE(8));
}

/** `frame` with its seq id replaced. */
export function withSeqId(frame: Buffer, seqId: number): Buffer {
  const out = Buffer.from(frame);
  out.writeInt32BE(seqId, 12 + out.readUInt32BE(8));
  return out;
}

/** What connections did on their streams: promise-form calls (a connection makes none) and writes. */
export interface StreamCounts {
  writev: number;
  recv: number;
  writeTo: number;
}

/**
 * A ClientExchange to 127.0.0.1:`port` on the scope's runtime (one connection and a 10 s timeout
 * unless `options` say otherwise), closed with the scope; `counts` grows with its streams' calls.
 */
function startExchange(
  scope: RuntimeScope,
  port: number,
  options: ClientExchangeOptions = {},
): { ex: ClientExchange; counts: StreamCounts } {
  const counts: StreamCounts = { writev: 0, recv: 0, writeTo: 0 };
  const runtime = scope.runtime;
  if (runtime === undefined) throw new Error('startExchange: the scope has no runtime (scope.use() first)');
  const connect = async () => {
    const stream = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
    const writev = stream.writev.bind(stream);
    const recv = stream.recv.bind(stream);
    const writeTo = stream.writeTo.bind(stream);
    stream.writev = (bufs) => {
      counts.writev++;
      return writev(bufs);
    };
    stream.recv = () => {
      counts.recv++;
      return recv();
    };
    stream.writeTo = (data, target) => {
      counts.writeTo++;
      writeTo(data, target);
    };
    return stream;
  };
  const ex = new ClientExchange(connect, { connections: 1, timeout: 10_000, ...options });
  scope.defer(() => ex.close());
  return { ex, counts };
}
