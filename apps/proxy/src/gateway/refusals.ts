/**
 * Counting and logging what a server's gateway layers refuse (issue 19): the HTTP/JSON ->
 * Thrift routes' 4xx for bad client input and the pseudonymization refusals of those routes
 * and of gRPC routes. Each refusal adds to `loch_gateway_refusals_total{server, reason}` and
 * logs one line at the `gateway` module: client-input refusals at info (a client's mistake, as
 * nginx logs client errors), pseudonymization refusals at warn (a token that does not open can be
 * an attack or a key problem). The line names the route, the path in the message and the error
 * code, never a value. One listener per route, made when the route is compiled (no closure per
 * request). Not for the gateway itself (dispatch.ts, grpc-pseudonym.ts).
 */
import type { GatewayRefusal, GatewayRefusalListener } from '@loch/gateway';
import { workerMetrics } from '../metrics/recorder.js';
import type { ProxyLog } from '../proxy/log.js';

/** A server's refusal reporting. */
export class GatewayRefusals {
  constructor(
    readonly server: string,
    readonly log: ProxyLog | undefined,
  ) {}

  /** The listener of one route; `what` names it in the log (`UserService.getUser`, `/grpc`). */
  listener(what: string): GatewayRefusalListener {
    return (refusal: GatewayRefusal) => {
      workerMetrics.gatewayRefused(this.server, refusal.reason);
      const log = this.log;
      if (log === undefined) return;
      const side = refusal.reason === 'pseudonym_reply' ? 'reply' : 'request';
      const at = refusal.path === '' ? '' : ` at ${refusal.path}`;
      const line = `${this.server}: ${what}: refused the ${side}${at}: ${refusal.reason} (${refusal.code})`;
      if (refusal.reason === 'pseudonym_request' || refusal.reason === 'pseudonym_reply') log.warn(line);
      else log.info(line);
    };
  }
}
