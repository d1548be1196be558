/**
 * The process under test of the runtime-memory benchmark: an echo server on @loch/uring-runtime
 * with the driver given on the command line, every connection parked in a pending recv() while
 * idle (what a keep-alive server does). Prints `listening <port>`; on each stdin line `mem` it
 * collects garbage and prints one JSON line of memory figures. Not a general-purpose server.
 *
 * Usage: node --expose-gc --import tsx --conditions=@loch/source server.ts <uring|legacy>
 */
import { createInterface } from 'node:readline';
import { createRuntime, TcpListener, type TcpStream } from '@loch/uring-runtime';

const driver = process.argv[2] === 'uring' ? 'uring' : 'legacy';
const runtime = await createRuntime({ driver, log: () => undefined });
const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0, backlog: 4096 });

async function echo(stream: TcpStream): Promise<void> {
  try {
    for (;;) {
      const chunk = await stream.recv();
      if (chunk === null) break;
      try {
        await stream.writeAll(chunk.bytes);
      } finally {
        chunk.release();
      }
    }
  } catch {
    // the client went away
  } finally {
    await stream.close();
  }
}

void (async () => {
  for await (const stream of listener) void echo(stream);
})();

const gc = (globalThis as { gc?: () => void }).gc;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'mem') return;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({
      rss: usage.rss,
      heapUsed: usage.heapUsed,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
      open: runtime.openStreams,
    })}\n`,
  );
});
process.stdin.on('end', () => process.exit(0));
process.stdout.write(
  `listening ${(listener.localAddress as { port: number }).port} ${runtime.driver.name}\n`,
);
