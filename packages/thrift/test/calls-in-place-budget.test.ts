/**
 * A call held in place (ThriftServer `callsInPlace`) keeps its receive buffer, and the runtime
 * charges it to the connection's receive budget: on every driver this machine runs, a 10 KiB
 * call whose handler has not released it shows in the thread's held bytes (a copied one does
 * not), a client that pipelines far more behind it is held to the stream's cap (the connection
 * stops reading, TCP holds the rest), and once the call is released every call is answered and
 * the held bytes go back to nothing.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { createRuntime, TcpListener } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import { createReply, type ThriftRequest, ThriftServer } from '../src/index.js';
import { testDrivers } from './drivers.js';
import { echoCall } from './echo-call.js';

const drivers = (await testDrivers('thrift calls-in-place budget suite'))
  .filter((d) => d.skip === undefined)
  .map((d) => d.name);

function call(seqId: number, size: number): Uint8Array {
  return echoCall('x'.repeat(size), seqId);
}

const STREAM_CAP = 256 * 1024;
const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
};

describe.each(drivers)('calls held in place on the %s driver', (driver) => {
  it.each([true, false])(
    'callsInPlace %s: what a held call keeps is charged to the receive budget; a flood behind it is bounded',
    async (inPlace) => {
      const runtime = await createRuntime({
        driver,
        log: () => undefined,
        buffers: { streamBytes: STREAM_CAP, workerBytes: 8 * 1024 * 1024 },
      });
      let held: { request: ThriftRequest; answer: () => void } | undefined;
      let answered = 0;
      const server = new ThriftServer(
        {
          call(request) {
            const reply = createReply(request, (w) => {
              w.writeStructBegin();
              w.writeFieldStop();
              w.writeStructEnd();
            });
            if (request.header.seqId === 0)
              return new Promise((resolve) => {
                held = { request, answer: () => resolve(reply) };
              });
            answered++;
            request.release?.();
            return reply;
          },
        },
        { callsInPlace: inPlace },
      );
      const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
      const serving = server.serve(listener);
      const port = (listener.localAddress as { port: number }).port;
      const heldBytes = () => runtime.bufferStats()?.held ?? 0;
      let socket: Socket | undefined;
      try {
        socket = netConnect(port, '127.0.0.1');
        let got = 0;
        socket.on('data', (d: Buffer) => {
          got += d.byteLength;
        });
        await new Promise<void>((resolve) => socket!.once('connect', () => resolve()));
        const first = call(0, 10_240);
        socket.write(first);
        await until(() => held !== undefined);
        expect(held).toBeDefined();
        // The call's buffer is kept (in place) and charged while its handler holds it; a copy is not.
        if (inPlace) expect(heldBytes()).toBeGreaterThanOrEqual(first.byteLength);
        else expect(heldBytes()).toBe(0);
        // 2 MiB of pipelined calls behind the held one: the connection stops at its cap.
        for (let i = 1; i <= 200; i++) socket.write(call(i, 10_240));
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(heldBytes()).toBeLessThanOrEqual(STREAM_CAP + 64 * 1024);
        expect(answered).toBe(0);
        held!.request.release?.();
        held!.answer();
        await until(() => answered === 200);
        expect(answered).toBe(200);
        socket.end();
        await until(() => heldBytes() === 0);
        expect(heldBytes()).toBe(0);
        expect(got).toBeGreaterThan(0);
      } finally {
        socket?.destroy();
        await server.close();
        await serving;
        await runtime.close();
      }
    },
  );
});
