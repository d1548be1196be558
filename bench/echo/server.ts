/**
 * Echo server for the echo benchmark: `uring` (the io_uring driver: multishot recv into pooled
 * buffers, written straight back), `legacy` (the same loop on the runtime's node:net driver) or
 * `net` (plain node:net, `socket.on('data', d => socket.write(d))`).
 * Prints `listening <port>` when ready. Not a general-purpose server.
 */
import { createServer } from 'node:net';
import { type ByteStream, createRuntime } from '@loch/uring-runtime';

const mode = process.argv[2] ?? 'uring';
const port = Number(process.argv[3] ?? 0);

async function echo(s: ByteStream): Promise<void> {
  try {
    for (;;) {
      const chunk = await s.recv();
      if (chunk === null) break;
      const bytes = chunk.bytes;
      let [n] = await s.write(bytes);
      while (n < bytes.byteLength) n += (await s.write(bytes.subarray(n)))[0];
      chunk.release();
    }
  } catch {
    // the client went away
  }
  await s.close();
}

if (mode === 'uring' || mode === 'legacy') {
  // The runtime's driver itself, not a TcpListener: the loop measures the driver without the
  // RuntimeStream wrapper. uring uses the defaults: 1024 entries, 1024 x 16 KiB provided buffers.
  const { driver } = await createRuntime({ driver: mode });
  const listener = await driver.listenTcp({ host: '127.0.0.1', port });
  const a = listener.localAddress;
  console.log(`listening ${a.family === 'unix' ? 0 : a.port}`);
  for await (const s of listener) void echo(s);
} else {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  server.listen(port, '127.0.0.1', () => {
    const a = server.address();
    console.log(`listening ${typeof a === 'object' && a ? a.port : 0}`);
  });
}
