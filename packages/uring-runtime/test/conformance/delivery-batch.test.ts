/**
 * Results of completions reach their recvTo/writeTo targets at the end of the driver's
 * completion batch, with no promise made by the delivery queue (it used to make one per batch
 * to schedule its microtask), on every driver over real sockets.
 */
import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import type { RecvChunk } from '../../src/stream.js';
import { driverCases, portOf, useDriver } from './drivers.js';

const cases = await driverCases();

/** Whether the current stack passes through the delivery queue's module. */
function fromDeliveryQueue(): boolean {
  return (new Error().stack ?? '').includes('target-delivery');
}

describe.each(cases)('delivery at the end of a completion batch: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);
  const run = skip === undefined ? it : it.skip;

  run('a receive and a write complete into their targets without a promise from the queue', async () => {
    const d = driver();
    const listener = res.add(await d.listenTcp({ host: '127.0.0.1', port: 0 }));
    const accepted = listener.accept();
    const client = res.add(await d.connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
    const server = res.add(await accepted);
    let queuePromises = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'PROMISE' && fromDeliveryQueue()) queuePromises++;
      },
    });
    const log: string[] = [];
    let text = '';
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        if (log.length === 2) {
          hook.disable();
          resolve();
        }
      };
      // From a fresh turn, after this test's own awaits were set up: only the runtime runs now.
      setImmediate(() => {
        hook.enable();
        server.recvTo({
          onRecv(chunk: RecvChunk | null, error) {
            if (error !== undefined || chunk === null) {
              hook.disable();
              reject(error ?? new Error('early end of stream'));
              return;
            }
            log.push('received');
            text = Buffer.from(chunk.bytes).toString();
            chunk.release();
            done();
          },
        });
        client.writeTo(Buffer.from('ping'), {
          onWritten(error) {
            log.push(error === undefined ? 'written' : 'write failed');
            done();
          },
        });
      });
    });
    expect(text).toBe('ping');
    expect(log).toContain('written');
    expect(queuePromises).toBe(0);
  });
});
