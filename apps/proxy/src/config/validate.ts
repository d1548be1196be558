/**
 * Reads a config file (TOML or JSON, by extension or content), validates it against the schema
 * and turns it into the effective ProxyConfig. Every problem is collected, each with the key
 * path where it is (`servers.web.routes[1].upstreams[0].weight`), so `loch check` can print them
 * all at once. Monolake's spellings (worker_threads, runtime_type, timeout.*_sec, endpoint
 * tables) are read as they are; what Loch cannot honour yet is refused by name.
 *
 * Two parts of validation are modules of their own, imported by loadConfigFile only for a config
 * that has what they check (issue 18: `loch run` validates in a thread whose start is on the way
 * to the first request, bench/idle-memory/readings-2026-12-06d.md): TLS servers (tls.ts, with
 * @loch/tls for the trial context) and thrift servers, gateway routes and pseudonymization
 * (schema-parsers.ts: @loch/thrift, @loch/gateway and its IDL and protobuf parsers). The
 * synchronous parseConfig and validateConfig are load.ts's, which registers both parts first, so
 * they validate any config (here they are parseWithParts and validateWithParts).
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { normalizeHealthCheck, normalizeOutlier, normalizeRetries } from '../health/config.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import {
  type AccessLogOutput,
  type ConfigFile,
  ConfigFileSchema,
  type ListenAddress,
  type ProxyConfig,
  type RouteConfig,
  type RouteFile,
  type ServerConfig,
  type ServerFile,
  type ThriftRouteConfig,
  type ThriftServerConfig,
  type ThriftServerFile,
  type ThriftTimeoutConfig,
  type ThriftUpstreamConfig,
  type TimeoutConfig,
  type UpstreamAddress,
  type UpstreamTlsFile,
} from './schema.js';
import { trustedPeerProblem } from './trusted-peers.js';

export { ConfigError, type ConfigIssue };

/** The validation of TLS servers (tls.ts). */
export type TlsPart = typeof import('./tls.js');
/** The validation of thrift servers, gateway routes and pseudonymization (schema-parsers.ts). */
export type SchemaPart = typeof import('./schema-parsers.js');

/** The parts registered or imported so far (per isolate). */
const parts: { tls: TlsPart | undefined; schema: SchemaPart | undefined } = {
  tls: undefined,
  schema: undefined,
};

/**
 * Registers the parts for the synchronous API (load.ts imports them statically). loadConfigFile
 * needs none: it imports what a config uses.
 */
export function useConfigParts(tls: TlsPart, schema: SchemaPart): void {
  parts.tls = tls;
  parts.schema = schema;
}

/** The schema part when it is loaded (a config validated without it has no gateway files). */
export function loadedSchemaPart(): SchemaPart | undefined {
  return parts.schema;
}

/**
 * Thrown inside validation when it reaches a part not loaded yet: loadConfigFile imports it and
 * validates again. No other caller sees it: load.ts's parseConfig and validateConfig (the
 * synchronous API) have every part registered.
 */
export class ConfigPartMissingError extends Error {
  override readonly name = 'ConfigPartMissingError';
  readonly code = 'ERR_LOCH_CONFIG_PART_MISSING';
  constructor(readonly part: 'tls' | 'schema') {
    super(
      `config part '${part}' is not loaded: use loadConfigFile, or config/load.js for the synchronous parseConfig and validateConfig`,
    );
  }
}

function tlsPart(): TlsPart {
  if (parts.tls === undefined) throw new ConfigPartMissingError('tls');
  return parts.tls;
}

function schemaPart(): SchemaPart {
  if (parts.schema === undefined) throw new ConfigPartMissingError('schema');
  return parts.schema;
}

const defaultTimeouts: TimeoutConfig = {
  serverKeepalive: 60_000,
  serverReadHeader: 10_000,
  serverReadBody: 60_000,
  serverWrite: 60_000,
  upstreamConnect: 5_000,
  upstreamRead: 60_000,
  shutdownGrace: 30_000,
  tunnelIdle: 60_000,
};

/** The upgrade protocols a server tunnels unless `allow_upgrades` says otherwise. */
const DEFAULT_UPGRADES: readonly string[] = ['websocket'];

/**
 * Reads, parses and validates a config file. Throws ConfigError listing every issue. Imports
 * the parts of validation the config needs (see the module comment): validation stops where it
 * first needs one that is not loaded and runs again once it is (the files read before that,
 * upstream CA bundles, are read again).
 */
export async function loadConfigFile(file: string): Promise<ProxyConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  for (;;) {
    try {
      return parseWithParts(text, file);
    } catch (error) {
      if (!(error instanceof ConfigPartMissingError)) throw error;
      if (error.part === 'tls') parts.tls = await import('./tls.js');
      else parts.schema = await import('./schema-parsers.js');
    }
  }
}

/**
 * Parses config text (TOML, or JSON when the name ends in .json or the text starts with `{`).
 * load.ts's parseConfig: here it needs the parts the config uses loaded already.
 */
