/**
 * Load generator of the echo benchmark: N connections, each sending a message of S bytes and
 * waiting for its echo before the next (ping-pong), for D milliseconds. Runs on the io_uring
 * driver so the client costs little CPU. Prints JSON `{ messages, seconds }`.
 */
import { createUringDriver } from '../../packages/uring-runtime/src/uring/index.js';

const port = Number(process.argv[2]);
const conns = Number(process.argv[3] ?? 64);
const size = Number(process.argv[4] ?? 64);
const durationMs = Number(process.argv[5] ?? 5000);

const driver = createUringDriver({ entries: 1024, bufferCount: 256, bufferSize: 4096 });
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
    const msg = new Uint8Array(size).fill(120);
    let buf = new Uint8Array(size);
    while (running) {
      await s.writeAll(msg);
      let got = 0;
      while (got < size) {
        const [n, b] = await s.read(buf.subarray(got));
        if (n === 0) throw new Error('server closed');
        got += n;
        buf = new Uint8Array(b.buffer, 0, size);
      }
      messages++;
    }
    await s.close();
  }),
);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
await driver.close();
console.log(JSON.stringify({ messages, seconds }));
