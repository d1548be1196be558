/**
 * The proxy's configuration: the file schema (what users write, in Loch's spelling or in
 * Monolake's) and the effective config the proxy runs on. Validation is strict: an unknown key
 * or a bad value is an error that names the key. Not for reading files or for turning a
 * schema-valid file into the effective config (both in config/load.ts).
 */
import { z } from 'zod';
import type { GatewayRouteConfig } from '../gateway/config.js';
import type { GrpcPseudonymConfig } from '../gateway/grpc-pseudonym-schema.js';
import type { PseudonymConfig } from '../gateway/pseudonym-config.js';
import {
  type HealthCheckConfig,
  HealthCheckSchema,
  type OutlierConfig,
  OutlierDetectionSchema,
  RetriesSchema,
  type RetryConfig,
} from '../health/config.js';
import type { OutlierSlotRef } from '../health/outlier-slots.js';
import { LOG_MODULES, type LogModule } from './log-modules.js';

export { LOG_MODULES, type LogModule };

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

/** An https upstream's TLS: verification (on unless false), CA bundle file, SNI name. */
export const UpstreamTlsSchema = z.strictObject({
  verify: z.boolean().optional(),
  ca: z.string().min(1).optional(),
  server_name: z.string().min(1).optional(),
  /**
   * Where the SNI name (and the name verified) comes from: "endpoint" (default: `server_name`,
   * else the endpoint's host) or "host": each request's Host, like Envoy's auto_sni with
   * auto_san_validation; connections are pooled per name.
   */
  server_name_from: z.enum(['endpoint', 'host']).optional(),
});

export const UpstreamSchema = z.strictObject({
  endpoint: EndpointSchema,
  tls: UpstreamTlsSchema.optional(),
  weight: z.number().int().min(0).max(1_000_000).optional(),
  /** Send a PROXY protocol header first on each new connection (haproxy's send-proxy / send-proxy-v2). */
  send_proxy_protocol: z.enum(['v1', 'v2']).optional(),
  /** HTTP/1.1 connections in use to this upstream at most, per worker (nginx's max_conns); 503 beyond the queue. */
  max_connections: z.number().int().min(1).max(1_000_000).optional(),
  /** Requests waiting for one of those connections at most, per worker (Envoy's max_pending_requests). */
  max_pending: z.number().int().min(0).max(1_000_000).optional(),
});

export const LoadBalancerSchema = z.enum(['random', 'weighted_random', 'round_robin', 'first']);

/**
 * A size in bytes: a number, or nginx's spelling "512", "64k", "1m", "1g" (case-insensitive,
 * powers of 1024).
 */
export const ByteSize = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\d+[kKmMgG]?$/, 'expected a size like "512", "64k", "1m", "1g" or a number of bytes'),
]);

export const RouteSchema = z.strictObject({
  path: z.string().startsWith('/', 'a route path starts with "/"'),
  host: z.string().min(1).optional(),
  /** Where requests go; absent only on a `thrift` route (load.ts checks). */
  upstreams: z.array(UpstreamSchema).min(1, 'a route needs at least one upstream').optional(),
  load_balancer: LoadBalancerSchema.optional(),
  /** Prefix of the matched path to remove before forwarding (explicit, unlike Monolake). */
  strip_prefix: z.string().startsWith('/').optional(),
  /** How the upstream request's Host is set: keep the client's (default) or use the upstream's authority. */
  host_header: z.enum(['preserve', 'upstream']).optional(),
  /** Largest request body this route takes (413 above it); overrides the server's; 0: no limit. */
  max_body_size: ByteSize.optional(),
  /** Passive health: consecutive failures eject an upstream for a while (health/config.ts). */
  outlier_detection: OutlierDetectionSchema.optional(),
  /** Active health checks of the route's upstreams, once per process (health/config.ts). */
  health_check: HealthCheckSchema.optional(),
  /** Retries of idempotent bodiless requests under a retry budget (health/config.ts). */
  retries: RetriesSchema.optional(),
  /** The HTTP method a `thrift` route answers ("GET"); absent: any, or the IDL's api.<method>. */
  method: z
    .string()
    .regex(/^[A-Za-z]+$/, 'expected an HTTP method like "GET"')
    .optional(),
  /** HTTP/JSON -> Thrift: the route calls a function of a Thrift IDL (gateway/config.ts, issue 19). */
  thrift: z.lazy(() => GatewayThriftSchema).optional(),
  /** gRPC pseudonymization of the calls this route proxies (gateway/grpc-pseudonym.ts, issue 19). */
  pseudonymize: z.lazy(() => PseudonymizeSchema).optional(),
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
  /** A tunnel (an upgraded connection: WebSocket) with no byte either way this long is closed. */
  tunnel_idle: Duration.optional(),
  /**
   * On a graceful stop, tunnels get this long to end on their own, then are closed (default:
   * shutdown_grace); HTTP requests in flight keep the whole shutdown_grace.
   */
  tunnel_drain: Duration.optional(),
});

