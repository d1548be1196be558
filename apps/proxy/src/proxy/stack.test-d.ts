/**
 * Type-level guarantees of the service chain: the certain-map context makes a chain assembled in
 * the wrong order a compile error (the upstream layer reads keys only the route layer sets).
 */
import type { HttpHandler, HttpResponse, HttpServer } from '@loch/http';
import { FactoryStack, type Service } from '@loch/service-async';
import type { HttpConnector } from '@loch/transports';
import { describe, expectTypeOf, it } from 'vitest';
import type { ConnectionCx, RequestCx, RoutedCx } from './context.js';
import { type ContextHandler, type CoreService, coreLayer } from './core.js';
import type { ProxyLog } from './log.js';
import type { ConnectionReuseService, ServerLifecycle } from './reuse.js';
import { reuseLayer } from './reuse.js';
import { type RouteService, routeLayer } from './route.js';
import type { connectorOf, ServerHandler, serverStack } from './stack.js';
import type { UpstreamService, upstreamFactory } from './upstream.js';

declare const config: {
  routes: [];
  lifecycle: ServerLifecycle;
  log: ProxyLog;
  server: { key: string; accessLog: boolean; allowEncodedSlashes: boolean };
};
declare const upstream: ReturnType<typeof upstreamFactory>;

describe('service chain types', () => {
  it('routes before the upstream layer: the upstream service needs a routed context', () => {
    expectTypeOf<UpstreamService['call']>().parameter(0).toEqualTypeOf<RoutedCx>();
    expectTypeOf<RoutedCx>().toMatchTypeOf<RequestCx>();
    expectTypeOf<RequestCx>().not.toMatchTypeOf<RoutedCx>();
    const ok = new FactoryStack(config)
      .replace(upstream)
      .push(routeLayer())
      .push(reuseLayer())
      .push(coreLayer());
    expectTypeOf(ok.make()).toMatchTypeOf<Service<RequestCx, HttpResponse>>();
  });

  it('does not compile without the route layer', () => {
    // @ts-expect-error the connection-reuse layer hands on a RequestCx, the upstream layer needs a RoutedCx
    new FactoryStack(config).replace(upstream).push(reuseLayer());
    // @ts-expect-error the same for the core layer
    new FactoryStack(config).replace(upstream).push(coreLayer());
  });

  it('the built chain names every level, and plugs into the HttpServer as its handler', () => {
    const ok = new FactoryStack(config)
      .replace(upstream)
      .push(routeLayer())
      .push(reuseLayer())
      .push(coreLayer());
    expectTypeOf(ok.make()).toEqualTypeOf<
      CoreService<ConnectionReuseService<RouteService<UpstreamService>>>
    >();
    type Built = ReturnType<ReturnType<typeof serverStack>['make']>;
    expectTypeOf<Built>().toEqualTypeOf<ServerHandler>();
    expectTypeOf<ServerHandler>().toEqualTypeOf<
      ContextHandler<CoreService<ConnectionReuseService<RouteService<UpstreamService>>>>
    >();
    // The connector is reached through typed fields (what connectorOf reads).
    expectTypeOf<
      ServerHandler['inner']['inner']['inner']['inner']['connector']
    >().toEqualTypeOf<HttpConnector>();
    expectTypeOf<typeof connectorOf>().parameter(0).toEqualTypeOf<ServerHandler>();
    // A Service, and the HttpServer's handler type as it is: no adapter.
    expectTypeOf<ServerHandler>().toMatchTypeOf<HttpHandler<ConnectionCx>>();
    expectTypeOf<ConstructorParameters<typeof HttpServer<ConnectionCx>>[0]>().toEqualTypeOf<
      HttpHandler<ConnectionCx>
    >();
  });
});
