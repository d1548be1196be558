/**
 * An echo server and a client on the thread's runtime: bind, accept, copy each stream back to
 * itself, connect, write, half-close, read the echo, shut everything down. Exits by itself.
 * Run: pnpm example (LOCH_DRIVER=legacy or =uring to choose the driver).
 */
import { copy, currentRuntime, TcpListener, TcpStream, timeout } from '@loch/uring-runtime';

const runtime = await currentRuntime();
console.log(`driver: ${runtime.driver.name} (${runtime.selection.reason})`);

const listener = await TcpListener.bind({ host: '127.0.0.1', port: 0 });
const { port } = listener.localAddress as { port: number };

// Server: every accepted stream is echoed until its peer half-closes.
const serving = (async () => {
  for await (const stream of listener) {
    void copy(stream, stream)
      .catch((error: unknown) => console.error('echo failed:', error))
      .finally(() => stream.close());
  }
})();

// Client: write, half-close, read the echo until end of stream.
const client = await TcpStream.connect({ host: '127.0.0.1', port, timeout: 1000 });
await client.writeAll(new TextEncoder().encode('hello, loch'));
await client.shutdown();
let echoed = '';
const decoder = new TextDecoder();
for await (const bytes of client) echoed += decoder.decode(bytes, { stream: true });
await client.close();
console.log(`echoed: ${echoed}`);

await listener.close();
await timeout(serving, 1000);
await runtime.close();