/** One certificate of a TLS server: PEM files, and the server names it answers for (SNI). */
export const TlsCertificateSchema = z.strictObject({
  chain: z.string().min(1),
  key: z.string().min(1),
  /** Exact ("api.example.com") or wildcard ("*.example.com") names; default: the certificate's own. */
  names: z.array(z.string().min(1)).optional(),
  /** Serves clients that send no or an unknown server name (default: the first certificate). */
  default: z.boolean().optional(),
});

const TlsVersionSchema = z.enum(['TLSv1.2', 'TLSv1.3']);

/**
 * A server's `tls` table. Monolake's keys (`chain`, `key`, `stack`) load unchanged; Loch adds
 * SNI certificates, versions, ciphers, client certificates (mTLS) and the handshake deadline.
 */
export const TlsSchema = z.strictObject({
  chain: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** Monolake's TLS library choice; accepted and noted (`loch check`, `loch run`): OpenSSL serves either way. */
  stack: z.enum(['rustls', 'native_tls']).optional(),
  certificates: z.array(TlsCertificateSchema).optional(),
  min_version: TlsVersionSchema.optional(),
  max_version: TlsVersionSchema.optional(),
  ciphers: z.string().min(1).optional(),
  ciphersuites: z.string().min(1).optional(),
  /** CA certificates (PEM file) client certificates must chain to. */
  client_ca: z.string().min(1).optional(),
  /** Ask for a client certificate: "off", "optional" (verified when sent) or "required" (default with client_ca). */
  client_certificate: z.enum(['off', 'optional', 'required']).optional(),
  /** Forward the verified client certificate upstream in x-forwarded-client-cert. */
  forward_client_certificate: z.boolean().optional(),
  handshake_timeout: Duration.optional(),
  /**
   * How often the session ticket key rotates in every worker at once (default "12h"; "0s" never).
   * Tickets issued under the previous key keep resuming; older ones make a full handshake.
   */
  session_ticket_rotation: Duration.optional(),
  /**
   * Who runs the TLS 1.3 record layer after the handshake: "loch" (Loch's own, the default) or
   * "openssl" (the opt-out). Absent: LOCH_TLS_RECORDS, else "loch". TLS 1.2 and the CCM suites
   * stay on OpenSSL's either way.
   */
  records: z.enum(['openssl', 'loch']).optional(),
});

const LogLevelSchema = z.enum(['debug', 'info', 'warn', 'error', 'off']);

/** `access_log = { path = "/var/log/loch/access.log", format = "json" }` (no path: stdout). */
export const AccessLogSchema = z.strictObject({
  path: z.string().min(1).optional(),
  format: z.enum(['text', 'json']).optional(),
});

export const ServerSchema = z.strictObject({
  name: z.string().min(1).optional(),
  proxy_type: z.string().default('http'),
  listener: ListenerSchema,
  /** Monolake: "http11" (default), "http2" (h2c to http://, h2 by ALPN to https://) or "auto" (ALPN). */
  upstream_http_version: z.string().optional(),
  timeout: MonolakeTimeoutSchema.optional(),
  timeouts: TimeoutsSchema.optional(),
  routes: z.array(RouteSchema).default([]),
  /** Serve HTTPS on this listener. */
  tls: TlsSchema.optional(),
  /** HTTP/2 beside HTTP/1.1: h2 by ALPN on TLS listeners, h2c by prior knowledge on plain ones. */
  http2: z.boolean().optional(),
  /** true/false, or where and how: `{ path = "...", format = "text" | "json" }`. */
  access_log: z.union([z.boolean(), AccessLogSchema]).optional(),
  /** Keep `%2F` in request paths (encoded, not a separator) instead of answering 400. */
  allow_encoded_slashes: z.boolean().optional(),
  /** Every connection starts with a PROXY protocol header, v1 or v2 (haproxy's accept-proxy); read before TLS. */
  proxy_protocol: z.boolean().optional(),
  /** Deadline for that header (default 5s): a slower or missing one closes the connection. */
  proxy_protocol_timeout: Duration.optional(),
  /** Peers (IPs, CIDR ranges) that must send that header; others are served without one. Default: every peer. */
  proxy_protocol_from: z.array(z.string().min(1)).optional(),
  /**
   * Proxies (IPs, CIDR ranges) whose X-Forwarded-For is believed: the client logged is the first
   * address from the right that is not one of them (nginx's real_ip_recursive).
   */
  trusted_proxies: z.array(z.string().min(1)).optional(),
  /** Largest request body of this server's routes (413 above it); 0: no limit. */
  max_body_size: ByteSize.optional(),
  /** Largest request head (request line + fields), 431 above it (HTTP/2: the header list). */
  max_header_size: ByteSize.optional(),
  /** Most header fields in a request, 431 above it. */
  max_header_count: z.number().int().min(1).max(10_000).optional(),
  /**
   * Idle HTTP/1.1 upstream connections each worker keeps per upstream endpoint (nginx's
   * `keepalive N` in an upstream block); 0 keeps none. Default 256.
   */
  upstream_keepalive: z.number().int().min(0).max(65_536).optional(),
  /**
   * Upgrade protocols (the Upgrade field's tokens, `websocket`) forwarded with the upgrade and
   * tunnelled after the upstream's 101; others are forwarded without it. Never h2c.
   */
  allow_upgrades: z
    .array(
      z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an upgrade protocol is a token, like "websocket"'),
    )
    .optional(),
});

