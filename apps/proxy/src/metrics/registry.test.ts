import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { MetricsRegistry } from './registry.js';

const config = parseConfig(
  `
[admin]
listener = { type = "socket", value = "127.0.0.1:9901" }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:18080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
`,
  'test.toml',
);

describe('MetricsRegistry', () => {
  it('sums every worker buffer slot by slot', () => {
    const registry = new MetricsRegistry(config, 2);
    new Float64Array(registry.buffers[0]!)[10] = 3;
    new Float64Array(registry.buffers[1]!)[10] = 4;
    expect(registry.sum()[10]).toBe(7);
    expect(registry.share().plan.enabled).toBe(true);
  });

  it('keeps a value a worker reports monotonic when the worker or its pool starts again from 0', () => {
    const registry = new MetricsRegistry(config, 2);
    expect(registry.monotonic(0, 'web hits', 5)).toBe(5);
    expect(registry.monotonic(0, 'web hits', 9)).toBe(9);
    // Replaced: counts from 0 again, on top of the last value seen.
    expect(registry.monotonic(0, 'web hits', 2)).toBe(11);
    expect(registry.monotonic(0, 'web hits', 4)).toBe(13);
    // Another worker and another series are their own.
    expect(registry.monotonic(1, 'web hits', 1)).toBe(1);
    expect(registry.monotonic(0, 'web misses', 1)).toBe(1);
  });

  it('turns recording off for a config without [admin], and on again with it', () => {
    const { admin: _admin, ...withoutAdmin } = config;
    const registry = new MetricsRegistry(withoutAdmin, 1);
    expect(registry.share().plan.enabled).toBe(false);
    expect(registry.plan(config).enabled).toBe(true);
  });
});
