/**
 * Exclusive (one call per connection) thrift upstream connections through ThriftUpstreams
 * against a framed node:net upstream: the upstream_call timeout is a deadline on the worker's
 * sweep, not a timer per call, and a call past it fails as 'timeout' with its connection
 * closed and not pooled; replies live in the connection's reader memory, reused only once every
 * reply it returned was released through its lease. A pooled connection whose peer speaks
 * unasked (stray bytes, a forged next reply) is discarded, and those bytes never answer a call.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { decodeFrame, encodeFrame, MessageType, readMessageHeader, type ThriftFrame } from '@loch/thrift';
import { UnifiedL4Connector } from '@loch/transports';
import { type ByteStream, currentRuntime } from '@loch/uring-runtime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { emptyMessage } from '../../test/thrift-peers.js';
import { ReplyLease, ThriftUpstreamEndpoint, ThriftUpstreamError, ThriftUpstreams } from './upstream.js';

/**
 * A framed binary upstream answering every call at once, except ONEWAY ones and methods named
 * "slow" (never); `slow` resolves when a slow call arrives, `closed` when a connection that got
 * one closes.
 */
async function framedUpstream(): Promise<{
  port: number;
  close(): Promise<void>;
  slow: Promise<void>;
  closed: Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let gotSlow: () => void = () => {};
  let slowClosed: () => void = () => {};
  const slow = new Promise<void>((resolve) => {
    gotSlow = resolve;
  });
  const closed = new Promise<void>((resolve) => {
    slowClosed = resolve;
  });
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.setNoDelay(true);
    let hadSlow = false;
    s.on('error', () => {});
    s.on('close', () => {
      sockets.delete(s);
      if (hadSlow) slowClosed();
    });
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const frame = decodeFrame('framed', new Uint8Array(buf.subarray(0, 4 + buf.readUInt32BE(0))));
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        const h = readMessageHeader('binary', frame.payload);
        if (h.type === MessageType.ONEWAY) continue;
        if (h.name === 'slow') {
          hadSlow = true;
          gotSlow();
          continue;
        }
        s.write(
          encodeFrame(
            { framing: 'framed', protocol: 'binary' },
            emptyMessage(h.name, MessageType.REPLY, h.seqId),
          ),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    slow,
    closed,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup() {
  const up = await framedUpstream();
  const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
  open.push(up, { close: () => upstreams.closeAll() });
  const key = new ThriftUpstreamEndpoint({
    address: { kind: 'tcp', host: '127.0.0.1', port: up.port },
    weight: 1,
    label: `127.0.0.1:${up.port}`,
    multiplex: 0,
  }).key('framed');
  const call = (
    name: string,
    seqId: number,
    timeout: number,
    lease?: ReplyLease,
    type: MessageType = MessageType.CALL,
  ): Promise<ThriftFrame | undefined> => {
    const frame = decodeFrame(
      'framed',
      encodeFrame({ framing: 'framed', protocol: 'binary' }, emptyMessage(name, type, seqId)),
    );
    return upstreams.call(
      key,
      frame,
      readMessageHeader('binary', frame.payload),
      { connect: 2000, call: timeout, maxFrameSize: 1 << 20 },
      lease,
    );
  };
  return { upstreams, call, up };
}

describe('exclusive thrift upstream connections', () => {
  it('arms no timer per call for the upstream_call timeout', async () => {
    const { upstreams, call } = await setup();
    await call('get', 1, 5000); // connected before counting
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    try {
      for (let i = 2; i < 40; i++) {
        const reply = await call('get', i, 5000);
        expect(readMessageHeader('binary', reply!.payload).seqId).toBe(i);
      }
      expect(setTimeoutSpy).not.toHaveBeenCalled();
    } finally {
      setTimeoutSpy.mockRestore();
    }
    expect(upstreams.stats().created).toBe(1);
  });

  it("runs a pooled call on its stream's callback forms: no promise-form write or receive per call", async () => {
    const connect = UnifiedL4Connector.prototype.connect;
    const streams: ByteStream[] = [];
    const connectSpy = vi.spyOn(UnifiedL4Connector.prototype, 'connect').mockImplementation(async function (
      this: UnifiedL4Connector,
      ...args
    ) {
      const stream = await connect.apply(this, args);
      streams.push(stream);
      return stream;
    });
    try {
      const { upstreams, call } = await setup();
      await call('get', 1, 5000);
      expect(streams).toHaveLength(1);
      const writev = vi.spyOn(streams[0]!, 'writev');
      const recv = vi.spyOn(streams[0]!, 'recv');
      const oneway = await call('note', 2, 5000, undefined, MessageType.ONEWAY);
      expect(oneway).toBeUndefined();
      for (let i = 3; i < 20; i++) {
        const reply = await call('get', i, 5000);
        expect(readMessageHeader('binary', reply!.payload).seqId).toBe(i);
      }
      expect(writev).not.toHaveBeenCalled();
      expect(recv).not.toHaveBeenCalled();
      expect(upstreams.stats().created).toBe(1);
    } finally {
      connectSpy.mockRestore();
    }
  });

  it('fails a call past its upstream_call timeout and does not pool its connection', async () => {
    const { upstreams, call } = await setup();
    await expect(call('slow', 1, 60)).rejects.toSatisfy(
      (e) =>
        e instanceof ThriftUpstreamError &&
        e.failure === 'timeout' &&
        e.message.includes('no reply within the upstream_call timeout (60 ms)'),
    );
    const reply = await call('get', 2, 5000);
    expect(readMessageHeader('binary', reply!.payload).seqId).toBe(2);
    expect(upstreams.stats().created).toBe(2);
  });

  it('closes the connection of a call whose caller went away: the upstream sees it closed, the call fails as abandoned, no late reply is read by a later call', async () => {
    const { upstreams, call, up } = await setup();
    await call('get', 1, 0); // a pooled connection
    const lease = new ReplyLease();
    const pending = call('slow', 2, 0, lease);
    await up.slow;
    lease.abandon();
    await expect(pending).rejects.toSatisfy(
      (e) => e instanceof ThriftUpstreamError && e.failure === 'abandoned',
    );
    await up.closed;
    const reply = await call('get', 3, 0);
    expect(readMessageHeader('binary', reply!.payload).seqId).toBe(3);
    expect(upstreams.stats().created).toBe(2);

    // A caller gone before its call is made: the idle connection stays pooled, unused.
    const gone = new ReplyLease();
    gone.abandon();
    await expect(call('get', 4, 0, gone)).rejects.toSatisfy(
      (e) => e instanceof ThriftUpstreamError && e.failure === 'abandoned',
    );
    expect(readMessageHeader('binary', (await call('get', 5, 0))!.payload).seqId).toBe(5);
    expect(upstreams.stats().created).toBe(2);
  });

  it("reads the next replies into a reply's memory once its lease is released, never before", async () => {
    const { upstreams, call } = await setup();
    // Replies echo the method name: 100 of ~2 KiB, three times the reader's 64 KiB buffer.
    const name = (i: number) => `m${i}`.padEnd(2000, '.');
    const released = new Set<ArrayBufferLike>();
    for (let i = 1; i <= 100; i++) {
      const lease = new ReplyLease();
      const reply = await call(name(i), i, 5000, lease);
      expect(readMessageHeader('binary', reply!.payload).name).toBe(name(i));
      released.add(reply!.payload.buffer);
      lease.release();
    }
    expect(released.size).toBe(1);

    // A reply still out (its lease not released) is never overwritten by later ones.
    const held = new ReplyLease();
    const first = await call(name(0), 200, 5000, held);
    const kept = new Set<ArrayBufferLike>([first!.payload.buffer]);
    for (let i = 1; i <= 100; i++) {
      const lease = new ReplyLease();
      const reply = await call(name(i), 200 + i, 5000, lease);
      kept.add(reply!.payload.buffer);
      lease.release();
    }
    expect(readMessageHeader('binary', first!.payload)).toMatchObject({ name: name(0), seqId: 200 });
    expect(kept.size).toBeGreaterThan(1);
    held.release();
    expect(upstreams.stats().created).toBe(1);
  });
});

/**
 * The peer of `strayPeer`, in a worker thread so that it can write while the test's thread is
 * blocked: a framed strict-binary upstream answering every call with an empty REPLY of the
 * call's name and seq id; on 'stray' it writes, unasked, on its newest connection a REPLY named
 * "forged" with seq id `data.seqId` (the next call's), then wakes the blocked test thread
 * and posts 'written'.
 */
const STRAY_PEER = `
const { createServer } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const signal = new Int32Array(workerData.signal);
function reply(name, seqId) {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + 4 + 4 + n.length + 4 + 1);
  b.writeUInt32BE(b.length - 4, 0);
  b.writeUInt32BE(0x80010002, 4);
  b.writeUInt32BE(n.length, 8);
  n.copy(b, 12);
  b.writeInt32BE(seqId, 12 + n.length);
  return b;
}
let newest;
const server = createServer((s) => {
  newest = s;
  s.setNoDelay(true);
  s.on('error', () => {});
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const frame = buf.subarray(4, 4 + buf.readUInt32BE(0));
      buf = buf.subarray(4 + frame.length);
      const n = frame.readUInt32BE(4);
      s.write(reply(frame.subarray(8, 8 + n).toString(), frame.readInt32BE(8 + n)));
    }
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', (m) => {
  if (m.stray === undefined) return server.close();
  newest.write(reply('forged', m.stray), () => {
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
    parentPort.postMessage('written');
  });
});
`;

async function strayPeer() {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(STRAY_PEER, { eval: true, workerData: { signal: signal.buffer } });
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  return {
    port,
    /** The forged reply is written (the kernel has it) before this returns; the thread is blocked meanwhile. */
    strayNow(seqId: number): void {
      Atomics.store(signal, 0, 0);
      worker.postMessage({ stray: seqId });
      // 'not-equal' when the peer was quicker than this wait.
      expect(Atomics.wait(signal, 0, 0, 10_000)).not.toBe('timed-out');
    },
    /** As strayNow, without blocking: the test's thread receives the bytes as they come. */
    async stray(seqId: number): Promise<void> {
      const written = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage({ stray: seqId });
      await written;
    },
    close: () => worker.terminate(),
  };
}

/** The relay's lease (service.ts RelayedReply): its holder releases it on every path. */
class InPlaceLease extends ReplyLease {
  override get inPlace(): boolean {
    return true;
  }
}

describe('replies read in place', () => {
  it("answers an in-place lease's reply as a view of its received chunk, kept until the lease is released, then given back", async () => {
    const runtime = await currentRuntime();
    const { upstreams, call } = await setup();
    const name = (i: number) => `m${i}`.padEnd(2000, '.');
    // Receive buffers of the runtime's pool lent to JavaScript (io_uring; none on legacy).
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    const base = inUse();
    for (let i = 1; i <= 100; i++) {
      const lease = new InPlaceLease();
      const reply = await call(name(i), i, 5000, lease);
      expect(readMessageHeader('binary', reply!.payload).name).toBe(name(i));
      lease.release();
    }
    // Every chunk went back: an idle pooled connection holds none.
    expect(inUse()).toBe(base);

    // A reply still out keeps its chunk (and its bytes) while later calls run on its connection.
    const held = new InPlaceLease();
    const first = await call(name(0), 200, 5000, held);
    for (let i = 1; i <= 20; i++) {
      const lease = new InPlaceLease();
      const reply = await call(name(i), 200 + i, 5000, lease);
      expect(readMessageHeader('binary', reply!.payload)).toMatchObject({ name: name(i), seqId: 200 + i });
      lease.release();
    }
    expect(readMessageHeader('binary', first!.payload)).toMatchObject({ name: name(0), seqId: 200 });
    if (runtime.driver.name === 'uring') expect(inUse()).toBe(base + 1);
    held.release();
    expect(inUse()).toBe(base);
    expect(upstreams.stats().created).toBe(1);
  });
});

describe('replies read in place while earlier ones are out', () => {
  it('keeps each reply in its own received chunk while the replies before it are still out (the connection is pooled again before the caller wrote its reply)', async () => {
    const runtime = await currentRuntime();
    const { upstreams, call } = await setup();
    const name = (i: number) => `m${i}`.padEnd(3000, '.');
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    const base = inUse();
    const out: { lease: InPlaceLease; reply: ThriftFrame; i: number }[] = [];
    for (let i = 1; i <= 6; i++) {
      const lease = new InPlaceLease();
      const reply = (await call(name(i), i, 5000, lease))!;
      out.push({ lease, reply, i });
    }
    // One receive buffer per reply still out: none was copied into the connection's reader
    // (before, a reply arriving while the previous one held the reader's chunk was copied).
    if (runtime.driver.name === 'uring') expect(inUse()).toBe(base + 6);
    for (const { reply, i } of out) {
      expect(readMessageHeader('binary', reply.payload)).toMatchObject({ name: name(i), seqId: i });
    }
    // Released out of order: each chunk goes back with its own lease.
    for (const k of [3, 0, 5, 1, 4, 2]) out[k]!.lease.release();
    expect(inUse()).toBe(base);
    expect(upstreams.stats().created).toBe(1);
  });
});

describe('a pooled upstream connection whose peer speaks unasked', () => {
  async function setupStray() {
    const peer = await strayPeer();
    const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
    open.push(peer, { close: () => upstreams.closeAll() });
    const key = new ThriftUpstreamEndpoint({
      address: { kind: 'tcp', host: '127.0.0.1', port: peer.port },
      weight: 1,
      label: `127.0.0.1:${peer.port}`,
      multiplex: 0,
    }).key('framed');
    const call = (seqId: number): Promise<ThriftFrame | undefined> => {
      const frame = decodeFrame(
        'framed',
        encodeFrame({ framing: 'framed', protocol: 'binary' }, emptyMessage('get', MessageType.CALL, seqId)),
      );
      return upstreams.call(key, frame, readMessageHeader('binary', frame.payload), {
        connect: 2000,
        call: 5000,
        maxFrameSize: 1 << 20,
      });
    };
    const answered = async (seqId: number): Promise<string> => {
      const reply = await call(seqId);
      const header = readMessageHeader('binary', reply!.payload);
      expect(header.seqId).toBe(seqId);
      return header.name;
    };
    return { peer, upstreams, call, answered };
  }

  it('drops an idle connection whose peer sent a forged next reply, and answers the next call from a new one', async () => {
    const { peer, upstreams, answered } = await setupStray();
    expect(await answered(1)).toBe('get');
    await peer.stray(2);
    await vi.waitFor(() => expect(upstreams.stats().idle).toBe(0));
    expect(await answered(2)).toBe('get');
    expect(upstreams.stats().created).toBe(2);
  });

  // The bytes are in the kernel when the connection is taken and written to: on io_uring the
  // receive that holds them completes before the call's write (the runtime's WriteTarget order),
  // so they predate the call. The legacy driver reads the socket after a write made in the same
  // tick, so there, as in nginx, bytes arriving while a connection is reused are its answer.
  it.runIf(process.env.LOCH_DRIVER !== 'legacy')(
    'fails a call whose connection received bytes before the call was written, never answering them',
    async () => {
      const { peer, upstreams, call, answered } = await setupStray();
      expect(await answered(1)).toBe('get');
      peer.strayNow(2);
      // Taken from the pool and written to before this thread saw the forged bytes.
      const taken = call(2);
      await expect(taken).rejects.toSatisfy(
        (e) =>
          e instanceof ThriftUpstreamError &&
          e.failure === 'protocol' &&
          e.message.includes('before the call was written'),
      );
      expect(await answered(3)).toBe('get');
      expect(upstreams.stats()).toMatchObject({ created: 2, idle: 1 });
    },
  );
});
