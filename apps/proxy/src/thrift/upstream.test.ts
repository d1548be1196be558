/**
 * Exclusive (one call per connection) thrift upstream connections through ThriftUpstreams
 * against a framed node:net upstream: the upstream_call timeout is a deadline on the worker's
 * sweep, not a timer per call, and a call past it fails as 'timeout' with its connection
 * closed and not pooled; replies live in the connection's reader memory, reused only once every
 * reply it returned was released through its lease.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  createWriter,
  decodeFrame,
  encodeFrame,
  MessageType,
  readMessageHeader,
  type ThriftFrame,
} from '@loch/thrift';
import { UnifiedL4Connector } from '@loch/transports';
import type { ByteStream } from '@loch/uring-runtime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplyLease, ThriftUpstreamEndpoint, ThriftUpstreamError, ThriftUpstreams } from './upstream.js';

function message(name: string, type: MessageType, seqId: number): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin(name, type, seqId);
  w.writeStructBegin();
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finishCopy();
}

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
          encodeFrame({ framing: 'framed', protocol: 'binary' }, message(h.name, MessageType.REPLY, h.seqId)),
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
      encodeFrame({ framing: 'framed', protocol: 'binary' }, message(name, type, seqId)),
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
