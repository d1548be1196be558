/**
 * UpstreamLimit through HttpConnector against a real node:http peer, on every driver: at most
 * `maxConnections` connections in use to the upstream, requests beyond them queued up to
 * `maxPending` and sent as connections free up (on the same connections), the rest refused at
 * once with ConnectError ERR_TRANSPORT_UPSTREAM_BUSY (503), a queued request that waits past
 * its connect deadline refused the same way, an aborted waiter leaving the queue; the count
 * ends at zero with no descriptor left behind.
 */
import { createRequest, readText } from '@loch/http';
import {
  AbortedError,
  ConnectError,
  endpoint,
  HttpConnector,
  UnifiedL4Connector,
  UpstreamLimit,
} from '@loch/transports';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, eventually, fdCount, fdsBackTo, HttpPeer } from './harness.js';

const drivers = await driverCases();

describe.each(drivers)('UpstreamLimit on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let connector: HttpConnector;
  let peer: HttpPeer;
  /** Responses the peer holds until released. */
  let held: (() => void)[] = [];
  let baseline = 0;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    held = [];
    peer = await new HttpPeer((req, res) => {
      const answer = () => res.end(`ok ${req.url}`);
      if (req.url?.startsWith('/hold')) held.push(answer);
      else answer();
    }).listen();
    baseline = fdCount();
    connector = new HttpConnector(new UnifiedL4Connector({ runtime }));
  });

  afterEach(async () => {
    connector.close();
    await peer.close();
    await runtime.close();
  });

  function key(limit: UpstreamLimit) {
    return { ...endpoint(`http://127.0.0.1:${peer.port}`), limit };
  }

  run('caps connections in use, queues up to max_pending, refuses the rest at once', async () => {
    const limit = new UpstreamLimit(2, 1);
    const k = key(limit);
    const first = [0, 1].map((i) => connector.request(k, createRequest('GET', `/hold${i}`)));
    const queued = connector.request(k, createRequest('GET', '/queued'));
    // third over the cap with one waiting: refused without connecting
    const refused = await connector.request(k, createRequest('GET', '/refused')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe('ERR_TRANSPORT_UPSTREAM_BUSY');
    expect((refused as ConnectError).status).toBe(503);
    expect(await eventually(() => held.length === 2)).toBe(true);
    expect(limit.inUse).toBe(2);
    expect(limit.pending).toBe(1);
    expect(peer.connections.length).toBe(2);
    // one response ends: its connection goes to the waiting request
    held.shift()!();
    const r0 = await first[0]!;
    expect(await readText(r0.body)).toBe('ok /hold0');
    const rq = await queued;
    expect(await readText(rq.body)).toBe('ok /queued');
    expect(peer.connections.length).toBe(2);
    held.shift()!();
    expect(await readText((await first[1]!).body)).toBe('ok /hold1');
    expect(limit.inUse).toBe(0);
    expect(limit.pending).toBe(0);
    expect(limit.refused).toBe(1);
    connector.close();
    expect(await fdsBackTo(baseline)).toBeLessThanOrEqual(baseline);
  });

  run('a queued request that waits past its connect deadline is refused (503), nothing sent', async () => {
    const limit = new UpstreamLimit(1, 4);
    const k = key(limit);
    const busy = connector.request(k, createRequest('GET', '/hold'));
    const late = await connector.request(k, createRequest('GET', '/late'), { connectTimeout: 50 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((late as ConnectError).code).toBe('ERR_TRANSPORT_UPSTREAM_BUSY');
    expect(limit.pending).toBe(0);
    expect(await eventually(() => held.length === 1)).toBe(true);
    held.shift()!();
    expect(await readText((await busy).body)).toBe('ok /hold');
    expect(limit.inUse).toBe(0);
  });

  run('an aborted waiter leaves the queue; a failed connect gives its slot back', async () => {
    const limit = new UpstreamLimit(1, 4);
    const k = key(limit);
    const busy = connector.request(k, createRequest('GET', '/hold'));
    const ac = new AbortController();
    const waiting = connector.request(k, createRequest('GET', '/w'), { signal: ac.signal });
    expect(limit.pending).toBe(1);
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    expect(limit.pending).toBe(0);
    expect(await eventually(() => held.length === 1)).toBe(true);
    held.shift()!();
    await readText((await busy).body);
    expect(limit.inUse).toBe(0);
    // refused connect: the slot comes back
    const dead = { ...endpoint('http://127.0.0.1:1'), limit };
    await expect(connector.request(dead, createRequest('GET', '/'))).rejects.toBeInstanceOf(ConnectError);
    expect(limit.inUse).toBe(0);
  });
});
