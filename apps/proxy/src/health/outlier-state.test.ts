/**
 * Passive health shared by the workers of a process: two "workers" (two UpstreamGroups, as two
 * threads make them, with their own counters and logs) over one SharedArrayBuffer placed by the
 * main thread's OutlierSlots, in-process. Without the shared words each group counts only its
 * own failures, so every assertion that one worker sees what the other did fails.
 */
import { describe, expect, it } from 'vitest';
import type { ProxyConfig, RouteConfig } from '../config/schema.js';
import type { OutlierConfig } from './config.js';
import {
  attachHealthFlags,
  HEALTH_SLOTS,
  newHealthBuffer,
  OUTLIER_GROUPS,
  OUTLIER_UPSTREAMS,
  outlierWords,
} from './health-flags.js';
import { type OutlierSlotRef, OutlierSlots } from './outlier-slots.js';
import { MAX_EJECTION_MS } from './outlier-state.js';
import { reportHealthTo, UpstreamGroup } from './upstream-group.js';

const OUTLIER: OutlierConfig = {
  consecutiveFailures: 3,
  baseEjectionTime: 1_000,
  maxEjectionTime: 5_000,
  maxEjectionPercent: 50,
};

/** A config with one route of `n` upstreams (only what OutlierSlots reads). */
function configOf(n: number, outlier: OutlierConfig | null = OUTLIER, port = 8000): ProxyConfig {
  const route = {
    upstreams: Array.from({ length: n }, (_, i) => ({
      label: `http://127.0.0.1:${port + i}`,
      address: { kind: 'tcp', host: '127.0.0.1', port: port + i },
    })),
    outlierDetection: outlier ?? undefined,
  } as unknown as RouteConfig;
  return { servers: [{ routes: [route] }] } as unknown as ProxyConfig;
}

function placeOf(config: ProxyConfig): OutlierSlotRef | undefined {
  return config.servers[0]!.routes[0]!.outlierSlots;
}

/** A process: its shared buffer and main-thread placer, and workers made over them. */
function processWith(n: number, outlier: OutlierConfig = OUTLIER) {
  const buffer = newHealthBuffer();
  attachHealthFlags(buffer);
  const words = outlierWords()!;
  const slots = new OutlierSlots(words, () => {});
  const place = placeOf(slots.update(configOf(n, outlier)))!;
  const clock = { now: 1_764_000_000_000 }; // a Date.now() far past 2^32
  const worker = () =>
    new UpstreamGroup({
      labels: Array.from({ length: n }, (_, i) => `u${i}`),
      outlier,
      outlierPlace: {
        words: new Int32Array(buffer, HEALTH_SLOTS * 4),
        group: place.group,
        upstreams: place.upstreams,
      },
      now: () => clock.now,
    });
  return { buffer, slots, place, clock, worker };
}

describe('passive health shared by the workers of a process', () => {
  it("counts every worker's failures: the threshold is reached together and both skip the upstream", () => {
    const { worker } = processWith(4);
    const a = worker();
    const b = worker();
    a.failed(1);
    b.failed(1);
    expect(a.isUp(1)).toBe(true);
    expect(b.isUp(1)).toBe(true);
    a.failed(1);
    expect(a.isUp(1)).toBe(false);
    expect(b.isUp(1)).toBe(false);
    expect(b.stats().ejected).toEqual([false, true, false, false]);
    expect(b.stats().consecutiveFailures[1]).toBe(3);
  });

  it('one worker makes (counts and logs) each ejection and each return', () => {
    const lines: string[] = [];
    reportHealthTo({ warn: (m) => lines.push(`warn ${m}`), info: (m) => lines.push(`info ${m}`) });
    try {
      const { worker, clock } = processWith(2);
      const a = worker();
      const b = worker();
      a.failed(0);
      b.failed(0);
      b.failed(0);
      a.failed(0); // already ejected: no second ejection
      expect(a.ejections + b.ejections).toBe(1);
      expect(b.ejections).toBe(1);
      clock.now += 1_000;
      expect(a.isUp(0)).toBe(true);
      expect(b.isUp(0)).toBe(true);
      expect(lines).toEqual([
        'warn upstream u0 ejected for 1000 ms after 3 failures in a row (ejection 1 in a row)',
        'info upstream u0 back from its ejection',
      ]);
    } finally {
      reportHealthTo(null);
    }
  });

  it("a success seen by one worker ends the other's failures in a row", () => {
    const { worker } = processWith(2);
    const a = worker();
    const b = worker();
    a.failed(0);
    a.failed(0);
    b.succeeded(0);
    a.failed(0);
    a.failed(0);
    expect(a.isUp(0)).toBe(true);
    expect(b.isUp(0)).toBe(true);
  });

  it('back from an ejection, one failure on another worker ejects it again for twice as long', () => {
    const { worker, clock } = processWith(2);
    const a = worker();
    const b = worker();
    for (let k = 0; k < 3; k++) a.failed(0);
    clock.now += 1_000;
    expect(a.isUp(0)).toBe(true);
    b.failed(0);
    expect(a.isUp(0)).toBe(false);
    clock.now += 1_999;
    expect(b.isUp(0)).toBe(false);
    clock.now += 1;
    expect(b.isUp(0)).toBe(true);
  });

  it('max_ejection_percent holds across workers', () => {
    const { worker } = processWith(4); // 50 %: two at once
    const a = worker();
    const b = worker();
    for (let k = 0; k < 3; k++) a.failed(0);
    for (let k = 0; k < 3; k++) b.failed(1);
    for (let k = 0; k < 3; k++) a.failed(2);
    expect([0, 1, 2, 3].map((i) => b.isUp(i))).toEqual([false, false, true, true]);
    // Every upstream still in use failing too: then all go.
    for (let k = 0; k < 3; k++) b.failed(3);
    expect([0, 1, 2, 3].map((i) => a.isUp(i))).toEqual([false, false, false, false]);
    expect(a.ejections + b.ejections).toBe(4);
  });

  it('a replaced worker (a new group over the same words) sees the current ejection', () => {
    const { worker } = processWith(2);
    const a = worker();
    for (let k = 0; k < 3; k++) a.failed(1);
    const replacement = worker();
    expect(replacement.isUp(1)).toBe(false);
    expect(replacement.isUp(0)).toBe(true);
  });

  it('times are taken mod 2^32: an ejection across the wrap ends on time', () => {
    const { worker, clock } = processWith(2);
    clock.now = 2 ** 32 * 100 - 500; // wraps 500 ms into the ejection
    const a = worker();
    for (let k = 0; k < 3; k++) a.failed(0);
    clock.now += 999;
    expect(a.isUp(0)).toBe(false);
    clock.now += 1;
    expect(a.isUp(0)).toBe(true);
  });

  it('caps an ejection at what the times can tell apart', () => {
    const long: OutlierConfig = { ...OUTLIER, baseEjectionTime: 2 ** 32, maxEjectionTime: 2 ** 33 };
    const lines: string[] = [];
    reportHealthTo({ warn: (m) => lines.push(m), info: () => {} });
    try {
      const { worker, clock } = processWith(2, long);
      const a = worker();
      for (let k = 0; k < 3; k++) a.failed(0);
      expect(lines[0]).toContain(`ejected for ${MAX_EJECTION_MS} ms`);
      clock.now += MAX_EJECTION_MS - 1;
      expect(a.isUp(0)).toBe(false);
      clock.now += 1;
      expect(a.isUp(0)).toBe(true);
    } finally {
      reportHealthTo(null);
    }
  });
});

