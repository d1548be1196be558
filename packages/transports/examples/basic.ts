/**
 * @loch/transports in one file: a tiny node:http upstream, pooled HTTP/1.1 requests to it
 * through HttpConnector over UnifiedL4Connector, the pool counters, and a typed connect error.
 * Run: pnpm --filter @loch/transports example (exits by itself).
 */
import { createServer } from 'node:http';
import { createRequest, readText } from '@loch/http';
import { ConnectError, endpoint, HttpConnector, UnifiedL4Connector } from '@loch/transports';
import { currentRuntime } from '@loch/uring-runtime';

const upstream = createServer((req, res) =>
  res.end(`hello from ${req.url} (connection ${req.socket.remotePort})\n`),
);
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const { port } = upstream.address() as { port: number };

const runtime = await currentRuntime();
const connector = new HttpConnector(new UnifiedL4Connector({ timeout: 1000 }), {
  readTimeout: 5000,
  pool: { maxIdlePerKey: 8, idleTimeout: 30_000 },
});
const key = endpoint(`http://127.0.0.1:${port}`);

for (let i = 0; i < 3; i++) {
  const res = await connector.request(key, createRequest('GET', `/item/${i}`));
  // Reading the body to its end hands the connection back to the pool.
  process.stdout.write(`${res.status} ${await readText(res.body)}`);
}
console.log('stats', connector.stats()); // created 1, reused 2, idle 1

try {
  await connector.request(endpoint('http://127.0.0.1:1'), createRequest('GET', '/'));
} catch (error) {
  if (error instanceof ConnectError) console.log(`upstream down: ${error.code} -> ${error.status}`);
  else throw error;
}

connector.close();
upstream.close();
await runtime.close();
console.log(`driver ${runtime.driver.name}`);
