import { afterEach, describe, expect, it, vi } from 'vitest';
import { turnNow } from './turn-clock.js';

/** Resolves after the microtasks queued so far (and those they queue) have run. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('turnNow', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('reads performance.now() once per turn and again in the next turn', async () => {
    await nextTurn();
    const now = vi.spyOn(performance, 'now');
    const a = turnNow();
    const b = turnNow();
    expect(b).toBe(a);
    expect(now).toHaveBeenCalledTimes(1);
    await nextTurn();
    turnNow();
    turnNow();
    expect(now).toHaveBeenCalledTimes(2);
  });

  it('holds for the microtasks queued before its read and expires right after them', async () => {
    await nextTurn();
    const now = vi.spyOn(performance, 'now');
    const seen: number[] = [];
    // A job queued before the first read runs before the expiry (one FIFO queue): it sees the
    // cached time; the await below resumes after the expiry, so the next read is a new one.
    const before = Promise.resolve().then(() => {
      seen.push(turnNow(), now.mock.calls.length);
    });
    const a = turnNow();
    await before;
    expect(seen).toEqual([a, 1]);
    turnNow();
    expect(now).toHaveBeenCalledTimes(2);
  });

  it('queues no queueMicrotask job (an AsyncResource and a bound function each in Node 20)', async () => {
    await nextTurn();
    const queue = vi.spyOn(globalThis, 'queueMicrotask');
    for (let i = 0; i < 3; i++) {
      turnNow();
      await nextTurn();
    }
    expect(queue).toHaveBeenCalledTimes(0);
  });
});
