import { execFileSync, spawnSync } from 'node:child_process';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { escapeLabel, renderExposition, type WorkerGauges } from './exposition.js';
import { DURATION_BUCKETS, MetricsLayout, STATUS_CLASSES } from './layout.js';

const config = parseConfig(
  `
[admin]
listener = { type = "socket", value = "127.0.0.1:9901" }
[servers.web]
listener = { type = "socket", value = "127.0.0.1:18080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9001" }]
[[servers.web.routes]]
path = "/q\\"uote\\\\d/"
host = "api.example.com"
upstreams = [{ endpoint = "http://127.0.0.1:9002" }]
`,
  'test.toml',
);

function render(
  groups: (ejected: boolean) => NonNullable<WorkerGauges['groups']> = () => [],
  withWaves = true,
) {
  const layout = new MetricsLayout();
  const plan = layout.extend(config, true);
  const counts = new Float64Array(plan.size);
  const web = plan.servers.get('web')!;
  const root = web.routes.get('')!.get('/')!;
  counts[root + 1] = 7; // 2xx
  counts[root + 4] = 2; // 5xx
  counts[root + STATUS_CLASSES + 0] = 3; // <= 0.5 ms
  counts[root + STATUS_CLASSES + 5] = 4; // <= 25 ms
  counts[root + STATUS_CLASSES + DURATION_BUCKETS.length] = 2; // > 10 s
  counts[root + STATUS_CLASSES + DURATION_BUCKETS.length + 1] = 25.5; // sum
  return renderExposition({
    config,
    configVersion: '0123456789abcdef',
    generation: 3,
    counts,
    series: layout.series,
    reloads: { ok: 2, failed: 1, refused: 0, aborted: 0 },
    restarts: 1,
    workers: [
      {
        connections: 3,
        idleConnections: 2,
        pools: { web: { idle: 2, active: 1, hits: 10, misses: 4 } },
        groups: groups(true),
        ...(withWaves
          ? {
              waves: {
                collections: 2,
                openCollections: 4,
                freedBytes: 40_000_000,
                lastCallMs: 18.5,
                lastPauseMs: 9,
                retries: 1,
                misses: 0,
              },
              gc: { markCompacts: 40, pauseMs: 250, lastPauseMs: 4.5 },
            }
          : {}),
      },
      {
        connections: 1,
        pools: { web: { idle: 1, active: 0, hits: 5, misses: 1 } },
        groups: groups(true),
        ...(withWaves
          ? {
              waves: {
                collections: 1,
                openCollections: 1,
                freedBytes: 2_000_000,
                lastCallMs: 31,
                lastPauseMs: 12.5,
                retries: 2,
                misses: 1,
              },
              gc: { markCompacts: 2, pauseMs: 30, lastPauseMs: 7 },
            }
          : {}),
      },
    ],
    workersRunning: 2,
    overflow: 0,
  });
}

