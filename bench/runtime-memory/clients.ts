/**
 * The client process of the runtime-memory benchmark (plain node:net, so the load generator is
 * the same for every driver under test).
 *   idle <port> <count>: opens <count> connections, each echoing one byte, then keeps them open
 *     and silent; prints `ready <open>`; closes them all when stdin ends.
 *   cycle <port> <count>: opens <count> connections (200 at a time), each echoes one byte and
 *     closes; prints `done <completed>` and exits.
 */
import { connect, type Socket } from 'node:net';

const [mode, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const CONCURRENCY = 200;
const sockets: Socket[] = [];

function echoOnce(keep: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write('x'));
    socket.once('data', () => {
      if (keep) sockets.push(socket);
      else socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}

async function run(keep: boolean): Promise<number> {
  let started = 0;
  let completed = 0;
  const lane = async () => {
    while (started < count) {
      started++;
      await echoOnce(keep).then(
        () => completed++,
        () => undefined,
      );
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return completed;
}

if (mode === 'idle') {
  const open = await run(true);
  process.stdout.write(`ready ${open}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
} else {
  const done = await run(false);
  process.stdout.write(`done ${done}\n`);
  process.exit(0);
}
