/**
 * An exclusive upstream connection whose in-place reply is refused (a seq id that is not the
 * call's) while more bytes follow it in the same receive: the connection is dropped, and the
 * received chunk the reply was a view of goes back to the runtime's pool with it. The reader
 * keeps its own reference to a chunk with bytes left (FrameReader.retainLast); a dropped
 * connection must dispose its reader, not only recycle it (found in review, session 29).
 */
import { decodeFrame, encodeFrame, MessageType, readMessageHeader } from '@loch/thrift';
import { currentRuntime } from '@loch/uring-runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyMessage, framedUpstream } from '../../test/thrift-peers.js';
import { ReplyLease, ThriftUpstreamEndpoint, ThriftUpstreamError, ThriftUpstreams } from './upstream.js';

/** The relay's lease (service.ts RelayedReply): its reply is read in place. */
class InPlaceLease extends ReplyLease {
  override get inPlace(): boolean {
    return true;
  }
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A framed upstream that answers each call with a reply of the next seq id and, in the same write, one of the call's. */
async function offByOneUpstream(): Promise<number> {
  const up = await framedUpstream('framed', ({ header: h }) => {
    // Replies over 1 KiB, so the call's lease reads them in place.
    const name = h.name.padEnd(3000, '.');
    const spec = { framing: 'framed', protocol: 'binary' } as const;
    return Buffer.concat([
      encodeFrame(spec, emptyMessage(name, MessageType.REPLY, h.seqId + 1)),
      encodeFrame(spec, emptyMessage(name, MessageType.REPLY, h.seqId)),
    ]);
  });
  open.push(up);
  return up.port;
}

describe('an in-place reply refused with bytes after it', () => {
  it('fails the call, drops the connection and gives its receive buffer back', async () => {
    const runtime = await currentRuntime();
    const port = await offByOneUpstream();
    const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
    open.push({ close: () => upstreams.closeAll() });
    const key = new ThriftUpstreamEndpoint({
      address: { kind: 'tcp', host: '127.0.0.1', port },
      weight: 1,
      label: `127.0.0.1:${port}`,
      multiplex: 0,
    }).key('framed');
    // Receive buffers of the runtime's pool lent to JavaScript (io_uring; none on legacy).
    const inUse = () => runtime.bufferStats()?.buffersInUse ?? 0;
    const base = inUse();
    for (let seqId = 1; seqId <= 5; seqId++) {
      const frame = decodeFrame(
        'framed',
        encodeFrame({ framing: 'framed', protocol: 'binary' }, emptyMessage('get', MessageType.CALL, seqId)),
      );
      const lease = new InPlaceLease();
      const failed = await upstreams
        .call(
          key,
          frame,
          readMessageHeader('binary', frame.payload),
          { connect: 2000, call: 5000, maxFrameSize: 1 << 20 },
          lease,
        )
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(failed).toBeInstanceOf(ThriftUpstreamError);
      expect((failed as ThriftUpstreamError).message).toContain(`seq id ${seqId + 1}`);
      lease.release();
      // The chunk went back when the call ended (before: one buffer more out per such reply).
      expect(inUse()).toBe(base);
    }
    expect(upstreams.stats().created).toBe(5);
  });
});
