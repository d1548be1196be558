/**
 * REVIEW F227: an idle pooled exclusive upstream connection whose peer sends 1, 2, 3 or 4 stray
 * bytes is dropped from the pool unseen by any call (its idle watch runs with the receive
 * low-water mark at 1), and the next call goes to a new connection and is answered; the reader's
 * mark (5) is set again for the call's reply. Also run with LOCH_DRIVER=legacy (no mark there).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeFrame, encodeFrame, MessageType, readMessageHeader, type ThriftFrame } from '@loch/thrift';
import { UnifiedL4Connector } from '@loch/transports';
import type { ByteStream } from '@loch/uring-runtime';
import { afterEach, expect, it, vi } from 'vitest';
import { emptyMessage, framedUpstream } from '../../test/thrift-peers.js';
import { ThriftUpstreamEndpoint, ThriftUpstreams } from './upstream.js';

const connect = UnifiedL4Connector.prototype.connect;
const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
  vi.restoreAllMocks();
});

it.each([1, 2, 3, 4])(
  '%i stray bytes on an idle pooled connection: dropped from the pool, the next call answered by a new one',
  async (stray) => {
    const sockets: import('node:net').Socket[] = [];
    const up = await framedUpstream('framed', ({ header: h, socket }) => {
      if (!sockets.includes(socket)) sockets.push(socket);
      return encodeFrame(
        { framing: 'framed', protocol: 'binary' },
        emptyMessage(h.name, MessageType.REPLY, h.seqId),
      );
    });
    const upstreams = new ThriftUpstreams({ idleTimeout: 30_000 });
    open.push(up, { close: () => upstreams.closeAll() });
    // The marks each upstream connection sets (applied ones), in order.
    const marks: number[][] = [];
    const streams: ByteStream[] = [];
    vi.spyOn(UnifiedL4Connector.prototype, 'connect').mockImplementation(async function (
      this: UnifiedL4Connector,
      ...args
    ) {
      const stream = await connect.apply(this, args);
      const set = stream.setRecvLowWater?.bind(stream);
      const mine: number[] = [];
      marks.push(mine);
      streams.push(stream);
      if (set !== undefined)
        stream.setRecvLowWater = (n: number) => {
          const ok = set(n);
          if (ok) mine.push(n);
          return ok;
        };
      return stream;
    });
    const key = new ThriftUpstreamEndpoint({
      address: { kind: 'tcp', host: '127.0.0.1', port: up.port },
      weight: 1,
      label: `127.0.0.1:${up.port}`,
      multiplex: 0,
    }).key('framed');
    const call = async (seqId: number): Promise<number> => {
      const frame = decodeFrame(
        'framed',
        encodeFrame({ framing: 'framed', protocol: 'binary' }, emptyMessage('get', MessageType.CALL, seqId)),
      );
      const reply: ThriftFrame | undefined = await upstreams.call(
        key,
        frame,
        readMessageHeader('binary', frame.payload),
        { connect: 2000, call: 3000, maxFrameSize: 1 << 20 },
      );
      return readMessageHeader('binary', reply!.payload).seqId;
    };

    expect(await call(1)).toBe(1);
    expect(upstreams.stats()).toMatchObject({ idle: 1, created: 1 });
    await sleep(100); // the idle watch's receive is armed and waiting
    sockets[0]!.write(new Uint8Array(stray));
    await expect.poll(() => upstreams.stats().idle, { timeout: 3000 }).toBe(0);
    expect(await call(2)).toBe(2);
    expect(upstreams.stats()).toMatchObject({ idle: 1, created: 2 });
    if (streams[0]!.driver === 'uring') {
      // The mark: 5 for the first reply, 1 while pooled; the new connection's the same.
      expect(marks[0]).toEqual([5, 1]);
      expect(marks[1]).toEqual([5, 1]);
    }
    // Calls on a connection pooled in between set 5 and 1 again each.
    expect(await call(3)).toBe(3);
    if (streams[0]!.driver === 'uring') expect(marks[1]).toEqual([5, 1, 5, 1]);
  },
);
