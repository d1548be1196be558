/**
 * The retry budget held for the process: two "workers" (two UpstreamGroups, as two threads make
 * them, each writing its own block) over one SharedArrayBuffer placed by the main thread's
 * RetrySlots, in-process. With per-worker budgets each worker decides on its own counts, so
 * every assertion that one worker's requests or retries count in the other's decision fails.
 */
import { describe, expect, it } from 'vitest';
import type { ProxyConfig, RouteConfig } from '../config/schema.js';
import type { RetryConfig } from './config.js';
import { attachHealthFlags, newHealthBuffer, RETRY_GROUPS, retryBlock, retryWords } from './health-flags.js';
import { RetrySlots } from './retry-slots.js';
import { UpstreamGroup } from './upstream-group.js';

const RETRY: RetryConfig = { maxRetries: 1, methods: ['GET'], budgetPercent: 20, minRetryConcurrency: 2 };

/** A config with one route of two upstreams from `port` (what RetrySlots and routeGroup read). */
function configOf(port = 8000, retries: RetryConfig | null = RETRY): ProxyConfig {
  const route = {
    upstreams: [0, 1].map((i) => ({
      label: `http://127.0.0.1:${port + i}`,
      address: { kind: 'tcp', host: '127.0.0.1', port: port + i },
    })),
    retries: retries ?? undefined,
  } as unknown as RouteConfig;
  return { servers: [{ routes: [route] }] } as unknown as ProxyConfig;
}

const slotOf = (config: ProxyConfig): number | undefined => config.servers[0]!.routes[0]!.retrySlot;

/** A process of `workers` workers: its buffer, the main thread's placer, and a group per worker. */
function processOf(workers: number) {
  const buffer = newHealthBuffer(workers);
  attachHealthFlags(buffer);
  const slots = new RetrySlots(retryWords()!, () => {});
  const slot = slotOf(slots.update(configOf()))!;
  const worker = (index: number) => {
    attachHealthFlags(buffer, index);
    return new UpstreamGroup({
      labels: ['a', 'b'],
      retry: RETRY,
      retryPlace: { words: retryWords()!, group: slot, worker: retryBlock() },
    });
  };
  return { buffer, slots, worker };
}

describe('retry budget shared by the workers', () => {
  it("counts every worker's retries in flight: N workers do not allow N times the minimum", () => {
    const { worker } = processOf(2);
    const a = worker(0);
    const b = worker(1);
    a.budget!.retryStarted();
    a.budget!.enter();
    expect(b.mayRetry()).toBe(true); // 1 retry in flight < min 2
    a.budget!.retryStarted();
    a.budget!.enter();
    // Two retries in flight in worker 0: worker 1, with none of its own, is over the budget too.
    expect(b.mayRetry()).toBe(false);
    expect(b.retriesOverBudget).toBe(1);
    a.budget!.retryEnded();
    a.budget!.leave();
    expect(b.mayRetry()).toBe(true);
  });

  it("counts every worker's requests in flight toward the percentage", () => {
    const { worker } = processOf(2);
    const a = worker(0);
    const b = worker(1);
    for (let i = 0; i < 20; i++) a.budget!.enter(); // 20 % of 20 = 4
    for (let i = 0; i < 3; i++) {
      b.budget!.retryStarted();
      b.budget!.enter();
    }
    // 23 in flight in the process: 4.6 retries allowed, 3 out.
    expect(b.mayRetry()).toBe(true);
    b.budget!.retryStarted();
    b.budget!.enter();
    expect(a.mayRetry()).toBe(true); // 4 < 24 * 0.2 = 4.8
    b.budget!.retryStarted();
    b.budget!.enter();
    expect(a.mayRetry()).toBe(false); // 5 >= 5
  });

  it('a worker replacing a dead one starts its block at zero', () => {
    const { worker } = processOf(2);
    const a = worker(0);
    const dead = worker(1);
    dead.budget!.retryStarted();
    dead.budget!.retryStarted();
    expect(a.mayRetry()).toBe(false);
    worker(1); // the replacement attaches with the same index
    expect(a.mayRetry()).toBe(true);
  });

  it('without a place each worker keeps its own budget', () => {
    const a = new UpstreamGroup({ labels: ['a'], retry: RETRY });
    const b = new UpstreamGroup({ labels: ['a'], retry: RETRY });
    a.budget!.retryStarted();
    a.budget!.retryStarted();
    expect(a.mayRetry()).toBe(false);
    expect(b.mayRetry()).toBe(true);
  });
});

describe('RetrySlots', () => {
  it('keeps a group its slot across updates, frees it once unused, and gives it out again clean only when the never-used ones ran out', () => {
    const { slots } = processOf(2);
    const words = retryWords()!;
    const first = slotOf(slots.update(configOf()))!;
    expect(slotOf(slots.update(configOf()))).toBe(first);
    expect(slotOf(slots.update(configOf(9000)))).not.toBe(first);
    expect(slotOf(slots.update(configOf(8000, null)))).toBeUndefined();
    slots.retain(configOf(9000));
    expect(slots.size).toBe(1);
    words[first * 2] = 7; // a request of the dropped group still in flight in worker 0
    // The next new group gets a never-used slot, not the freed one.
    expect(slotOf(slots.update(configOf(10_000)))).toBe(2);
    for (let port = 11_000; slots.size < RETRY_GROUPS - 1; port += 10) slots.update(configOf(port));
    const reused = slotOf(slots.update(configOf(50_000)));
    expect(reused).toBe(first);
    expect(words[first * 2]).toBe(0);
  });

  it('when every slot is used a group gets none (its workers keep their own budgets) and it says so', () => {
    const buffer = newHealthBuffer(1);
    attachHealthFlags(buffer);
    const warnings: string[] = [];
    const slots = new RetrySlots(retryWords()!, (m) => warnings.push(m));
    for (let i = 0; i < RETRY_GROUPS; i++) expect(slotOf(slots.update(configOf(1000 + i * 2)))).toBe(i);
    expect(slotOf(slots.update(configOf(60_000)))).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${RETRY_GROUPS} route groups`);
  });
});
