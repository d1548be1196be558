/**
 * ThriftServer with `callsInPlace`: a call that arrives whole in a received chunk of 1 KiB or
 * more is a view of that chunk, and the chunk goes back to the runtime exactly once, when every
 * call taken from it was released (a proxy releases a call when its upstream write settled,
 * which may come after the reply was written) or, for bytes no call took, when the connection
 * ends. Chunks are poisoned when released, as the kernel reuses a pool buffer, so a chunk given
 * back too early shows as a call whose bytes changed before its release.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { echoMessage } from '../../test/echo-call.js';
import { createReader } from '../protocol/factory.js';
import { encodeFrame } from '../transport/codec.js';
import type { FramingName } from '../transport/frame.js';
import { MessageType, TType } from '../types.js';
import { FrameReader } from './frame-reader.js';
import { createReply, type ThriftHandler, type ThriftRequest, ThriftServer } from './server.js';
import { IN_PLACE_CALL_BYTES } from './server-connection.js';
import type { ThriftRecvTarget, ThriftWriteTarget } from './stream.js';

/** Framed binary (or THeader/TTHeader) calls of `echo(1: string text)` with texts of the given sizes. */
function calls(sizes: readonly number[], framing: FramingName = 'framed') {
  const texts = sizes.map((n, i) => `${i}:`.padEnd(n, 'x'));
  const messages = texts.map((text, i) => echoMessage(text, i));
  const wire = Buffer.concat(messages.map((m) => encodeFrame({ framing, protocol: 'binary' }, m)));
  return { texts, messages, wire: new Uint8Array(wire) };
}

/**
 * A connection on the promise-free pair, as the runtime delivers it: `wire` in chunks of the
 * given sizes (cycled), each its own memory, counted and poisoned when released; an optional
 * end after `endAt` bytes.
 */
function pooled(wire: Uint8Array, sizes: readonly number[], endAt = wire.byteLength) {
  let at = 0;
  let i = 0;
  const s = {
    written: [] as Uint8Array[],
    chunks: [] as Uint8Array[],
    releases: 0,
    doubleReleases: 0,
    /** Bytes of chunks not yet released. */
    held: 0,
    closed: false,
    recv(): Promise<null> {
      throw new Error('recv() used');
    },
    writev(): Promise<number> {
      throw new Error('writev() used');
    },
    recvTo(target: ThriftRecvTarget): void {
      queueMicrotask(() => {
        if (at >= endAt) return target.onRecv(null, undefined);
        const n = Math.max(1, sizes[i++ % sizes.length]!);
        const bytes = wire.slice(at, Math.min(endAt, at + n));
        at += bytes.byteLength;
        s.chunks.push(bytes);
        s.held += bytes.byteLength;
        let released = false;
        target.onRecv(
          {
            bytes,
            release() {
              if (released) {
                s.doubleReleases++;
                return;
              }
              released = true;
              s.releases++;
              s.held -= bytes.byteLength;
              bytes.fill(0xee);
            },
          },
          undefined,
        );
      });
    },
    writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
      const data = one instanceof Uint8Array ? [one] : one;
      for (const b of data) s.written.push(b.slice());
      queueMicrotask(() => target.onWritten(undefined));
    },
    async close(): Promise<void> {
      s.closed = true;
    },
  };
  return s;
}

/** The texts of the replies written on `stream`, in order. */
function repliesOf(stream: { written: Uint8Array[] }): string[] {
  const reader = new FrameReader(null as never);
  reader.feed(Buffer.concat(stream.written));
  const texts: string[] = [];
  for (let f = reader.poll(); f !== null; f = reader.poll()) {
    const r = createReader(f.protocol).reset(f.payload);
    expect(r.readMessageBegin().type).toBe(MessageType.REPLY);
    r.readStructBegin();
    r.readFieldBegin();
    texts.push(r.readString());
  }
  return texts;
}

const ticks = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** When a handler releases its call: at once, before its reply, or only after the reply was written. */
type ReleaseAt = 'sync' | 'beforeReply' | 'afterReply';

/**
 * Echoes the text after a few turns, releasing the call when `releaseAt` says; before releasing,
 * checks that the call's bytes are still the ones sent (what a pending upstream write reads).
 */
function relay(
  messages: readonly Uint8Array[],
  releaseAt: (seqId: number) => ReleaseAt,
  seen: { inPlace: number; intactAtRelease: number; changed: number },
  chunks: () => readonly Uint8Array[],
): ThriftHandler {
  const release = (request: ThriftRequest): void => {
    if (Buffer.compare(request.frame.payload, messages[request.header.seqId]!) === 0) seen.intactAtRelease++;
    else seen.changed++;
    request.release?.();
  };
  return {
    async call(request) {
      const payload = request.frame.payload;
      if (chunks().some((c) => c.buffer === payload.buffer)) seen.inPlace++;
      const r = request.reader();
      r.readFieldBegin();
      const text = r.readString();
      const when = releaseAt(request.header.seqId);
      if (when === 'sync') release(request);
      await ticks(1);
      if (when === 'beforeReply') release(request);
      // Released a few turns later: after the reply was written (a multiplexed upstream's
      // reply can beat its writev's completion).
      else if (when === 'afterReply') void ticks(4).then(() => release(request));
      return createReply(request, (w) => {
        w.writeStructBegin();
        w.writeFieldBegin(TType.STRING, 0);
        w.writeString(text);
        w.writeFieldStop();
        w.writeStructEnd();
      });
    },
  };
}

