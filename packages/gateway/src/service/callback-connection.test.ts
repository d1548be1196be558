/**
 * What both of ClientExchange's connection kinds (callback-connection.ts: exclusive and
 * multiplexed) do, against a framed binary node:net upstream under the test's control, on every
 * driver this machine runs: an idle connection the upstream closed or sent unasked bytes on is
 * replaced before the next call instead of failing it, bytes past a reply drop the connection but
 * not the reply, and a reply over maxFrameSize fails its call and the connection.
 */
import { describe, expect, it } from 'vitest';
import { echoMessage, echoText as textOf } from '../../../thrift/test/echo-call.js';
import { driverCases } from '../../../uring-runtime/test/conformance/drivers.js';
import { echoBack as echo, exchangeSuite, replyTo } from '../../test/exchange-harness.js';

const cases = (await driverCases()).flatMap((driver) =>
  [false, true].map((multiplexed) => ({
    ...driver,
    multiplexed,
    kind: multiplexed ? 'multiplexed' : 'exclusive',
  })),
);
const callOf = (text: string) => echoMessage(text, 0);

describe.each(cases)(
  'ClientExchange $kind connections on the $name driver',
  ({ name, skip, multiplexed }) => {
    const { upstream, exchange } = exchangeSuite(name, skip, { multiplexed });

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
  },
);