describe('renderExposition', () => {
  it('is parsed by a Prometheus text-format parser, with cumulative histogram buckets', () => {
    const families = parsePrometheusTextFormat(render());
    const byName = new Map(families.map((f) => [f.name, f]));
    const requests = byName.get('loch_http_requests_total')!;
    expect(requests.type).toBe('COUNTER');
    const ok = requests.metrics.find((m) => m.labels?.route === '/' && m.labels?.code === '2xx');
    expect(ok?.value).toBe('7');
    expect(ok?.labels).toEqual({ server: 'web', route: '/', code: '2xx' });
    // The route label with a quote and a backslash survives escaping.
    expect(requests.metrics.some((m) => m.labels?.route === 'api.example.com/q"uote\\d/')).toBe(true);
    // That parser folds every labelled histogram of a family into one (it follows prom2json's
    // unlabelled case), so histogram samples are read line by line; promtool checks them below.
    expect(byName.get('loch_http_request_duration_seconds')!.type).toBe('HISTOGRAM');
    const text = render();
    const sample = (series: string) =>
      new RegExp(`^${series.replace(/[{}+.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1];
    const at = (le: string) =>
      sample(`loch_http_request_duration_seconds_bucket{server="web",route="/",le="${le}"}`);
    expect([at('0.0005'), at('0.025'), at('10'), at('+Inf')]).toEqual(['3', '7', '7', '9']);
    expect(sample('loch_http_request_duration_seconds_count{server="web",route="/"}')).toBe('9');
    expect(sample('loch_http_request_duration_seconds_sum{server="web",route="/"}')).toBe('25.5');
    expect(byName.get('loch_connections_active')!.metrics[0]!.value).toBe('4');
    // A worker that reports no idle count adds none.
    expect(byName.get('loch_connections_idle')!.metrics[0]!.value).toBe('2');
    expect(byName.get('loch_pool_hits_total')!.metrics[0]).toEqual({
      labels: { server: 'web' },
      value: '15',
    });
    expect(byName.get('loch_reloads_total')!.metrics.find((m) => m.labels?.outcome === 'failed')?.value).toBe(
      '1',
    );
    // Wave collections: counts and freed bytes summed over the workers, the longest last call.
    expect(byName.get('loch_wave_collections_total')!.metrics[0]!.value).toBe('3');
    expect(byName.get('loch_wave_open_collections_total')!.metrics[0]!.value).toBe('5');
    expect(byName.get('loch_wave_collect_freed_bytes_total')!.metrics[0]!.value).toBe('42000000');
    expect(byName.get('loch_wave_collect_last_call_seconds')!.metrics[0]!.value).toBe('0.031');
    expect(byName.get('loch_wave_collect_last_pause_seconds')!.metrics[0]!.value).toBe('0.0125');
    expect(byName.get('loch_wave_collect_retries_total')!.metrics[0]!.value).toBe('3');
    expect(byName.get('loch_wave_collect_misses_total')!.metrics[0]!.value).toBe('1');
    expect(byName.get('loch_gc_mark_compacts_total')!.metrics[0]!.value).toBe('42');
    expect(byName.get('loch_gc_mark_compact_pause_seconds_total')!.metrics[0]!.value).toBe('0.28');
    expect(byName.get('loch_gc_mark_compact_last_pause_seconds')!.metrics[0]!.value).toBe('0.007');
    for (const f of families) {
      expect(f.name).toMatch(/^loch_[a-z_]+$/);
      if (f.type === 'COUNTER') expect(f.name).toMatch(/_total$/);
    }
  });

  it('passes promtool check metrics (Debian prometheus)', (context) => {
    if (spawnSync('promtool', ['--version']).status !== 0) {
      context.skip();
      return;
    }
    const out = execFileSync('promtool', ['check', 'metrics'], { input: render(), encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('reports an ejected upstream as 1 whatever the number of workers (the state is shared)', () => {
    const group = (ejected: boolean) => [
      {
        upstreams: 'u',
        retries: 0,
        retriesOverBudget: 0,
        noHealthyUpstream: 0,
        ejections: 1,
        ejected: { 'http://127.0.0.1:9001': ejected, 'http://127.0.0.1:9002': false },
      },
    ];
    const families = parsePrometheusTextFormat(render(group));
    const gauge = families.find((f) => f.name === 'loch_upstream_ejected')!;
    const value = (upstream: string) => gauge.metrics.find((m) => m.labels?.upstream === upstream)?.value;
    expect(value('http://127.0.0.1:9001')).toBe('1');
    expect(value('http://127.0.0.1:9002')).toBe('0');
  });

  it('leaves the wave-collection families out when no worker reports them (no count of 0 by construction)', () => {
    expect(render()).toContain('loch_wave_collections_total 3');
    expect(render(undefined, false)).not.toContain('loch_wave_');
    expect(render(undefined, false)).not.toContain('loch_gc_');
  });

  it('escapes label values as the format requires', () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});