describe('ThriftServer callsInPlace', () => {
  it('calls are views of the received chunks, intact until released; every chunk goes back exactly once, whatever the chunking, release order and pipelining', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 12_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.constantFrom<ReleaseAt>('sync', 'beforeReply', 'afterReply'), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.constantFrom(1, 3),
        fc.constantFrom<FramingName>('framed', 'theader', 'ttheader'),
        async (sizes, chunkSizes, releases, maxConcurrentCalls, framing) => {
          const { texts, messages, wire } = calls(sizes, framing);
          const stream = pooled(wire, chunkSizes);
          const seen = { inPlace: 0, intactAtRelease: 0, changed: 0 };
          const handler = relay(
            messages,
            (id) => releases[id % releases.length]!,
            seen,
            () => stream.chunks,
          );
          await new ThriftServer(handler, {
            callsInPlace: true,
            maxConcurrentCalls,
            replyOrder: 'request',
          }).handleConnection(stream);
          await ticks(8);
          expect(repliesOf(stream)).toEqual(texts);
          expect(seen.changed).toBe(0);
          expect(seen.intactAtRelease).toBe(texts.length);
          expect(stream.releases).toBe(stream.chunks.length);
          expect(stream.doubleReleases).toBe(0);
          expect(stream.held).toBe(0);
          // A wire received in one chunk of at least IN_PLACE_CALL_BYTES: every call in place.
          if (chunkSizes.every((n) => n >= wire.byteLength) && wire.byteLength >= IN_PLACE_CALL_BYTES)
            expect(seen.inPlace).toBe(texts.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a 10 KiB call received whole is relayed from its chunk, which stays out until the call is released, also after the reply was written', async () => {
    const { texts, messages, wire } = calls([10_240, 10_240]);
    const stream = pooled(wire, [wire.byteLength / 2]);
    const released: (() => void)[] = [];
    const handler: ThriftHandler = {
      call(request) {
        // Released later by the test: the upstream write has not settled yet.
        let done = false;
        released.push(() => {
          // Intact until released (a second release, below, would find it given back).
          if (!done) expect(Buffer.compare(request.frame.payload, messages[request.header.seqId]!)).toBe(0);
          done = true;
          request.release?.();
        });
        const r = request.reader();
        r.readFieldBegin();
        const text = r.readString();
        return createReply(request, (w) => {
          w.writeStructBegin();
          w.writeFieldBegin(TType.STRING, 0);
          w.writeString(text);
          w.writeFieldStop();
          w.writeStructEnd();
        });
      },
    };
    const done = new ThriftServer(handler, { callsInPlace: true }).handleConnection(stream);
    await done;
    expect(repliesOf(stream)).toEqual(texts);
    // Both replies written and the connection ended: the calls' chunks are still out.
    expect(stream.chunks.length).toBe(2);
    expect(stream.releases).toBe(0);
    expect(stream.chunks.map((c) => c.byteLength)).toEqual([wire.byteLength / 2, wire.byteLength / 2]);
    released[1]!();
    expect(stream.releases).toBe(1);
    released[0]!();
    released[0]!(); // a second release does nothing
    expect(stream.releases).toBe(2);
    expect(stream.doubleReleases).toBe(0);
  });

  it('without callsInPlace the calls are copies and every chunk goes back at once', async () => {
    const { texts, messages, wire } = calls([10_240, 10_240]);
    const stream = pooled(wire, [wire.byteLength]);
    const seen = { inPlace: 0, intactAtRelease: 0, changed: 0 };
    await new ThriftServer(
      relay(
        messages,
        () => 'afterReply',
        seen,
        () => stream.chunks,
      ),
      {},
    ).handleConnection(stream);
    await ticks(8);
    expect(repliesOf(stream)).toEqual(texts);
    expect(seen.inPlace).toBe(0);
    expect(stream.releases).toBe(1);
  });

  it('bytes no call took go back when the connection ends: a frame cut by the peer, a frame refused as too large', async () => {
    const { messages, wire } = calls([4000, 4000]);
    // The first call whole, the second cut in its middle by the peer's end.
    const cut = pooled(wire, [wire.byteLength], wire.byteLength - 100);
    const errors: unknown[] = [];
    const seen = { inPlace: 0, intactAtRelease: 0, changed: 0 };
    await new ThriftServer(
      relay(
        messages,
        () => 'afterReply',
        seen,
        () => cut.chunks,
      ),
      {
        callsInPlace: true,
        onConnectionError: (e) => errors.push(e),
      },
    ).handleConnection(cut);
    await ticks(8);
    expect((errors[0] as { code: string }).code).toBe('ERR_THRIFT_TRUNCATED');
    expect(seen.inPlace).toBe(1);
    expect(cut.releases).toBe(1);
    expect(cut.held).toBe(0);

    const big = pooled(wire, [wire.byteLength]);
    const refused: unknown[] = [];
    await new ThriftServer(
      relay(
        messages,
        () => 'sync',
        seen,
        () => big.chunks,
      ),
      {
        callsInPlace: true,
        maxFrameSize: 1000,
        onConnectionError: (e) => refused.push(e),
      },
    ).handleConnection(big);
    expect((refused[0] as { code: string }).code).toBe('ERR_THRIFT_FRAME_SIZE');
    expect(big.releases).toBe(1);
    expect(big.held).toBe(0);
  });
});
