import { afterEach, describe, expect, it, vi } from 'vitest';
import { turnNow, turnWallNow, WALL_CHECK_MS } from './turn-clock.js';

/** Resolves after the microtasks queued so far (and those they queue) have run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Calls of a spied function made by `f` alone: counted around the synchronous call, so calls the
 * test runner makes between turns (its own clock reads, its own microtasks) are not counted.
 */
function callsDuring(spy: { mock: { calls: unknown[] } }, f: () => unknown): number {
  const before = spy.mock.calls.length;
  f();
  return spy.mock.calls.length - before;
}

describe('turnNow', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('reads performance.now() once per turn and again in the next turn', async () => {
    await nextTurn();
    const now = vi.spyOn(performance, 'now');
    let a = 0;
    let b = 0;
    expect(callsDuring(now, () => (a = turnNow()))).toBe(1);
    expect(callsDuring(now, () => (b = turnNow()))).toBe(0);
    expect(b).toBe(a);
    await nextTurn();
    expect(callsDuring(now, () => turnNow())).toBe(1);
    expect(callsDuring(now, () => turnNow())).toBe(0);
  });

  it('holds for the microtasks queued before its read and expires right after them', async () => {
    await nextTurn();
    const now = vi.spyOn(performance, 'now');
    const seen: number[] = [];
    // A job queued before the first read runs before the expiry (one FIFO queue): it sees the
    // cached time without a read; the await below resumes after the expiry: a new read.
    const before = Promise.resolve().then(() => {
      let t = 0;
      seen.push(
        callsDuring(now, () => (t = turnNow())),
        t,
      );
    });
    const a = turnNow();
    await before;
    expect(seen).toEqual([0, a]);
    expect(callsDuring(now, () => turnNow())).toBe(1);
  });

  it('queues no queueMicrotask job (an AsyncResource and a bound function each in Node 20)', async () => {
    const queue = vi.spyOn(globalThis, 'queueMicrotask');
    for (let i = 0; i < 3; i++) {
      await nextTurn();
      expect(callsDuring(queue, () => turnNow())).toBe(0);
    }
  });
});

describe('turnWallNow', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("is the turn's reading on Date.now()'s scale, reading no clock of its own within a turn", async () => {
    await nextTurn();
    const before = Date.now();
    const t = turnWallNow();
    const after = Date.now();
    expect(Number.isInteger(t)).toBe(true);
    // The turn began before `before`; within 1 ms of Date.now() at the turn's start.
    expect(t).toBeGreaterThanOrEqual(before - 2);
    expect(t).toBeLessThanOrEqual(after + 1);
    const date = vi.spyOn(Date, 'now');
    const now = vi.spyOn(performance, 'now');
    expect(callsDuring(date, () => turnWallNow())).toBe(0);
    expect(callsDuring(now, () => turnWallNow())).toBe(0);
    expect(turnWallNow()).toBe(t);
  });

  it('reads Date.now() at most once a WALL_CHECK_MS, and follows a step of the system clock at that read', async () => {
    await nextTurn();
    turnWallNow();
    const real = Date.now.bind(Date);
    const date = vi.spyOn(Date, 'now');
    let perf = performance.now();
    vi.spyOn(performance, 'now').mockImplementation(() => perf);
    // Turns within a second of turn-clock time: no Date.now().
    for (let i = 0; i < 5; i++) {
      await nextTurn();
      perf += 1;
      expect(callsDuring(date, () => turnWallNow())).toBe(0);
    }
    // The system clock steps an hour ahead: seen at the next check, not before.
    date.mockImplementation(() => real() + 3_600_000);
    await nextTurn();
    perf += 1;
    const stale = turnWallNow();
    expect(stale).toBeLessThan(real() + 60_000);
    await nextTurn();
    perf += WALL_CHECK_MS;
    let stepped = 0;
    expect(callsDuring(date, () => (stepped = turnWallNow()))).toBe(1);
    expect(Math.abs(stepped - (real() + 3_600_000))).toBeLessThanOrEqual(2);
    // And back: the offset is Date.now()'s again after the next check.
    date.mockImplementation(real);
    await nextTurn();
    perf += WALL_CHECK_MS;
    expect(Math.abs(turnWallNow() - real())).toBeLessThanOrEqual(2);
  });
});
