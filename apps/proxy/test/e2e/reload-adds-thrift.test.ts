/**
 * A loch started with HTTP servers only has not loaded the Thrift relay (a worker loads it with
 * the first config that has a thrift server, worker.ts): a reload that adds a thrift server
 * loads it then, on every worker and every available driver, and serves calls through it while
 * the HTTP server goes on. Which worker served a call is read from the admin listener's /stats
 * (each worker's upstream pool of the thrift server), so the test holds only if both relayed.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NpmClient, type NpmUpstream, npmUpstream } from '../thrift/peers.js';
import {
  adminGet,
  availableDrivers,
  curl,
  freePort,
  type Loch,
  startLoch,
  tempDir,
  waitConnectable,
} from './harness.js';

/** The body of GET / through loch. */
async function web(port: number): Promise<string> {
  return (await curl(['-s', `http://127.0.0.1:${port}/`])).out;
}

describe.each(availableDrivers())('a reload that adds the first thrift server (driver %s)', (driver) => {
  let upstream: NpmUpstream;
  let backend: Server;
  let loch: Loch;
  let port: number;
  let rpcPort: number;
  let adminPort: number;

  const config = (thrift: boolean) => `
[runtime]
workers = 2

[admin]
listener = { type = "socket", value = "127.0.0.1:${adminPort}" }

[servers.web]
listener = { type = "socket", value = "127.0.0.1:${port}" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:${(backend.address() as AddressInfo).port}" }]
${
  thrift
    ? `
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${rpcPort}" }
route = { upstreams = [{ endpoint = "127.0.0.1:${upstream.port}" }] }
`
    : ''
}`;

  beforeAll(async () => {
    upstream = await npmUpstream('A');
    backend = createServer((_req, res) => res.end('web'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    port = await freePort();
    rpcPort = await freePort();
    adminPort = await freePort();
    loch = await startLoch(tempDir('loch-reload-adds-thrift-'), config(false), { LOCH_DRIVER: driver });
    await waitConnectable({ port });
  });

  afterAll(async () => {
    await loch?.stop();
    await upstream?.close();
    await new Promise((r) => backend?.close(r));
  });

  /** The workers whose upstream pool of server `rpc` has opened a connection (from /stats). */
  async function relayingWorkers(): Promise<number[]> {
    const stats = JSON.parse(await adminGet(adminPort, '/stats')) as {
      workers: { worker: number; upstream?: Record<string, { created: number }> }[];
    };
    return stats.workers
      .filter((w) => (w.upstream?.rpc?.created ?? 0) > 0)
      .map((w) => w.worker)
      .sort((a, b) => a - b);
  }

  it('serves thrift calls after the reload, and HTTP before and after', async () => {
    expect(await web(port)).toBe('web');
    const mark = loch.stderr().length;
    writeFileSync(loch.configPath, config(true));
    await loch.waitFor(/reloaded/, mark);
    expect(loch.stderr().slice(mark)).not.toMatch(/failed|aborted/);
    expect(await relayingWorkers()).toEqual([]);
    // Fresh connections land on either worker (the kernel spreads them): call until both have
    // relayed a call (at most 64 connections: one worker missing them all is 2^-63).
    let relaying: number[] = [];
    for (let i = 0; i < 64 && relaying.length < 2; i++) {
      const client = await NpmClient.connect(rpcPort);
      try {
        expect(await client.call('getUser', String(i))).toBe(`A:getUser:${i}`);
      } finally {
        client.close();
      }
      relaying = await relayingWorkers();
    }
    expect(relaying).toEqual([0, 1]);
    expect(await web(port)).toBe('web');
  });
});
