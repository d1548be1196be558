/**
 * A thrift server across a reload, on every available driver: a client connection opened
 * before it gets the new routes on its next call, the upstream pool carries over (no new
 * upstream connection), a bad file keeps the running config, a removed server stops
 * accepting and closes its connections, and SIGTERM stops loch at once when no call is in
 * flight.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NpmClient, type NpmUpstream, npmUpstream } from '../thrift/peers.js';
import { availableDrivers, freePort, type Loch, startLoch, tempDir, waitConnectable } from './harness.js';

const drivers = availableDrivers();

describe.each(drivers)('a thrift server across a reload (driver %s)', (driver) => {
  let a: NpmUpstream;
  let b: NpmUpstream;
  let loch: Loch;
  let port: number;
  let client: NpmClient;

  const config = (routes: string) => `
[runtime]
workers = 1

[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:${port}" }
route = { upstreams = [{ endpoint = "127.0.0.1:${a.port}" }] }
${routes}
`;

  beforeAll(async () => {
    a = await npmUpstream('A');
    b = await npmUpstream('B');
    port = await freePort();
    loch = await startLoch(tempDir('loch-thrift-reload-'), config(''), { LOCH_DRIVER: driver });
    await waitConnectable({ port });
    client = await NpmClient.connect(port);
  });

  afterAll(async () => {
    client?.close();
    await loch?.stop();
    await Promise.all([a?.close(), b?.close()]);
  });

  it('routes an open connection by the new config and keeps the upstream pool', async () => {
    expect(await client.call('getUser', '1')).toBe('A:getUser:1');
    expect(a.connections()).toBe(1);
    const mark = loch.stderr().length;
    writeFileSync(
      loch.configPath,
      config(
        `[[servers.rpc.routes]]\nmethod = "getUser"\nupstreams = [{ endpoint = "127.0.0.1:${b.port}" }]`,
      ),
    );
    await loch.waitFor(/reloaded/, mark);
    expect(await client.call('getUser', '2')).toBe('B:getUser:2');
    expect(await client.call('other', '3')).toBe('A:other:3');
    expect(a.connections()).toBe(1);
  });

  it('keeps the running config when the new file is bad', async () => {
    const mark = loch.stderr().length;
    writeFileSync(
      loch.configPath,
      config('[[servers.rpc.routes]]\nmethod = "x"\nupstreams = [{ endpoint = "nowhere" }]'),
    );
    await loch.waitFor(
      /reload .*failed, keeping the running config.*routes\[0\]\.upstreams\[0\]\.endpoint/s,
      mark,
    );
    expect(await client.call('getUser', '4')).toBe('B:getUser:4');
  });

  it('closes the listener and the connections of a thrift server a reload removes', async () => {
    const other = await freePort();
    const mark = loch.stderr().length;
    writeFileSync(
      loch.configPath,
      `[runtime]\nworkers = 1\n[servers.other]\nproxy_type = "thrift"\nlistener = { type = "socket", value = "127.0.0.1:${other}" }\nroute = { upstreams = [{ endpoint = "127.0.0.1:${a.port}" }] }\n`,
    );
    await loch.waitFor(/reloaded/, mark);
    const accepts = () =>
      waitConnectable({ port }, 1).then(
        () => true,
        () => false,
      );
    await expect.poll(accepts, { timeout: 5_000 }).toBe(false);
    await expect.poll(() => (client.connection as { connected: boolean }).connected).toBe(false);
    const moved = await NpmClient.connect(other);
    expect(await moved.call('getUser', '5')).toBe('A:getUser:5');
    moved.close();
  });

  it('stops at once on SIGTERM when no call is in flight', async () => {
    const started = Date.now();
    expect(await loch.stop()).toBe(0);
    // Not the shutdown grace (30 s by default), which a stop waiting for calls would take: a
    // bound far from both, so a late machine's slow exit does not fail it.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
