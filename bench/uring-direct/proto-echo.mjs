// Run from apps/proxy of a clone with direct-accept-prototype.patch applied and built:
//   node proto-echo.mjs 200; LOCH_URING_DIRECT_FILES=1024 node proto-echo.mjs 200
// Functional check of the direct-accept prototype: an echo server on the uring driver accepts
// N connections from node:net clients; with LOCH_URING_DIRECT_FILES set the accepted sockets
// are direct slots, so this process's fd table grows by the clients' N only, not 2N.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { createRuntime } from '@loch/uring-runtime';

const N = Number(process.argv[2] ?? 200);
const rt = await createRuntime({ driver: 'uring' });
const info = rt.driver.host?.ring?.info;
const lst = await rt.driver.listenTcp({ host: '127.0.0.1', port: 0 });
const port = lst.localAddress.port;
const fds0 = readdirSync('/proc/self/fd').length;
let served = 0;
(async () => {
  for await (const s of lst) {
    (async () => {
      for (;;) {
        const c = await s.recv();
        if (c === null) break;
        const copy = Uint8Array.from(c.bytes);
        c.release();
        await s.writeAll(copy);
      }
      await s.close();
      served++;
    })().catch((e) => console.error('conn', e));
  }
})().catch(() => {});
const socks = [];
for (let i = 0; i < N; i++)
  socks.push(
    await new Promise((res, rej) => {
      const c = net.connect(port, '127.0.0.1', () => res(c));
      c.on('error', rej);
    }),
  );
const replies = await Promise.all(
  socks.map(
    (c, i) =>
      new Promise((res) => {
        c.once('data', (d) => res(d.toString()));
        c.write(`ping ${i}`);
      }),
  ),
);
const ok = replies.every((r, i) => r === `ping ${i}`);
const fds1 = readdirSync('/proc/self/fd').length;
console.log(
  JSON.stringify({
    direct: process.env.LOCH_URING_DIRECT_FILES ?? '0',
    ringDirectFiles: info?.directFiles,
    echoOk: ok,
    fdsGrew: fds1 - fds0,
    clients: N,
  }),
);
await Promise.all(
  socks.map(
    (c) =>
      new Promise((res) => {
        c.on('close', res);
        c.end();
      }),
  ),
);
await new Promise((r) => setTimeout(r, 200));
console.log(JSON.stringify({ servedAndClosed: served }));
await lst.close();
await rt.close?.();
process.exit(ok && served === N ? 0 : 1);
