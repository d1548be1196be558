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
 */
import { PseudonymError, ThriftPseudonymService } from '@loch/gateway';
import type { Service } from '@loch/service-async';
import {
  TApplicationException,
  TApplicationExceptionType,
  type ThriftReply,
  type ThriftRequest,
} from '@loch/thrift';
import type { ThriftServerConfig } from '../config/schema.js';
import { pseudonymRewriterOf } from '../gateway/pseudonym-config.js';
import { workerMetrics } from '../metrics/recorder.js';
import type { ProxyLog } from '../proxy/log.js';

type ThriftHandler = Service<ThriftRequest, ThriftReply | undefined>;

/** `inner` with the pseudonymization of `config()`'s `pseudonymize` table, if any, in front. */
export function withPseudonyms(
  inner: ThriftHandler,
  config: () => ThriftServerConfig,
  log: ProxyLog,
): ThriftHandler {
  const layers = new WeakMap<object, ThriftHandler>();
  return {
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
}