/**
 * A Thrift upstream endpoint: Monolake's `{ type = "socket", value = "127.0.0.1:9090" }` and
 * `{ type = "unix", value = "/path" }`, or Loch's shorthand string "127.0.0.1:9090".
 */
export const ThriftEndpointSchema = z.union([
  z.string().min(1),
  z.strictObject({ type: z.enum(['socket', 'unix']), value: z.string().min(1) }),
]);

export const ThriftUpstreamSchema = z.strictObject({
  endpoint: ThriftEndpointSchema,
  weight: z.number().int().min(0).max(1_000_000).optional(),
  /**
   * Several calls in flight per upstream connection, seq ids remapped by loch (true: up to
   * 128; `{ max_calls = N }`). Only for servers that answer a connection's calls concurrently
   * or match by seq id; the default is one call per connection.
   */
  multiplex: z
    .union([z.boolean(), z.strictObject({ max_calls: z.number().int().min(1).max(65_536) })])
    .optional(),
});

/**
 * `pseudonymize = { ... }` of a gateway route or a thrift server (issue 19): fields chosen by
 * IDL path or `(pii)` annotation get keyed, deterministic, reversible tokens
 * (gateway/pseudonym-config.ts). Keys only from files or the environment.
 */
export const PseudonymizeSchema = z.strictObject({
  /** The IDL (thrift servers; a gateway route uses its own). */
  idl: z.string().min(1).optional(),
  /** The .proto files of a proxied route's gRPC calls. */
  proto: z.array(z.string().min(1)).min(1).optional(),
  /** Or their binary FileDescriptorSets (`protoc --include_imports --descriptor_set_out`, `buf build -o`). */
  descriptor_set: z.array(z.string().min(1)).min(1).optional(),
  /** Which side holds tokens: "upstream" (calls sealed, replies opened) or "downstream". */
  direction: z.enum(['upstream', 'downstream']),
  keys: z
    .array(
      z.strictObject({
        id: z.string(),
        file: z.string().min(1).optional(),
        env: z.string().min(1).optional(),
      }),
    )
    .min(1, 'give at least one key'),
  /** The key id new tokens use (default the first). */
  current: z.string().optional(),
  /** IDL paths (`Svc.fn.result.success.email`) or `{ path, format, domain }`. */
  fields: z
    .array(
      z.union([
        z.string().min(1),
        z.strictObject({
          path: z.string().min(1),
          format: z.enum(['text', 'email']).optional(),
          domain: z.string().min(1).optional(),
        }),
      ]),
    )
    .optional(),
  /** Fields annotated `(pii = "...")` in the IDL count too (default true). */
  annotations: z.boolean().optional(),
});

/**
 * `thrift = { idl, service, method, upstream | upstreams, ... }` of an HTTP route: the gateway
 * (issue 19). `upstream` is the short form of `upstreams` (Thrift proxy endpoints).
 */
export const GatewayThriftSchema = z.strictObject({
  idl: z.string().min(1),
  service: z.string().min(1),
  /** The function; absent on a prefix route (`path = "/api/"`), which serves every function. */
  method: z.string().min(1).optional(),
  upstream: ThriftEndpointSchema.optional(),
  upstreams: z.array(ThriftUpstreamSchema).min(1, 'a route needs at least one upstream').optional(),
  load_balancer: LoadBalancerSchema.optional(),
  framing: z.enum(['framed', 'theader', 'ttheader']).optional(),
  protocol: z.enum(['binary', 'compact']).optional(),
  /** HTTP headers sent as THeader/TTHeader info keys, and read back from the reply's. */
  headers: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name')).optional(),
  /** Status of a declared exception (default 422). */
  exception_status: z.number().int().min(400).max(599).optional(),
  /** i64 as JSON numbers in answers (default: strings). */
  i64_as_number: z.boolean().optional(),
  /** Deadline of a call (default: the server's upstream_read) and of a connect (upstream_connect). */
  timeout: Duration.optional(),
  connect_timeout: Duration.optional(),
  /** Pseudonymization of the function's fields (the route's IDL). */
  pseudonymize: PseudonymizeSchema.optional(),
});

