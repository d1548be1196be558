import { defineContext, type Has } from '@loch/certain-map';
import { type Service, serviceFn } from '@loch/service-async';
import type { SocketAddress } from '@loch/uring-runtime';
import { describe, expectTypeOf, it } from 'vitest';
import { type ConnectionContext, type HttpConnectionContext, type HttpHandler, HttpServer } from './index.js';
import { createResponse, type HttpResponse, type HttpServerRequest } from './message.js';

describe('handler context types', () => {
  it('a handler that needs peerAddr accepts the default context', () => {
    const needsPeer = {
      call(req: HttpServerRequest<Has<typeof ConnectionContext, 'peerAddr'>>) {
        req.context.get('peerAddr');
        return createResponse(200);
      },
    };
    const server = new HttpServer(needsPeer);
    expectTypeOf(server).toEqualTypeOf<HttpServer<Has<typeof ConnectionContext, 'peerAddr'>>>();
  });

  it('reading a key no step set does not compile', () => {
    const ctx = {} as Has<typeof ConnectionContext, 'driver'>;
    // @ts-expect-error peerAddr is not known to be present
    ctx.get('peerAddr');
    expectTypeOf<HttpConnectionContext>().toMatchTypeOf<Has<typeof ConnectionContext, 'driver'>>();
  });

  it('a handler needing keys the default context lacks must come with a context factory', () => {
    const Custom = defineContext<{ peerAddr: SocketAddress; tenant: string }>()(['peerAddr', 'tenant']);
    const needsTenant = {
      call(req: HttpServerRequest<Has<typeof Custom, 'tenant'>>) {
        return createResponse(200, { reason: req.context.get('tenant') });
      },
    };
    // @ts-expect-error no context factory: tenant would be missing
    new HttpServer(needsTenant);
    new HttpServer(needsTenant, {
      context: (stream) => Custom.empty().set('peerAddr', stream.remoteAddress).set('tenant', 't1'),
    });
  });

  it('a handler is a Service: a service chain plugs in as it is', () => {
    const svc: Service<HttpServerRequest<HttpConnectionContext>, HttpResponse> = serviceFn((req) =>
      createResponse(200, { reason: req.context.get('driver') }),
    );
    expectTypeOf(new HttpServer(svc)).toEqualTypeOf<HttpServer<HttpConnectionContext>>();
    expectTypeOf<HttpHandler<HttpConnectionContext>>().toEqualTypeOf<
      Service<HttpServerRequest<HttpConnectionContext>, HttpResponse>
    >();
    // @ts-expect-error a handler answers an HttpResponse, nothing else
    new HttpServer(serviceFn((_req: HttpServerRequest<HttpConnectionContext>) => 'ok'));
  });
});
