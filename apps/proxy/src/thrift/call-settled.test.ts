/**
 * The call side of the relay's memory contract (ReplyLease.callSettled): ThriftUpstreams tells
 * a call's lease exactly once, on every path, that the call's own bytes are no longer lent to a
 * write, and never while a write carrying them is in flight: after the write completed, after a
 * failed write only once its stream is closed, at once when the call is never written. The
 * thrift server then hands the caller's receive buffer back to the runtime (callsInPlace), so a
 * settle that came early would let the kernel reuse bytes still being sent. Exclusive and
 * multiplexed upstreams, over the runtime's streams; the stream's writeTo is wrapped to see
 * which writes are in flight, to hold a completion back (a multiplexed upstream can answer
 * before its writev's completion is reported) and to fail one (no real peer fails a write on
 * demand).
 */
import {
  createWriter,
  decodeFrame,
  encodeFrame,
  MessageType,
  readMessageHeader,
  type ThriftFrame,
  TType,
} from '@loch/thrift';
import { UnifiedL4Connector } from '@loch/transports';
import { type ByteStream, RuntimeError, type WriteTarget } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type FramedUpstream, framedUpstream } from '../../test/thrift-peers.js';
import { ReplyLease, ThriftUpstreamEndpoint, ThriftUpstreams } from './upstream.js';

function message(name: string, type: MessageType, seqId: number, text = ''): Uint8Array {
  const w = createWriter('binary');
  w.writeMessageBegin(name, type, seqId);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, type === MessageType.REPLY ? 0 : 1);
  w.writeString(text);
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finishCopy();
}

/**
 * A framed binary upstream: answers every call at once, except ONEWAY ones, "slow" (never) and
 * "close" (the connection is closed instead).
 */
function upstream(): Promise<FramedUpstream> {
  return framedUpstream('framed', ({ header: h, socket }) => {
    if (h.type === MessageType.ONEWAY || h.name === 'slow') return;
    if (h.name === 'close') {
      socket.destroy();
      return;
    }
    return encodeFrame(
      { framing: 'framed', protocol: 'binary' },
      message(h.name, MessageType.REPLY, h.seqId),
    );
  });
}

/** What the wrapped streams do: the writes in flight (their buffers), and what tests ask. */
const writes = {
  inFlight: new Set<readonly Uint8Array[]>(),
  /** Writes carrying a buffer of this payload complete only once `release` is called. */
  holdFor: null as ArrayBufferLike | null,
  release: null as (() => void) | null,
  /** Writes carrying a buffer of this payload fail (EPIPE) without being sent. */
  failFor: null as ArrayBufferLike | null,
  /** The stream of the failed write. */
  failedOn: null as ByteStream | null,
  streams: [] as ByteStream[],
};

let connectSpy: { mockRestore(): void } | undefined;
beforeEach(() => {
  const connect = UnifiedL4Connector.prototype.connect;
  writes.inFlight.clear();
  writes.holdFor = null;
  writes.failFor = null;
  writes.failedOn = null;
  writes.streams = [];
  connectSpy = vi.spyOn(UnifiedL4Connector.prototype, 'connect').mockImplementation(async function (
    this: UnifiedL4Connector,
    ...args
  ) {
    const stream = await connect.apply(this, args);
    writes.streams.push(stream);
    const writeTo = stream.writeTo.bind(stream);
    stream.writeTo = (data: Uint8Array | readonly Uint8Array[], target: WriteTarget): void => {
      const parts = data instanceof Uint8Array ? [data] : data;
      const carries = (buffer: ArrayBufferLike | null) => parts.some((p) => p.buffer === buffer);
      writes.inFlight.add(parts);
      if (carries(writes.failFor)) {
        writes.failedOn = stream;
        queueMicrotask(() => {
          writes.inFlight.delete(parts);
          target.onWritten(RuntimeError.fromErrno(-32, 'writev'));
        });
        return;
      }
      const held = carries(writes.holdFor);
      writeTo(data, {
        onWritten(error) {
          const done = (): void => {
            writes.inFlight.delete(parts);
            target.onWritten(error);
          };
          if (held) writes.release = done;
          else done();
        },
      });
    };
    return stream;
  });
});

