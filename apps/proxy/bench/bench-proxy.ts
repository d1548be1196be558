/**
 * The proxy the in-process benchmarks measure (proxy-core.ts, h2-proxy-core.ts): one `http`
 * server of loch's config (one route to one upstream), its handler chain as stack.ts builds it
 * (context -> core -> reuse -> route -> upstream) over an UpstreamConnector whose connections
 * the caller makes (in-memory streams, or real sockets), and the HttpServer around the chain
 * with the worker's context and request hooks (metrics, abandoned requests, failures answered). Built once here so the HTTP/1.1 and HTTP/2
 * benchmarks measure the same chain.
 *
 * Not the worker's setup (worker.ts): no listeners, metrics, reloads or retries of its own.
 */
import { HttpServer, type HttpStream } from '@loch/http';
import { FactoryStack } from '@loch/service-async';
import { parseConfig } from '../src/config/load.js';
import { type ConnectionCx, connectionContext, type ServerIdentity } from '../src/proxy/context.js';
import { ContextHandler, coreLayer, RequestHooks } from '../src/proxy/core.js';
import { ProxyLog } from '../src/proxy/log.js';
import { reuseLayer } from '../src/proxy/reuse.js';
import { routeLayer } from '../src/proxy/route.js';
import { UpstreamConnector, upstreamFactory } from '../src/proxy/upstream.js';

/** What a benchmark drives and closes. */
export interface BenchProxy {
  /** Serve a downstream connection with `http.serveConnection(stream)`. */
  readonly http: HttpServer<ConnectionCx>;
  /** Its upstream pool: `close()` it at the end. */
  readonly connector: UpstreamConnector;
  /** The proxy's log (level warn, written to nowhere): `flush()` it at the end. */
  readonly log: ProxyLog;
}

const noop = () => {};

/**
 * Builds the proxy; `connect` makes each upstream connection the pool asks for. `accessLog`
 * turns the server's access log on (written to nowhere, as the log is).
 */
export function benchProxy(connect: () => Promise<HttpStream>, accessLog = false): BenchProxy {
  const config = parseConfig(`
[servers.bench]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:18080" }
access_log = ${accessLog}

[[servers.bench.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:18081" }]
`);
  const server = config.servers[0]!;
  const log = new ProxyLog('warn', '', noop, noop);
  const connector = new UpstreamConnector({ connect }, 30_000);
  // The chain as stack.ts builds it, with the caller's connections below it.
  const lifecycle = { retired: false };
  const handler = new FactoryStack({ server, routes: server.routes, log, lifecycle, serverHooks: true })
    .replace(
      upstreamFactory({
        timeouts: { connect: server.timeouts.upstreamConnect, read: server.timeouts.upstreamRead },
        newConnector: () => connector,
      }),
    )
    .push(routeLayer())
    .push(reuseLayer())
    .push(coreLayer())
    .pushMapTarget((core) => new ContextHandler(core, core.accessLog))
    .factory.make();
  const hooks = new RequestHooks(server.key, log, { lifecycle });
  // One per server, as worker.ts's `identity`: a per-request object here would be the harness's
  // bytes counted as loch's (heap-sites.sh).
  const identity: ServerIdentity = { key: server.key, scheme: 'http' };
  const http = new HttpServer<ConnectionCx>(handler, {
    limits: { methods: 'any' },
    // As loch's worker makes it (worker.ts): the 4-key subset, per request on HTTP/1.1.
    contextPerRequest: true,
    context: (stream) =>
      connectionContext(stream.facts.clientAddress, stream, stream.driver, identity, undefined),
    // The chain's hooks, as loch's worker wires them (the access log's lines come from them).
    ...hooks.serverOptions(),
  });
  return { http, connector, log };
}
