/**
 * How long close() of a stream with a pending receive takes, in turns of the event loop (the
 * state of a parked keep-alive connection, or one a server cuts by a deadline): the receive
 * hears ECANCELED and the descriptor is closed within one turn on every driver. On io_uring the
 * cancel and the close go in one submission (the close hardlinked after the cancel); closing
 * once the receive's completion came took a second turn, which 10,000 slowloris connections
 * cut within a second paid each.
 */
import { describe, expect, it } from 'vitest';
import type { RuntimeError } from '../../src/errors.js';
import type { RecvChunk } from '../../src/stream.js';
import { driverCases, portOf, useDriver } from './drivers.js';

const cases = await driverCases();

describe.each(cases)('close() with a pending receive: $name driver', ({ name, skip }) => {
  const { driver, res } = useDriver(name);

  it.skipIf(skip !== undefined)(
    'settles the receive and closes within one turn of the event loop',
    async () => {
      const d = driver();
      const listener = res.add(await d.listenTcp({ host: '127.0.0.1', port: 0 }));
      for (let i = 0; i < 5; i++) {
        const accepted = listener.accept();
        const client = res.add(await d.connectTcp({ host: '127.0.0.1', port: portOf(listener) }));
        const server = await accepted;
        const heard: (RuntimeError | undefined)[] = [];
        server.recvTo({
          onRecv(chunk: RecvChunk | null, error: RuntimeError | undefined) {
            chunk?.release();
            heard.push(error);
          },
        });
        // Let the receive reach the kernel (its submission goes with the next flush).
        await new Promise((r) => setTimeout(r, 10));
        let turns = 0;
        let counting = true;
        const tick = () => {
          if (!counting) return;
          turns++;
          setImmediate(tick);
        };
        setImmediate(tick);
        await server.close();
        counting = false;
        expect(heard.map((e) => e?.code)).toEqual(['ECANCELED']);
        expect(turns).toBeLessThanOrEqual(1);
        // The peer sees the close.
        expect(await client.recv()).toBeNull();
      }
    },
  );
});
