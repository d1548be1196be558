/**
 * ClientExchange's exclusive connections (exclusive-connection.ts) against a framed binary
 * node:net upstream under the test's control, on every driver this machine runs: calls run on
 * the stream's callbacks (never its promise-form writev/recv), an idle connection the upstream
 * closed or sent unasked bytes on is replaced before the next call instead of failing it, bytes
 * past a reply drop the connection but not the reply, calls queued on one connection are
 * answered in order, a reply over maxFrameSize and a call with no reply fail alone.
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

/** What the upstream does with each whole call frame it reads on a connection. */
type Behaviour = (socket: Socket, frame: Buffer, n: number) => void;

interface Upstream {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: Socket[];
  /** Resolves once `n` connections have closed on the upstream's side. */
  closed(n: number): Promise<void>;
}

describe.each(drivers)('ClientExchange connections on the $name driver', ({ name, skip }) => {
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

  function exchange(
    port: number,
    options: { timeout?: number; connections?: number; maxFrameSize?: number } = {},
  ) {
    const streams: TcpStream[] = [];
    const promiseForm = { writev: 0, recv: 0 };
    const ex = new ClientExchange(
      async () => {
        const stream = await TcpStream.connect({ host: '127.0.0.1', port, runtime });
        streams.push(stream);
        // Count the promise-form calls the connection makes (it should make none).
        const writev = stream.writev.bind(stream);
        const recv = stream.recv.bind(stream);
        stream.writev = (bufs) => {
          promiseForm.writev++;
          return writev(bufs);
        };
        stream.recv = () => {
          promiseForm.recv++;
          return recv();
        };
        return stream;
      },
      {
        connections: options.connections ?? 1,
        timeout: options.timeout ?? 10_000,
        ...(options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize }),
      },
    );
    cleanups.push(() => ex.close());
    return { ex, streams, promiseForm };
  }

  const echo: Behaviour = (socket, frame) => socket.write(replyTo(frame));

  it.skipIf(skip)('runs calls on the stream callbacks: no promise-form writev or recv', async () => {
    const up = await upstream(echo);
    const { ex, promiseForm } = exchange(up.port);
    for (let i = 0; i < 20; i++) {
      const reply = await ex.send(callOf(`call ${i}`), {});
      expect(textOf(reply)).toBe(`call ${i}`);
      ex.release(reply as ThriftFrame);
    }
    expect(promiseForm).toEqual({ writev: 0, recv: 0 });
  });

  it.skipIf(skip)('answers calls queued on one connection in order', async () => {
    const up = await upstream(echo);
    const { ex } = exchange(up.port);
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => ex.send(callOf(`q${i}`), {})));
    expect(replies.map(textOf)).toEqual(Array.from({ length: 8 }, (_, i) => `q${i}`));
    expect(up.accepted).toHaveLength(1);
  });

  it.skipIf(skip)('replaces an idle connection the upstream closed before the next call', async () => {
    // An upstream with a short keep-alive: it answers, then closes the connection.
    const up = await upstream((socket, frame) => socket.end(replyTo(frame)));
    const { ex } = exchange(up.port);
    expect(textOf(await ex.send(callOf('first'), {}))).toBe('first');
    // The upstream's side closes once the client closed too: the client noticed the idle close.
    await up.closed(1);
    expect(textOf(await ex.send(callOf('second'), {}))).toBe('second');
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

  it.skipIf(skip)('keeps a reply followed by bytes past it, and drops the connection', async () => {
    // The reply and a second copy in one write: the first answers the call, the rest is stray.
    const up = await upstream((socket, frame) =>
      socket.write(Buffer.concat([replyTo(frame), replyTo(frame)])),
    );
    const { ex } = exchange(up.port);
    expect(textOf(await ex.send(callOf('first'), {}))).toBe('first');
    expect(textOf(await ex.send(callOf('second'), {}))).toBe('second');
    expect(up.accepted).toHaveLength(2);
  });

  it.skipIf(skip)('refuses a reply frame over maxFrameSize and connects anew', async () => {
    const up = await upstream(echo);
    const { ex } = exchange(up.port, { maxFrameSize: 64 });
    await expect(ex.send(callOf('x'.repeat(100)), {})).rejects.toMatchObject({
      code: 'ERR_THRIFT_BAD_REPLY',
    });
    expect(textOf(await ex.send(callOf('short'), {}))).toBe('short');
    expect(up.accepted).toHaveLength(2);
  });

  it.skipIf(skip)('fails a call with no reply with ERR_THRIFT_TIMEOUT and connects anew', async () => {
    const up = await upstream((socket, frame, n) => {
      if (up.accepted.length > 1 || n > 0) socket.write(replyTo(frame)); // the first call: silence
    });
    const { ex } = exchange(up.port, { timeout: 50 });
    await expect(ex.send(callOf('lost'), {})).rejects.toMatchObject({ code: 'ERR_THRIFT_TIMEOUT' });
    expect(textOf(await ex.send(callOf('next'), {}))).toBe('next');
    expect(up.accepted).toHaveLength(2);
  });
});
