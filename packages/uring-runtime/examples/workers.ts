/**
 * Thread-per-core: two workers, each with its own runtime, share one port through SO_REUSEPORT;
 * the main thread asks every worker for stats, talks to the port, then stops them gracefully.
 * Run: pnpm exec tsx --conditions=@loch/source examples/workers.ts
 */
import { createRuntime, start, TcpListener, TcpStream } from '@loch/uring-runtime';

// Reserve a free port with a reusePort listener of our own; the workers join its group.
const local = await createRuntime({ driver: 'legacy' });
const reserved = await TcpListener.bind({ host: '127.0.0.1', port: 0, reusePort: true, runtime: local });
const { port } = reserved.localAddress as { port: number };

const pool = await start({ workers: 2, data: { port } }, new URL('./echo-worker.ts', import.meta.url));
pool.on('crash', (crash) => console.error('worker crashed:', crash));
await reserved.close();
console.log(pool.workers.map((w) => `worker ${w.index}: ${w.driver} (tid ${w.tid})`).join('\n'));

for (let i = 0; i < 4; i++) {
  const client = await TcpStream.connect({ host: '127.0.0.1', port, runtime: local });
  await client.writeAll(new TextEncoder().encode(`ping ${i}`));
  await client.shutdown();
  const [n, buf] = await client.read(new Uint8Array(64));
  console.log(new TextDecoder().decode(buf.subarray(0, n)));
  await client.close();
}
console.log(await pool.broadcast('stats'));
console.log(await pool.stop({ deadline: 5000 }));
await local.close();
