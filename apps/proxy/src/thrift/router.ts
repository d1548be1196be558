/**
 * Thrift call routing: which route of a thrift server takes a call, from what a proxy reads
 * without decoding the arguments: the method name of the message header, and the service,
 * taken from the TMultiplexed prefix of the name ("Calculator:add"), else the TTHeader
 * TO_SERVICE integer header, else the `isn` string header (Kitex's IDL service name). Routes
 * are compiled into maps once per config, so matching a call is at most four map lookups and
 * allocates nothing but the split of a multiplexed name. Not for picking an upstream (the
 * route's balancer) or forwarding (service.ts).
 *
 * Precedence, most specific first: routes with `match_headers` or `match_int_headers` (TTHeader
 * integer keys) in config order, each taken when every header it names has its value and its
 * method and service, if given, match;
 * then service and method, method, service, the default route. Among routes of the same kind
 * the first in the config wins.
 */
import { type ThriftFrame, TTHeaderIntKey } from '@loch/thrift';
import type { ThriftRouteConfig } from '../config/schema.js';

/** The string header Kitex uses for the IDL service name. */
export const SERVICE_HEADER = 'isn';

/** What a call is routed on. */
export interface CallTarget {
  /** Method name without a multiplexing prefix. */
  readonly method: string;
  /** Service, when the call names one. */
  readonly service: string | undefined;
  /** The call's string info headers (THeader/TTHeader), for routes matching on them. */
  readonly headers?: ReadonlyMap<string, string>;
  /** The call's TTHeader integer info headers, for routes matching on them. */
  readonly intHeaders?: ReadonlyMap<number, string>;
}

/** Splits a message name and reads the service a call is addressed to. */
export function callTarget(frame: ThriftFrame, name: string): CallTarget {
  const colon = name.indexOf(':');
  const headers = frame.headers;
  const intHeaders = frame.intHeaders;
  if (colon >= 0)
    return { method: name.slice(colon + 1), service: name.slice(0, colon), headers, intHeaders };
  const service = intHeaders.get(TTHeaderIntKey.TO_SERVICE) ?? headers.get(SERVICE_HEADER) ?? undefined;
  return { method: name, service: service === '' ? undefined : service, headers, intHeaders };
}

/** Routes of one server, compiled. `R` is what a route compiles to (the config, or a runtime route). */
export class ThriftRouter<R> {
  /** Routes with header matchers, in config order: checked first, one by one. */
  readonly #byHeaders: { readonly config: ThriftRouteConfig; readonly route: R }[] = [];
  readonly #byServiceMethod = new Map<string, R>();
  readonly #byMethod = new Map<string, R>();
  readonly #byService = new Map<string, R>();
  readonly #fallback: R | undefined;
  /**
   * The route of every call when the server routes on nothing but has a default route (the
   * Monolake minimal form: "every call to these upstreams"); undefined otherwise. A caller that
   * finds it set need not make the call's target (callTarget: an object and two header lookups
   * per call) nor ask match().
   */
  readonly only: R | undefined;

  constructor(routes: readonly ThriftRouteConfig[], compile: (route: ThriftRouteConfig) => R) {
    let fallback: R | undefined;
    for (const config of routes) {
      const route = compile(config);
      const { methods, service } = config;
      if (config.matchHeaders !== undefined || config.matchIntHeaders !== undefined) {
        this.#byHeaders.push({ config, route });
        continue;
      }
      if (methods === undefined && service === undefined) {
        fallback ??= route;
        continue;
      }
      if (methods === undefined) {
        if (!this.#byService.has(service!)) this.#byService.set(service!, route);
        continue;
      }
      for (const written of methods) {
        // A multiplexed method ("Svc:m") names its service itself.
        const colon = written.indexOf(':');
        const svc = colon >= 0 ? written.slice(0, colon) : service;
        const method = colon >= 0 ? written.slice(colon + 1) : written;
        const map = svc === undefined ? this.#byMethod : this.#byServiceMethod;
        const key = svc === undefined ? method : `${svc}:${method}`;
        if (!map.has(key)) map.set(key, route);
      }
    }
    this.#fallback = fallback;
    const routesOnNothing =
      this.#byHeaders.length === 0 &&
      this.#byServiceMethod.size === 0 &&
      this.#byMethod.size === 0 &&
      this.#byService.size === 0;
    this.only = routesOnNothing ? fallback : undefined;
  }

  /** The route of a call, or undefined when none matches (and there is no default). */
  match(target: CallTarget): R | undefined {
    for (const { config, route } of this.#byHeaders) if (headerRouteTakes(config, target)) return route;
    if (target.service !== undefined) {
      const exact = this.#byServiceMethod.get(`${target.service}:${target.method}`);
      if (exact !== undefined) return exact;
    }
    const byMethod = this.#byMethod.get(target.method);
    if (byMethod !== undefined) return byMethod;
    if (target.service !== undefined) {
      const byService = this.#byService.get(target.service);
      if (byService !== undefined) return byService;
    }
    return this.#fallback;
  }
}

/** Whether a route with header matchers takes a call: every condition it gives holds. */
function headerRouteTakes(config: ThriftRouteConfig, target: CallTarget): boolean {
  if (config.matchHeaders !== undefined) {
    const headers = target.headers;
    if (headers === undefined) return false;
    for (const [key, value] of config.matchHeaders) if (headers.get(key) !== value) return false;
  }
  if (config.matchIntHeaders !== undefined) {
    const intHeaders = target.intHeaders;
    if (intHeaders === undefined) return false;
    for (const [key, value] of config.matchIntHeaders) if (intHeaders.get(key) !== value) return false;
  }
  if (config.methods !== undefined) {
    const full = target.service === undefined ? undefined : `${target.service}:${target.method}`;
    const named = config.methods.some((m) =>
      m.includes(':')
        ? m === full
        : m === target.method && (config.service === undefined || config.service === target.service),
    );
    if (!named) return false;
  } else if (config.service !== undefined && config.service !== target.service) {
    return false;
  }
  return true;
}
