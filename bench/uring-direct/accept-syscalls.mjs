// Syscalls of an io_uring echo server per short connection (issue 18, the direct-descriptor
// slices). Run from apps/proxy (it resolves @loch/uring-runtime) of a clone, under strace, for
// N = 0 and N = 1000; the difference over N is the per-connection count:
//   strace -c -o s0.txt node ../../bench/uring-direct/accept-syscalls.mjs 0
//   strace -c -o s1.txt node ../../bench/uring-direct/accept-syscalls.mjs 1000
// (no -f: the server runs on the main thread; the clients are a child process, not traced).
// Each client connects, sends 5 bytes, reads them back and closes; 8 at a time.
// Env: HOST (the listener's address, default 127.0.0.1; 0.0.0.0 for a wildcard listener, whose
// streams do not know their local address), LOCAL (what a server does with each connection's
// local address: `none`, the default; `eager`, reads stream.localAddress at accept, as the
// proxy's and HttpServer's connection contexts do, REVIEW F217), LOCH_URING_DIRECT_FILES.
import { spawn } from 'node:child_process';
import { createRuntime, TcpListener } from '@loch/uring-runtime';

const N = Number(process.argv[2] ?? 1000);
const HOST = process.env.HOST ?? '127.0.0.1';
const LOCAL = process.env.LOCAL ?? 'none';
const rt = await createRuntime({ driver: 'uring' });
const lst = await TcpListener.bind({ host: HOST, port: 0, runtime: rt });
const port = lst.localAddress.port;
let served = 0;
const held = [];
(async () => {
  for await (const s of lst) {
    if (LOCAL === 'eager') held.push(s.localAddress);
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
const client = `
const net = require('node:net');
let left = ${N}, live = 0;
function one() {
  if (left === 0) { if (live === 0) process.exit(0); return; }
  left--; live++;
  const c = net.connect(${port}, '127.0.0.1', () => c.write('hello'));
  c.once('data', () => c.end());
  c.on('close', () => { live--; one(); });
  c.on('error', (e) => { console.error(e); process.exit(1); });
}
for (let i = 0; i < 8; i++) one();
`;
const code = await new Promise((res) =>
  spawn(process.execPath, ['-e', client], { stdio: 'inherit' }).on('exit', res),
);
while (served < N) await new Promise((r) => setTimeout(r, 10));
console.log(
  JSON.stringify({
    clients: N,
    served,
    clientExit: code,
    direct: process.env.LOCH_URING_DIRECT_FILES ?? '0',
    host: HOST,
    local: LOCAL,
    held: held.length,
  }),
);
await lst.close();
await rt.close?.();
process.exit(code === 0 && served === N ? 0 : 1);
