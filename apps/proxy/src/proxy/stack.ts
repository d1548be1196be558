/**
 * Assembles one server's service chain with FactoryStack, outermost first:
 *   context -> HTTP core (errors, access log) -> connection reuse -> route and rewrite -> upstream
 * `make(old)` builds each level from the same level of the previous chain, so the upstream
 * connector (with its idle pool) carries over a reload. Not for listeners or reload
 * orchestration (worker.ts).
 */
import { FactoryStack, type MakeService } from '@loch/service-async';
import type { HttpConnector } from '@loch/transports';
import type { ServerConfig } from '../config/schema.js';
import { ContextHandler, type CoreService, coreLayer } from './core.js';
import type { ProxyLog } from './log.js';
import { type ConnectionReuseService, reuseLayer, type ServerLifecycle } from './reuse.js';
import { type RouteService, routeLayer } from './route.js';
import { type UpstreamService, upstreamFactory } from './upstream.js';

/** What a server's chain is built from. */
export interface ServerStackConfig {
  readonly server: ServerConfig;
  readonly routes: ServerConfig['routes'];
  readonly log: ProxyLog;
  readonly lifecycle: ServerLifecycle;
  readonly newConnector: () => HttpConnector;
  /**
   * The HttpServer serving the chain has RequestHooks with the worker's log and this
   * lifecycle as its onAnswered and onFailed (core.ts): the core and reuse layers then add no
   * promise reaction per request.
   */
  readonly serverHooks?: boolean;
}

/**
 * A server's handler as built: each layer's type names its inner service, so code that needs a
 * level of the chain (the upstream connector) reaches it through typed fields, with no casts.
 */
export type ServerHandler = ContextHandler<
  CoreService<ConnectionReuseService<RouteService<UpstreamService>>>
>;

/** The factory of a server's handler (the context layer on top of the chain). */
export function serverStack(config: ServerStackConfig): MakeService<ServerHandler> {
  const t = config.server.timeouts;
  return new FactoryStack(config)
    .replace(
      upstreamFactory({
        timeouts: { connect: t.upstreamConnect, read: t.upstreamRead },
        newConnector: config.newConnector,
        trustedProxies: config.server.trustedProxies,
      }),
    )
    .push(routeLayer())
    .push(reuseLayer())
    .push(coreLayer())
    .pushMapTarget((core) => new ContextHandler(core, core.accessLog)).factory;
}

/** The upstream connector at the bottom of a built chain (for stats and for closing a removed server's pool). */
export function connectorOf(handler: ServerHandler): HttpConnector {
  // context -> core -> reuse -> route -> upstream
  return handler.inner.inner.inner.inner.connector;
}
