/**
 * Multiplexed upstream connections (mux.ts through ThriftUpstreams) against a scripted
 * upstream on node:net that records what it receives and answers when and how a test says:
 * concurrent calls share a connection with remapped seq ids, replies out of order reach their
 * calls with the callers' ids, compact frames whose seq id varint changes length are
 * re-encoded, THeader with zlib and headers, tombstones for timed-out ids (a late reply is
 * dropped, its id handed out again only after it), an unknown reply id failing the
 * connection, an upstream closing with calls in flight, ONEWAY calls freed at write, and no
 * timer armed per call or idle period (deadlines go to the worker's sweep).
 */
import type { Socket } from 'node:net';
import {
  createReader,
  createWriter,
  decodeFrame,
  encodeFrame,
  type FramingName,
  MessageType,
  messageBodyOffset,
  type ProtocolName,
  readMessageHeader,
  THeaderTransform,
  type ThriftFrame,
  TType,
} from '@loch/thrift';
import { UnifiedL4Connector } from '@loch/transports';
import { type ByteStream, currentRuntime } from '@loch/uring-runtime';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { framedUpstream } from '../../test/thrift-peers.js';
import { ReplyLease, ThriftUpstreamEndpoint, type ThriftUpstreamKey, ThriftUpstreams } from './upstream.js';

/** A call as the upstream received it. */
interface Received {
  readonly name: string;
  readonly type: number;
  /** Message header seq id. */
  readonly seqId: number;
  /** Framing header seq id (THeader), else the message's. */
  readonly frameSeqId: number;
  readonly text: string;
  readonly frame: ThriftFrame;
  /** Sends the reply `up:<name>:<text>` (message seq id `seqId` unless overridden). */
  reply(seqId?: number): void;
}

function readText(protocol: ProtocolName, payload: Uint8Array): string {
  const r = createReader(protocol).reset(payload, messageBodyOffset(protocol, payload));
  let s = '';
  r.readStructBegin();
  for (;;) {
    const t = r.readFieldBegin();
    if (t === TType.STOP) break;
    if (t === TType.STRING && s === '') s = r.readString();
    else r.skip(t);
  }
  return s;
}

function message(
  protocol: ProtocolName,
  name: string,
  type: MessageType,
  seqId: number,
  text: string,
): Uint8Array {
  const w = createWriter(protocol);
  w.writeMessageBegin(name, type, seqId);
  w.writeStructBegin();
  w.writeFieldBegin(TType.STRING, type === MessageType.REPLY ? 0 : 1);
  w.writeString(text);
  w.writeFieldStop();
  w.writeStructEnd();
  w.writeMessageEnd();
  return w.finishCopy();
}

