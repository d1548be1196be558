/**
 * The `thrift = { ... }` table of an HTTP route (issue 19): an HTTP/JSON -> Thrift gateway
 * route of @loch/gateway. Turns the schema-valid table into the effective GatewayRouteConfig:
 * the IDL loaded (a bad IDL is a config issue naming its file and line; a reload loads it
 * again), the route checked against it (service, function, path parameters that are
 * arguments), the upstream(s) parsed as the Thrift proxy's are (the single `upstream` is the
 * short form of `upstreams`), framing, protocol and deadlines settled. Routes with the same
 * host and path (GET and DELETE of `/users/{id}`) become one router entry holding both.
 * Not for serving (dispatch.ts).
 */
import { resolve } from 'node:path';
import { GatewayConfigError, GatewayRoute, type IdlDocument, IdlError, loadIdl } from '@loch/gateway';
import type { FramingName, ProtocolName } from '@loch/thrift';
import { type ConfigIssue, parseThriftUpstream } from '../config/load.js';
import type { LoadBalancerName, RouteConfig, RouteFile, ThriftUpstreamConfig } from '../config/schema.js';
import { type PseudonymConfig, pseudonymConfigOf } from './pseudonym-config.js';

/** One gateway route as a worker runs it. */
export interface GatewayRouteConfig {
  /** The route's path template (`/users/{id}`). */
  readonly path: string;
  /** The HTTP method it answers (upper case); undefined: any (or the IDL's `api.<method>`). */
  readonly httpMethod: string | undefined;
  /** The IDL as loaded (resolved path in `idl.file`). */
  readonly idl: IdlDocument;
  readonly service: string;
  readonly function: string;
  readonly upstreams: readonly ThriftUpstreamConfig[];
  readonly loadBalancer: LoadBalancerName;
  readonly framing: FramingName;
  readonly protocol: ProtocolName;
  /** HTTP headers sent as THeader/TTHeader info keys and read back (lower case). */
  readonly forwardHeaders: readonly string[];
  readonly exceptionStatus: number;
  readonly i64AsNumber: boolean;
  /** Milliseconds; 0: none. */
  readonly connectTimeout: number;
  readonly callTimeout: number;
  readonly maxFrameSize: number;
  readonly maxBodySize: number;
  /** Pseudonymization of the function's chosen fields. */
  readonly pseudonymize?: PseudonymConfig | undefined;
}

/** The server-level values a gateway route defaults to. */
export interface GatewayDefaults {
  readonly connectTimeout: number;
  readonly callTimeout: number;
  readonly maxBodySize: number;
}

type ThriftTable = NonNullable<RouteFile['thrift']>;

function durationMs(v: number | string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (m === null) return fallback;
  const unit = m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * unit);
}

