/**
 * The proxy's configuration: the file schema (what users write, in Loch's spelling or in
 * Monolake's) and the effective config the proxy runs on. Validation is strict: an unknown key
 * or a bad value is an error that names the key. Not for reading files or for turning a
 * schema-valid file into the effective config (both in config/load.ts).
 */
import { z } from 'zod';

/** A duration: milliseconds as a number, or a string with a unit ("250ms", "5s", "2m", "1h"). */
export const Duration = z.union([
  z.number().nonnegative().finite(),
  z
    .string()
    .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'expected a duration like "500ms", "5s", "2m" or a number of ms'),
]);

/** `listener = { type = "socket", value = "127.0.0.1:8080" }` or `{ type = "unix", value = "/run/loch.sock" }`. */
export const ListenerSchema = z.strictObject({
  type: z.enum(['socket', 'unix']),
  value: z.string().min(1),
});

/** An upstream endpoint: a URI string, `{ type = "uri", value = "http://..." }` or `{ type = "unix", value = "/path" }`. */
export const EndpointSchema = z.union([
  z.string().min(1),
  z.strictObject({ type: z.enum(['uri', 'unix']), value: z.string().min(1) }),
]);

export const UpstreamSchema = z.strictObject({
  endpoint: EndpointSchema,
  weight: z.number().int().min(0).max(1_000_000).optional(),
});

export const LoadBalancerSchema = z.enum(['random', 'weighted_random', 'round_robin', 'first']);

export const RouteSchema = z.strictObject({
  path: z.string().startsWith('/', 'a route path starts with "/"'),
  host: z.string().min(1).optional(),
  upstreams: z.array(UpstreamSchema).min(1, 'a route needs at least one upstream'),
  load_balancer: LoadBalancerSchema.optional(),
  /** Prefix of the matched path to remove before forwarding (explicit, unlike Monolake). */
  strip_prefix: z.string().startsWith('/').optional(),
  /** How the upstream request's Host is set: keep the client's (default) or use the upstream's authority. */
  host_header: z.enum(['preserve', 'upstream']).optional(),
});

/** Monolake's `timeout` table: whole seconds. */
export const MonolakeTimeoutSchema = z.strictObject({
  server_keepalive_timeout_sec: z.number().nonnegative().optional(),
  server_read_header_timeout_sec: z.number().nonnegative().optional(),
  server_read_body_timeout_sec: z.number().nonnegative().optional(),
  upstream_connect_timeout_sec: z.number().nonnegative().optional(),
  upstream_read_timeout_sec: z.number().nonnegative().optional(),
});

/** Loch's `timeouts` table: durations. */
export const TimeoutsSchema = z.strictObject({
  server_keepalive: Duration.optional(),
  server_read_header: Duration.optional(),
  server_read_body: Duration.optional(),
  server_write: Duration.optional(),
  upstream_connect: Duration.optional(),
  upstream_read: Duration.optional(),
  shutdown_grace: Duration.optional(),
});

export const ServerSchema = z.strictObject({
  name: z.string().min(1).optional(),
  proxy_type: z.string().default('http'),
  listener: ListenerSchema,
  /** Monolake: "http11" (supported) or "http2" (refused until HTTP/2 lands). */
  upstream_http_version: z.string().optional(),
  timeout: MonolakeTimeoutSchema.optional(),
  timeouts: TimeoutsSchema.optional(),
  routes: z.array(RouteSchema).default([]),
  /** Recognised so it can be refused by name until the TLS issue lands. */
  tls: z.unknown().optional(),
  access_log: z.boolean().optional(),
  /** Keep `%2F` in request paths (encoded, not a separator) instead of answering 400. */
  allow_encoded_slashes: z.boolean().optional(),
});

export const RuntimeSchema = z.strictObject({
  workers: z.number().int().min(1).max(1024).optional(),
  worker_threads: z.number().int().min(1).max(1024).optional(),
  driver: z.enum(['auto', 'uring', 'legacy']).optional(),
  runtime_type: z.enum(['io_uring', 'legacy']).optional(),
  entries: z.number().int().min(64).max(32768).optional(),
  cpu_affinity: z.boolean().optional(),
  /** Give free memory back to the OS after the worker was idle this long; "0s" disables. */
  idle_memory_trim: Duration.optional(),
});

export const LogSchema = z.strictObject({
  level: z.enum(['debug', 'info', 'warn', 'error', 'off']).optional(),
  access: z.boolean().optional(),
});

/** The whole file. */
export const ConfigFileSchema = z.strictObject({
  runtime: RuntimeSchema.default({}),
  log: LogSchema.optional(),
  servers: z.record(
    z.string().regex(/^[A-Za-z0-9_.-]+$/, 'server keys are letters, digits, _ . -'),
    ServerSchema,
  ),
});

export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export type RouteFile = z.infer<typeof RouteSchema>;
export type ServerFile = z.infer<typeof ServerSchema>;
export type LoadBalancerName = z.infer<typeof LoadBalancerSchema>;

/** Where a proxy listens. */
export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Where an upstream is. */
export type UpstreamAddress =
  | {
      readonly kind: 'tcp';
      readonly host: string;
      readonly port: number;
      readonly scheme: 'http';
      readonly authority: string;
    }
  | { readonly kind: 'unix'; readonly path: string; readonly authority: string };

export interface UpstreamConfig {
  readonly address: UpstreamAddress;
  readonly weight: number;
  /** The endpoint as written, for logs. */
  readonly label: string;
}

export interface RouteConfig {
  readonly path: string;
  readonly host: string | undefined;
  readonly loadBalancer: LoadBalancerName;
  readonly upstreams: readonly UpstreamConfig[];
  readonly stripPrefix: string | undefined;
  readonly hostHeader: 'preserve' | 'upstream';
}

/** Timeouts in milliseconds; 0 disables one. */
export interface TimeoutConfig {
  readonly serverKeepalive: number;
  readonly serverReadHeader: number;
  readonly serverReadBody: number;
  readonly serverWrite: number;
  readonly upstreamConnect: number;
  readonly upstreamRead: number;
  readonly shutdownGrace: number;
}

export interface ServerConfig {
  readonly key: string;
  readonly name: string;
  readonly proxyType: 'http';
  readonly listen: ListenAddress;
  readonly timeouts: TimeoutConfig;
  readonly routes: readonly RouteConfig[];
  readonly accessLog: boolean;
  /**
   * Request paths may carry an encoded slash (`%2F`): kept encoded, routed and forwarded as
   * such. Off by default: such a path is a 400, since an upstream that decodes it sees other
   * segments than the ones routed on.
   */
  readonly allowEncodedSlashes: boolean;
}

export interface RuntimeConfig {
  readonly workers: number;
  readonly driver: 'auto' | 'uring' | 'legacy';
  readonly entries: number;
  readonly cpuAffinity: boolean;
  /**
   * Milliseconds a worker must be idle (no I/O after some) before it gives free memory back to
   * the OS (V8 heap shrink + malloc_trim); 0 disables. Applied on reload too.
   */
  readonly idleMemoryTrimMs: number;
}

/** The effective configuration the proxy runs on. */
export interface ProxyConfig {
  readonly runtime: RuntimeConfig;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'off';
  readonly servers: readonly ServerConfig[];
}
