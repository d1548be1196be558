/**
 * ClientExchange's multiplexed connections (multiplexed-connection.ts) against a framed binary
 * node:net upstream under the test's control, on every driver this machine runs: calls run on
 * the stream's callbacks (never its promise-form writev/recv), the calls of one pass go out in
 * one write, replies answered out of order reach their own calls, a reply with a seq id no
 * call holds fails every call of its connection (the next call connects anew), a call that
 * times out fails alone and its late reply is dropped, the upstream's end fails the calls in
 * flight, and unasked bytes on an idle connection replace it before the next call.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BinaryReader, createWriter, MessageType, type ThriftFrame, TType } from '@loch/thrift';
import { createRuntime, type DriverName, type Runtime, TcpStream } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClientExchange } from './client-exchange.js';

async function available(driver: DriverName): Promise<string | undefined> {
  try {
    const rt = await createRuntime({ driver, log: () => undefined });
    await rt.close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const drivers: { name: DriverName; skip: string | undefined }[] = [];
for (const name of ['legacy', 'uring'] as const) drivers.push({ name, skip: await available(name) });

/** The encoded CALL of `ping(1: string text)`. */
function callOf(text: string): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin('ping', MessageType.CALL, 0);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, 1);
  w.writeString(text);
  w.writeFieldStop();
  w.writeStructEnd();
  return w.finishCopy();
}

function textOf(reply: ThriftFrame | undefined): string {
  const r = new BinaryReader().reset(reply?.payload as Uint8Array);
  r.readMessageBegin();
  r.readStructBegin();
  r.readFieldBegin();
  return r.readString();
}

/** The framed REPLY to a framed `ping` call: the call with type REPLY and field id 0. */
function replyTo(frame: Buffer): Buffer {
  const reply = Buffer.from(frame);
  reply[7] = MessageType.REPLY;
  const field = 16 + reply.readUInt32BE(8);
  reply.writeUInt16BE(0, field + 1);
  return reply;
}

/** The seq id of a framed binary message (call or reply). */
function seqIdOf(frame: Buffer): number {
  return frame.readInt32BE(12 + frame.readUInt32BE(8));
}

/** `frame` with its seq id replaced. */
function withSeqId(frame: Buffer, seqId: number): Buffer {
  const out = Buffer.from(frame);
  out.writeInt32BE(seqId, 12 + out.readUInt32BE(8));
  return out;
}

/** What the upstream does with each whole call frame it reads on a connection. */
type Behaviour = (socket: Socket, frame: Buffer, n: number) => void;

interface Upstream {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: Socket[];
  /** Resolves once `n` connections have closed on the upstream's side. */
  closed(n: number): Promise<void>;
}

