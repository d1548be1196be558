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
    // Both clocks moved by the test: the monotonic one (`perf`), and the system clock on it
    // (`shift`: a step of the system clock).
    let perf = performance.now();
    const epoch = Date.now() - perf;
    let shift = 0;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => perf);
    const date = vi.spyOn(Date, 'now').mockImplementation(() => Math.floor(epoch + perf + shift));
    const turn = async (ms: number) => {
      await nextTurn();
      perf += ms;
    };
    // Turns within a second of turn-clock time: no Date.now().
    for (let i = 0; i < 5; i++) {
      await turn(1);
      expect(callsDuring(date, () => turnWallNow())).toBe(0);
    }
    // A check while the clocks agree reads Date.now() once and no clock but the turn's.
    await turn(WALL_CHECK_MS + 1);
    let t = 0;
    expect(callsDuring(now, () => callsDuring(date, () => (t = turnWallNow())))).toBe(1);
    expect(date).toHaveBeenCalledTimes(1);
    expect(Math.abs(t - (epoch + perf))).toBeLessThanOrEqual(1);
    // 50 ms apart: taken at the second check in a row (a long turn would be one check).
    const check = async () => {
      await turn(WALL_CHECK_MS + 1);
      return turnWallNow() - (epoch + perf);
    };
    shift = 50;
    expect(Math.abs(await check())).toBeLessThanOrEqual(1);
    expect(Math.abs((await check()) - 50)).toBeLessThanOrEqual(1);
    // Apart at one check, agreeing at the next: not taken, and the count starts again.
    shift = 45;
    expect(Math.abs((await check()) - 50)).toBeLessThanOrEqual(1);
    shift = 50;
    expect(Math.abs((await check()) - 50)).toBeLessThanOrEqual(1);
    shift = 45;
    expect(Math.abs((await check()) - 50)).toBeLessThanOrEqual(1);
    // The system clock steps an hour ahead: seen at the next check, not before.
    shift = 3_600_000;
    await turn(1);
    expect(Math.abs(turnWallNow() - (epoch + perf + 50))).toBeLessThanOrEqual(1);
    expect(Math.abs((await check()) - shift)).toBeLessThanOrEqual(1);
    // And back.
    shift = 0;
    expect(Math.abs(await check())).toBeLessThanOrEqual(1);
  });
});
