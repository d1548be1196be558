/**
 * Type-level guarantees of the service chain: the certain-map context makes a chain assembled in
 * the wrong order a compile error (the upstream layer reads keys only the route layer sets).
 */
import type { HttpResponse } from '@loch/http';
import { FactoryStack, type Service } from '@loch/service-async';
import { describe, expectTypeOf, it } from 'vitest';
import type { RequestCx, RoutedCx } from './context.js';
import { coreLayer } from './core.js';
import type { ProxyLog } from './log.js';
import type { ServerLifecycle } from './reuse.js';
import { reuseLayer } from './reuse.js';
import { routeLayer } from './route.js';
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
});
