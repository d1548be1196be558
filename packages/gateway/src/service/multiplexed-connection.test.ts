/**
 * ClientExchange's multiplexed connections (multiplexed-connection.ts) against a framed binary
 * node:net upstream under the test's control, on every driver this machine runs: calls run on
 * the stream's callbacks (never its promise-form writev/recv), the calls of one pass go out in
 * one write, replies answered out of order reach their own calls, a reply with a seq id no
 * call holds fails every call of its connection (the next call connects anew), a call that
 * times out fails alone and its late reply is dropped, the upstream's end fails the calls in
 * flight. What both connection kinds do is in callback-connection.test.ts.
 */
import type { Socket } from 'node:net';
import type { ThriftFrame } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import { echoMessage, echoText as textOf } from '../../../thrift/test/echo-call.js';
import { driverCases } from '../../../uring-runtime/test/conformance/drivers.js';
import { echoBack as echo, exchangeSuite, replyTo, seqIdOf, withSeqId } from '../../test/exchange-harness.js';

const drivers = await driverCases();
const callOf = (text: string) => echoMessage(text, 0);

describe.each(drivers)('ClientExchange multiplexed connections on the $name driver', ({ name, skip }) => {
  const { upstream, exchange } = exchangeSuite(name, skip, { multiplexed: true });

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
        if (textOf(frame.subarray(4)) === 'lost') {
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
