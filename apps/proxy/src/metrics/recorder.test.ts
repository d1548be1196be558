import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ProxyContext, type RequestCx } from '../proxy/context.js';
import {
  DURATION_BUCKETS,
  MetricsLayout,
  STATUS_CLASSES,
  TUNNELS_ACTIVE,
  TUNNELS_TOTAL,
  UPSTREAM_CONNECT_FAILURES,
  UPSTREAM_TIMEOUTS,
} from './layout.js';
import { WorkerMetrics } from './recorder.js';

const PROXY_DIR = fileURLToPath(new URL('../..', import.meta.url));

const config = parseConfig(
  `
[admin]
listener = { type = "socket", value = "127.0.0.1:9901" }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:18080" }
[[servers.web.routes]]
path = "/api/"
host = "api.example.com"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
`,
  'test.toml',
);

function setup(enabled = true) {
  const plan = new MetricsLayout().extend(config, enabled);
  const buffer = new SharedArrayBuffer(plan.size * 8);
  const metrics = new WorkerMetrics();
  metrics.attach(0, { buffers: [buffer], plan });
  const web = plan.servers.get('web')!;
  return {
    metrics,
    counts: new Float64Array(buffer),
    web,
    route: web.routes.get('api.example.com')!.get('/api/')!,
  };
}

const route = config.servers[0]!.routes[0]!;
function cx(routed: boolean, startedAt: number): RequestCx {
  const base = ProxyContext.empty()
    .set('peerAddr', { address: '127.0.0.1', port: 1, family: 'IPv4' } as never)
    .set('socket', { localAddress: { address: '127.0.0.1', port: 2, family: 'IPv4' } as never })
    .set('driver', 'legacy')
    .set('server', { key: 'web', scheme: 'http' })
    .set('request', {} as never)
    .set('clientTarget', '/api/x')
    .set('startedAt', startedAt);
  return (
    routed
      ? base
          .set('route', { route: route as never, params: undefined, prefix: '/api/' })
          .set('upstream', route.upstreams[0]!)
      : base
  ) as RequestCx;
}