export function parseWithParts(text: string, source = 'config'): ProxyConfig {
  let raw: unknown;
  const json = source.endsWith('.json') || /^\s*\{/.test(text);
  try {
    raw = json ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    const where = err instanceof TomlError ? `line ${err.line}, column ${err.column}` : '';
    const message = (err as Error).message.split('\n')[0] ?? 'syntax error';
    throw new ConfigError(source, [{ path: where, message: `${json ? 'JSON' : 'TOML'} syntax: ${message}` }]);
  }
  return validateWithParts(raw, source);
}

/**
 * Validates an already-parsed config object and builds the effective config. load.ts's
 * validateConfig: here it needs the parts the config uses loaded already.
 */
export function validateWithParts(raw: unknown, source = 'config'): ProxyConfig {
  // Files a config names (certificates) are found from the config file's directory.
  const baseDir = source === 'config' ? process.cwd() : dirname(resolve(source));
  const parsed = ConfigFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(zodIssue);
    // When the only schema problems are unknown keys, check the rest too (without those keys),
    // so one run lists every error: an unknown key and a bad listen address side by side.
    if (parsed.error.issues.every((i) => i.code === 'unrecognized_keys')) {
      const pruned = withoutKeys(raw, parsed.error.issues);
      const again = ConfigFileSchema.safeParse(pruned);
      if (again.success) normalize(again.data, issues, baseDir);
      else issues.push(...again.error.issues.map(zodIssue));
    }
    throw new ConfigError(source, issues);
  }
  const issues: ConfigIssue[] = [];
  const config = normalize(parsed.data, issues, baseDir);
  if (issues.length) throw new ConfigError(source, issues);
  return config;
}

/** A deep copy of `raw` without the keys that unrecognized_keys issues name. */
function withoutKeys(raw: unknown, issues: readonly z.core.$ZodIssue[]): unknown {
  const copy = structuredClone(raw) as Record<PropertyKey, unknown>;
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    let at: unknown = copy;
    for (const seg of issue.path) at = (at as Record<PropertyKey, unknown> | undefined)?.[seg];
    if (at !== null && typeof at === 'object')
      for (const k of issue.keys) delete (at as Record<string, unknown>)[k];
  }
  return copy;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

