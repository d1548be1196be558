import { defineContext, type Has } from '@loch/certain-map';
import type { SocketAddress } from '@loch/uring-runtime';
import { describe, expectTypeOf, it } from 'vitest';
import { type ConnectionContext, type HttpConnectionContext, HttpServer } from './index.js';
import { createResponse } from './message.js';

describe('handler context types', () => {
  it('a handler that needs peerAddr accepts the default context', () => {
    const needsPeer = {
      call(_req: unknown, ctx: Has<typeof ConnectionContext, 'peerAddr'>) {
        ctx.get('peerAddr');
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
      call(_req: unknown, ctx: Has<typeof Custom, 'tenant'>) {
        return createResponse(200, { reason: ctx.get('tenant') });
      },
    };
    // @ts-expect-error no context factory: tenant would be missing
    new HttpServer(needsTenant);
    new HttpServer(needsTenant, {
      context: (stream) => Custom.empty().set('peerAddr', stream.remoteAddress).set('tenant', 't1'),
    });
  });
});
