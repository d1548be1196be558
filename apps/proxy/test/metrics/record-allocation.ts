/**
 * Probe for recorder.test.ts, run in its own process (`node --expose-gc`, a young generation
 * large enough that no scavenge runs while it measures): calls every record function of
 * WorkerMetrics many times after a warm-up and prints the heap growth per round as JSON.
 * `control` instead allocates one small object per round, to show the probe sees allocation.
 * `core-off` / `core-on`: requests through the context and core layers (access log off) with
 * metrics off / on, answered by the inner service through a promise and recorded through the
 * server's onAnswered hook (RequestHooks) as HttpServer calls it; a round is one request, and
 * a batch of them starts in one turn (the metrics' clock is read once per turn).
 */

import { createResponse, FixedBody, type HttpResponse, type HttpServerRequest } from '@loch/http';
import { parseConfig } from '../../src/config/load.js';
import { MetricsLayout } from '../../src/metrics/layout.js';
import { WorkerMetrics, workerMetrics } from '../../src/metrics/recorder.js';
import { type ConnectionCx, ProxyContext, type RequestCx } from '../../src/proxy/context.js';
import { ContextHandler, CoreService, RequestHooks } from '../../src/proxy/core.js';
import { ProxyLog } from '../../src/proxy/log.js';

const mode = process.argv[2] ?? 'record';
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
  'probe.toml',
);
const plan = new MetricsLayout().extend(config, true);
const metrics = new WorkerMetrics();
metrics.attach(0, { buffers: [new SharedArrayBuffer(plan.size * 8)], plan });
const route = config.servers[0]!.routes[0]!;
const connection = ProxyContext.empty()
  .set('peerAddr', { address: '127.0.0.1', port: 1, family: 'IPv4' } as never)
  .set('socket', { localAddress: { address: '127.0.0.1', port: 2, family: 'IPv4' } as never })
  .set('driver', 'legacy')
  .set('server', { key: 'web', scheme: 'http' });
const request = {} as never;
const routed = connection
  .fork()
  .set('request', request)
  .set('clientTarget', '/api/x')
  .set('startedAt', performance.now())
  .set('route', { route: route as never, params: undefined, prefix: '/api/' })
  .set('upstream', route.upstreams[0]!) as unknown as RequestCx;
const unrouted = connection
  .fork()
  .set('request', request)
  .set('clientTarget', '/nope')
  .set('startedAt', performance.now()) as RequestCx;

let sink: unknown = null;
function round(n: number): void {
  for (let i = 0; i < n; i++) {
    if (mode === 'control') {
      sink = { i };
      continue;
    }
    metrics.answered('web', routed, 200, true);
    metrics.answered('web', unrouted, 404, false);
    metrics.upstreamFailed('web', routed, 'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT');
    metrics.rejected('web', 431);
    metrics.tlsHandshake('web', false);
    metrics.tunnelOpened();
    metrics.tunnelClosed();
  }
}

const exposed = (globalThis as { gc?: () => void }).gc;
if (exposed === undefined) throw new Error('run with --expose-gc');
const gc: () => void = exposed;

/** Through the context and core layers: bytes per request with metrics on or off. */
async function coreProbe(metricsOn: boolean): Promise<number> {
  workerMetrics.attach(0, {
    buffers: [new SharedArrayBuffer(plan.size * 8)],
    plan: new MetricsLayout().extend(config, metricsOn),
  });
  const log = new ProxyLog(
    'off',
    '',
    () => {},
    () => {},
    0,
  );
  const answer = createResponse(200, { body: new FixedBody('ok') });
  const answered = Promise.resolve(answer);
  const handler = new ContextHandler(new CoreService({ call: () => answered }, log, 'web', false), false);
  const hooks = new RequestHooks('web');
  const BATCH = 1000;
  const requests: HttpServerRequest<ConnectionCx>[] = [];
  for (let i = 0; i < BATCH; i++)
    requests.push({
      method: 'GET',
      target: '/api/x',
      targetForm: 'origin',
      version: '1.1',
      headers: answer.headers,
      body: answer.body,
      context: connection,
    });
  const outs: Promise<HttpResponse>[] = new Array(BATCH);
  async function batch(): Promise<void> {
    for (let i = 0; i < BATCH; i++) {
      const req = requests[i]!;
      // As the server hands it over: carrying the connection's context.
      req.context = connection;
      outs[i] = handler.call(req) as Promise<HttpResponse>;
    }
    const results = await Promise.all(outs);
    for (let i = 0; i < BATCH; i++) hooks.answered(requests[i]!, results[i]!);
  }
  for (let i = 0; i < 20; i++) await batch();
  gc();
  const batches = 40;
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < batches; i++) await batch();
  const after = process.memoryUsage().heapUsed;
  return (after - before) / (batches * BATCH);
}

if (mode === 'core-off' || mode === 'core-on') {
  const bytesPerRound = await coreProbe(mode === 'core-on');
  process.stdout.write(`${JSON.stringify({ mode, bytesPerRound })}\n`);
} else {
  round(100_000);
  gc();
  const rounds = 200_000;
  const before = process.memoryUsage().heapUsed;
  round(rounds);
  const after = process.memoryUsage().heapUsed;
  process.stdout.write(
    `${JSON.stringify({ mode, rounds, bytesPerRound: (after - before) / rounds, sink: sink !== null })}\n`,
  );
}