describe('WorkerMetrics', () => {
  it('counts an answer on its route by status class, with its duration in the route and upstream histograms', () => {
    const { metrics, counts, web, route: at } = setup();
    // Started 2 s ago: lands in the 2.5 s bucket of both histograms.
    metrics.answered('web', cx(true, performance.now() - 2000), 201, true);
    metrics.answered('web', cx(true, performance.now()), 503, false);
    expect(counts[at + 1]).toBe(1); // 2xx
    expect(counts[at + 4]).toBe(1); // 5xx
    const bucket = DURATION_BUCKETS.indexOf(2.5);
    expect(counts[at + STATUS_CLASSES + bucket]).toBe(1);
    const up = web.upstreams.get('http://127.0.0.1:9001')!;
    expect(counts[up + bucket]).toBe(1);
    // The 503 was loch's (fromUpstream false): not an upstream observation.
    expect(counts.slice(up, up + DURATION_BUCKETS.length + 1).reduce((a, b) => a + b, 0)).toBe(1);
    expect(counts[up + DURATION_BUCKETS.length + 1]).toBeGreaterThan(1.9);
  });

  it('puts an answer no route took, and a request the codec refused, on the unrouted series', () => {
    const { metrics, counts, web } = setup();
    metrics.answered('web', cx(false, performance.now()), 404, false);
    metrics.rejected('web', 431);
    metrics.rejected('web', 101);
    expect(counts[web.unrouted + 3]).toBe(2);
    expect(counts[web.unrouted]).toBe(1);
  });

  it('counts connect failures and timeouts by the error code', () => {
    const { metrics, counts, web } = setup();
    const up = web.upstreams.get('http://127.0.0.1:9001')!;
    const routed = cx(true, performance.now());
    metrics.upstreamFailed('web', routed, 'ERR_LOCH_UPSTREAM_REFUSED');
    metrics.upstreamFailed('web', routed, 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT');
    metrics.upstreamFailed('web', routed, 'ERR_LOCH_UPSTREAM_TIMEOUT');
    metrics.upstreamFailed('web', routed, 'ERR_LOCH_UPSTREAM_RESET');
    expect(counts[up + UPSTREAM_CONNECT_FAILURES]).toBe(2);
    expect(counts[up + UPSTREAM_TIMEOUTS]).toBe(2);
  });

  it('keeps counting where the worker it replaces stopped, and zeroes the gauges', () => {
    const { metrics, counts } = setup();
    metrics.tunnelOpened();
    metrics.tunnelOpened();
    metrics.tunnelClosed();
    expect([counts[TUNNELS_TOTAL], counts[TUNNELS_ACTIVE]]).toEqual([2, 1]);
    const replacement = new WorkerMetrics();
    replacement.attach(0, {
      buffers: [counts.buffer as SharedArrayBuffer],
      plan: new MetricsLayout().extend(config, true),
    });
    replacement.tunnelOpened();
    expect([counts[TUNNELS_TOTAL], counts[TUNNELS_ACTIVE]]).toEqual([3, 1]);
  });

  it("applies a reload's plan at commit, not at precommit (an aborted reload changes nothing)", () => {
    const { metrics, counts } = setup(false);
    metrics.adopt(new MetricsLayout().extend(config, true));
    metrics.tunnelOpened();
    expect(metrics.enabled).toBe(false);
    metrics.adopt(undefined);
    metrics.commit();
    expect(metrics.enabled).toBe(false);
    metrics.adopt(new MetricsLayout().extend(config, true));
    metrics.commit();
    metrics.tunnelOpened();
    expect(metrics.enabled).toBe(true);
    expect(counts[TUNNELS_TOTAL]).toBe(1);
  });

  it('counts a thrift call by class with its duration', () => {
    const plan = new MetricsLayout().extend(
      parseConfig(
        `
[admin]
listener = { type = "socket", value = "127.0.0.1:9901" }
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:18090" }
route = { upstreams = [{ endpoint = "127.0.0.1:9090" }] }
`,
        'thrift.toml',
      ),
      true,
    );
    const counts = new Float64Array(new SharedArrayBuffer(plan.size * 8));
    const metrics = new WorkerMetrics();
    metrics.attach(0, { buffers: [counts.buffer as SharedArrayBuffer], plan });
    const at = plan.thrift.get('rpc')!;
    metrics.thriftCall('rpc', 504, performance.now() - 30);
    metrics.thriftCall('rpc', 200, performance.now());
    expect([counts[at + 1], counts[at + 4]]).toEqual([1, 1]);
    expect(counts[at + STATUS_CLASSES + DURATION_BUCKETS.indexOf(0.05)]).toBe(1);
  });

  it('writes nothing when recording is off', () => {
    const { metrics, counts } = setup(false);
    metrics.answered('web', cx(true, 0), 200, true);
    metrics.rejected('web', 400);
    metrics.tunnelOpened();
    metrics.tlsHandshake('web', true);
    expect(counts.every((v) => v === 0)).toBe(true);
    expect(metrics.enabled).toBe(false);
  });

  it('allocates nothing per recorded request, nor per request through the core layer (heap growth measured in a process of its own)', () => {
    const probe = (mode: string) =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [
            '--expose-gc',
            // A young generation no scavenge empties while the probe measures.
            '--min-semi-space-size=64',
            '--max-semi-space-size=128',
            // Tier-up on the main thread: what is optimized (and what escape analysis removes)
            // by the measured window does not depend on a background compiler's progress (load).
            '--no-concurrent-recompilation',
            '--conditions=@loch/source',
            '--import',
            'tsx',
            'test/metrics/record-allocation.ts',
            mode,
          ],
          { cwd: PROXY_DIR, encoding: 'utf8' },
        ),
      ) as { bytesPerRound: number };
    // A round is every record function once (two answers); the control allocates one small
    // object per round, and the probe must see that.
    expect(probe('control').bytesPerRound).toBeGreaterThan(8);
    expect(probe('record').bytesPerRound).toBeLessThan(2);
    // Through the context and core layers (access log off): metrics on cost no closure per
    // request over metrics off (they are recorded from the server's onAnswered hook). A closure
    // per request (the core layer's answer hook before) measured +57 B per request. The lesser of
    // two processes per mode: a process's reading only gains bytes from what ran unoptimized in
    // its window (one in ~15 under load: +17.8 B), never loses them.
    const least = (mode: string) => Math.min(probe(mode).bytesPerRound, probe(mode).bytesPerRound);
    const off = least('core-off');
    const on = least('core-on');
    expect(off).toBeGreaterThan(100);
    expect(on - off).toBeLessThan(16);
    // Six node processes, each loading the sources through tsx: ~10 s alone, past 60 s on a loaded CI.
  }, 150_000);

  it('reads the plan maps once while the server, route and upstream repeat', () => {
    const { metrics, counts, web, route: at } = setup();
    const get = vi.spyOn(Map.prototype, 'get');
    try {
      const lookups = (routed: boolean): number => {
        const before = get.mock.calls.length;
        metrics.answered('web', cx(routed, performance.now()), 200, true);
        return get.mock.calls.length - before;
      };
      const first = lookups(true);
      // The server's plan, the route's host and path, the upstream: four Map reads the first time.
      expect(first - lookups(true)).toBe(4);
      expect(lookups(true)).toBe(first - 4);
      // An unrouted answer between them reads nothing new, and the routed one after it neither.
      lookups(false);
      expect(lookups(true)).toBe(first - 4);
    } finally {
      get.mockRestore();
    }
    expect(counts[at + 1]).toBe(4);
    expect(counts[web.unrouted + 1]).toBe(1);
    const up = web.upstreams.get('http://127.0.0.1:9001')!;
    expect(counts.slice(up, up + DURATION_BUCKETS.length + 1).reduce((a, b) => a + b, 0)).toBe(4);
  });

  it('puts answers on their own series when servers, routes and upstreams alternate', () => {
    const two = parseConfig(
      `
[admin]
listener = { type = "socket", value = "127.0.0.1:9901" }
[servers.a]
listener = { type = "socket", value = "127.0.0.1:18080" }
[[servers.a.routes]]
path = "/x/"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
[[servers.a.routes]]
path = "/y/"
upstreams = [{ endpoint = "http://127.0.0.1:9002" }]
[servers.b]
listener = { type = "socket", value = "127.0.0.1:18081" }
[[servers.b.routes]]
path = "/x/"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
`,
      'two.toml',
    );
    const plan = new MetricsLayout().extend(two, true);
    const buffer = new SharedArrayBuffer(plan.size * 8);
    const metrics = new WorkerMetrics();
    metrics.attach(0, { buffers: [buffer], plan });
    const counts = new Float64Array(buffer);
    const [a, b] = two.servers;
    const on = (r: (typeof two.servers)[number]['routes'][number]): RequestCx =>
      ProxyContext.empty()
        .set('request', {} as never)
        .set('startedAt', performance.now())
        .set('route', { route: r as never, params: undefined, prefix: r.path })
        .set('upstream', r.upstreams[0]!) as unknown as RequestCx;
    const sequence: [string, (typeof two.servers)[number]['routes'][number], number][] = [
      ['a', a!.routes[0]!, 200],
      ['a', a!.routes[1]!, 404],
      ['b', b!.routes[0]!, 500],
      ['a', a!.routes[0]!, 200],
      ['b', b!.routes[0]!, 500],
      ['a', a!.routes[1]!, 404],
      ['a', a!.routes[1]!, 404],
    ];
    for (const [server, r, status] of sequence) metrics.answered(server, on(r), status, true);
    const slot = (server: string, path: string) => plan.servers.get(server)!.routes.get('')!.get(path)!;
    expect(counts[slot('a', '/x/') + 1]).toBe(2);
    expect(counts[slot('a', '/y/') + 3]).toBe(3);
    expect(counts[slot('b', '/x/') + 4]).toBe(2);
    const observed = (server: string, label: string) => {
      const up = plan.servers.get(server)!.upstreams.get(label)!;
      return counts.slice(up, up + DURATION_BUCKETS.length + 1).reduce((x, y) => x + y, 0);
    };
    expect(observed('a', 'http://127.0.0.1:9001')).toBe(2);
    expect(observed('a', 'http://127.0.0.1:9002')).toBe(3);
    expect(observed('b', 'http://127.0.0.1:9001')).toBe(2);
  });
});
