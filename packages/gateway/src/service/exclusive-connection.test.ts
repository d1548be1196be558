/**
 * ClientExchange's exclusive connections (exclusive-connection.ts) against a framed binary
 * node:net upstream under the test's control, on every driver this machine runs: calls run on
 * the stream's callbacks (never its promise-form writev/recv), calls queued on one connection
 * are answered in order, a call with no reply fails alone. What both connection kinds do is in
 * callback-connection.test.ts.
 */
import type { ThriftFrame } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import { echoMessage, echoText as textOf } from '../../../thrift/test/echo-call.js';
import { driverCases } from '../../../uring-runtime/test/conformance/drivers.js';
import { echoBack as echo, exchangeSuite, replyTo } from '../../test/exchange-harness.js';

const drivers = await driverCases();
const callOf = (text: string) => echoMessage(text, 0);

describe.each(drivers)('ClientExchange connections on the $name driver', ({ name, skip }) => {
  const { upstream, exchange } = exchangeSuite(name, skip);

  it.skipIf(skip)('runs calls on the stream callbacks: no promise-form writev or recv', async () => {
    const up = await upstream(echo);
    const { ex, counts } = exchange(up.port);
    for (let i = 0; i < 20; i++) {
      const reply = await ex.send(callOf(`call ${i}`), {});
      expect(textOf(reply)).toBe(`call ${i}`);
      ex.release(reply as ThriftFrame);
    }
    expect(counts).toMatchObject({ writev: 0, recv: 0 });
  });

  it.skipIf(skip)('answers calls queued on one connection in order', async () => {
    const up = await upstream(echo);
    const { ex } = exchange(up.port);
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => ex.send(callOf(`q${i}`), {})));
    expect(replies.map(textOf)).toEqual(Array.from({ length: 8 }, (_, i) => `q${i}`));
    expect(up.accepted).toHaveLength(1);
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