const open: { close(): unknown }[] = [];
afterEach(async () => {
  connectSpy?.mockRestore();
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A lease that counts callSettled() and checks that no write in flight carries the call's bytes. */
class CountingLease extends ReplyLease {
  settled = 0;
  /** Settles that came while a write carrying the call's bytes was in flight. */
  early = 0;
  /** Settles that came while the stream of a failed write was still open. */
  beforeClose = 0;
  constructor(readonly frame: ThriftFrame) {
    super();
  }
  override callSettled(): void {
    this.settled++;
    const buffer = this.frame.payload.buffer;
    for (const parts of writes.inFlight) if (parts.some((p) => p.buffer === buffer)) this.early++;
    if (writes.failFor === buffer && writes.failedOn?.closed !== true) this.beforeClose++;
  }
}

async function setup(multiplex: number, port?: number) {
  const up = await upstream();
  const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
  open.push(up, { close: () => upstreams.closeAll() });
  const key = new ThriftUpstreamEndpoint({
    address: { kind: 'tcp', host: '127.0.0.1', port: port ?? up.port },
    weight: 1,
    label: 'up',
    multiplex,
  }).key('framed');
  const call = (
    name: string,
    seqId: number,
    options: {
      type?: MessageType;
      timeout?: number;
      abandoned?: boolean;
      /** Its write fails / completes only when the test says (set before the write starts). */
      fail?: boolean;
      hold?: boolean;
    } = {},
  ) => {
    const frame = decodeFrame(
      'framed',
      encodeFrame(
        { framing: 'framed', protocol: 'binary' },
        message(name, options.type ?? MessageType.CALL, seqId, 'x'.repeat(2000)),
      ),
    );
    const lease = new CountingLease(frame);
    if (options.abandoned) lease.abandon();
    if (options.fail) writes.failFor = frame.payload.buffer;
    if (options.hold) writes.holdFor = frame.payload.buffer;
    const result = upstreams.call(
      key,
      frame,
      readMessageHeader('binary', frame.payload),
      { connect: 2000, call: options.timeout ?? 5000, maxFrameSize: 1 << 20 },
      lease,
    );
    return {
      lease,
      frame,
      result: result.then(
        () => 'ok' as const,
        (e: { failure?: string }) => e.failure,
      ),
    };
  };
  return { call, upstreams };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe.each([
  ['exclusive', 0],
  ['multiplexed', 8],
])('callSettled, %s upstream', (_name, multiplex) => {
  it('once per call, after its write: replies, ONEWAY calls, concurrent calls', async () => {
    const { call } = await setup(multiplex);
    const calls = [
      ...Array.from({ length: 12 }, (_, i) => call('get', i)),
      call('note', 50, { type: MessageType.ONEWAY }),
    ];
    expect(await Promise.all(calls.map((c) => c.result))).toEqual(calls.map(() => 'ok'));
    await settle();
    expect(calls.map((c) => [c.lease.settled, c.lease.early])).toEqual(calls.map(() => [1, 0]));
  });

  it('once per call on every failure: timeout, caller gone mid-call or before, upstream closing, refused connect', async () => {
    const { call } = await setup(multiplex);
    await call('get', 0).result; // connected
    const slow = call('slow', 1, { timeout: 50 });
    expect(await slow.result).toBe('timeout');
    const gone = call('slow', 2);
    await settle();
    gone.lease.abandon();
    expect(await gone.result).toBe('abandoned');
    const before = call('get', 3, { abandoned: true });
    expect(await before.result).toBe('abandoned');
    const closing = call('close', 4);
    expect(await closing.result).toBe('reset');
    const after = call('get', 5);
    expect(await after.result).toBe('ok');
    await settle();
    for (const c of [slow, gone, before, closing, after])
      expect([c.lease.settled, c.lease.early]).toEqual([1, 0]);

    const refusedPort = (await upstream()) as { port: number; close(): Promise<void> };
    await refusedPort.close();
    const refused = await setup(multiplex, refusedPort.port);
    const never = refused.call('get', 6);
    expect(await never.result).toBe('refused');
    await settle();
    expect(never.lease.settled).toBe(1);
  });

  it('a failed write settles its calls only once the stream is closed', async () => {
    const { call } = await setup(multiplex);
    await call('get', 0).result; // connected
    const failing = call('get', 1, { fail: true });
    expect(await failing.result).toBe('reset');
    await settle();
    expect(failing.lease.settled).toBe(1);
    expect(failing.lease.beforeClose).toBe(0);
    expect(failing.lease.early).toBe(0);
    writes.failFor = null;
    expect(await call('get', 2).result).toBe('ok');
  });
});

describe('callSettled, multiplexed upstream', () => {
  it('a reply that beats its writev completion does not settle the call: the completion does', async () => {
    const { call } = await setup(8);
    await call('get', 0).result; // connected
    writes.release = null;
    const frame = call('get', 1, { hold: true });
    expect(await frame.result).toBe('ok');
    // The reply came; the writev carrying the call is still "in flight".
    expect(writes.release).not.toBeNull();
    expect(frame.lease.settled).toBe(0);
    const others = [call('get', 2), call('get', 3)];
    writes.holdFor = null;
    writes.release!();
    expect(await Promise.all(others.map((c) => c.result))).toEqual(['ok', 'ok']);
    await settle();
    expect([frame.lease.settled, frame.lease.early]).toEqual([1, 0]);
    expect(others.map((c) => c.lease.settled)).toEqual([1, 1]);
  });
});
