/**
 * The in-ring half of the TLS leak check (leak-check.mjs runs it under valgrind): a uring runtime
 * whose ring carries the sessions, through full handshakes both ways, data in both directions
 * (records split across small provided buffers, plaintext larger than a plaintext buffer),
 * close_notify, an untrusted certificate (alerts), a plain-HTTP request handed over, and a
 * stream closed while the ring holds undelivered plaintext for it; then the runtime is closed
 * with nothing left. Imports @loch/tls and the runtime from src (run with tsx and the
 * @loch/source condition). Not a test.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { TlsClientContext, TlsServerContext, type TlsStream, tlsAccept, tlsConnect } from '@loch/tls';
import { createRuntime, TcpListener, TcpStream } from '@loch/uring-runtime';

const dir = process.env.LOCH_LEAK_DIR!;
const cycles = Number(process.argv[2] ?? '10');
const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
const key = readFileSync(join(dir, 'key.pem'), 'utf8');

const runtime = await createRuntime({
  driver: 'uring',
  log: () => undefined,
  uring: { bufferSize: 2048, bufferCount: 64, plainSize: 4096, plainCount: 8 },
});
const server = new TlsServerContext({ certificates: [{ chain: cert, key }] });
const client = new TlsClientContext({ ca: cert });
const untrusting = new TlsClientContext({ ca: cert.replace(/[A-Za-z]{8}(?=\n-----END)/, 'AAAAAAAA') });
const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, runtime });
const port = (listener.localAddress as { port: number }).port;

/** Echoes until the end, then shuts down (close_notify). */
async function echo(stream: TlsStream): Promise<void> {
  for (;;) {
    const chunk = await stream.recv();
    if (chunk === null) break;
    const copy = chunk.bytes.slice();
    chunk.release();
    await stream.writeAll(copy);
  }
  await stream.shutdown();
}

let stopping = false;
const served: Promise<unknown>[] = [];
void (async () => {
  while (!stopping) {
    const raw = await listener.accept().catch(() => undefined);
    if (raw === undefined) return;
    served.push(
      tlsAccept(raw, server, { plainHttp: 'hand-over' })
        .then(async (s) => {
          try {
            await echo(s);
          } finally {
            await s.close();
          }
        })
        .catch(async (e: { stream?: { close(): Promise<void> } }) => e.stream?.close()),
    );
  }
})();

const body = new Uint8Array(40_000).fill(5);
let ringCount = 0;
for (let i = 0; i < cycles; i++) {
  if (i % 2 === 1) (globalThis as { gc?: () => void }).gc?.();
  // A full exchange in the ring on both ends.
  const s = await tlsConnect(await TcpStream.connect({ host: '127.0.0.1', port, runtime }), client, {
    servername: 'localhost',
    session: false,
  });
  if (s.recordLayer === 'ring') ringCount++;
  const reading = (async () => {
    let n = 0;
    while (n < body.byteLength) {
      const chunk = await s.recv();
      if (chunk === null) break;
      n += chunk.bytes.byteLength;
      chunk.release();
    }
    return n;
  })();
  await s.writeAll(body);
  if ((await reading) !== body.byteLength) throw new Error('short echo');
  await s.shutdown();
  await s.recv().then((c) => c?.release());
  await s.close();

  // Closed while the ring holds plaintext nobody read (a flood, one chunk read).
  const t = await tlsConnect(await TcpStream.connect({ host: '127.0.0.1', port, runtime }), client, {
    servername: 'localhost',
    session: false,
  });
  void t.writeAll(body).catch(() => undefined);
  (await t.recv())?.release();
  await t.close();

  // An untrusted certificate: alerts both ways.
  await tlsConnect(await TcpStream.connect({ host: '127.0.0.1', port, runtime }), untrusting, {
    servername: 'localhost',
  }).then(
    (x) => x.close(),
    () => undefined,
  );

  // Plain HTTP, handed over and closed by the server.
  await new Promise<void>((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.write('GET / HTTP/1.1\r\n\r\n');
    socket.resume();
  });
}
stopping = true;
await listener.close();
await Promise.allSettled(served);
await runtime.close();
console.log(`leak workload done (${cycles} cycles, ring: ${String(ringCount)})`);