/** Monolake's single `route = { load_balancer, upstreams }` of a thrift server. */
export const ThriftDefaultRouteSchema = z.strictObject({
  load_balancer: LoadBalancerSchema.optional(),
  upstreams: z.array(ThriftUpstreamSchema).min(1, 'a route needs at least one upstream'),
  /** THeader/TTHeader string info headers on the way upstream: remove, then set, then add (unless present). */
  headers: z
    .strictObject({
      add: z.record(z.string().min(1), z.string()).optional(),
      set: z.record(z.string().min(1), z.string()).optional(),
      remove: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  /**
   * TTHeader integer info headers on the way upstream, as `headers`: keys are Kitex's names
   * (`to_service`, `TO_METHOD`...) or numbers 0-65535 (load.ts resolves and checks them).
   */
  int_headers: z
    .strictObject({
      add: z.record(z.string().min(1), z.string()).optional(),
      set: z.record(z.string().min(1), z.string()).optional(),
      remove: z.array(z.union([z.string().min(1), z.number().int()])).optional(),
    })
    .optional(),
  /** Method renames, `{ "Svc:old" = "Svc:new" }` or bare names; the reply gets the old name back. */
  rename_method: z.record(z.string().min(1), z.string().min(1)).optional(),
  /** The framing spoken upstream (default: the caller's); replies go back in the caller's. */
  upstream_framing: z.enum(['framed', 'theader', 'ttheader']).optional(),
  /** The protocol spoken upstream (default: the caller's); calls and replies are transcoded. */
  upstream_protocol: z.enum(['binary', 'compact']).optional(),
  /** The route's own upstream deadlines, over the server's `timeouts`. */
  timeouts: z
    .strictObject({ upstream_connect: Duration.optional(), upstream_call: Duration.optional() })
    .optional(),
});

/**
 * One `[[servers.<key>.routes]]` of a thrift server: matched by method name and/or service
 * (no matcher, or Monolake's `path = "/"`: every call, the default route).
 */
export const ThriftRouteSchema = ThriftDefaultRouteSchema.extend({
  /** Monolake's routes form: only "/" ("every call") means something for Thrift. */
  path: z.string().optional(),
  /** Method name(s), bare (`getUser`) or multiplexed (`UserService:getUser`). */
  method: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Service: the TMultiplexed prefix, TTHeader TO_SERVICE or the `isn` string header. */
  service: z.string().min(1).optional(),
  /** THeader/TTHeader string info headers the call must carry with these values. */
  match_headers: z.record(z.string().min(1), z.string()).optional(),
  /** TTHeader integer info headers the call must carry, keyed as in `int_headers`. */
  match_int_headers: z.record(z.string().min(1), z.string()).optional(),
});

/** Monolake's thrift `timeout` table: whole seconds. */
export const MonolakeThriftTimeoutSchema = z.strictObject({
  server_keepalive_timeout_sec: z.number().nonnegative().optional(),
  server_message_timeout_sec: z.number().nonnegative().optional(),
});

/** Loch's thrift `timeouts` table: durations. */
export const ThriftTimeoutsSchema = z.strictObject({
  server_keepalive: Duration.optional(),
  server_message: Duration.optional(),
  upstream_connect: Duration.optional(),
  upstream_call: Duration.optional(),
  shutdown_grace: Duration.optional(),
});

/** A `proxy_type = "thrift"` server. */
export const ThriftServerSchema = z.strictObject({
  name: z.string().min(1).optional(),
  proxy_type: z.literal('thrift'),
  listener: ListenerSchema,
  timeout: MonolakeThriftTimeoutSchema.optional(),
  timeouts: ThriftTimeoutsSchema.optional(),
  route: ThriftDefaultRouteSchema.optional(),
  routes: z.array(ThriftRouteSchema).default([]),
  /** Largest frame accepted from clients and upstreams, in bytes. */
  max_frame_size: z
    .number()
    .int()
    .min(64)
    .max(1024 * 1024 * 1024)
    .optional(),
  /**
   * Largest THeader/TTHeader header block (the info headers before the payload, as the frame's
   * header-size field gives it) accepted from clients and upstreams, in bytes (default 64 KiB).
   * 262,140 is the most the field can say.
   */
  max_header_size: z.number().int().min(4).max(262_140).optional(),
  /** Most info headers (key-values of every kind) in one THeader/TTHeader frame (default 1,000). */
  max_header_count: z.number().int().min(1).max(65_535).optional(),
  /** true/false, or where and how: `{ path = "...", format = "text" | "json" }`. */
  access_log: z.union([z.boolean(), AccessLogSchema]).optional(),
  /**
   * Calls of one client connection forwarded at once (default 1: the next call is read after
   * the reply to the last). Replies go back in the order the calls came.
   */
  max_pipelined_calls: z.number().int().min(1).max(1024).optional(),
  /**
   * Accept unframed (buffered) binary and compact clients, delimited by skipping every value of
   * each message (default: refused with a log line). Strict (versioned) binary only.
   */
  accept_unframed: z.boolean().optional(),
  /** Pseudonymization of every call's chosen fields (thrift/pseudonym.ts; issue 19). */
  pseudonymize: PseudonymizeSchema.optional(),
  /** Recognised so it can be refused by name: TLS for thrift servers is not supported yet. */
  tls: z.unknown().optional(),
});

/** A server of either kind, told apart by `proxy_type` (default "http"). */
export const ServerEntrySchema = z.discriminatedUnion(
  'proxy_type',
  [ServerSchema.extend({ proxy_type: z.literal('http').default('http') }), ThriftServerSchema],
  {
    error: (issue) => (issue.code === 'invalid_union' ? 'expected proxy_type "http" or "thrift"' : undefined),
  },
);

export const RuntimeSchema = z.strictObject({
  workers: z.number().int().min(1).max(1024).optional(),
  worker_threads: z.number().int().min(1).max(1024).optional(),
  driver: z.enum(['auto', 'uring', 'legacy']).optional(),
  runtime_type: z.enum(['io_uring', 'legacy']).optional(),
  entries: z.number().int().min(64).max(32768).optional(),
  cpu_affinity: z.boolean().optional(),
  /** Give free memory back to the OS after the worker was idle this long; "0s" disables. */
  idle_memory_trim: Duration.optional(),
  /** Open client connections per worker (nginx's worker_connections); at the limit accepting pauses. */
  max_connections_per_worker: z.number().int().min(1).max(1_000_000).optional(),
  /**
   * io_uring direct descriptors: slots of a table per worker ring that client connections are
   * accepted into (outside the process's fd table, so each worker holds up to the soft
   * RLIMIT_NOFILE); a number, "auto" (the soft limit) or 0 (off, the default).
   */
  direct_files: z.union([z.literal('auto'), z.number().int().min(0).max(1_048_576)]).optional(),
  /** Received bytes one connection holds unread before it stops reading (receive budget). */
  stream_buffer_bytes: ByteSize.optional(),
  /** Received bytes all connections of a worker hold before growing ones stop reading. */
  worker_buffer_bytes: ByteSize.optional(),
  /**
   * Largest V8 young generation of a worker (semi-spaces a third each, rounded up to a power of
   * two MiB: "16m" is "24m"); 0: V8's own (48 MiB).
   */
  worker_young_generation_bytes: ByteSize.optional(),
  /**
   * Also collect once after a wave of connections opened (up by 1,000 or more and settled): gives
   * back the young generation the burst grew; off by default (it slowed the busy clients' burst).
   */
  wave_collect_open: z.boolean().optional(),
});

export const LogSchema = z.strictObject({
  level: LogLevelSchema.optional(),
  access: z.boolean().optional(),
  /** Levels per module: `modules = { tls = "debug", upstream = "warn" }`. */
  modules: z.partialRecord(z.enum(LOG_MODULES), LogLevelSchema).optional(),
  /** Every server's access log output unless the server names its own. */
  access_log: AccessLogSchema.optional(),
  /** The operational log to a file instead of stderr (reopened on SIGUSR1 like access logs). */
  error_log: z.strictObject({ path: z.string().min(1) }).optional(),
});

/** `[admin]`: the admin listener (health, effective config, metrics, stats); off when absent. */
export const AdminSchema = z.strictObject({
  listener: ListenerSchema,
});

/** The whole file. */
export const ConfigFileSchema = z.strictObject({
  runtime: RuntimeSchema.default({}),
  log: LogSchema.optional(),
  admin: AdminSchema.optional(),
  servers: z.record(
    z.string().regex(/^[A-Za-z0-9_.-]+$/, 'server keys are letters, digits, _ . -'),
    ServerEntrySchema,
  ),
});

export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export type RouteFile = z.infer<typeof RouteSchema>;
export type ServerFile = z.infer<typeof ServerSchema>;
export type TlsFile = z.infer<typeof TlsSchema>;
export type UpstreamTlsFile = z.infer<typeof UpstreamTlsSchema>;
export type LoadBalancerName = z.infer<typeof LoadBalancerSchema>;
export type ThriftServerFile = z.infer<typeof ThriftServerSchema>;

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
      readonly scheme: 'http' | 'https';
      readonly authority: string;
      /** https only: verify the certificate (against `ca`: a PEM file, or 'system'), the SNI name. */
      readonly tls?:
        | {
            readonly verify: boolean;
            readonly ca: string;
            readonly serverName: string;
            /** "host": SNI from each request's Host (upstream-sni.ts); `serverName` when it has none. */
            readonly serverNameFrom?: 'endpoint' | 'host';
          }
        | undefined;
    }
  | { readonly kind: 'unix'; readonly path: string; readonly authority: string };

export interface UpstreamConfig {
  readonly address: UpstreamAddress;
  readonly weight: number;
  /** The endpoint as written, for logs. */
  readonly label: string;
  /**
   * Send a PROXY protocol header (v1 text or v2 binary) with the client's address first on each
   * new connection. Such connections are pooled per header (per client address and port).
   */
  readonly sendProxyProtocol?: 'v1' | 'v2' | undefined;
  /**
   * `max_connections` / `max_pending`: HTTP/1.1 connections in use to this upstream per worker,
   * and requests queued for one (upstream-limit in @loch/transports); beyond both, 503.
   */
  readonly limits?: { readonly maxConnections: number; readonly maxPending: number } | undefined;
}

export interface RouteConfig {
  readonly path: string;
  readonly host: string | undefined;
  readonly loadBalancer: LoadBalancerName;
  readonly upstreams: readonly UpstreamConfig[];
  readonly stripPrefix: string | undefined;
  readonly hostHeader: 'preserve' | 'upstream';
  /**
   * Largest request body (bytes) the route forwards: the route's `max_body_size`, else the
   * server's; 0 means no limit. A larger Content-Length is answered 413 before any body byte
   * is read; a body without a length that crosses it ends the upstream exchange (413 when no
   * response started). Absent: no limit.
   */
  readonly maxBodySize?: number;
  /**
   * The server's `upstream_http_version`: "http2" sends this route's requests over shared
   * HTTP/2 sessions (h2c by prior knowledge for http:// upstreams, h2 by ALPN for https://);
   * "auto" offers h2 and http/1.1 by ALPN to https:// upstreams and speaks what each one
   * picks (HTTP/1.1 to http:// ones). Absent: HTTP/1.1.
   */
  readonly upstreamHttpVersion?: 'http2' | 'auto' | undefined;
  /** Passive health of the upstreams (`outlier_detection`); absent: never ejected. */
  readonly outlierDetection?: OutlierConfig | undefined;
  /** Active health checks (`health_check`); absent: not checked. */
  readonly healthCheck?: HealthCheckConfig | undefined;
  /**
   * The active checker's slot per upstream in the shared health table (health-flags.ts; -1:
   * unchecked), set by the main thread (ActiveHealthChecker.update) before workers see the config.
   */
  readonly healthSlots?: readonly number[] | undefined;
  /**
   * Where the route group's passive health sits in the process's shared memory (absent: each
   * worker keeps its own), set by the main thread (health/outlier-slots.ts) before workers see
   * the config.
   */
  readonly outlierSlots?: OutlierSlotRef | undefined;
  /** Retries (`retries`); absent: none beyond the connector's own on a stale pooled connection. */
  readonly retries?: RetryConfig | undefined;
  /**
   * Where the route group's retry budget counts sit in every worker's block of the process's
   * shared memory (absent: each worker keeps its own budget), set by the main thread
   * (health/retry-slots.ts) before workers see the config.
   */
  readonly retrySlot?: number | undefined;
  /**
   * HTTP/JSON -> Thrift gateway routes of this path (one per HTTP method; gateway/config.ts).
   * Such a route has no HTTP `upstreams`.
   */
  readonly gateway?: readonly GatewayRouteConfig[] | undefined;
  /** gRPC pseudonymization of the calls it proxies. */
  readonly grpcPseudonymize?: GrpcPseudonymConfig | undefined;
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
  /** A tunnel (after a 101) idle both ways this long is closed, like nginx's proxy_read_timeout. */
  readonly tunnelIdle: number;
  /** On a graceful stop, tunnels are closed after this long (ms); undefined: shutdownGrace. */
  readonly tunnelDrain?: number | undefined;
}

/** A TLS server's effective settings: PEM text read from the files at load (and at each reload). */
export interface TlsServerConfig {
  readonly certificates: readonly {
    readonly chain: string;
    readonly key: string;
    readonly names: readonly string[] | undefined;
    readonly default: boolean;
    /** The chain's file, for messages. */
    readonly file: string;
  }[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
  readonly maxVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
  readonly ciphers: string | undefined;
  readonly ciphersuites: string | undefined;
  readonly clientCa: string | undefined;
  readonly clientCertificate: 'none' | 'request' | 'require';
  /** Send the verified client certificate upstream (x-forwarded-client-cert). */
  readonly forwardClientCertificate: boolean;
  readonly handshakeTimeout: number;
  /**
   * Session ticket keys (n * 80 bytes), made once per config load and given to every worker, so
   * a client resumes on whichever worker its next connection lands.
   */
  readonly ticketKeys: Uint8Array;
  /** Rotate the ticket keys this often (ms; 0 never): main thread -> every worker (ticket-rotation.ts). */
  readonly ticketRotation: number;
  /** Every file read (absolute): certificates, keys, the client CA; watched for renewals. */
  readonly files: readonly string[];
  /** The `records` key: the TLS 1.3 record layer after the handshake (undefined: LOCH_TLS_RECORDS, else Loch's). */
  readonly records: 'openssl' | 'loch' | undefined;
  /** Monolake's `stack` key as given: nothing changes with it (OpenSSL serves), but loch says so (tlsNotes). */
  readonly stack: 'rustls' | 'native_tls' | undefined;
}

/** Where and how a server's access lines go (absent: text to stdout). */
export interface AccessLogOutput {
  /** A file (opened for appending by every worker, reopened on SIGUSR1), or null: stdout. */
  readonly path: string | null;
  readonly format: 'text' | 'json';
}

export interface ServerConfig {
  readonly key: string;
  readonly name: string;
  readonly proxyType: 'http';
  readonly listen: ListenAddress;
  readonly timeouts: TimeoutConfig;
  readonly routes: readonly RouteConfig[];
  readonly accessLog: boolean;
  /** Where the access lines go; undefined: text to stdout. */
  readonly accessLogOutput?: AccessLogOutput | undefined;
  /**
   * Request paths may carry an encoded slash (`%2F`): kept encoded, routed and forwarded as
   * such. Off by default: such a path is a 400, since an upstream that decodes it sees other
   * segments than the ones routed on.
   */
  readonly allowEncodedSlashes: boolean;
  /**
   * Upgrade protocol names (lowercase) a request may switch to through the proxy: the request
   * keeps Upgrade and `Connection: upgrade`, and the upstream's 101 opens a tunnel. Any other
   * Upgrade is removed (the request is forwarded as plain HTTP). Default `websocket`; never h2c.
   */
  readonly allowUpgrades: readonly string[];
  /** HTTPS on this listener, or null for plain HTTP. */
  readonly tls: TlsServerConfig | null;
  /** HTTP/2 on this listener (h2 by ALPN with TLS, h2c by prior knowledge without). */
  readonly http2: boolean;
  /**
   * Read a PROXY protocol header first (before TLS) under this deadline (ms): its source is the
   * client (X-Forwarded-For, access log). Absent: no header is expected.
   */
  readonly proxyProtocol?:
    | {
        readonly timeout: number;
        /**
         * `proxy_protocol_from`: only these peers (IPs, CIDR ranges) send a header; a
         * connection from any other is served as if the listener had none. Undefined: every peer.
         */
        readonly from: readonly string[] | undefined;
      }
    | undefined;
  /** Largest request head in bytes (431 above it); HTTP/2 derives its header list size from it. */
  readonly maxHeaderSize: number;
  /** Most header fields in a request (431 above it). */
  readonly maxHeaderCount: number;
  /**
   * `upstream_keepalive`: idle HTTP/1.1 upstream connections each worker keeps per upstream
   * endpoint; undefined: the connector's default (DEFAULT_UPSTREAM_KEEPALIVE, proxy/upstream.ts).
   */
  readonly upstreamKeepalive?: number | undefined;
  /** `trusted_proxies`: the access log's client is read from X-Forwarded-For behind these. */
  readonly trustedProxies?: readonly string[] | undefined;
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
  /**
   * Client connections a worker keeps open at most (nginx's worker_connections): at the limit it
   * stops accepting, new connections wait in the kernel's backlog, and it resumes as connections
   * close. Applied on reload too.
   */
  readonly maxConnectionsPerWorker: number;
  /**
   * `direct_files`: the io_uring driver's direct descriptor table per worker (@loch/uring-runtime's
   * `uring.directFiles`): slots, "auto" (the soft RLIMIT_NOFILE) or 0 (off). Undefined when not
   * given: the runtime's default (off) or env LOCH_URING_DIRECT_FILES. Needs a restart.
   */
  readonly directFiles?: number | 'auto' | undefined;
  /**
   * Receive budgets (@loch/uring-runtime's `buffers`): bytes one connection holds unread before
   * it stops reading (TCP backpressure), and bytes all of a worker's connections hold before those
   * growing past their first chunk stop. Env LOCH_STREAM_BUFFER_BYTES / LOCH_WORKER_BUFFER_BYTES
   * win when set. Need a restart.
   */
  readonly streamBufferBytes: number;
  readonly workerBufferBytes: number;
  /**
   * Largest V8 young generation of a worker's isolate (its resourceLimits); 0 leaves V8's own
   * (48 MiB: semi-spaces up to 16 MiB). V8 takes a third of it as the semi-space size and rounds
   * that up to a power of two MiB, so only 3, 6, 12, 24, 48 MiB... differ: "13m" to "24m" all give
   * 8 MiB semi-spaces (young-generation-key.test.ts reads it off a worker). V8 grows it while a busy worker's objects survive
   * scavenges, as thousands of connections opening do, and keeps it while allocation goes on:
   * up to ~29 MiB more per worker that no connection needed (bench/idle-memory). Needs a restart.
   */
  readonly workerYoungGenerationBytes: number;
  /**
   * `wave_collect_open`: each worker's runtime also collects once after an open wave (its open
   * connections up by 1,000 or more and settled), which gives back the new space the burst grew
   * (@loch/uring-runtime's RuntimeOptions.waveCollectOpen). Off by default: held at 50,000
   * connections it cost the busy clients' throughput and p99 during the burst and saved no memory
   * three minutes after (bench/idle-memory/readings-2026-12-07g.md). The workers get it as env
   * LOCH_WAVE_COLLECT_OPEN (waveCollectOpenEnv), which wins when set. Needs a restart.
   */
  readonly waveCollectOpen: boolean;
}

/** Where a Thrift upstream is. */
export type ThriftUpstreamAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export interface ThriftUpstreamConfig {
  readonly address: ThriftUpstreamAddress;
  readonly weight: number;
  /** The endpoint as written, for logs. */
  readonly label: string;
  /** Calls in flight per connection when multiplexed; 0: one call per connection. */
  readonly multiplex: number;
}

/** A thrift route: calls it matches (all of its matchers; none = every call) and where they go. */
export interface ThriftRouteConfig {
  /** Method names, bare or multiplexed ("Svc:method"); undefined = any. */
  readonly methods: readonly string[] | undefined;
  /** Service name; undefined = any. */
  readonly service: string | undefined;
  readonly loadBalancer: LoadBalancerName;
  readonly upstreams: readonly ThriftUpstreamConfig[];
  /** Info headers changed on the way upstream. */
  readonly headerRewrite?: {
    readonly add: ReadonlyMap<string, string>;
    readonly set: ReadonlyMap<string, string>;
    readonly remove: readonly string[];
  };
  /** TTHeader integer info headers changed on the way upstream. */
  readonly intHeaderRewrite?: {
    readonly add: ReadonlyMap<number, string>;
    readonly set: ReadonlyMap<number, string>;
    readonly remove: readonly number[];
  };
  /** Message name -> the name sent upstream. */
  readonly renames?: ReadonlyMap<string, string>;
  /** String info headers a call must carry (with these values) for this route. */
  readonly matchHeaders?: ReadonlyMap<string, string>;
  /** TTHeader integer info headers a call must carry (with these values) for this route. */
  readonly matchIntHeaders?: ReadonlyMap<number, string>;
  /** The route's own upstream deadlines (ms, 0 = none), over the server's. */
  readonly timeouts?: { readonly upstreamConnect?: number; readonly upstreamCall?: number };
  readonly upstreamFraming?: 'framed' | 'theader' | 'ttheader';
  readonly upstreamProtocol?: 'binary' | 'compact';
}

/** Thrift server timeouts in milliseconds; 0 disables one. */
export interface ThriftTimeoutConfig {
  /** No message from a client for this long closes its connection. */
  readonly serverKeepalive: number;
  /** A started message must be complete within this. */
  readonly serverMessage: number;
  readonly upstreamConnect: number;
  /** From the call written upstream to its whole reply. */
  readonly upstreamCall: number;
  readonly shutdownGrace: number;
}

/** A `proxy_type = "thrift"` server. */
export interface ThriftServerConfig {
  readonly key: string;
  readonly name: string;
  readonly proxyType: 'thrift';
  readonly listen: ListenAddress;
  readonly timeouts: ThriftTimeoutConfig;
  /** In config order, the default route (if any) last. */
  readonly routes: readonly ThriftRouteConfig[];
  readonly maxFrameSize: number;
  /** max_header_size when given (else @loch/thrift's default, 64 KiB). */
  readonly maxHeaderSize?: number | undefined;
  /** max_header_count when given (else @loch/thrift's default, 1,000). */
  readonly maxHeaderCount?: number | undefined;
  readonly accessLog: boolean;
  /** Where the access lines go; undefined: text to stdout. */
  readonly accessLogOutput?: AccessLogOutput | undefined;
  /** Calls of one client connection forwarded at once; replies in call order. */
  readonly maxPipelinedCalls: number;
  /** Unframed clients accepted (delimited by skipping). */
  readonly acceptUnframed: boolean;
  /** Pseudonymization of the calls' chosen fields (gateway/pseudonym-config.ts). */
  readonly pseudonymize?: PseudonymConfig | undefined;
}

/** The effective configuration the proxy runs on. */
export interface ProxyConfig {
  readonly runtime: RuntimeConfig;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'off';
  /** `[log] modules`: levels of single modules (LOCH_LOG overrides at run time). */
  readonly logModules?: Readonly<Partial<Record<LogModule, 'debug' | 'info' | 'warn' | 'error' | 'off'>>>;
  /** `[log] error_log`: the operational log's file (absolute); undefined: stderr. */
  readonly errorLogPath?: string | undefined;
  readonly servers: readonly ServerConfig[];
  /** `proxy_type = "thrift"` servers. */
  readonly thriftServers: readonly ThriftServerConfig[];
  /** `[admin]`: where the admin listener listens (apps/proxy/src/admin/); absent, no admin listener and no metrics. */
  readonly admin?: AdminConfig;
}

/** The admin listener. */
export interface AdminConfig {
  readonly listen: ListenAddress;
}
