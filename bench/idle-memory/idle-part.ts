/**
 * One share of many-idle.ts's idle keep-alive connections: a client process that opens `count`
 * connections to 127.0.0.1:`port` from the given source addresses (taken in turn), sends one GET
 * of `path` on each and reads its whole response (so the proxy has served it and holds the
 * connection as an idle keep-alive one), then keeps them open and silent. A process here may
 * hold fewer than 20,000 descriptors (this VM's hard limit; prlimit is refused), and one source
 * address has ~28,000 ephemeral ports toward one destination, so many-idle.ts runs several of
 * these, each from its own address. Not bench/lib/idle-clients.ts (one process, one address up
 * to 20,000, and it does not report connections the proxy closed while they were held).
 *
 * Prints `ready <open> failed <n>` once every connection is idle. On SIGTERM (or stdin's end)
 * prints `closed <k>` (connections that closed while held: the proxy's keep-alive timeout or
 * an error, so the reading holds fewer than it says) and exits.
 *
 * Usage: node --import tsx idle-part.ts <port> <count> <path> <source,source,...> [concurrency]
 */
import { connect, type Socket } from 'node:net';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const path = process.argv[4] ?? '/';
const sources = (process.argv[5] ?? '127.0.0.1').split(',');
const concurrency = Number(process.argv[6] ?? 200);

const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
const HEADER_END = Buffer.from('\r\n\r\n');
const sockets: Socket[] = [];
let opened = 0;
let ready = false;
let closedWhileHeld = 0;

/** Opens one connection and resolves after its first response arrived in full. */
function openOne(): Promise<void> {
  return new Promise((resolve, reject) => {
    const localAddress = sources[opened++ % sources.length]!;
    const socket = connect({ host: '127.0.0.1', port, localAddress }, () => socket.write(request));
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf(HEADER_END);
      if (end < 0) return;
      const length = /content-length:\s*(\d+)/i.exec(received.subarray(0, end).toString('latin1'));
      if (length === null || received.length < end + 4 + Number(length[1])) return;
      socket.off('data', onData);
      received = Buffer.alloc(0);
      sockets.push(socket);
      socket.once('close', () => {
        if (ready) closedWhileHeld++;
      });
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
  ready = true;
  process.stdout.write(`ready ${sockets.length} failed ${failed}\n`);
  const stop = () => {
    process.stdout.write(`closed ${closedWhileHeld}\n`, () => {
      for (const s of sockets) s.destroy();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

void main();
