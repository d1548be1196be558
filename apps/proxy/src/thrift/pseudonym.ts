/**
 * Pseudonymization in the Thrift proxy: a thrift server's `pseudonymize` table puts
 * @loch/gateway's ThriftPseudonymService in front of the server's proxy service, so calls are
 * rewritten before routing and replies after the proxy has given them back in the caller's
 * protocol. Built once per config object (a reload re-reads the keys) and looked up per call
 * from the server's current config, so a reload that adds, changes or removes the table takes
 * effect with the swap of the proxy service. A server without the table serves its proxy
 * service directly. Keys that can no longer be read fail every call of the server closed
 * (INTERNAL_ERROR, logged once per config), never forward them unrewritten. Each refused call or
 * reply is logged (warn) with the field and the error code, never the value, and counted in
 * loch_gateway_refusals_total{server, reason = pseudonym_request | pseudonym_reply}.
 *
 * The handler dispatches (ThriftHandler.dispatch): a call of a server without the table goes to
 * the proxy service's dispatch, answered from the upstream connection's receive callback with no
 * promise per call (service.ts); with the table, the layer's promise is answered through the
 * responder. A handler with only `call` would send every call through the promise form
 * (ThriftProxyService.call: a promise, its executor and resolve/reject, a responder closure, the
 * server's then() and its reaction), which is what the worker did until 2026-12-05.
 */
import { PseudonymError, ThriftPseudonymService } from '@loch/gateway/runtime';
import { TApplicationException, TApplicationExceptionType, type ThriftHandler } from '@loch/thrift';
import type { ThriftServerConfig } from '../config/schema.js';
import { pseudonymRewriterOf } from '../gateway/pseudonym-config.js';
import { workerMetrics } from '../metrics/recorder.js';
import type { ProxyLog } from '../proxy/log.js';

/** A ThriftHandler that answers through a responder (its `dispatch`), as the proxy service does. */
export type DispatchingHandler = ThriftHandler & Required<Pick<ThriftHandler, 'dispatch'>>;

/** `inner` with the pseudonymization of `config()`'s `pseudonymize` table, if any, in front. */
export function withPseudonyms(
  inner: DispatchingHandler,
  config: () => ThriftServerConfig,
  log: ProxyLog,
): DispatchingHandler {
  const layers = new WeakMap<object, ThriftHandler>();
  const handler: DispatchingHandler = {
    dispatch: (request, responder) => {
      if (config().pseudonymize === undefined) {
        inner.dispatch(request, responder);
        return;
      }
      // A throw from call() is the call's error (ThriftServer answers it).
      const answer = handler.call(request);
      if (answer instanceof Promise)
        answer.then(
          (reply) => responder.respond(reply),
          (error: unknown) => responder.respond(undefined, error),
        );
      else responder.respond(answer);
    },
    call: (request) => {
      const c = config();
      const p = c.pseudonymize;
      if (p === undefined) return inner.call(request);
      let layer = layers.get(p);
      if (layer === undefined) {
        try {
          const server = c.key;
          layer = new ThriftPseudonymService(inner, pseudonymRewriterOf(p), (refusal) =>
            workerMetrics.thriftPseudonymRefused(server, refusal.reason === 'pseudonym_reply'),
          );
        } catch (error) {
          if (!(error instanceof PseudonymError)) throw error;
          log.error(`${c.key}: pseudonymization unavailable, refusing calls: ${error.message}`);
          const message = `loch: pseudonymization unavailable (${error.code})`;
          layer = {
            // The server hands calls in place (callsInPlace): a refused call still gives its
            // receive buffer back, or each one would keep a pool buffer for good.
            call: (refused) => {
              refused.release?.();
              return Promise.reject(
                new TApplicationException(TApplicationExceptionType.INTERNAL_ERROR, message),
              );
            },
          };
        }
        layers.set(p, layer);
      }
      const answer = layer.call(request);
      if (!(answer instanceof Promise)) return answer;
      // A refusal is answered to the caller and logged here (the proxy service never saw the call).
      return answer.catch((error: unknown) => {
        const message = (error as Error)?.message ?? '';
        if (
          message.startsWith('loch: pseudonymization') ||
          message.startsWith("loch: the upstream's reply could not be pseudonymized")
        )
          log.warn(`${c.key}: ${request.header.name}: ${message}`);
        throw error;
      });
    },
  };
  return handler;
}
