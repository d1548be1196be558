import { afterEach, describe, expect, it, vi } from 'vitest';
import { turnNow } from './turn-clock.js';

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