function zodIssue(issue: z.core.$ZodIssue): ConfigIssue {
  if (issue.code === 'unrecognized_keys') {
    return {
      path: formatPath(issue.path),
      message: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`,
    };
  }
  return { path: formatPath(issue.path), message: issue.message };
}

function durationMs(value: number | string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value)!;
  const n = Number(m[1]);
  const unit = m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * unit);
}

/**
 * A route's `thrift` table (the HTTP/JSON -> Thrift gateway, gateway/config.ts) as its
 * `gateway` key; a route without one needs `upstreams`, and `method` is for thrift routes.
 */
function gatewayKeys(
  r: RouteFile,
  rat: string,
  issues: ConfigIssue[],
  baseDir: string,
  timeouts: TimeoutConfig,
  serverMaxBody: number,
): Pick<RouteConfig, 'gateway'> {
  if (r.thrift === undefined) {
    if (r.upstreams === undefined)
      issues.push({ path: `${rat}.upstreams`, message: 'a route needs at least one upstream' });
    if (r.method !== undefined)
      issues.push({ path: `${rat}.method`, message: 'method narrows thrift routes only' });
    return {};
  }
  const gateway = schemaPart().gatewayRouteOf({ ...r, thrift: r.thrift }, rat, issues, baseDir, {
    connectTimeout: timeouts.upstreamConnect,
    callTimeout: timeouts.upstreamRead,
    maxBodySize: bytesOf(r.max_body_size, serverMaxBody),
  });
  return gateway === undefined ? {} : { gateway };
}

/** A route's health and retry settings (health/config.ts), only those it sets. */
function healthKeys(r: RouteFile): Pick<RouteConfig, 'outlierDetection' | 'healthCheck' | 'retries'> {
  const outlierDetection = normalizeOutlier(r.outlier_detection, durationMs);
  const healthCheck = normalizeHealthCheck(r.health_check, durationMs);
  const retries = normalizeRetries(r.retries);
  return {
    ...(outlierDetection === undefined ? {} : { outlierDetection }),
    ...(healthCheck === undefined ? {} : { healthCheck }),
    ...(retries === undefined ? {} : { retries }),
  };
}

/**
 * A server's access-log output: its own `access_log = { path, format }`, else `[log] access_log`;
 * a relative path is taken from the config file's directory. Nothing when both say nothing
 * (text to stdout).
 */
function accessLogOutputOf(
  own: boolean | { path?: string | undefined; format?: 'text' | 'json' | undefined } | undefined,
  global: { path?: string | undefined; format?: 'text' | 'json' | undefined } | undefined,
  baseDir: string,
): { accessLogOutput?: AccessLogOutput } {
  const spec = typeof own === 'object' ? own : global;
  if (spec === undefined || (spec.path === undefined && spec.format === undefined)) return {};
  return {
    accessLogOutput: {
      path: spec.path === undefined ? null : resolve(baseDir, spec.path),
      format: spec.format ?? 'text',
    },
  };
}

/** A ByteSize value in bytes ("64k" = 65536). */
function bytesOf(value: number | string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return value;
  const unit = value.charAt(value.length - 1).toLowerCase();
  const scale = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(scale === 1 ? value : value.slice(0, -1)) * scale;
}

/** Default of runtime.max_connections_per_worker (nginx's worker_connections, sized for 10k clients). */
const DEFAULT_MAX_CONNECTIONS_PER_WORKER = 10_000;
/** Defaults of runtime.stream_buffer_bytes and worker_buffer_bytes (the runtime's own). */
const DEFAULT_STREAM_BUFFER_BYTES = 1024 * 1024;
const DEFAULT_WORKER_BUFFER_BYTES = 12 * 1024 * 1024;
/**
 * Default of runtime.worker_young_generation_bytes: 24 MiB (8 MiB semi-spaces) instead of V8's
 * 48 MiB, which a busy worker grows into and keeps (issue 18, bench/results/idle-memory-2026-12-03.md:
 * 10,000 idle while busy, RSS 4,390 -> 3,161 B per connection; 12 MiB gave 1,958 B but its
 * scavenges cost CPU per request in apps/proxy/bench/proxy-core.ts, 24 MiB's did not measurably).
 * Smallest: 3 MiB. V8 rounds the semi-space (a third) up to a power of two MiB, so nothing between
 * 12 and 24 MiB exists: "16m" is "24m". Kept after session 47's reading
 * (bench/idle-memory/readings-2026-12-06e.md): a busy worker's new space is at this cap within
 * seconds to a minute of steady load, and "12m" did not show a CPU cost of nil. Kept again after
 * session 55's "6m" (bench/idle-memory/readings-2026-12-07j.md): busy memory at the quiet figure
 * (571 B per idle connection at 50,000, busy, one round), but ~3.8x the scavenges (+85 to +405
 * Ir of GC a request counted) and CPU per request held 0.999x at 128 B, 1.019x at 1 KiB over 10
 * rounds in both orders (undecided: no gain).
 */
const DEFAULT_WORKER_YOUNG_GENERATION_BYTES = 24 * 1024 * 1024;
const MIN_WORKER_YOUNG_GENERATION_BYTES = 3 * 1024 * 1024;
/**
 * Largest: 1 GiB, 20 times V8's own 48 MiB. Node hands any size to V8 without a check (a typo like
 * "100g" starts fine), and a scavenge copies every survivor of a semi-space a third that size, so a
 * young generation past this buys pauses of hundreds of milliseconds, not throughput.
 */
const MAX_WORKER_YOUNG_GENERATION_BYTES = 1024 * 1024 * 1024;
/** The least stream_buffer_bytes: node:net (the legacy driver) reads up to 64 KiB at once. */
const MIN_STREAM_BUFFER_BYTES = 64 * 1024;

/** runtime.stream_buffer_bytes and worker_buffer_bytes, checked as the runtime would. */
function receiveBudgets(
  rt: ConfigFile['runtime'],
  issues: ConfigIssue[],
): { streamBufferBytes: number; workerBufferBytes: number } {
  const workerBufferBytes = bytesOf(rt.worker_buffer_bytes, DEFAULT_WORKER_BUFFER_BYTES);
  // As the runtime: the default follows a smaller worker_buffer_bytes.
  const streamBufferBytes = bytesOf(
    rt.stream_buffer_bytes,
    Math.min(DEFAULT_STREAM_BUFFER_BYTES, workerBufferBytes),
  );
  if (streamBufferBytes < MIN_STREAM_BUFFER_BYTES)
    issues.push({ path: 'runtime.stream_buffer_bytes', message: 'must be at least 64k' });
  else if (workerBufferBytes < streamBufferBytes)
    issues.push({
      path: 'runtime.worker_buffer_bytes',
      message: `must be at least runtime.stream_buffer_bytes (${streamBufferBytes})`,
    });
  return { streamBufferBytes, workerBufferBytes };
}

/** runtime.worker_young_generation_bytes: 0 (V8's own) or 3 MiB to 1 GiB. */
function youngGeneration(rt: ConfigFile['runtime'], issues: ConfigIssue[]): number {
  const bytes = bytesOf(rt.worker_young_generation_bytes, DEFAULT_WORKER_YOUNG_GENERATION_BYTES);
  if (bytes !== 0 && (bytes < MIN_WORKER_YOUNG_GENERATION_BYTES || bytes > MAX_WORKER_YOUNG_GENERATION_BYTES))
    issues.push({ path: 'runtime.worker_young_generation_bytes', message: 'must be 0 or from 3m to 1g' });
  return bytes;
}

function normalize(file: ConfigFile, issues: ConfigIssue[], baseDir: string): ProxyConfig {
  const rt = file.runtime;
  if (rt.workers !== undefined && rt.worker_threads !== undefined) {
    issues.push({
      path: 'runtime.worker_threads',
      message: 'give either "workers" or "worker_threads", not both',
    });
  }
  if (rt.driver !== undefined && rt.runtime_type !== undefined) {
    issues.push({
      path: 'runtime.runtime_type',
      message: 'give either "driver" or "runtime_type", not both',
    });
  }
  const driver =
    rt.driver ??
    (rt.runtime_type === 'io_uring' ? 'uring' : rt.runtime_type === 'legacy' ? 'legacy' : 'auto');
  const runtime = {
    workers: rt.workers ?? rt.worker_threads ?? availableParallelism(),
    driver,
    entries: rt.entries ?? 4096,
    cpuAffinity: rt.cpu_affinity ?? false,
    idleMemoryTrimMs: durationMs(rt.idle_memory_trim, 1000),
    maxConnectionsPerWorker: rt.max_connections_per_worker ?? DEFAULT_MAX_CONNECTIONS_PER_WORKER,
    ...(rt.direct_files === undefined ? {} : { directFiles: rt.direct_files }),
    ...receiveBudgets(rt, issues),
    workerYoungGenerationBytes: youngGeneration(rt, issues),
    waveCollectOpen: rt.wave_collect_open ?? false,
  } as const;

  const servers: ServerConfig[] = [];
  const thriftServers: ThriftServerConfig[] = [];
  const listeners = new Map<string, string>();
  for (const [key, server] of Object.entries(file.servers)) {
    const at = `servers.${key}`;
    const built =
      server.proxy_type === 'thrift'
        ? normalizeThriftServer(key, server, at, issues, file.log?.access ?? true, baseDir)
        : normalizeServer(key, server, at, issues, file.log?.access ?? true, baseDir);
    if (!built) continue;
    Object.assign(built, accessLogOutputOf(server.access_log, file.log?.access_log, baseDir));
    const id =
      built.listen.kind === 'tcp' ? `${built.listen.host}:${built.listen.port}` : `unix:${built.listen.path}`;
    const other = listeners.get(id);
    if (other) issues.push({ path: `${at}.listener`, message: `listens on ${id} like servers.${other}` });
    else listeners.set(id, key);
    if (built.proxyType === 'thrift') thriftServers.push(built);
    else servers.push(built);
  }
  if (Object.keys(file.servers).length === 0)
    issues.push({ path: 'servers', message: 'no server is configured' });
  const admin =
    file.admin === undefined
      ? undefined
      : parseListener(file.admin.listener.type, file.admin.listener.value, 'admin.listener.value', issues);
  if (admin !== undefined && listeners.has(listenKey(admin)))
    issues.push({
      path: 'admin.listener',
      message: `listens on ${listenKey(admin)} like servers.${listeners.get(listenKey(admin))}`,
    });
  return {
    runtime,
    logLevel: file.log?.level ?? 'info',
    ...(file.log?.modules === undefined ? {} : { logModules: file.log.modules }),
    ...(file.log?.error_log === undefined ? {} : { errorLogPath: resolve(baseDir, file.log.error_log.path) }),
    servers,
    thriftServers,
    ...(admin === undefined ? {} : { admin: { listen: admin } }),
  };
}

/**
 * A server gives Monolake's `timeout` (seconds) or Loch's `timeouts` (durations), not both: an
 * issue at `at`.timeout when it gives both.
 */
function oneTimeoutForm(
  s: { timeout?: unknown; timeouts?: unknown },
  at: string,
  issues: ConfigIssue[],
): void {
  if (s.timeout && s.timeouts)
    issues.push({ path: `${at}.timeout`, message: 'give either "timeout" or "timeouts", not both' });
}

/** A Monolake `*_sec` value in milliseconds, or `fallback` when absent. */
function secondsMs(v: number | undefined, fallback: number): number {
  return v === undefined ? fallback : Math.round(v * 1000);
}

/** A listen address as the duplicate check names it. */
function listenKey(l: ListenAddress): string {
  return l.kind === 'tcp' ? `${l.host}:${l.port}` : `unix:${l.path}`;
}

function normalizeServer(
  key: string,
  s: ServerFile,
  at: string,
  issues: ConfigIssue[],
  accessLogDefault: boolean,
  baseDir: string,
): ServerConfig | undefined {
  const start = issues.length;
  if (s.proxy_type !== 'http') {
    issues.push({
      path: `${at}.proxy_type`,
      message:
        s.proxy_type === 'thrift'
          ? 'proxy_type "thrift" is not supported yet by this version of loch'
          : `unknown proxy_type "${s.proxy_type}" (expected "http")`,
    });
  }
  const tlsCode = s.tls === undefined ? undefined : tlsPart();
  const tls =
    s.tls === undefined || tlsCode === undefined
      ? null
      : (tlsCode.normalizeTls(
          s.tls,
          `${at}.tls`,
          issues,
          baseDir,
          durationMs(s.tls.handshake_timeout, tlsCode.DEFAULT_HANDSHAKE_MS),
          durationMs(s.tls.session_ticket_rotation, tlsCode.DEFAULT_TICKET_ROTATION_MS),
        ) ?? null);
  const upstreamHttpVersion = s.upstream_http_version ?? 'http11';
  if (upstreamHttpVersion !== 'http11' && upstreamHttpVersion !== 'http2' && upstreamHttpVersion !== 'auto') {
    issues.push({
      path: `${at}.upstream_http_version`,
      message: `unknown upstream_http_version "${upstreamHttpVersion}" (expected "http11", "http2" or "auto")`,
    });
  }
  oneTimeoutForm(s, at, issues);
  const listen = parseListener(s.listener.type, s.listener.value, `${at}.listener.value`, issues);
  const t = s.timeouts;
  const m = s.timeout;
  const timeouts: TimeoutConfig = m
    ? {
        ...defaultTimeouts,
        serverKeepalive: secondsMs(m.server_keepalive_timeout_sec, defaultTimeouts.serverKeepalive),
        serverReadHeader: secondsMs(m.server_read_header_timeout_sec, defaultTimeouts.serverReadHeader),
        serverReadBody: secondsMs(m.server_read_body_timeout_sec, defaultTimeouts.serverReadBody),
        upstreamConnect: secondsMs(m.upstream_connect_timeout_sec, defaultTimeouts.upstreamConnect),
        upstreamRead: secondsMs(m.upstream_read_timeout_sec, defaultTimeouts.upstreamRead),
      }
    : {
        serverKeepalive: durationMs(t?.server_keepalive, defaultTimeouts.serverKeepalive),
        serverReadHeader: durationMs(t?.server_read_header, defaultTimeouts.serverReadHeader),
        serverReadBody: durationMs(t?.server_read_body, defaultTimeouts.serverReadBody),
        serverWrite: durationMs(t?.server_write, defaultTimeouts.serverWrite),
        upstreamConnect: durationMs(t?.upstream_connect, defaultTimeouts.upstreamConnect),
        upstreamRead: durationMs(t?.upstream_read, defaultTimeouts.upstreamRead),
        shutdownGrace: durationMs(t?.shutdown_grace, defaultTimeouts.shutdownGrace),
        tunnelIdle: durationMs(t?.tunnel_idle, defaultTimeouts.tunnelIdle),
        ...(t?.tunnel_drain === undefined ? {} : { tunnelDrain: durationMs(t.tunnel_drain, 0) }),
      };
  const routes: RouteConfig[] = [];
  const maxBodySize = bytesOf(s.max_body_size, 0);
  if (s.routes.length === 0)
    issues.push({ path: `${at}.routes`, message: 'a server needs at least one route' });
  s.routes.forEach((r, i) => {
    const rat = `${at}.routes[${i}]`;
    const gateway = gatewayKeys(r, rat, issues, baseDir, timeouts, maxBodySize);
    const upstreams = (r.upstreams ?? []).map((u, j) => {
      const uat = `${rat}.upstreams[${j}]`;
      const ep = typeof u.endpoint === 'string' ? { type: 'uri' as const, value: u.endpoint } : u.endpoint;
      const parsed = parseEndpoint(ep.type, ep.value, `${uat}.endpoint`, issues);
      const address = upstreamTls(parsed, u.tls, `${uat}.tls`, issues, baseDir);
      return {
        address,
        weight: u.weight ?? 1,
        label: ep.type === 'unix' ? `unix:${ep.value}` : ep.value,
        ...(u.send_proxy_protocol === undefined ? {} : { sendProxyProtocol: u.send_proxy_protocol }),
        ...(u.max_connections === undefined
          ? {}
          : { limits: { maxConnections: u.max_connections, maxPending: u.max_pending ?? 1024 } }),
      };
    });
    const balancer = r.load_balancer ?? (upstreams.length > 1 ? 'round_robin' : 'first');
    if (balancer.startsWith('weighted') && upstreams.every((u) => u.weight === 0)) {
      issues.push({
        path: `${rat}.upstreams`,
        message: 'every upstream has weight 0: nothing could be chosen',
      });
    }
    if (r.strip_prefix !== undefined && !r.path.startsWith(r.strip_prefix)) {
      issues.push({
        path: `${rat}.strip_prefix`,
        message: `"${r.strip_prefix}" is not a prefix of the route path "${r.path}"`,
      });
    }
    routes.push({
      path: r.path,
      host: r.host?.toLowerCase(),
      loadBalancer: balancer,
      upstreams: upstreams.filter(
        (u): u is { address: UpstreamAddress; weight: number; label: string } => !!u.address,
      ),
      stripPrefix: r.strip_prefix,
      hostHeader: r.host_header ?? 'preserve',
      maxBodySize: bytesOf(r.max_body_size, maxBodySize),
      ...gateway,
      ...(r.pseudonymize === undefined
        ? {}
        : {
            grpcPseudonymize: schemaPart().grpcPseudonymOf(
              r.pseudonymize,
              `${rat}.pseudonymize`,
              issues,
              baseDir,
            ),
          }),
      ...healthKeys(r),
      ...(upstreamHttpVersion === 'http2' || upstreamHttpVersion === 'auto'
        ? { upstreamHttpVersion: upstreamHttpVersion as 'http2' | 'auto' }
        : {}),
    });
  });
  const allowUpgrades = (s.allow_upgrades ?? DEFAULT_UPGRADES).map((p) => p.toLowerCase());
  allowUpgrades.forEach((p, i) => {
    if (p === 'h2c')
      issues.push({
        path: `${at}.allow_upgrades[${i}]`,
        message: "h2c is never tunnelled (an HTTP/2 connection to the upstream is loch's own to make)",
      });
  });
  const maxHeaderSize = bytesOf(s.max_header_size, 16 * 1024);
  if (maxHeaderSize < 1024 || maxHeaderSize > 1024 * 1024)
    issues.push({ path: `${at}.max_header_size`, message: 'expected a size from 1k to 1m' });
  s.proxy_protocol_from?.forEach((entry, i) => {
    const problem = trustedPeerProblem(entry);
    if (problem !== undefined) issues.push({ path: `${at}.proxy_protocol_from[${i}]`, message: problem });
  });
  s.trusted_proxies?.forEach((entry, i) => {
    const problem = trustedPeerProblem(entry);
    if (problem !== undefined) issues.push({ path: `${at}.trusted_proxies[${i}]`, message: problem });
  });
  if (issues.length > start || !listen) return undefined;
  return {
    key,
    name: s.name ?? key,
    proxyType: 'http',
    listen,
    timeouts,
    // Only gateway routes merge (a table without one comes back as it is).
    routes: routes.some((r) => r.gateway !== undefined)
      ? schemaPart().mergeGatewayRoutes(routes, at, issues)
      : routes,
    accessLog:
      typeof s.access_log === 'boolean' ? s.access_log : accessLogDefault || s.access_log !== undefined,
    allowEncodedSlashes: s.allow_encoded_slashes ?? false,
    allowUpgrades,
    tls,
    http2: s.http2 ?? true,
    ...(s.proxy_protocol === true
      ? {
          proxyProtocol: {
            timeout: durationMs(s.proxy_protocol_timeout, 5_000),
            from: s.proxy_protocol_from,
          },
        }
      : {}),
    maxHeaderSize,
    maxHeaderCount: s.max_header_count ?? 100,
    ...(s.upstream_keepalive === undefined ? {} : { upstreamKeepalive: s.upstream_keepalive }),
    ...(s.trusted_proxies === undefined || s.trusted_proxies.length === 0
      ? {}
      : { trustedProxies: s.trusted_proxies }),
  };
}

/** Parses "host:port", "[v6]:port" or ":port" (all interfaces). */
function parseHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

function parseListener(
  type: 'socket' | 'unix',
  value: string,
  at: string,
  issues: ConfigIssue[],
): ListenAddress | undefined {
  if (type === 'unix') {
    if (!value.startsWith('/')) issues.push({ path: at, message: 'a unix listener path must be absolute' });
    return { kind: 'unix', path: value };
  }
  const hp = parseHostPort(value);
  if (!hp) {
    issues.push({ path: at, message: `"${value}" is not an address like "127.0.0.1:8080" or "[::1]:8080"` });
    return undefined;
  }
  return { kind: 'tcp', ...hp };
}

/**
 * An https upstream's TLS settings (`tls = { verify, ca, server_name }`): verification is on
 * unless `verify = false` says otherwise; the CA file is resolved from the config's directory.
 */
function upstreamTls(
  address: UpstreamAddress | undefined,
  tls: UpstreamTlsFile | undefined,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
): UpstreamAddress | undefined {
  if (address === undefined) return undefined;
  if (address.kind !== 'tcp' || address.scheme !== 'https') {
    if (tls !== undefined) issues.push({ path: at, message: 'only an https upstream takes tls settings' });
    return address;
  }
  const ca = tls?.ca === undefined ? 'system' : resolve(baseDir, tls.ca);
  if (tls?.server_name_from === 'host' && tls.server_name !== undefined)
    issues.push({ path: at, message: 'give "server_name" or server_name_from = "host", not both' });
  return {
    ...address,
    tls: {
      verify: tls?.verify ?? true,
      ca,
      serverName: tls?.server_name ?? address.host,
      serverNameFrom: tls?.server_name_from ?? 'endpoint',
    },
  };
}

function parseEndpoint(
  type: 'uri' | 'unix',
  value: string,
  at: string,
  issues: ConfigIssue[],
): UpstreamAddress | undefined {
  if (type === 'unix') {
    if (!value.startsWith('/')) issues.push({ path: at, message: 'a unix upstream path must be absolute' });
    return { kind: 'unix', path: value, authority: 'localhost' };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    issues.push({
      path: at,
      message: `"${withoutUserinfo(value)}" is not a URI like "http://127.0.0.1:9000"`,
    });
    return undefined;
  }
  // The endpoint string is the upstream's label in /config, metrics and logs: credentials in it
  // would be shown everywhere, and loch would not send them (no Authorization from userinfo).
  if (url.username !== '' || url.password !== '') {
    issues.push({
      path: at,
      message: `an upstream URI carries no user or password ("${withoutUserinfo(value)}"): they would show in /config, metrics labels and logs, and loch does not send them`,
    });
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    issues.push({
      path: at,
      message: `unsupported scheme "${url.protocol.slice(0, -1)}" (expected http or https)`,
    });
    return undefined;
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search) {
    issues.push({
      path: at,
      message:
        'an upstream URI carries no path or query: Loch forwards the request path (use strip_prefix to rewrite)',
    });
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const https = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : https ? 443 : 80;
  return { kind: 'tcp', host, port, scheme: https ? 'https' : 'http', authority: url.host, tls: undefined };
}

/** `value` with any `user:password@` after the scheme replaced by `***@`, for messages. */
function withoutUserinfo(value: string): string {
  return value.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@');
}

const defaultThriftTimeouts: ThriftTimeoutConfig = {
  serverKeepalive: 60_000,
  serverMessage: 30_000,
  upstreamConnect: 5_000,
  upstreamCall: 30_000,
  shutdownGrace: 30_000,
};

/**
 * A `proxy_type = "thrift"` server: Monolake's current shape (`route = { load_balancer,
 * upstreams }`, `timeout = { server_keepalive_timeout_sec, server_message_timeout_sec }`), its
 * older routes form (`[[routes]]` with `path = "/"`) and Loch's routes by method and service.
 * Routes keep their order; the default route (no matcher) goes last and may appear once.
 */
function normalizeThriftServer(
  key: string,
  s: ThriftServerFile,
  at: string,
  issues: ConfigIssue[],
  accessLogDefault: boolean,
  baseDir: string,
): ThriftServerConfig | undefined {
  const start = issues.length;
  if (s.tls !== undefined)
    issues.push({
      path: `${at}.tls`,
      message: 'tls on a thrift server is not supported yet by this version of loch',
    });
  oneTimeoutForm(s, at, issues);
  const listen = parseListener(s.listener.type, s.listener.value, `${at}.listener.value`, issues);
  const d = defaultThriftTimeouts;
  const m = s.timeout;
  const t = s.timeouts;
  const timeouts: ThriftTimeoutConfig = m
    ? {
        ...d,
        serverKeepalive: secondsMs(m.server_keepalive_timeout_sec, d.serverKeepalive),
        serverMessage: secondsMs(m.server_message_timeout_sec, d.serverMessage),
      }
    : {
        serverKeepalive: durationMs(t?.server_keepalive, d.serverKeepalive),
        serverMessage: durationMs(t?.server_message, d.serverMessage),
        upstreamConnect: durationMs(t?.upstream_connect, d.upstreamConnect),
        upstreamCall: durationMs(t?.upstream_call, d.upstreamCall),
        shutdownGrace: durationMs(t?.shutdown_grace, d.shutdownGrace),
      };
  const matched: ThriftRouteConfig[] = [];
  let fallback: { route: ThriftRouteConfig; at: string } | undefined;
  const add = (
    r: ThriftServerFile['routes'][number] | NonNullable<ThriftServerFile['route']>,
    rat: string,
    methods: readonly string[] | undefined,
    service: string | undefined,
  ) => {
    const upstreams: ThriftUpstreamConfig[] = [];
    r.upstreams.forEach((u, j) => {
      const built = parseThriftUpstream(u.endpoint, `${rat}.upstreams[${j}].endpoint`, issues);
      const multiplex = u.multiplex === true ? 128 : u.multiplex ? u.multiplex.max_calls : 0;
      if (built) upstreams.push({ ...built, weight: u.weight ?? 1, multiplex });
    });
    const loadBalancer = r.load_balancer ?? (r.upstreams.length > 1 ? 'round_robin' : 'first');
    if (loadBalancer.startsWith('weighted') && r.upstreams.every((u) => u.weight === 0))
      issues.push({
        path: `${rat}.upstreams`,
        message: 'every upstream has weight 0: nothing could be chosen',
      });
    const matchHeaders = 'match_headers' in r ? r.match_headers : undefined;
    const matchInt = 'match_int_headers' in r ? r.match_int_headers : undefined;
    const matchIntHeaders =
      matchInt === undefined ? undefined : intHeaderMap(matchInt, `${rat}.match_int_headers`, issues);
    const route: ThriftRouteConfig = {
      methods,
      service,
      loadBalancer,
      upstreams,
      ...thriftRewrite(r, rat, issues),
      ...(matchHeaders === undefined ? {} : { matchHeaders: new Map(Object.entries(matchHeaders)) }),
      ...(matchIntHeaders === undefined ? {} : { matchIntHeaders }),
    };
    const matches = matchHeaders !== undefined || matchIntHeaders !== undefined;
    if (methods !== undefined || service !== undefined || matches) matched.push(route);
    else if (fallback)
      issues.push({
        path: rat,
        message: `a second default route (the first is ${fallback.at}): give it a method or service`,
      });
    else fallback = { route, at: rat };
  };
  if (s.route) add(s.route, `${at}.route`, undefined, undefined);
  s.routes.forEach((r, i) => {
    const rat = `${at}.routes[${i}]`;
    if (r.path !== undefined && r.path !== '/')
      issues.push({
        path: `${rat}.path`,
        message: 'thrift routes match method and service, not paths: only path = "/" (every call) is allowed',
      });
    const methods = r.method === undefined ? undefined : typeof r.method === 'string' ? [r.method] : r.method;
    add(r, rat, methods, r.service);
  });
  if (!s.route && s.routes.length === 0)
    issues.push({
      path: `${at}.route`,
      message: 'a thrift server needs a route (route = { upstreams = [...] }) or routes',
    });
  const pseudonymize =
    s.pseudonymize === undefined
      ? undefined
      : schemaPart().thriftPseudonymOf(s.pseudonymize, `${at}.pseudonymize`, issues, baseDir);
  if (issues.length > start || !listen) return undefined;
  return {
    ...(pseudonymize === undefined ? {} : { pseudonymize }),
    // Only when given: @loch/thrift holds the defaults (DEFAULT_MAX_HEADER_SIZE/COUNT).
    ...(s.max_header_size === undefined ? {} : { maxHeaderSize: s.max_header_size }),
    ...(s.max_header_count === undefined ? {} : { maxHeaderCount: s.max_header_count }),
    key,
    name: s.name ?? key,
    proxyType: 'thrift',
    listen,
    timeouts,
    routes: fallback ? [...matched, fallback.route] : matched,
    maxFrameSize: s.max_frame_size ?? 16 * 1024 * 1024,
    maxPipelinedCalls: s.max_pipelined_calls ?? 1,
    acceptUnframed: s.accept_unframed ?? false,
    accessLog:
      typeof s.access_log === 'boolean' ? s.access_log : accessLogDefault || s.access_log !== undefined,
  };
}

/** `{ <int header key> = value }` of a thrift route, keys resolved (int-headers.ts). */
function intHeaderMap(
  written: Record<string, string>,
  at: string,
  issues: ConfigIssue[],
): Map<number, string> {
  const out = new Map<number, string>();
  for (const [name, value] of Object.entries(written)) {
    const key = schemaPart().intHeaderKey(name);
    if (key === undefined)
      issues.push({ path: `${at}.${name}`, message: schemaPart().unknownIntHeader(name) });
    else if (out.has(key)) issues.push({ path: `${at}.${name}`, message: `key ${key} is given twice` });
    else out.set(key, value);
  }
  return out;
}

/** A thrift route's call rewrite keys (only those it sets). */
function thriftRewrite(
  r: NonNullable<ThriftServerFile['route']>,
  at: string,
  issues: ConfigIssue[],
): Pick<
  ThriftRouteConfig,
  'headerRewrite' | 'intHeaderRewrite' | 'renames' | 'upstreamFraming' | 'upstreamProtocol' | 'timeouts'
> {
  const out: {
    -readonly [K in
      | 'headerRewrite'
      | 'intHeaderRewrite'
      | 'renames'
      | 'upstreamFraming'
      | 'upstreamProtocol'
      | 'timeouts']?: ThriftRouteConfig[K];
  } = {};
  if (r.headers !== undefined) {
    if (r.upstream_framing === 'framed')
      issues.push({
        path: `${at}.headers`,
        message: 'upstream_framing = "framed" carries no headers: use "theader" or "ttheader"',
      });
    out.headerRewrite = {
      add: new Map(Object.entries(r.headers.add ?? {})),
      set: new Map(Object.entries(r.headers.set ?? {})),
      remove: r.headers.remove ?? [],
    };
  }
  const ih = r.int_headers;
  if (ih !== undefined) {
    const iat = `${at}.int_headers`;
    if (r.upstream_framing !== undefined && r.upstream_framing !== 'ttheader')
      issues.push({
        path: iat,
        message: `upstream_framing = "${r.upstream_framing}" carries no integer headers: use "ttheader"`,
      });
    const remove: number[] = [];
    (ih.remove ?? []).forEach((name, i) => {
      const key = schemaPart().intHeaderKey(name);
      if (key === undefined)
        issues.push({ path: `${iat}.remove[${i}]`, message: schemaPart().unknownIntHeader(name) });
      else remove.push(key);
    });
    out.intHeaderRewrite = {
      add: intHeaderMap(ih.add ?? {}, `${iat}.add`, issues),
      set: intHeaderMap(ih.set ?? {}, `${iat}.set`, issues),
      remove,
    };
  }
  if (r.rename_method !== undefined) out.renames = new Map(Object.entries(r.rename_method));
  if (r.upstream_framing !== undefined) out.upstreamFraming = r.upstream_framing;
  if (r.upstream_protocol !== undefined) out.upstreamProtocol = r.upstream_protocol;
  const t = r.timeouts;
  if (t !== undefined)
    out.timeouts = {
      ...(t.upstream_connect === undefined ? {} : { upstreamConnect: durationMs(t.upstream_connect, 0) }),
      ...(t.upstream_call === undefined ? {} : { upstreamCall: durationMs(t.upstream_call, 0) }),
    };
  return out;
}

/** A thrift upstream endpoint: `{ type = "socket" | "unix", value }` or "host:port". */
export function parseThriftUpstream(
  endpoint: ThriftServerFile['routes'][number]['upstreams'][number]['endpoint'],
  at: string,
  issues: ConfigIssue[],
): Omit<ThriftUpstreamConfig, 'weight' | 'multiplex'> | undefined {
  const ep = typeof endpoint === 'string' ? { type: 'socket' as const, value: endpoint } : endpoint;
  if (ep.type === 'unix') {
    if (!ep.value.startsWith('/')) {
      issues.push({ path: at, message: 'a unix upstream path must be absolute' });
      return undefined;
    }
    return { address: { kind: 'unix', path: ep.value }, label: `unix:${ep.value}` };
  }
  const hp = parseHostPort(ep.value);
  if (!hp || hp.port === 0) {
    issues.push({
      path: at,
      message: `"${ep.value}" is not a thrift upstream address like "127.0.0.1:9090" (or { type = "unix", value = "/path" })`,
    });
    return undefined;
  }
  return { address: { kind: 'tcp', host: hp.host, port: hp.port }, label: ep.value };
}
