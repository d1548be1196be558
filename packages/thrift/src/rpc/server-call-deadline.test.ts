import { expect, it } from 'vitest';
import { echoCall } from '../../test/echo-call.js';
import { createReply, ThriftServer } from './server.js';
import type { ThriftRecvTarget, ThriftWriteTarget } from './stream.js';

/**
 * Taking a whole message disarms the idle/read deadline armed while waiting for it: a handler
 * slower than that deadline still answers (the sweep used to cut the connection mid-call with
 * ERR_THRIFT_TIMEOUT).
 */
it.each([
  ['idle', { idleTimeout: 200 }, 1],
  ['read', { readTimeout: 200 }, 2],
])('a slow handler is not cut by the %s deadline armed before its call', async (_, opts, pieces) => {
  const input = echoCall('hi', 1);
  const parts = pieces === 1 ? [input] : [input.subarray(0, 5), input.subarray(5)];
  let i = 0;
  let pending: ThriftRecvTarget | undefined;
  const stream = {
    written: [] as Uint8Array[],
    closed: false,
    recv: () => Promise.reject(new Error('recv() used')),
    writev: () => Promise.reject(new Error('writev() used')),
    recvTo(target: ThriftRecvTarget): void {
      if (i < parts.length) {
        const bytes = parts[i++]!.slice();
        // The next turn, not a fixed delay: on a loaded machine a delay could outlast the deadline
        // before the message is whole, which would be a fair cut, not the bug this test is about.
        setImmediate(() => target.onRecv({ bytes, release() {} }, undefined));
      } else pending = target;
    },
    writeTo(one: Uint8Array | readonly Uint8Array[], target: ThriftWriteTarget): void {
      const data = one instanceof Uint8Array ? [one] : one;
      for (const b of data) stream.written.push(b.slice());
      queueMicrotask(() => {
        target.onWritten(undefined);
        const p = pending;
        pending = undefined;
        p?.onRecv(null, undefined);
      });
    },
    async close(): Promise<void> {
      stream.closed = true;
      const p = pending;
      pending = undefined;
      p?.onRecv(null, Object.assign(new Error('closed'), { code: 'ECANCELED' }));
    },
  };
  const errors: unknown[] = [];
  await new ThriftServer(
    {
      async call(req) {
        await new Promise((r) => setTimeout(r, 600));
        return createReply(req, (w) => {
          w.writeStructBegin();
          w.writeFieldStop();
          w.writeStructEnd();
        });
      },
    },
    { ...opts, onConnectionError: (e) => errors.push(e) },
  ).handleConnection(stream as never);
  expect(errors).toEqual([]);
  expect(stream.written.length).toBeGreaterThan(0);
});
