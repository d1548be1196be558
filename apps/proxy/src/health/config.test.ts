import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { parseConfig } from '../config/load.js';

const config = (route: string, upstream = '') => `
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000"${upstream} }]
${route}
`;

describe('health and retry keys', () => {
  it('are absent by default (no ejection, no checks, no retries, no limits)', () => {
    const route = parseConfig(config('')).servers[0]!.routes[0]!;
    expect(route.outlierDetection).toBeUndefined();
    expect(route.healthCheck).toBeUndefined();
    expect(route.retries).toBeUndefined();
    expect(route.upstreams[0]!.limits).toBeUndefined();
  });

  it('fill in Envoy-like defaults', () => {
    const route = parseConfig(
      config(
        'outlier_detection = {}\nhealth_check = { path = "/healthz" }\nretries = {}',
        ', max_connections = 8',
      ),
    ).servers[0]!.routes[0]!;
    expect(route.outlierDetection).toEqual({
      consecutiveFailures: 5,
      baseEjectionTime: 30_000,
      maxEjectionTime: 300_000,
      maxEjectionPercent: 50,
    });
    expect(route.healthCheck).toEqual({
      path: '/healthz',
      host: undefined,
      interval: 5_000,
      timeout: 2_000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      expectedStatuses: [[200, 399]],
    });
    expect(route.retries).toEqual({
      maxRetries: 1,
      methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'],
      budgetPercent: 20,
      minRetryConcurrency: 3,
    });
    expect(route.upstreams[0]!.limits).toEqual({ maxConnections: 8, maxPending: 1024 });
  });

  it('take durations, statuses and ranges, methods in any case', () => {
    const route = parseConfig(
      config(`
[servers.web.routes.outlier_detection]
consecutive_failures = 3
base_ejection_time = "10s"
max_ejection_time = "1m"
max_ejection_percent = 100

[servers.web.routes.health_check]
path = "/ping?deep=1"
host = "health.internal"
interval = "2s"
timeout = "500ms"
expected_statuses = [204, "200-202"]

[servers.web.routes.retries]
max_retries = 3
methods = ["get", "POST"]
budget_percent = 50
min_retry_concurrency = 1
`),
    ).servers[0]!.routes[0]!;
    expect(route.outlierDetection).toMatchObject({ baseEjectionTime: 10_000, maxEjectionTime: 60_000 });
    expect(route.healthCheck).toMatchObject({
      host: 'health.internal',
      interval: 2_000,
      timeout: 500,
      expectedStatuses: [
        [204, 204],
        [200, 202],
      ],
    });
    expect(route.retries).toMatchObject({ maxRetries: 3, methods: ['GET', 'POST'] });
  });

  it('refuse unknown keys and bad values by name', () => {
    expect(configIssues(config('health_check = { path = "/h", every = "1s" }'))[0]!.path).toBe(
      'servers.web.routes[0].health_check',
    );
    expect(configIssues(config('health_check = { path = "h" }'))[0]!.path).toBe(
      'servers.web.routes[0].health_check.path',
    );
    expect(configIssues(config('health_check = { path = "/a b" }'))[0]!.path).toBe(
      'servers.web.routes[0].health_check.path',
    );
    expect(configIssues(config('health_check = { path = "/h", host = "a\\r\\nX: y" }'))[0]!.path).toBe(
      'servers.web.routes[0].health_check.host',
    );
    expect(configIssues(config('health_check = { path = "/h", expected_statuses = ["2xx"] }'))[0]!.path).toBe(
      'servers.web.routes[0].health_check.expected_statuses[0]',
    );
    expect(configIssues(config('outlier_detection = { max_ejection_percent = 101 }'))[0]!.path).toBe(
      'servers.web.routes[0].outlier_detection.max_ejection_percent',
    );
    expect(configIssues(config('retries = { max_retries = -1 }'))[0]!.path).toBe(
      'servers.web.routes[0].retries.max_retries',
    );
    expect(configIssues(config('', ', max_connections = 0'))[0]!.path).toBe(
      'servers.web.routes[0].upstreams[0].max_connections',
    );
  });
});