interface Scripted {
  readonly port: number;
  readonly received: Received[];
  connections(): number;
  /** Resolves once `n` calls were received in all. */
  receivedAtLeast(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A framed or THeader upstream that hands every call to `onCall` (default: answer at once). */
async function scriptedUpstream(
  framing: FramingName,
  onCall: (call: Received, socket: Socket) => void = (call) => call.reply(),
): Promise<Scripted> {
  const received: Received[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const up = await framedUpstream(framing, ({ frame, header, socket }) => {
    const call: Received = {
      name: header.name,
      type: header.type,
      seqId: header.seqId,
      frameSeqId: frame.seqId,
      text: readText(frame.protocol, frame.payload),
      frame,
      reply: (seqId = header.seqId) => {
        const payload = message(
          frame.protocol,
          header.name,
          MessageType.REPLY,
          seqId,
          `up:${header.name}:${call.text}`,
        );
        socket.write(
          encodeFrame(
            {
              framing,
              protocol: frame.protocol,
              ...(framing === 'theader' ? { seqId } : {}),
              headers: frame.headers,
              transforms: frame.transforms,
            },
            payload,
          ),
        );
      },
    };
    received.push(call);
    for (const w of waiters.splice(0)) {
      if (received.length >= w.n) w.resolve();
      else waiters.push(w);
    }
    onCall(call, socket);
    return undefined;
  });
  return {
    port: up.port,
    received,
    connections: up.connections,
    receivedAtLeast: (n) =>
      received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
    close: up.close,
  };
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

function setup(
  upstream: Scripted,
  framing: FramingName,
  multiplex = 8,
  maxSeqId?: number,
): { upstreams: ThriftUpstreams; key: ThriftUpstreamKey } {
  const upstreams = new ThriftUpstreams({
    idleTimeout: 30_000,
    ...(maxSeqId === undefined ? {} : { maxSeqId }),
  });
  open.push(upstream, { close: () => upstreams.closeAll() });
  const endpoint = new ThriftUpstreamEndpoint({
    address: { kind: 'tcp', host: '127.0.0.1', port: upstream.port },
    weight: 1,
    label: `127.0.0.1:${upstream.port}`,
    multiplex,
  });
  return { upstreams, key: endpoint.key(framing) };
}

/** A caller's frame as the proxy's server would decode it. */
function callFrame(
  framing: FramingName,
  protocol: ProtocolName,
  name: string,
  seqId: number,
  text: string,
  spec: {
    type?: MessageType;
    frameSeqId?: number;
    headers?: ReadonlyMap<string, string>;
    transforms?: number[];
  } = {},
): ThriftFrame {
  const type: MessageType = spec.type ?? MessageType.CALL;
  const bytes = encodeFrame(
    {
      framing,
      protocol,
      ...(framing === 'theader' ? { seqId: spec.frameSeqId ?? seqId } : {}),
      ...(spec.headers === undefined ? {} : { headers: spec.headers }),
      ...(spec.transforms === undefined ? {} : { transforms: spec.transforms }),
    },
    message(protocol, name, type, seqId, text),
  );
  return decodeFrame(framing, bytes);
}

const timeouts = { connect: 2000, call: 5000, maxFrameSize: 1 << 20 };

function forward(
  upstreams: ThriftUpstreams,
  key: ThriftUpstreamKey,
  frame: ThriftFrame,
  options = timeouts,
): Promise<ThriftFrame | undefined> {
  const header = readMessageHeader(frame.protocol, frame.payload);
  return upstreams.call(key, frame, header, options);
}

/** The reply's message seq id and text. */
function replyOf(reply: ThriftFrame | undefined): { seqId: number; text: string } {
  const header = readMessageHeader(reply!.protocol, reply!.payload);
  return { seqId: header.seqId, text: readText(reply!.protocol, reply!.payload) };
}

describe('multiplexed thrift upstream connections', () => {
  it('carries concurrent calls on one connection with remapped seq ids; replies out of order reach their calls', async () => {
    const up = await scriptedUpstream('framed', () => {});
    const { upstreams, key } = setup(up, 'framed');
    // Six callers on six client connections, all using seq id 7.
    const calls = [0, 1, 2, 3, 4, 5].map((i) =>
      forward(upstreams, key, callFrame('framed', 'binary', 'get', 7, `t${i}`)),
    );
    await up.receivedAtLeast(6);
    expect(up.connections()).toBe(1);
    expect(new Set(up.received.map((r) => r.seqId)).size).toBe(6);
    for (const r of [...up.received].reverse()) r.reply();
    const replies = (await Promise.all(calls)).map(replyOf);
    expect(replies).toEqual([0, 1, 2, 3, 4, 5].map((i) => ({ seqId: 7, text: `up:get:t${i}` })));
    expect(upstreams.stats().muxConnections).toBe(1);
  });

  it('opens another connection past max_calls', async () => {
    const up = await scriptedUpstream('framed', () => {});
    const { upstreams, key } = setup(up, 'framed', 2);
    const calls = [0, 1, 2, 3, 4].map((i) =>
      forward(upstreams, key, callFrame('framed', 'binary', 'get', i, `t${i}`)),
    );
    await up.receivedAtLeast(5);
    expect(up.connections()).toBe(3);
    for (const r of up.received) r.reply();
    expect((await Promise.all(calls)).map((r) => replyOf(r).text)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `up:get:t${i}`),
    );
  });

  it('re-encodes compact frames whose seq id varint changes length, both ways', async () => {
    const up = await scriptedUpstream('framed');
    const { upstreams, key } = setup(up, 'framed');
    // 300 is a 2-byte varint, loch's first id (1) a 1-byte one; 2^30 is 5 bytes.
    for (const seqId of [300, 1 << 30, 0]) {
      const reply = await forward(upstreams, key, callFrame('framed', 'compact', 'get', seqId, `s${seqId}`));
      expect(replyOf(reply)).toEqual({ seqId, text: `up:get:s${seqId}` });
    }
    expect(up.received.map((r) => r.seqId)).toEqual([1, 2, 3]);
  });

  it('rewrites the THeader seq id with the message one, through zlib, and keeps the headers', async () => {
    const up = await scriptedUpstream('theader');
    const { upstreams, key } = setup(up, 'theader');
    const frame = callFrame('theader', 'compact', 'get', 41, 'z', {
      frameSeqId: 9000,
      headers: new Map([['tenant', 't1']]),
      transforms: [THeaderTransform.ZLIB],
    });
    const [a, b] = await Promise.all([
      forward(upstreams, key, frame),
      forward(upstreams, key, callFrame('theader', 'binary', 'get', 41, 'y', { frameSeqId: 41 })),
    ]);
    const seen = up.received[0]!;
    expect([seen.seqId, seen.frameSeqId, seen.text]).toEqual([1, 1, 'z']);
    expect(seen.frame.transforms).toEqual([THeaderTransform.ZLIB]);
    expect(seen.frame.headers.get('tenant')).toBe('t1');
    expect(replyOf(a)).toEqual({ seqId: 41, text: 'up:get:z' });
    expect(a!.headers.get('tenant')).toBe('t1');
    expect(replyOf(b)).toEqual({ seqId: 41, text: 'up:get:y' });
  });

  it('tombstones a timed-out id: its late reply is dropped and the id is handed out again only after it', async () => {
    const up = await scriptedUpstream('framed', (call) => {
      if (call.name !== 'slow' && call.name !== 'hold') call.reply();
    });
    // Ids 1..3 only, so they come round again within the test.
    const { upstreams, key } = setup(up, 'framed', 8, 3);
    await expect(
      forward(upstreams, key, callFrame('framed', 'binary', 'slow', 5, 'late'), { ...timeouts, call: 50 }),
    ).rejects.toMatchObject({ failure: 'timeout' });
    for (const text of ['b', 'c', 'd']) {
      expect(replyOf(await forward(upstreams, key, callFrame('framed', 'binary', 'get', 5, text))).text).toBe(
        `up:get:${text}`,
      );
    }
    // Id 1 is tombstoned: after 2 and 3, the ids went round to 2.
    expect(up.received.map((r) => r.seqId)).toEqual([1, 2, 3, 2]);
    // A call in flight on id 3 while the late reply for id 1 comes: it gets its own reply.
    const held = scriptedHold(up);
    const pending = forward(upstreams, key, callFrame('framed', 'binary', 'hold', 6, 'e'));
    await up.receivedAtLeast(5);
    up.received[0]!.reply(); // the late one
    held.release();
    expect(replyOf(await pending)).toEqual({ seqId: 6, text: 'up:hold:e' });
    expect(upstreams.stats().lateReplies).toBe(1);
    // The tombstone is gone: id 1 is handed out again.
    await forward(upstreams, key, callFrame('framed', 'binary', 'get', 7, 'f'));
    expect(up.received.map((r) => r.seqId)).toEqual([1, 2, 3, 2, 3, 1]);
    expect(up.connections()).toBe(1);
  });

  it("tombstones an abandoned call's id (its caller went away): it fails at once, its late reply is dropped, the connection's other calls go on", async () => {
    const up = await scriptedUpstream('framed', (call) => {
      if (call.name !== 'slow' && call.name !== 'hold') call.reply();
    });
    const { upstreams, key } = setup(up, 'framed', 8, 3);
    const lease = new ReplyLease();
    const frame = callFrame('framed', 'binary', 'slow', 5, 'gone');
    const abandoned = upstreams.call(key, frame, readMessageHeader('binary', frame.payload), timeouts, lease);
    const held = forward(upstreams, key, callFrame('framed', 'binary', 'hold', 6, 'kept'));
    await up.receivedAtLeast(2);
    lease.abandon();
    await expect(abandoned).rejects.toMatchObject({ failure: 'abandoned' });
    // Ids 1 (tombstoned) and 2 (held) are taken: the next call gets 3, then 2 is still held.
    expect(replyOf(await forward(upstreams, key, callFrame('framed', 'binary', 'get', 7, 'a'))).text).toBe(
      'up:get:a',
    );
    up.received[0]!.reply(); // the abandoned call's late reply: dropped
    up.received[1]!.reply();
    expect(replyOf(await held)).toEqual({ seqId: 6, text: 'up:hold:kept' });
    expect(up.received.map((r) => r.seqId)).toEqual([1, 2, 3]);
    expect(upstreams.stats().lateReplies).toBe(1);
    expect(up.connections()).toBe(1);

    // A caller gone before its call is made: nothing is sent.
    const gone = new ReplyLease();
    gone.abandon();
    const next = callFrame('framed', 'binary', 'get', 8, 'never');
    await expect(
      upstreams.call(key, next, readMessageHeader('binary', next.payload), timeouts, gone),
    ).rejects.toMatchObject({ failure: 'abandoned' });
    expect(replyOf(await forward(upstreams, key, callFrame('framed', 'binary', 'get', 9, 'b'))).text).toBe(
      'up:get:b',
    );
    expect(up.received.map((r) => r.text)).toEqual(['gone', 'kept', 'a', 'b']);
  });

  it('arms no timer per call or per idle period: call and idle deadlines go to the sweep', async () => {
    const up = await scriptedUpstream('framed');
    const { upstreams, key } = setup(up, 'framed');
    await forward(upstreams, key, callFrame('framed', 'binary', 'get', 0, 'connect')); // connected before counting
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    try {
      // One at a time: the connection goes idle (an idle deadline) between calls.
      for (let i = 1; i <= 20; i++) {
        expect(
          replyOf(await forward(upstreams, key, callFrame('framed', 'binary', 'get', i, `t${i}`))),
        ).toEqual({
          seqId: i,
          text: `up:get:t${i}`,
        });
      }
      expect(setTimeoutSpy).not.toHaveBeenCalled();
    } finally {
      setTimeoutSpy.mockRestore();
    }
    expect(up.connections()).toBe(1);
  });

  it("writes and receives on its stream's callback forms: no promise-form writev or recv per batch or reply", async () => {
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
      const up = await scriptedUpstream('framed');
      const { upstreams, key } = setup(up, 'framed');
      await forward(upstreams, key, callFrame('framed', 'binary', 'get', 0, 'connect'));
      expect(streams).toHaveLength(1);
      const writev = vi.spyOn(streams[0]!, 'writev');
      const recv = vi.spyOn(streams[0]!, 'recv');
      for (let round = 0; round < 5; round++) {
        const ids = [1, 2, 3, 4].map((i) => round * 10 + i);
        const replies = await Promise.all(
          ids.map((i) => forward(upstreams, key, callFrame('framed', 'binary', 'get', i, `t${i}`))),
        );
        expect(replies.map(replyOf)).toEqual(ids.map((i) => ({ seqId: i, text: `up:get:t${i}` })));
      }
      const oneway = callFrame('framed', 'binary', 'note', 99, 'n', { type: MessageType.ONEWAY });
      expect(await forward(upstreams, key, oneway)).toBeUndefined();
      expect(writev).not.toHaveBeenCalled();
      expect(recv).not.toHaveBeenCalled();
      expect(up.connections()).toBe(1);
    } finally {
      connectSpy.mockRestore();
    }
  });

  it('retires a connection once more calls timed out than its limit', async () => {
    const up = await scriptedUpstream('framed', (call) => {
      if (call.name !== 'slow') call.reply();
    });
    const { upstreams, key } = setup(up, 'framed', 2);
    const slow = () =>
      forward(upstreams, key, callFrame('framed', 'binary', 'slow', 1, 'x'), { ...timeouts, call: 30 });
    await expect(Promise.all([slow(), slow()])).rejects.toMatchObject({ failure: 'timeout' });
    await expect(slow()).rejects.toMatchObject({ failure: 'timeout' });
    expect(upstreams.stats().retired).toBe(1);
    expect(replyOf(await forward(upstreams, key, callFrame('framed', 'binary', 'get', 1, 'ok'))).text).toBe(
      'up:get:ok',
    );
    expect(up.connections()).toBe(2);
  });

  it('fails every call of a connection whose upstream replies with an id nobody waits for', async () => {
    const up = await scriptedUpstream('framed', (call) => {
      if (call.text === 'bad') call.reply(999);
    });
    const { upstreams, key } = setup(up, 'framed');
    const waiting = forward(upstreams, key, callFrame('framed', 'binary', 'get', 1, 'waits'));
    const bad = forward(upstreams, key, callFrame('framed', 'binary', 'get', 2, 'bad'));
    await expect(bad).rejects.toMatchObject({
      failure: 'protocol',
      message: expect.stringContaining('seq id 999'),
    });
    await expect(waiting).rejects.toMatchObject({ failure: 'protocol' });
    expect(upstreams.stats().muxConnections).toBe(0);
  });

  it('fails every call of a connection whose upstream sends bytes that are not Thrift', async () => {
    const up = await scriptedUpstream('framed', (call, socket) => {
      if (call.text === 'garbage') socket.write('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    const { upstreams, key } = setup(up, 'framed');
    const waiting = forward(upstreams, key, callFrame('framed', 'binary', 'get', 1, 'waits'));
    await expect(
      forward(upstreams, key, callFrame('framed', 'binary', 'get', 2, 'garbage')),
    ).rejects.toMatchObject({
      failure: 'protocol',
    });
    await expect(waiting).rejects.toMatchObject({ failure: 'protocol' });
    expect(upstreams.stats().muxConnections).toBe(0);
  });

  it('fails the calls in flight when the upstream closes; the next call connects again', async () => {
    const up = await scriptedUpstream('framed', (call, socket) => {
      if (call.text === 'die') socket.destroy();
      else if (call.text !== 'wait') call.reply();
    });
    const { upstreams, key } = setup(up, 'framed');
    const waiting = forward(upstreams, key, callFrame('framed', 'binary', 'get', 1, 'wait'));
    await up.receivedAtLeast(1);
    await expect(
      forward(upstreams, key, callFrame('framed', 'binary', 'get', 2, 'die')),
    ).rejects.toMatchObject({
      failure: 'reset',
    });
    await expect(waiting).rejects.toMatchObject({ failure: 'reset' });
    expect(
      replyOf(await forward(upstreams, key, callFrame('framed', 'binary', 'get', 3, 'again'))).text,
    ).toBe('up:get:again');
    expect(up.connections()).toBe(2);
  });

  it('frees a ONEWAY call at write and counts one that could not be delivered', async () => {
    const up = await scriptedUpstream('framed', () => {});
    const { upstreams, key } = setup(up, 'framed', 1);
    const oneway = (text: string) =>
      forward(upstreams, key, callFrame('framed', 'binary', 'note', 1, text, { type: MessageType.ONEWAY }));
    // With one call per connection, both go on the same connection: the first freed its slot.
    expect(await oneway('a')).toBeUndefined();
    expect(await oneway('b')).toBeUndefined();
    await up.receivedAtLeast(2);
    expect(up.received.map((r) => [r.type, r.text])).toEqual([
      [MessageType.ONEWAY, 'a'],
      [MessageType.ONEWAY, 'b'],
    ]);
    expect(up.connections()).toBe(1);
    await up.close();
    const { upstreams: down, key: downKey } = setup(up, 'framed');
    await expect(
      down.call(
        downKey,
        callFrame('framed', 'binary', 'note', 1, 'c', { type: MessageType.ONEWAY }),
        { type: MessageType.ONEWAY, seqId: 1 },
        timeouts,
      ),
    ).rejects.toMatchObject({ failure: 'refused' });
    expect(down.stats().onewayFailures).toBe(1);
  });

  it('a throw while a call is taken (here its lease) fails that call and leaves none counted in flight, on a pooled connection and after a connect', async () => {
    /** A lease whose running() throws: not expected of a lease, but nothing may count the call for good. */
    class ThrowingLease extends ReplyLease {
      override running(): boolean {
        throw new Error('lease broke');
      }
    }
    const up = await scriptedUpstream('framed');
    const { upstreams, key } = setup(up, 'framed');
    const call = (lease: ReplyLease) => {
      const frame = callFrame('framed', 'binary', 'get', 1, 'x');
      return upstreams.call(key, frame, readMessageHeader('binary', frame.payload), timeouts, lease);
    };
    // The first call connects: the throw comes after the connect's promise.
    await expect(call(new ThrowingLease())).rejects.toThrow('lease broke');
    expect(upstreams.inFlight).toBe(0);
    await expect(call(new ReplyLease())).resolves.toBeDefined();
    // Now on the pooled connection, inside the caller's own call.
    await expect(call(new ThrowingLease())).rejects.toThrow('lease broke');
    expect(upstreams.inFlight).toBe(0);
    await expect(call(new ReplyLease())).resolves.toBeDefined();
    expect(upstreams.inFlight).toBe(0);
  });

  it("a call that threw gives its connection's slot back: with multiplex = 1 the next calls reuse the connection", async () => {
    class ThrowingLease extends ReplyLease {
      override running(): boolean {
        throw new Error('lease broke');
      }
    }
    const up = await scriptedUpstream('framed');
    const { upstreams, key } = setup(up, 'framed', 1);
    const call = (lease: ReplyLease) => {
      const frame = callFrame('framed', 'binary', 'get', 1, 'x');
      return upstreams.call(key, frame, readMessageHeader('binary', frame.payload), timeouts, lease);
    };
    // After a connect (the slot reserved for it), then on the pooled connection.
    await expect(call(new ThrowingLease())).rejects.toThrow('lease broke');
    await expect(call(new ReplyLease())).resolves.toBeDefined();
    await expect(call(new ThrowingLease())).rejects.toThrow('lease broke');
    await expect(call(new ReplyLease())).resolves.toBeDefined();
    // A slot lost for good would have sent each call after a throw to a new connection.
    expect(up.connections()).toBe(1);
  });

  it('reads replies into memory given back by released leases, never over a reply still held', async () => {
    const up = await scriptedUpstream('framed');
    const { upstreams, key } = setup(up, 'framed');
    // ~2 KiB replies: 100 of them are three times the reader's 64 KiB buffer.
    const text = (i: number) => `${i}`.padEnd(2000, '.');
    const call = (i: number, lease: ReplyLease) => {
      const frame = callFrame('framed', 'binary', 'get', i, text(i));
      return upstreams.call(key, frame, readMessageHeader('binary', frame.payload), timeouts, lease);
    };
    const released = new Set<ArrayBufferLike>();
    for (let i = 1; i <= 100; i++) {
      const lease = new ReplyLease();
      const reply = await call(i, lease);
      expect(replyOf(reply)).toEqual({ seqId: i, text: `up:get:${text(i)}` });
      released.add(reply!.payload.buffer);
      lease.release();
    }
    expect(released.size).toBe(1);
    const held = new ReplyLease();
    const first = await call(500, held);
    const kept = new Set<ArrayBufferLike>([first!.payload.buffer]);
    for (let i = 1; i <= 100; i++) {
      const lease = new ReplyLease();
      const reply = await call(500 + i, lease);
      kept.add(reply!.payload.buffer);
      lease.release();
    }
    expect(replyOf(first)).toEqual({ seqId: 500, text: `up:get:${text(500)}` });
    expect(kept.size).toBeGreaterThan(1);
    held.release();
    expect(up.connections()).toBe(1);
  });
});

/** A lease released on every path (as the relay's): replies may be views of received chunks. */
class InPlaceLease extends ReplyLease {
  override get inPlace(): boolean {
    return true;
  }
}

describe('multiplexed replies read in place', () => {
  it('a reply is a view of its received chunk, kept until its lease is released, intact while later replies come; every chunk goes back', async () => {
    const runtime = await currentRuntime();
    // Receive buffers of the runtime's pool lent to JavaScript (io_uring; none on legacy).
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    const up = await scriptedUpstream('framed', () => {});
    const { upstreams, key } = setup(up, 'framed', 8);
    const text = (i: number) => `${i}`.padEnd(3000, String.fromCharCode(97 + (i % 26)));
    const call = (i: number, lease: ReplyLease) => {
      const frame = callFrame('framed', 'binary', 'get', i, text(i));
      return upstreams.call(key, frame, readMessageHeader('binary', frame.payload), timeouts, lease);
    };
    const base = inUse();
    // Rounds of 6 concurrent calls answered in one write (one chunk holds several replies),
    // each round's replies released in another order; one reply of the first round is kept
    // across all later rounds.
    let kept: { lease: ReplyLease; reply: ThriftFrame | undefined; i: number } | undefined;
    let n = 0;
    for (let round = 0; round < 8; round++) {
      const ids = [0, 1, 2, 3, 4, 5].map((k) => round * 10 + k);
      const leases = ids.map(() => new InPlaceLease());
      const calls = ids.map((i, k) => call(i, leases[k]!));
      n += ids.length;
      await up.receivedAtLeast(n);
      // The six replies written back to back: several share a receive, some span two.
      for (const r of up.received.slice(n - ids.length)) r.reply();
      const replies = await Promise.all(calls);
      expect(replies.map(replyOf)).toEqual(ids.map((i) => ({ seqId: i, text: `up:get:${text(i)}` })));
      const order = round % 2 === 0 ? [5, 3, 1, 0, 2, 4] : [0, 1, 2, 3, 4, 5];
      for (const k of order) {
        if (round === 0 && k === 2) {
          kept = { lease: leases[k]!, reply: replies[k], i: ids[k]! };
          continue;
        }
        leases[k]!.release();
      }
    }
    // The kept reply's bytes are intact after 42 later replies went through the pool.
    expect(replyOf(kept!.reply)).toEqual({ seqId: kept!.i, text: `up:get:${text(kept!.i)}` });
    if (runtime.driver.name === 'uring') expect(inUse()).toBeGreaterThan(base);
    kept!.lease.release();
    kept!.lease.release(); // a second release does nothing
    expect(inUse()).toBe(base);
    expect(up.connections()).toBe(1);
  });

  it('replies go back when nobody takes them: a late reply on a tombstone, the connection failing, a caller whose lease is not in place', async () => {
    const runtime = await currentRuntime();
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    const up = await scriptedUpstream('framed', (r) => {
      if (r.name !== 'slow') r.reply();
    });
    const { upstreams, key } = setup(up, 'framed', 8);
    const frame = (name: string, i: number) => callFrame('framed', 'binary', name, i, 'x'.repeat(3000));
    const call = (f: ThriftFrame, lease: ReplyLease, options = timeouts) =>
      upstreams.call(key, f, readMessageHeader('binary', f.payload), options, lease);
    const first = new InPlaceLease();
    expect(replyOf(await call(frame('get', 1), first)).seqId).toBe(1);
    first.release();
    const base = inUse();
    // A call that times out: its late reply comes to a tombstone and is dropped.
    await expect(call(frame('slow', 2), new InPlaceLease(), { ...timeouts, call: 50 })).rejects.toMatchObject(
      {
        failure: 'timeout',
      },
    );
    up.received[1]!.reply();
    for (let i = 0; i < 50 && upstreams.stats().lateReplies === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect(upstreams.stats().lateReplies).toBe(1);
    expect(inUse()).toBe(base);
    // A caller whose lease is not in place gets a copy (the chunk goes back at once).
    const copy = new ReplyLease();
    const copied = await call(frame('get', 3), copy);
    expect(inUse()).toBe(base);
    expect(replyOf(copied).seqId).toBe(3);
    copy.release();
    expect(upstreams.stats().lateReplies).toBe(1);
    // A reply held while the connection fails keeps its chunk until released.
    const held = new InPlaceLease();
    const reply = await call(frame('get', 4), held);
    upstreams.closeAll();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(replyOf(reply).seqId).toBe(4);
    held.release();
    expect(inUse()).toBe(base);
  });
});

/** Makes the scripted upstream hold `hold` calls until released (others answer as before). */
function scriptedHold(up: Scripted): { release(): void } {
  return {
    release() {
      for (const r of up.received) if (r.name === 'hold') r.reply();
    },
  };
}
