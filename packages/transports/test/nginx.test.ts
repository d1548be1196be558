/**
 * HttpConnector against nginx as the upstream, for every runtime driver: pooled reuse, static
 * bodies streamed, a short keepalive_timeout (a connection nginx closed while idle must never
 * fail the next request), keepalive_requests (nginx's Connection: close), and no leaks.
 */
import { createRequest, readBody, readText } from '@loch/http';
import { endpoint, HttpConnector, UnifiedL4Connector } from '@loch/transports';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, fdCount, fdsBackTo } from './harness.js';
import { type Nginx, startNginx } from './nginx.js';

const cases = await driverCases();
let nginx: Nginx;
let limited: Nginx;

beforeAll(async () => {
  nginx = await startNginx({ keepaliveTimeout: '1s' });
  limited = await startNginx({ keepaliveRequests: 3 });
});
afterAll(async () => {
  await nginx?.stop();
  await limited?.stop();
});

describe.each(cases)('HttpConnector and nginx on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: HttpConnector;
  let baseline = 0;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    connector = new HttpConnector(new UnifiedL4Connector({ runtime }));
    baseline = fdCount();
  });
  afterEach(async () => {
    connector.close();
    await runtime.close();
  });

  async function closedWithoutLeak(): Promise<void> {
    expect(connector.stats().active).toBe(0);
    connector.close();
    expect(connector.stats()).toMatchObject({ idle: 0, active: 0 });
    expect(await fdsBackTo(baseline)).toBeLessThanOrEqual(baseline);
  }

  run('reuses connections and streams static bodies', async () => {
    const key = endpoint(`http://127.0.0.1:${nginx.port}`);
    expect(await readText((await connector.request(key, createRequest('GET', '/hello'))).body)).toBe('hello');
    const small = await connector.request(key, createRequest('GET', '/128.txt'));
    expect((await readBody(small.body)).byteLength).toBe(128);
    const big = await connector.request(key, createRequest('GET', '/100k.bin'));
    expect(big.headers.get('content-length')).toBe(String(100 * 1024));
    expect((await readBody(big.body)).byteLength).toBe(100 * 1024);
    expect(connector.stats()).toMatchObject({ created: 1, reused: 2, idle: 1, active: 0 });
    await closedWithoutLeak();
  });

  run(
    'after nginx closed idle connections (keepalive_timeout 1s) the next request still succeeds',
    async () => {
      const key = endpoint(`http://127.0.0.1:${nginx.port}`);
      const two = await Promise.all([
        connector.request(key, createRequest('GET', '/hello')),
        connector.request(key, createRequest('GET', '/hello')),
      ]);
      for (const res of two) expect(await readText(res.body)).toBe('hello');
      expect(connector.stats()).toMatchObject({ created: 2, idle: 2 });
      // Wait past nginx's keepalive_timeout: it closes both idle connections.
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 0; i < 3; i++) {
        const res = await connector.request(key, createRequest('GET', '/hello'));
        expect(res.status).toBe(200);
        expect(await readText(res.body)).toBe('hello');
      }
      const s = connector.stats();
      // The stale connections were noticed (liveness watch) or retried; either way each one is gone.
      expect(s.evicted + s.retried).toBeGreaterThanOrEqual(2);
      expect(s.created).toBe(3);
      expect(s.active).toBe(0);
      await closedWithoutLeak();
    },
  );

  run("nginx's Connection: close (keepalive_requests, keepalive_timeout 0) is honoured", async () => {
    const key = endpoint(`http://127.0.0.1:${limited.port}`);
    for (let i = 0; i < 6; i++) {
      const res = await connector.request(key, createRequest('GET', '/hello'));
      expect(await readText(res.body)).toBe('hello');
    }
    // Three requests per connection, the third answered with Connection: close.
    expect(connector.stats()).toMatchObject({ created: 2, reused: 4, retried: 0, active: 0, idle: 0 });
    const res = await connector.request(key, createRequest('GET', '/close'));
    expect(res.headers.get('connection')).toBe('close');
    expect(await readText(res.body)).toBe('closing');
    expect(connector.stats()).toMatchObject({ idle: 0, active: 0 });
    await closedWithoutLeak();
  });
});