describe('OutlierSlots (main thread)', () => {
  it('keeps a group its place across updates, frees it once no config uses it, and gives it out again clean only when no fresh one is left', () => {
    const buffer = newHealthBuffer();
    attachHealthFlags(buffer);
    const words = outlierWords()!;
    // The passive part does not overlap the active verdicts.
    expect(words.byteOffset).toBe(HEALTH_SLOTS * 4);
    const slots = new OutlierSlots(words, () => {});
    const first = placeOf(slots.update(configOf(2)))!;
    expect(placeOf(slots.update(configOf(2)))).toBe(first);
    // Another group (other upstreams) gets other words.
    const other = placeOf(slots.update(configOf(2, OUTLIER, 9000)))!;
    expect(other.group).not.toBe(first.group);
    expect(other.upstreams.some((u) => first.upstreams.includes(u))).toBe(false);
    // Without outlier detection a route gets no place.
    expect(placeOf(slots.update(configOf(2, null)))).toBeUndefined();

    const g = new UpstreamGroup({ labels: ['a', 'b'], outlier: OUTLIER, outlierPlace: { words, ...first } });
    for (let k = 0; k < 3; k++) g.failed(0);
    expect(g.isUp(0)).toBe(false);
    slots.retain(configOf(2, OUTLIER, 9000));
    expect(slots.size).toBe(1);
    // A group made after the reload gets fresh words while there are any: the dropped group's
    // routes may still serve draining connections.
    const next = placeOf(slots.update(configOf(2, { ...OUTLIER, consecutiveFailures: 4 })))!;
    expect(next.upstreams.some((u) => first.upstreams.includes(u))).toBe(false);
    expect(next.group).not.toBe(first.group);
    // Once the fresh ones ran out, the freed words are given out again, clean.
    const rest = OUTLIER_UPSTREAMS - 6;
    expect(placeOf(slots.update(configOf(rest, OUTLIER, 100_000)))).toBeDefined();
    const again = placeOf(slots.update(configOf(2, { ...OUTLIER, consecutiveFailures: 5 })))!;
    expect([...again.upstreams].sort()).toEqual([...first.upstreams].sort());
    const fresh = new UpstreamGroup({
      labels: ['a', 'b'],
      outlier: OUTLIER,
      outlierPlace: { words, ...again },
    });
    expect(fresh.isUp(0)).toBe(true);
    expect(fresh.isUp(1)).toBe(true);
    expect(fresh.stats().consecutiveFailures).toEqual([0, 0]);
  });

  it('when the table is full a group gets no place (each worker keeps its own state) and it says so', () => {
    const buffer = newHealthBuffer();
    attachHealthFlags(buffer);
    const warnings: string[] = [];
    const slots = new OutlierSlots(outlierWords()!, (m) => warnings.push(m));
    const big = Math.floor(OUTLIER_UPSTREAMS / 2);
    expect(placeOf(slots.update(configOf(big, OUTLIER, 1)))).toBeDefined();
    expect(placeOf(slots.update(configOf(big, OUTLIER, 100_000)))).toBeDefined();
    expect(placeOf(slots.update(configOf(1, OUTLIER, 200_000)))).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${OUTLIER_GROUPS} groups`);
  });
});
