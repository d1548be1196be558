/**
 * gRPC pseudonymization around a proxied route's forwarding, as a worker runs it (proxy/route.ts;
 * the config side and the rewriter's construction are grpc-pseudonym-schema.ts). That file and
 * the schema parsers it brings (protobufjs, @bufbuild/protobuf: ~3 MiB of heap per isolate) are
 * imported when a worker builds a route table that pseudonymizes gRPC (proxy/route.ts calls
 * loadGrpcSchemaSide), not in workers whose config has no such route; so is the gateway's
 * GrpcPseudonymService, which this file takes from that side.
 */
import type { GatewayRefusalListener } from '@loch/gateway/runtime';
import type { HttpRequest, HttpResponse } from '@loch/http';
import { lazyModule } from '../lazy-module.js';
import { gatewayUnavailable } from '../proxy/errors.js';
import type { GrpcPseudonymConfig } from './grpc-pseudonym-schema.js';
import type { GatewayRefusals } from './refusals.js';

type SchemaSide = typeof import('./grpc-pseudonym-schema.js');

/** The schema side, imported once (lazy-module.ts: a failed import is retried by the next load). */
const schemaSide = lazyModule<SchemaSide>(() => import('./grpc-pseudonym-schema.js'));

/**
 * Imports the schema side once; the route layer starts it when it builds a table with a gRPC
 * pseudonymization route, so the module loads while the worker is being configured rather than
 * inside a request. A failed import is forgotten, so the next call tries again.
 */
export function loadGrpcSchemaSide(): Promise<SchemaSide> {
  return schemaSide.load();
}

/** Each server's refusal listener for gRPC routes (made once). */
const listeners = new WeakMap<GatewayRefusals, GatewayRefusalListener>();

/**
 * Answers `request` through `forward` (the route's forwarding) with its gRPC messages
 * pseudonymized as `config` says; `refusals` counts and logs refused messages. Files that can no
 * longer be read fail the call closed.
 */
export function callWithGrpcPseudonyms(
  config: GrpcPseudonymConfig,
  request: HttpRequest,
  forward: () => Promise<HttpResponse> | HttpResponse,
  refusals?: GatewayRefusals,
): Promise<HttpResponse> | HttpResponse {
  const side = schemaSide.loaded;
  if (side === undefined) {
    // Still loading (a request right after the table was built), or the last import failed:
    // then the call fails closed (nothing is forwarded unpseudonymized), as a gateway route's.
    return loadGrpcSchemaSide().then(
      () => callWithGrpcPseudonyms(config, request, forward, refusals),
      (e: unknown) => {
        throw gatewayUnavailable('gRPC pseudonymization cannot load its schema side', e);
      },
    );
  }
  let rewriter: ReturnType<SchemaSide['rewriterOf']>;
  try {
    rewriter = side.rewriterOf(config);
  } catch (e) {
    return Promise.reject(e);
  }
  let listener: GatewayRefusalListener | undefined;
  if (refusals !== undefined) {
    listener = listeners.get(refusals);
    if (listener === undefined) listeners.set(refusals, (listener = refusals.listener('gRPC')));
  }
  return new side.GrpcPseudonymService({ call: forward }, rewriter, undefined, listener).call(request);
}
