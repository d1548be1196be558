import { describe, expect, it } from 'vitest';
import { createBalancer, pickWhere } from '../routing/balancer.js';
import type { OutlierConfig, RetryConfig } from './config.js';
import { SLOT_DOWN, SLOT_UP } from './health-flags.js';
import { reportHealthTo, UpstreamGroup, upstreamGroup, upstreamHealthStats } from './upstream-group.js';

const OUTLIER: OutlierConfig = {
  consecutiveFailures: 3,
  baseEjectionTime: 1_000,
  maxEjectionTime: 5_000,
  maxEjectionPercent: 50,
};

function group(n: number, options: { outlier?: OutlierConfig; retry?: RetryConfig } = {}) {
  const clock = { now: 10_000 };
  const g = new UpstreamGroup({
    labels: Array.from({ length: n }, (_, i) => `u${i}`),
    outlier: options.outlier ?? OUTLIER,
    retry: options.retry,
    now: () => clock.now,
  });
  return { g, clock };
}

function fail(g: UpstreamGroup, i: number, times: number): void {
  for (let k = 0; k < times; k++) g.failed(i);
}

describe('UpstreamGroup passive health', () => {
  it('ejects an upstream after consecutive failures, for the base ejection time', () => {
    const { g, clock } = group(4);
    fail(g, 1, 2);
    expect(g.isUp(1)).toBe(true);
    g.failed(1);
    expect(g.isUp(1)).toBe(false);
    expect(g.ejections).toBe(1);
    clock.now += 999;
    expect(g.isUp(1)).toBe(false);
    clock.now += 1;
    expect(g.isUp(1)).toBe(true);
  });

  it('reports ejections and returns to the worker log', () => {
    const lines: string[] = [];
    reportHealthTo({ warn: (m) => lines.push(`warn ${m}`), info: (m) => lines.push(`info ${m}`) });
    try {
      const { g, clock } = group(2);
      fail(g, 1, 3);
      clock.now += 1_000;
      g.isUp(1);
      expect(lines).toEqual([
        'warn upstream u1 ejected for 1000 ms after 3 failures in a row (ejection 1 in a row)',
        'info upstream u1 back from its ejection',
      ]);
    } finally {
      reportHealthTo(null);
    }
  });

  it('a success in between resets the count', () => {
    const { g } = group(2);
    fail(g, 0, 2);
    g.succeeded(0);
    fail(g, 0, 2);
    expect(g.isUp(0)).toBe(true);
  });

  it('doubles the ejection each time it is ejected again, up to the max', () => {
    const { g, clock } = group(4);
    const lengths: number[] = [];
    for (let round = 0; round < 5; round++) {
      // Back from an ejection, one failure ejects it again.
      fail(g, 0, round === 0 ? 3 : 1);
      const start = clock.now;
      while (!g.isUp(0)) clock.now += 100;
      lengths.push(clock.now - start);
    }
    expect(lengths).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('keeps to max_ejection_percent while some upstream still works, ejects all when all fail', () => {
    const { g } = group(4);
    fail(g, 0, 3);
    fail(g, 1, 3);
    fail(g, 2, 3);
    // 50 % of 4: two ejected, the third failing one stays in use while u3 works
    expect([0, 1, 2, 3].map((i) => g.isUp(i))).toEqual([false, false, true, true]);
    fail(g, 3, 3);
    expect([0, 1, 2, 3].map((i) => g.isUp(i))).toEqual([false, false, false, false]);
    expect(g.pick(createBalancer('round_robin', [1, 1, 1, 1]))).toBe(-1);
    expect(g.noHealthyUpstream).toBe(1);
    // a retry with nowhere to go is not a 503 of its own
    expect(g.pick(createBalancer('round_robin', [1, 1, 1, 1]), 2)).toBe(-1);
    expect(g.noHealthyUpstream).toBe(1);
  });

  it('always allows one ejection (a 0 % cap of two upstreams rounds up to one)', () => {
    const { g } = group(2, { outlier: { ...OUTLIER, maxEjectionPercent: 0 } });
    fail(g, 0, 3);
    expect(g.isUp(0)).toBe(false);
  });

  it('reads the active checker verdicts from the shared table', () => {
    const flags = new Int32Array(new SharedArrayBuffer(16));
    const g = new UpstreamGroup({ labels: ['a', 'b'], slots: [2, -1], flags });
    expect(g.watches).toBe(true);
    expect(g.isUp(0)).toBe(true);
    flags[2] = SLOT_DOWN;
    expect(g.isUp(0)).toBe(false);
    expect(g.isUp(1)).toBe(true);
    expect(g.stats().activeDown).toEqual([true, false]);
    flags[2] = SLOT_UP;
    expect(g.isUp(0)).toBe(true);
  });

  it('watches nothing without outlier detection or checks', () => {
    const g = new UpstreamGroup({ labels: ['a'] });
    expect(g.watches).toBe(false);
    g.failed(0);
    expect(g.isUp(0)).toBe(true);
  });
});

describe('retry budget', () => {
  const retry: RetryConfig = { maxRetries: 2, methods: ['GET'], budgetPercent: 20, minRetryConcurrency: 2 };

  it('allows the minimum concurrency, then a percentage of requests in flight', () => {
    const { g } = group(2, { retry });
    const budget = g.budget!;
    budget.retries = 1;
    expect(g.mayRetry()).toBe(true);
    budget.retries = 2;
    expect(g.mayRetry()).toBe(false);
    expect(g.retriesOverBudget).toBe(1);
    budget.active = 20; // 20 % of 20 = 4
    budget.retries = 3;
    expect(g.mayRetry()).toBe(true);
    budget.retries = 4;
    expect(g.mayRetry()).toBe(false);
  });
});

describe('pickWhere', () => {
  it('skips upstreams that are down, in the balancer order', () => {
    const rr = createBalancer('round_robin', [1, 1, 1]);
    const up = (i: number) => i !== 1;
    expect([0, 1, 2, 3].map(() => pickWhere(rr, 3, up))).toEqual([0, 2, 0, 2]);
  });

  it('walks past a `first` balancer stuck on a down upstream', () => {
    expect(pickWhere(createBalancer('first', [1, 1]), 2, (i) => i === 1)).toBe(1);
  });

  it('avoids the failed upstream unless it is the only one up', () => {
    const rr = createBalancer('round_robin', [1, 1]);
    expect(pickWhere(rr, 2, () => true, 0)).toBe(1);
    expect(pickWhere(rr, 2, (i) => i === 0, 0)).toBe(0);
    expect(pickWhere(rr, 2, () => false, 0)).toBe(-1);
  });
});

describe('groups by identity', () => {
  it('a reload that keeps the identity keeps the group and its state; the stats list it', () => {
    const make = () => new UpstreamGroup({ labels: ['a', 'b'], outlier: OUTLIER });
    const first = upstreamGroup('id-1', make);
    fail(first, 0, 3);
    const again = upstreamGroup('id-1', make);
    expect(again).toBe(first);
    expect(again.isUp(0)).toBe(false);
    expect(upstreamGroup('id-2', make)).not.toBe(first);
    const stats = upstreamHealthStats().get('id-1')!;
    expect(stats).toMatchObject({ upstreams: ['a', 'b'], ejected: [true, false], ejections: 1 });
    expect(stats.limits).toEqual([null, null]);
  });
});