/** The effective gateway route of `r` (which has a `thrift` table), or undefined after issues. */
export function gatewayRouteOf(
  r: RouteFile & { thrift: ThriftTable },
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
  defaults: GatewayDefaults,
): GatewayRouteConfig | undefined {
  const t = r.thrift;
  const tat = `${at}.thrift`;
  const start = issues.length;
  if (r.upstreams !== undefined) {
    issues.push({
      path: `${at}.upstreams`,
      message: 'a thrift route names its upstreams inside thrift = { ... }',
    });
  }
  if (r.strip_prefix !== undefined) {
    issues.push({
      path: `${at}.strip_prefix`,
      message: 'a thrift route forwards no path: strip_prefix means nothing',
    });
  }
  if ((t.upstream === undefined) === (t.upstreams === undefined)) {
    issues.push({
      path: tat,
      message: 'give either upstream = "host:port" or upstreams = [...], not both or neither',
    });
  }
  const upstreams: ThriftUpstreamConfig[] = [];
  if (t.upstream !== undefined) {
    const built = parseThriftUpstream(t.upstream, `${tat}.upstream`, issues);
    if (built) upstreams.push({ ...built, weight: 1, multiplex: 0 });
  }
  t.upstreams?.forEach((u, j) => {
    const built = parseThriftUpstream(u.endpoint, `${tat}.upstreams[${j}].endpoint`, issues);
    const multiplex = u.multiplex === true ? 128 : u.multiplex ? u.multiplex.max_calls : 0;
    if (built) upstreams.push({ ...built, weight: u.weight ?? 1, multiplex });
  });
  const loadBalancer = t.load_balancer ?? (upstreams.length > 1 ? 'round_robin' : 'first');
  if (loadBalancer.startsWith('weighted') && upstreams.length > 0 && upstreams.every((u) => u.weight === 0)) {
    issues.push({
      path: `${tat}.upstreams`,
      message: 'every upstream has weight 0: nothing could be chosen',
    });
  }
  let idl: IdlDocument | undefined;
  try {
    idl = loadIdl(resolve(baseDir, t.idl));
  } catch (e) {
    if (!(e instanceof IdlError)) throw e;
    issues.push({ path: `${tat}.idl`, message: e.message });
  }
  const forwardHeaders = (t.headers ?? []).map((h) => h.toLowerCase());
  const httpMethod = r.method?.toUpperCase();
  if (idl !== undefined) {
    try {
      // Compiles the route once here so that a service, function or path parameter the IDL
      // does not have is a config issue, not a failure in a worker.
      new GatewayRoute({
        idl,
        service: t.service,
        function: t.method,
        path: r.path,
        ...(httpMethod === undefined ? {} : { httpMethod }),
        upstream: { send: () => Promise.reject(new Error('unused')) },
      });
    } catch (e) {
      if (!(e instanceof GatewayConfigError)) throw e;
      issues.push({ path: tat, message: e.message });
    }
  }
  const pseudonymize =
    t.pseudonymize === undefined || idl === undefined
      ? undefined
      : pseudonymOfRoute(t.pseudonymize, idl, t, `${tat}.pseudonymize`, issues, baseDir);
  if (issues.length > start || idl === undefined) return undefined;
  return {
    path: r.path,
    httpMethod,
    idl,
    service: t.service,
    function: t.method,
    upstreams,
    loadBalancer,
    framing: t.framing ?? 'framed',
    protocol: t.protocol ?? 'binary',
    forwardHeaders,
    exceptionStatus: t.exception_status ?? 422,
    i64AsNumber: t.i64_as_number ?? false,
    connectTimeout: durationMs(t.connect_timeout, defaults.connectTimeout),
    callTimeout: durationMs(t.timeout, defaults.callTimeout),
    maxFrameSize: 16 * 1024 * 1024,
    maxBodySize: defaults.maxBodySize > 0 ? defaults.maxBodySize : 1024 * 1024,
    ...(pseudonymize === undefined ? {} : { pseudonymize }),
  };
}

/** A gateway route's `pseudonymize`: over the route's own IDL, and choosing something in its function. */
function pseudonymOfRoute(
  table: NonNullable<ThriftTable['pseudonymize']>,
  idl: IdlDocument,
  t: ThriftTable,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
): PseudonymConfig | undefined {
  if (table.idl !== undefined) {
    issues.push({
      path: `${at}.idl`,
      message: 'a gateway route pseudonymizes over its own IDL (thrift.idl)',
    });
    return undefined;
  }
  const config = pseudonymConfigOf(table, idl, at, issues, baseDir);
  if (config !== undefined && !config.functions.includes(`${t.service}.${t.method}`)) {
    issues.push({
      path: `${at}.fields`,
      message: `nothing of ${t.service}.${t.method} is chosen (chosen: ${config.functions.join(', ')})`,
    });
    return undefined;
  }
  return config;
}

/**
 * Joins gateway routes with the same host and path into one router entry (the router refuses
 * a pattern declared twice); other routes pass through. A gateway path shared with a proxied
 * route is an issue.
 */
export function mergeGatewayRoutes(
  routes: readonly RouteConfig[],
  at: string,
  issues: ConfigIssue[],
): RouteConfig[] {
  const out: RouteConfig[] = [];
  const byKey = new Map<string, number>();
  routes.forEach((route, i) => {
    const key = `${route.host ?? ''} ${route.path}`;
    const seen = byKey.get(key);
    const prior = seen === undefined ? undefined : out[seen];
    if (prior !== undefined && seen !== undefined) {
      if (prior.gateway === undefined || route.gateway === undefined) {
        if (prior.gateway !== undefined || route.gateway !== undefined) {
          issues.push({
            path: `${at}.routes[${i}].path`,
            message: `${route.path} is both a thrift route and a proxied route`,
          });
        }
        out.push(route); // the router reports plain duplicates as it always has
        return;
      }
      out[seen] = { ...prior, gateway: [...prior.gateway, ...route.gateway] };
      return;
    }
    byKey.set(key, out.length);
    out.push(route);
  });
  return out;
}
