/**
 * The config keys of upstream health and retries, per route: `outlier_detection` (passive
 * health: consecutive failures eject an upstream for a while), `health_check` (active HTTP
 * checks, run once per process by the main thread), `retries` (idempotent bodiless requests
 * sent again on connect failure or a reset before any response byte, under a retry budget).
 * The file schema (zod, joined into RouteSchema by config/schema.ts) and the effective settings
 * it normalizes to. Not for running checks (active-checks.ts) or the per-worker state
 * (upstream-group.ts).
 */
import { z } from 'zod';

/** A duration as the rest of the schema takes it (ms, or "500ms", "5s", "2m", "1h"). */
const Duration = z.union([
  z.number().nonnegative().finite(),
  z
    .string()
    .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'expected a duration like "500ms", "5s", "2m" or a number of ms'),
]);

/** `outlier_detection = { consecutive_failures = 5, base_ejection_time = "30s", ... }` (Envoy's names). */
export const OutlierDetectionSchema = z.strictObject({
  /** Failures in a row (connect refused or timed out, reset or timeout before a response) that eject. */
  consecutive_failures: z.number().int().min(1).max(1000).optional(),
  /** First ejection's length; each further ejection of the same upstream doubles it. */
  base_ejection_time: Duration.optional(),
  /** Longest ejection. */
  max_ejection_time: Duration.optional(),
  /** Most upstreams of the route ejected at once, in percent (at least one); all when all fail. */
  max_ejection_percent: z.number().int().min(0).max(100).optional(),
});

/** A status (200) or an inclusive range ("200-299"). */
const StatusSpec = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]\d\d-[1-5]\d\d$/, 'expected a status like 200 or a range like "200-399"'),
]);

/** `health_check = { path = "/healthz", interval = "5s", ... }`. */
export const HealthCheckSchema = z.strictObject({
  /** Path (and query) of the GET sent to every upstream of the route. */
  path: z
    .string()
    .regex(/^\/[!-~]*$/, 'a health check path starts with "/" and has no spaces or control characters'),
  /** Host field of the check (default: the upstream's authority). */
  host: z
    .string()
    .regex(/^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]+$/, 'expected a host name, with an optional port')
    .optional(),
  interval: Duration.optional(),
  /** Deadline of one check (connect and answer). */
  timeout: Duration.optional(),
  /** Passed checks in a row that bring an unhealthy upstream back. */
  healthy_threshold: z.number().int().min(1).max(100).optional(),
  /** Failed checks in a row that mark a healthy upstream down. */
  unhealthy_threshold: z.number().int().min(1).max(100).optional(),
  /** Statuses that pass (default 200-399). */
  expected_statuses: z.array(StatusSpec).min(1).optional(),
});

/** `retries = { max_retries = 1, ... }` (Envoy's retry policy and retry budget). */
export const RetriesSchema = z.strictObject({
  /** Retries of one request at most (each on another upstream when there is one). */
  max_retries: z.number().int().min(0).max(10).optional(),
  /** Methods retried (default the idempotent ones: GET HEAD OPTIONS PUT DELETE TRACE). */
  methods: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a method is a token')).optional(),
  /** Retries in flight at most, as a percentage of the route's requests in flight (in every worker). */
  budget_percent: z.number().min(0).max(100).optional(),
  /** Retries in flight always allowed, whatever the percentage gives. */
  min_retry_concurrency: z.number().int().min(0).max(10_000).optional(),
});

/** Passive health of a route's upstreams (ms). */
export interface OutlierConfig {
  readonly consecutiveFailures: number;
  readonly baseEjectionTime: number;
  readonly maxEjectionTime: number;
  readonly maxEjectionPercent: number;
}

/** Active health checks of a route's upstreams (ms). */
export interface HealthCheckConfig {
  readonly path: string;
  readonly host: string | undefined;
  readonly interval: number;
  readonly timeout: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Inclusive status ranges that pass. */
  readonly expectedStatuses: readonly (readonly [number, number])[];
}

/** Retries of a route's requests. */
export interface RetryConfig {
  readonly maxRetries: number;
  /** Upper-case method names. */
  readonly methods: readonly string[];
  readonly budgetPercent: number;
  readonly minRetryConcurrency: number;
}

/** Defaults: Envoy's outlier detection (consecutive_5xx 5, 30 s, 300 s) with a 50 % cap. */
export const DEFAULT_OUTLIER: OutlierConfig = Object.freeze({
  consecutiveFailures: 5,
  baseEjectionTime: 30_000,
  maxEjectionTime: 300_000,
  maxEjectionPercent: 50,
});

/** The idempotent methods (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'];

type DurationValue = number | string | undefined;
type Ms = (value: DurationValue, fallback: number) => number;

export function normalizeOutlier(
  file: z.infer<typeof OutlierDetectionSchema> | undefined,
  ms: Ms,
): OutlierConfig | undefined {
  if (file === undefined) return undefined;
  const base = ms(file.base_ejection_time, DEFAULT_OUTLIER.baseEjectionTime);
  return {
    consecutiveFailures: file.consecutive_failures ?? DEFAULT_OUTLIER.consecutiveFailures,
    baseEjectionTime: base,
    maxEjectionTime: Math.max(base, ms(file.max_ejection_time, DEFAULT_OUTLIER.maxEjectionTime)),
    maxEjectionPercent: file.max_ejection_percent ?? DEFAULT_OUTLIER.maxEjectionPercent,
  };
}

export function normalizeHealthCheck(
  file: z.infer<typeof HealthCheckSchema> | undefined,
  ms: Ms,
): HealthCheckConfig | undefined {
  if (file === undefined) return undefined;
  return {
    path: file.path,
    host: file.host,
    interval: Math.max(100, ms(file.interval, 5_000)),
    timeout: Math.max(10, ms(file.timeout, 2_000)),
    healthyThreshold: file.healthy_threshold ?? 2,
    unhealthyThreshold: file.unhealthy_threshold ?? 3,
    expectedStatuses: (file.expected_statuses ?? ['200-399']).map((s): readonly [number, number] => {
      if (typeof s === 'number') return [s, s];
      const [lo, hi] = s.split('-').map(Number) as [number, number];
      return [Math.min(lo, hi), Math.max(lo, hi)];
    }),
  };
}

export function normalizeRetries(file: z.infer<typeof RetriesSchema> | undefined): RetryConfig | undefined {
  if (file === undefined) return undefined;
  return {
    maxRetries: file.max_retries ?? 1,
    methods: (file.methods ?? IDEMPOTENT_METHODS).map((m) => m.toUpperCase()),
    budgetPercent: file.budget_percent ?? 20,
    minRetryConcurrency: file.min_retry_concurrency ?? 3,
  };
}
