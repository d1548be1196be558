/**
 * Hot reload with @loch/service-async: a service holding an HttpConnector is rebuilt by its
 * MakeService from the old one (`make(old)`), the new connector adopts the old one's idle
 * connections, requests in flight finish on the old service, and nothing leaks.
 */
import { createRequest, type HttpRequest, type HttpResponse, readText } from '@loch/http';
import { makeFn, type Service, ServiceSlot } from '@loch/service-async';
import { type Endpoint, endpoint, HttpConnector, UnifiedL4Connector } from '@loch/transports';
import { createRuntime, type Runtime } from '@loch/uring-runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverCases, fdCount, fdsBackTo, HttpPeer } from './harness.js';

const cases = await driverCases();

/** The upstream-calling service a proxy route would hold. */
class UpstreamService implements Service<HttpRequest, HttpResponse> {
  constructor(
    readonly connector: HttpConnector,
    readonly upstream: Endpoint,
  ) {}
  call(req: HttpRequest): Promise<HttpResponse> {
    return this.connector.request(this.upstream, req);
  }
}

describe.each(cases)('reload on the $name driver', ({ name, skip }) => {
  const run = skip === undefined ? it : it.skip;
  let runtime: Runtime;
  let peer: HttpPeer;

  beforeEach(async () => {
    runtime = await createRuntime({ driver: name, log: () => undefined });
    peer = await new HttpPeer((req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-length': 4 });
        res.write('sl');
        setTimeout(() => res.end('ow'), 50);
      } else res.end(`port ${req.socket.remotePort}`);
    }).listen();
  });
  afterEach(async () => {
    await peer.close();
    await runtime.close();
  });

  run('make(old) moves idle connections into the new service; in-flight ones finish on the old', async () => {
    const baseline = fdCount();
    const upstream = endpoint(`http://127.0.0.1:${peer.port}`);
    const factory = (maxIdlePerKey: number) =>
      makeFn<UpstreamService>((old) => {
        const connector = new HttpConnector(new UnifiedL4Connector({ runtime }), { pool: { maxIdlePerKey } });
        if (old !== undefined) connector.adoptIdleFrom(old.connector);
        return new UpstreamService(connector, upstream);
      });
    const slot = new ServiceSlot<UpstreamService>({ initial: factory(8).make() });
    const v1 = slot.get();

    // Two idle connections in v1, and one request in flight across the reload.
    const [w1, w2, inflight] = await Promise.all([
      v1.call(createRequest('GET', '/')),
      v1.call(createRequest('GET', '/')),
      v1.call(createRequest('GET', '/slow')),
    ]);
    const ports = new Set<string>([await readText(w1!.body), await readText(w2!.body)]);
    expect(v1.connector.stats()).toMatchObject({ idle: 2, active: 1, created: 3 });

    slot.precommit(factory(8));
    const old = slot.commit()!;
    const v2 = slot.get();
    expect(old).toBe(v1);
    expect(v2.connector.stats()).toMatchObject({ idle: 2, created: 0 });
    expect(v1.connector.stats()).toMatchObject({ idle: 0, active: 1 });

    // The new service reuses the adopted connections: no new connection to the upstream.
    for (let i = 0; i < 2; i++) {
      const res = await slot.service().call(createRequest('GET', '/'));
      expect(ports.has(await readText(res.body))).toBe(true);
    }
    expect(v2.connector.stats()).toMatchObject({ created: 0, reused: 2, idle: 2 });
    expect(peer.connections.length).toBe(3);

    // The in-flight request finishes on the old service, then the old one is closed for good.
    expect(await readText(inflight!.body)).toBe('slow');
    expect(v1.connector.stats()).toMatchObject({ active: 0, idle: 1 });
    v1.connector.close();
    expect(v1.connector.stats()).toMatchObject({ idle: 0, active: 0 });

    // A further reload with a smaller cap keeps at most that many.
    slot.precommit(factory(1));
    slot.commit();
    const v3 = slot.get();
    expect(v3.connector.stats().idle).toBe(1);
    expect(v2.connector.stats().idle).toBe(0);
    v2.connector.close();
    v3.connector.close();
    expect(await fdsBackTo(baseline + 0)).toBeLessThanOrEqual(baseline);
  });

  run('an adopted connection that the peer closes is evicted from the new pool', async () => {
    const upstream = endpoint(`http://127.0.0.1:${peer.port}`);
    const a = new HttpConnector(new UnifiedL4Connector({ runtime }));
    await readText((await a.request(upstream, createRequest('GET', '/'))).body);
    const b = new HttpConnector(new UnifiedL4Connector({ runtime }));
    expect(b.adoptIdleFrom(a)).toBe(1);
    for (const s of peer.sockets) s.destroy();
    const deadline = Date.now() + 3000;
    while (b.stats().evicted === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(b.stats()).toMatchObject({ idle: 0, evicted: 1 });
    expect(a.stats()).toMatchObject({ idle: 0, evicted: 0 });
    a.close();
    b.close();
  });
});