describe.each(drivers)('ClientExchange multiplexed connections on the $name driver', ({ name, skip }) => {
  let runtime: Runtime;
  let server: Server | undefined;
  const cleanups: (() => unknown)[] = [];

  beforeEach(async () => {
    if (skip !== undefined) return;
    runtime = await createRuntime({ driver: name, log: () => undefined });
  });
  afterEach(async () => {
    if (skip !== undefined) return;
    for (const c of cleanups.splice(0).reverse()) await c();
    for (const s of server === undefined ? [] : [server]) await new Promise((r) => s.close(r));
    server = undefined;
    await runtime.close();
  });

  async function upstream(behaviour: Behaviour): Promise<Upstream> {
    const accepted: Socket[] = [];
    let closedCount = 0;
    const waiters: { n: number; resolve: () => void }[] = [];
    const s = createServer((socket) => {
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
    server = s;
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const socket of accepted) socket.destroy();
    });
    return {
      port: (s.address() as { port: number }).port,
      accepted,
      closed: (n) =>
        closedCount >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
    };
  }

  function exchange(port: number, options: { timeout?: number; connections?: number } = {}) {
    const counts = { writev: 0, recv: 0, writeTo: 0 };
    const ex = new ClientExchange(
      async () => {
        const stream = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
        // Count the promise-form calls the connection makes (it should make none), and its writes.
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
      },
      { connections: options.connections ?? 1, timeout: options.timeout ?? 10_000, multiplexed: true },
    );
    cleanups.push(() => ex.close());
    return { ex, counts };
  }

  const echo: Behaviour = (socket, frame) => socket.write(replyTo(frame));

  it.skipIf(skip)('sends the calls of one pass in one write, on the stream callbacks', async () => {
    const up = await upstream(echo);
    const { ex, counts } = exchange(up.port);
    // The connection is made by the first call; the calls after it wait for it.
    expect(textOf(await ex.send(callOf('first'), {}))).toBe('first');
    counts.writeTo = 0;
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => ex.send(callOf(`c${i}`), {})));
    expect(replies.map(textOf)).toEqual(Array.from({ length: 8 }, (_, i) => `c${i}`));
    for (const r of replies) ex.release(r as ThriftFrame);
    expect(counts).toEqual({ writev: 0, recv: 0, writeTo: 1 });
    expect(up.accepted).toHaveLength(1);
  });

  it.skipIf(skip)('matches replies answered out of order to their calls', async () => {
    // Holds the calls of each connection until six came, then answers them last first.
    const held: Buffer[] = [];
    const up = await upstream((socket, frame) => {
      held.push(replyTo(frame));
      if (held.length === 6) socket.write(Buffer.concat(held.splice(0).reverse()));
    });
    const { ex } = exchange(up.port);
    const texts = Array.from({ length: 6 }, (_, i) => `m${i}`);
    const replies = await Promise.all(texts.map((t) => ex.send(callOf(t), {})));
    expect(replies.map(textOf)).toEqual(texts);
    expect(up.accepted).toHaveLength(1);
  });

  it.skipIf(skip)('fails every call of a connection on a reply with an unknown seq id', async () => {
    const up = await upstream((socket, frame) => {
      // The first connection answers its second call with an id nobody holds.
      if (up.accepted.length === 1 && seqIdOf(frame) === 2) {
        socket.write(withSeqId(replyTo(frame), 0x7000));
      } else if (up.accepted.length > 1) socket.write(replyTo(frame));
    });
    const { ex } = exchange(up.port);
    const a = ex.send(callOf('a'), {});
    const b = ex.send(callOf('b'), {});
    await expect(a).rejects.toMatchObject({ code: 'ERR_THRIFT_BAD_REPLY', message: /unknown seq id 28672/ });
    await expect(b).rejects.toMatchObject({ code: 'ERR_THRIFT_BAD_REPLY' });
    await up.closed(1);
    expect(textOf(await ex.send(callOf('next'), {}))).toBe('next');
    expect(up.accepted).toHaveLength(2);
  });

  it.skipIf(skip)(
    'times a call out alone and drops its late reply',
    async () => {
      let lost: { socket: Socket; frame: Buffer } | undefined;
      let arrived = () => {};
      const lostArrived = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      const up = await upstream((socket, frame) => {
        if (textOf({ payload: frame.subarray(4) } as unknown as ThriftFrame) === 'lost') {
          lost = { socket, frame };
          arrived();
        } else socket.write(replyTo(frame));
      });
      // A timeout no loopback round trip reaches on a loaded machine: 'next' and 'after' must not
      // time out, only the call the upstream never answers.
      const { ex } = exchange(up.port, { timeout: 1_000 });
      const lostCall = ex.send(callOf('lost'), {});
      await lostArrived;
      await expect(lostCall).rejects.toMatchObject({ code: 'ERR_THRIFT_TIMEOUT' });
      // The late reply comes while another call is in flight: dropped, that call answered.
      const next = ex.send(callOf('next'), {});
      lost?.socket.write(replyTo(lost.frame));
      expect(textOf(await next)).toBe('next');
      expect(textOf(await ex.send(callOf('after'), {}))).toBe('after');
      expect(up.accepted).toHaveLength(1);
    },
    20_000,
  );

  it.skipIf(skip)('fails the calls in flight when the upstream ends, then connects anew', async () => {
    const up = await upstream((socket, frame, n) => {
      if (up.accepted.length === 1 && n === 1) socket.end();
      else if (up.accepted.length > 1) socket.write(replyTo(frame));
    });
    const { ex } = exchange(up.port);
    const calls = [ex.send(callOf('x'), {}), ex.send(callOf('y'), {})];
    for (const c of calls) await expect(c).rejects.toMatchObject({ code: 'ERR_THRIFT_CLOSED' });
    expect(textOf(await ex.send(callOf('again'), {}))).toBe('again');
    expect(up.accepted).toHaveLength(2);
  });

  it.skipIf(skip)('replaces an idle connection the upstream sent unasked bytes on', async () => {
    const up = await upstream((socket, frame, n) => {
      socket.write(replyTo(frame));
      // After the first reply, a stray frame on the idle connection.
      if (n === 0) setImmediate(() => socket.write(replyTo(frame)));
    });
    const { ex } = exchange(up.port);
    expect(textOf(await ex.send(callOf('first'), {}))).toBe('first');
    await up.closed(1);
    expect(textOf(await ex.send(callOf('second'), {}))).toBe('second');
    expect(up.accepted).toHaveLength(2);
  });

  it.skipIf(skip)('receives replies into the same memory once each was released', async () => {
    const up = await upstream(echo);
    const { ex } = exchange(up.port);
    const buffers = new Set<ArrayBufferLike>();
    const big = 'x'.repeat(2048);
    for (let i = 0; i < 50; i++) {
      const replies = await Promise.all([
        ex.send(callOf(`${big}a${i}`), {}),
        ex.send(callOf(`${big}b${i}`), {}),
      ]);
      expect(replies.map(textOf)).toEqual([`${big}a${i}`, `${big}b${i}`]);
      for (const r of replies) {
        buffers.add((r as ThriftFrame).payload.buffer);
        ex.release(r as ThriftFrame);
      }
    }
    // Without release every few replies need a new buffer (the reader appends).
    expect(buffers.size).toBe(1);
  });
});
