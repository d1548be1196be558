/**
 * A client process that holds many idle HTTPS keep-alive connections open on a proxy, for
 * measuring the proxy's memory per idle TLS connection: the TLS counterpart of
 * lib/idle-clients.ts. Each connection completes a full TLS handshake (no session offered, so
 * every one costs the server a full one), sends one GET, reads the whole response, then stays
 * open and silent. Prints `ready <open> failed <n>` once all are idle and keeps them until
 * SIGTERM or stdin closes. Not a load generator (wrk) and not a verifier: certificates are not
 * checked.
 *
 * Usage: node --import tsx idle-tls-clients.ts <port> <count> <path> [concurrency]
 */
import { connect, type TLSSocket } from 'node:tls';

const port = Number(process.argv[2]);
const count = Number(process.argv[3] ?? 10_000);
const path = process.argv[4] ?? '/';
const concurrency = Number(process.argv[5] ?? 100);

const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
const sockets: TLSSocket[] = [];
const HEADER_END = Buffer.from('\r\n\r\n');

/** Opens one TLS connection and resolves after its first response arrived in full. */
function openOne(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => socket.write(request),
    );
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf(HEADER_END);
      if (end < 0) return;
      const length = /content-length:\s*(\d+)/i.exec(received.subarray(0, end).toString('latin1'));
      if (length && received.length < end + 4 + Number(length[1])) return;
      socket.off('data', onData);
      received = Buffer.alloc(0);
      sockets.push(socket);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the response')));
  });
}

async function main(): Promise<void> {
  let next = 0;
  let failed = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      next++;
      try {
        await openOne();
      } catch {
        failed++;
      }
    }
  });
  await Promise.all(lanes);
  for (const s of sockets) s.on('error', () => {});
  process.stdout.write(`ready ${sockets.length} failed ${failed}\n`);
  const stop = () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

void main();
