/**
 * What a reload carries over and what it leaves alone, on the default driver: upstream
 * connection pools survive (make(old): a kept-alive client's next request after the reload
 * reuses the same upstream connection), and a request in flight during the reload finishes on
 * the old config while the next one takes the new config.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, httpUpstream, type Loch, startLoch, tempDir } from './harness.js';

describe('reload state', () => {
  let loch: Loch;
  let dir: string;
  let port: number;
  let connections = 0;
  let release: (() => void) | null = null;
  let arrived: (() => void) | null = null;
  let old: Awaited<ReturnType<typeof httpUpstream>>;
  let next: Awaited<ReturnType<typeof httpUpstream>>;

  const config = (upstream: number, extraRoute = '') => `
[runtime]
workers = 2

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${upstream}" }]
${extraRoute}`;

  beforeAll(async () => {
    old = await httpUpstream((req, res) => {
      if (req.url === '/hold') {
        arrived?.();
        release = () => res.end('old config, held');
        return;
      }
      res.end('old');
    });
    old.server.on('connection', () => connections++);
    next = await httpUpstream((_req, res) => res.end('new'));
    port = await freePort();
    dir = tempDir('loch-proxy-state-');
    loch = await startLoch(dir, config(old.port));
  }, 60_000);

  afterAll(async () => {
    try {
      await loch?.stop();
    } finally {
      await old?.close();
      await next?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const reload = async (text: string) => {
    const from = loch.stderr().length;
    writeFileSync(loch.configPath, text);
    loch.child.kill('SIGHUP');
    await loch.waitFor(/reloaded/, from);
  };

  it('keeps upstream connections across a reload (the pool is carried over)', async () => {
    const client = new Client(`http://127.0.0.1:${port}`, { connections: 1 } as Client.Options);
    try {
      for (let i = 0; i < 3; i++)
        expect(await (await client.request({ method: 'GET', path: '/a' })).body.text()).toBe('old');
      expect(connections).toBe(1);
      await reload(
        config(
          old.port,
          '[[servers.web.routes]]\npath = "/other/"\nupstreams = [{ endpoint = "http://127.0.0.1:1" }]\n',
        ),
      );
      for (let i = 0; i < 3; i++)
        expect(await (await client.request({ method: 'GET', path: '/b' })).body.text()).toBe('old');
      expect(connections).toBe(1);
      // SIGUSR2: the pool's counters show the reuse (one connection created, the rest reused)
      const from = loch.stderr().length;
      loch.child.kill('SIGUSR2');
      await loch.waitFor(/info stats .*"reused":[1-9]/, from);
      expect(loch.stderr().slice(from)).toMatch(
        /"upstream":\{"web":\{"idle":1,"active":0,"created":1,"reused":5\}\}/,
      );
    } finally {
      await client.close();
    }
  });

  it('finishes a request in flight on the old config; the next request takes the new one', async () => {
    const client = new Client(`http://127.0.0.1:${port}`, { connections: 1 } as Client.Options);
    try {
      const held = new Promise<void>((r) => {
        arrived = r;
      });
      const pending = client.request({ method: 'GET', path: '/hold' });
      await held;
      await reload(config(next.port));
      release!();
      const res = await pending;
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('old config, held');
      expect(await (await client.request({ method: 'GET', path: '/after' })).body.text()).toBe('new');
    } finally {
      await client.close();
    }
  });
});
