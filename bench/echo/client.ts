/**
 * Load generator of the echo benchmark: N connections, each sending P messages of S bytes at once
 * (P = 1: ping-pong) and waiting for all their echoes before the next round, for D milliseconds.
 * Runs on the io_uring driver so the client costs little CPU. Prints JSON `{ messages, seconds }`.
 * Usage: client.ts <port> [connections=64] [size=64] [durationMs=5000] [pipeline=1]
 */
import { createRuntime } from '@loch/uring-runtime';

const port = Number(process.argv[2]);
const conns = Number(process.argv[3] ?? 64);
const size = Number(process.argv[4] ?? 64);
const durationMs = Number(process.argv[5] ?? 5000);
const pipeline = Number(process.argv[6] ?? 1);
const round = size * pipeline;

const runtime = await createRuntime({
  driver: 'uring',
  uring: { entries: 1024, bufferCount: 256, bufferSize: 4096 },
});
const { driver } = runtime;
let messages = 0;
let running = true;
const streams = await Promise.all(
  Array.from({ length: conns }, () => driver.connectTcp({ host: '127.0.0.1', port })),
);
const start = process.hrtime.bigint();
setTimeout(() => {
  running = false;
}, durationMs);
await Promise.all(
  streams.map(async (s) => {
    const msg = new Uint8Array(round).fill(120);
    let buf = new Uint8Array(round);
    while (running) {
      await s.writeAll(msg);
      let got = 0;
      while (got < round) {
        const [n, b] = await s.read(buf.subarray(got));
        if (n === 0) throw new Error('server closed');
        got += n;
        buf = new Uint8Array(b.buffer, 0, round);
      }
      messages += pipeline;
    }
    await s.close();
  }),
);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
await runtime.close();
console.log(JSON.stringify({ messages, seconds }));
