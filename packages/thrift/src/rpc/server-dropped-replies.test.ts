/**
 * Every reply handed to ThriftServer is released (ThriftReply.release), on every path: a relay's
 * reply may be a view of a receive buffer of the runtime's pool (the proxy's in-place replies,
 * eec62e7), which a reply never released keeps for good. Here, with replies in request order
 * (replyOrder 'request', as the proxy runs with max_pipelined_calls above 1): a later call
 * answered while an earlier one still runs waits in the order queue; when the connection then
 * fails (the client reset it), that waiting reply is released too, once the stream is closed.
 */
import { describe, expect, it } from 'vitest';
import { echoCall } from '../../test/echo-call.js';
import { withTargetForms } from '../../test/target-forms.js';
import { createReply, type ThriftReply, ThriftServer } from './server.js';
import type { ThriftStream } from './stream.js';

/** `count` framed binary calls of `echo(1: string text)`. */
function calls(count: number): Uint8Array {
  const frames = Array.from({ length: count }, (_, i) => echoCall(`call ${i}`, i));
  return Buffer.concat(frames);
}

/** Delivers `input` in one chunk, then fails its next receive (a client that reset). */
function resetAfter(input: Uint8Array) {
  let sent = false;
  const s: ThriftStream & { closed: boolean } = {
    closed: false,
    async recv() {
      if (!sent) {
        sent = true;
        return { bytes: input.slice(), release: () => {} };
      }
      // After the calls were handled: the client resets the connection.
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw Object.assign(new Error('recv: connection reset'), { code: 'ECONNRESET' });
    },
    async writev(bufs) {
      return bufs.reduce((n, b) => n + b.byteLength, 0);
    },
    async close() {
      s.closed = true;
    },
  };
  return withTargetForms(s);
}

describe('ThriftServer: replies that will not be written are released', () => {
  it('a reply waiting in request order behind a running call is released when the connection fails', async () => {
    const released: number[] = [];
    let releasedBeforeClose = 0;
    let finishFirst: (() => void) | undefined;
    const stream = resetAfter(calls(2));
    const reply = (request: Parameters<typeof createReply>[0], i: number): ThriftReply => ({
      ...createReply(request, (w) => {
        w.writeStructBegin();
        w.writeFieldStop();
        w.writeStructEnd();
      }),
      release: () => {
        released.push(i);
        if (!stream.closed) releasedBeforeClose++;
      },
    });
    const server = new ThriftServer(
      {
        call(request) {
          const i = request.header.seqId;
          // Call 0 runs until the test lets it finish; call 1 is answered at once and waits
          // for call 0's reply to go out first.
          if (i === 0)
            return new Promise<ThriftReply>((resolve) => (finishFirst = () => resolve(reply(request, 0))));
          return reply(request, 1);
        },
      },
      { maxConcurrentCalls: 2, replyOrder: 'request', onConnectionError: () => {} },
    );
    await server.handleConnection(stream);
    expect(stream.closed).toBe(true);
    // Call 0 finishes after the connection ended: dropped, released at once.
    finishFirst?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(released.sort()).toEqual([0, 1]);
    expect(releasedBeforeClose).toBe(0);
  });
});
