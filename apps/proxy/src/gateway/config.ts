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
import {
  annotatedRoute,
  GatewayConfigError,
  GatewayRoute,
  type IdlDocument,
  IdlError,
  loadIdl,
} from '@loch/gateway';
import type { FramingName, ProtocolName } from '@loch/thrift';
import type {
  LoadBalancerName,
  ProxyConfig,
  RouteConfig,
  RouteFile,
  ThriftUpstreamConfig,
} from '../config/schema.js';
import { type ConfigIssue, parseThriftUpstream } from '../config/validate.js';
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

/**
 * The effective gateway routes of `r` (which has a `thrift` table): one for an exact or
 * parameter path, one per function of the service for a prefix path; undefined after issues.
 */
export function gatewayRouteOf(
  r: RouteFile & { thrift: ThriftTable },
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
  defaults: GatewayDefaults,
): GatewayRouteConfig[] | undefined {
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
  const prefix = prefixOf(r.path);
  let served: ServedFunction[] = [];
  if (idl !== undefined) served = servedFunctions(r, t, idl, prefix, httpMethod, at, issues);
  const pseudonymize =
    t.pseudonymize === undefined || idl === undefined
      ? undefined
      : pseudonymOfRoute(t.pseudonymize, idl, t, served, `${tat}.pseudonymize`, issues, baseDir);
  if (issues.length > start || idl === undefined) return undefined;
  const loaded = idl;
  return served.map((f) => ({
    path: f.path,
    httpMethod: f.httpMethod,
    idl: loaded,
    service: t.service,
    function: f.function,
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
  }));
}

/** A function a gateway route serves, at its own path and method. */
interface ServedFunction {
  readonly function: string;
  readonly path: string;
  readonly httpMethod: string | undefined;
}

/** The prefix a prefix route path stands for (`/api/` and `/api/{*rest}`: `/api/`), else undefined. */
function prefixOf(path: string): string | undefined {
  const catchAll = /\{\*[A-Za-z_][A-Za-z0-9_]*\}$/.exec(path);
  if (catchAll !== null) return path.slice(0, catchAll.index);
  return path.endsWith('/') ? path : undefined;
}

/**
 * What a route serves: its `method`'s function at its path, or, on a prefix route, every
 * function of the service: at prefix + its `api.<method>` annotation's path with that method,
 * else at `POST <prefix><function>`. Each is compiled once here so that a service, function or
 * path parameter the IDL does not have is a config issue, not a failure in a worker.
 */
function servedFunctions(
  r: RouteFile,
  t: ThriftTable,
  idl: IdlDocument,
  prefix: string | undefined,
  httpMethod: string | undefined,
  at: string,
  issues: ConfigIssue[],
): ServedFunction[] {
  const tat = `${at}.thrift`;
  const served: ServedFunction[] = [];
  if (prefix === undefined) {
    if (t.method === undefined) {
      issues.push({
        path: `${tat}.method`,
        message:
          'name the function to call (a prefix route, path = "/api/", serves every function of the service)',
      });
      return [];
    }
    served.push({ function: t.method, path: r.path, httpMethod });
  } else {
    if (t.method !== undefined) {
      issues.push({
        path: `${tat}.method`,
        message: `a prefix route (${r.path}) serves every function of ${t.service}: leave out method, or give the route an exact path`,
      });
      return [];
    }
    if (httpMethod !== undefined) {
      issues.push({
        path: `${at}.method`,
        message:
          "a prefix thrift route takes each function's HTTP method from its api.<method> annotation (else POST)",
      });
      return [];
    }
    const service = idl.services.get(t.service);
    if (service === undefined) {
      issues.push({ path: tat, message: `${idl.file} has no service ${t.service}` });
      return [];
    }
    const base = prefix.slice(0, -1);
    const taken = new Map<string, string>();
    for (const fn of service.functions.values()) {
      const annotated = annotatedRoute(fn);
      const f: ServedFunction =
        annotated === undefined
          ? { function: fn.name, path: `${base}/${fn.name}`, httpMethod: 'POST' }
          : {
              function: fn.name,
              path: `${base}${annotated.path.startsWith('/') ? '' : '/'}${annotated.path}`,
              httpMethod: annotated.method,
            };
      // Two functions on one method and path: the second could never be called.
      const key = `${f.httpMethod} ${f.path.replace(/(\{[^}]*\}|:[A-Za-z_][A-Za-z0-9_]*)/g, '{}')}`;
      const other = taken.get(key);
      if (other !== undefined) {
        issues.push({ path: tat, message: `${other} and ${fn.name} both answer ${f.httpMethod} ${f.path}` });
        continue;
      }
      taken.set(key, fn.name);
      served.push(f);
    }
  }
  for (const f of served) {
    try {
      new GatewayRoute({
        idl,
        service: t.service,
        function: f.function,
        path: f.path,
        ...(f.httpMethod === undefined ? {} : { httpMethod: f.httpMethod }),
        upstream: { send: () => Promise.reject(new Error('unused')) },
      });
    } catch (e) {
      if (!(e instanceof GatewayConfigError)) throw e;
      issues.push({ path: tat, message: prefix === undefined ? e.message : `${f.function}: ${e.message}` });
    }
  }
  return served;
}

/** A gateway route's `pseudonymize`: over the route's own IDL, and choosing something in its function. */
function pseudonymOfRoute(
  table: NonNullable<ThriftTable['pseudonymize']>,
  idl: IdlDocument,
  t: ThriftTable,
  served: readonly ServedFunction[],
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
  if (config !== undefined && !served.some((f) => config.functions.includes(`${t.service}.${f.function}`))) {
    const what = t.method === undefined ? t.service : `${t.service}.${t.method}`;
    issues.push({
      path: `${at}.fields`,
      message: `nothing of ${what} is chosen (chosen: ${config.functions.join(', ')})`,
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

/**
 * The files a running config was read from besides itself that loch watches (run.ts): every
 * gateway route's and pseudonymizing thrift server's IDL files (includes too), the .proto
 * files of gRPC pseudonymization (imports too) or its descriptor sets, and key files.
 * A change reloads the config, which reads them again; a bad IDL keeps the running config.
 */
export function gatewayFiles(config: ProxyConfig): string[] {
  const files = new Set<string>();
  const add = (p: PseudonymConfig | undefined) => {
    if (p === undefined) return;
    for (const f of p.idl.files) files.add(f);
    for (const k of p.keys) if (k.file !== undefined) files.add(k.file);
  };
  for (const server of config.servers) {
    for (const route of server.routes) {
      for (const g of route.gateway ?? []) {
        for (const f of g.idl.files) files.add(f);
        add(g.pseudonymize);
      }
      const grpc = route.grpcPseudonymize;
      if (grpc !== undefined) {
        for (const f of grpc.files) files.add(f);
        for (const k of grpc.keys) if (k.file !== undefined) files.add(k.file);
      }
    }
  }
  for (const server of config.thriftServers) add(server.pseudonymize);
  return [...files];
}
