import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineSweep, NO_DEADLINE, type SweepMember } from './deadline-sweep.js';

/** A member with one deadline, the way a connection keeps its own. */
class Member implements SweepMember {
  deadline = NO_DEADLINE;
  expiredAt: number[] = [];
  sweeps = 0;
  onSweep(now: number): boolean {
    this.sweeps++;
    if (this.deadline <= now) {
      this.deadline = NO_DEADLINE;
      this.expiredAt.push(now);
    }
    return this.deadline !== NO_DEADLINE;
  }
}

describe('DeadlineSweep (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never fires a deadline early, and fires it within two ticks of it', () => {
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    const start = performance.now();
    m.deadline = sweep.deadline(m, 100);
    expect(sweep.tick).toBe(25);
    expect(m.deadline).toBe(start + 100 + 25);
    vi.advanceTimersByTime(100);
    expect(m.expiredAt).toEqual([]);
    vi.advanceTimersByTime(50);
    expect(m.expiredAt).toHaveLength(1);
    expect(m.expiredAt[0]! - start).toBeGreaterThanOrEqual(100);
    expect(m.expiredAt[0]! - start).toBeLessThanOrEqual(100 + 2 * 25);
  });

  it('never fires early when a shorter deadline shortens the running tick', () => {
    const sweep = new DeadlineSweep<Member>();
    const long = new Member();
    long.deadline = sweep.deadline(long, 60_000);
    expect(sweep.tick).toBe(1000);
    // 900 ms into a 1 s tick, the sweep's clock is still the one read at its start.
    vi.advanceTimersByTime(900);
    const armedAt = performance.now();
    const short = new Member();
    short.deadline = sweep.deadline(short, 100);
    expect(sweep.tick).toBe(25);
    vi.advanceTimersByTime(99);
    expect(short.expiredAt).toEqual([]);
    vi.advanceTimersByTime(60);
    expect(short.expiredAt).toHaveLength(1);
    expect(short.expiredAt[0]! - armedAt).toBeGreaterThanOrEqual(100);
    expect(long.expiredAt).toEqual([]);
  });

  it('uses a quarter of the shortest deadline armed as the tick, clamped to 10 ms..1 s', () => {
    const sweep = new DeadlineSweep<Member>();
    const a = new Member();
    a.deadline = sweep.deadline(a, 60_000);
    expect(sweep.tick).toBe(1000);
    const b = new Member();
    b.deadline = sweep.deadline(b, 200);
    expect(sweep.tick).toBe(50);
    const c = new Member();
    c.deadline = sweep.deadline(c, 8);
    expect(sweep.tick).toBe(10);
    // A longer deadline does not lengthen the tick while the sweep runs.
    b.deadline = sweep.deadline(b, 4000);
    expect(sweep.tick).toBe(10);
  });

  it('honours the tick bounds given', () => {
    const sweep = new DeadlineSweep<Member>({ minTick: 50, maxTick: 200 });
    const m = new Member();
    m.deadline = sweep.deadline(m, 100);
    expect(sweep.tick).toBe(50);
    sweep.clear();
    m.deadline = sweep.deadline(m, 100_000);
    expect(sweep.tick).toBe(200);
  });

  it('stops its interval when no member has a deadline armed, and starts again on the next', () => {
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    m.deadline = sweep.deadline(m, 40);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(100);
    expect(m.expiredAt).toHaveLength(1);
    expect(sweep.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // The next sweep starts from the longest tick again.
    m.deadline = sweep.deadline(m, 60_000);
    expect(sweep.tick).toBe(1000);
    expect(vi.getTimerCount()).toBe(1);
  });

  it('keeps a member that re-arms before its deadline, and adds it once', () => {
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    for (let i = 0; i < 20; i++) {
      m.deadline = sweep.deadline(m, 100);
      vi.advanceTimersByTime(50);
    }
    expect(m.expiredAt).toEqual([]);
    expect(sweep.size).toBe(1);
    expect(m.sweeps).toBeGreaterThan(0);
    vi.advanceTimersByTime(200);
    expect(m.expiredAt).toHaveLength(1);
  });

  it('remove() takes a member out: it is not called back, and the last one stops the interval', () => {
    const sweep = new DeadlineSweep<Member>();
    const a = new Member();
    const b = new Member();
    a.deadline = sweep.deadline(a, 100);
    b.deadline = sweep.deadline(b, 100);
    sweep.remove(a);
    expect(sweep.has(a)).toBe(false);
    vi.advanceTimersByTime(200);
    expect(a.sweeps).toBe(0);
    expect(a.expiredAt).toEqual([]);
    expect(b.expiredAt).toHaveLength(1);
    const c = new Member();
    c.deadline = sweep.deadline(c, 100);
    sweep.remove(c);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a member may stay without a deadline of its own (a server connection removed at close)', () => {
    const sweep = new DeadlineSweep<SweepMember>();
    let calls = 0;
    const live: SweepMember = {
      onSweep: () => {
        calls++;
        return true;
      },
    };
    sweep.deadline(live, 100);
    vi.advanceTimersByTime(1000);
    expect(calls).toBe(1000 / 25);
    sweep.remove(live);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('no deadline (0, negative, infinite) returns NO_DEADLINE and starts nothing', () => {
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    expect(sweep.deadline(m, 0)).toBe(NO_DEADLINE);
    expect(sweep.deadline(m, -5)).toBe(NO_DEADLINE);
    expect(sweep.deadline(m, NO_DEADLINE)).toBe(NO_DEADLINE);
    expect(sweep.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('now is the coarse clock: at most one tick old while running, the clock itself when stopped', () => {
    const sweep = new DeadlineSweep<Member>();
    const start = performance.now();
    vi.advanceTimersByTime(7);
    expect(sweep.now).toBe(start + 7);
    const m = new Member();
    m.deadline = sweep.deadline(m, 400);
    expect(sweep.tick).toBe(100);
    vi.advanceTimersByTime(150);
    expect(sweep.now).toBe(start + 7 + 100);
    expect(performance.now() - sweep.now).toBeLessThanOrEqual(sweep.tick);
  });

  it('a shorter tick restarts the interval on a fresh clock: the new deadline is not early, earlier ones stay late', () => {
    const sweep = new DeadlineSweep<Member>();
    const start = performance.now();
    const slow = new Member();
    slow.deadline = sweep.deadline(slow, 4000);
    vi.advanceTimersByTime(999);
    const fast = new Member();
    // No tick has run yet, but the restart reads the clock: the deadline counts from now.
    fast.deadline = sweep.deadline(fast, 40);
    expect(fast.deadline).toBe(start + 999 + 40 + 10);
    vi.advanceTimersByTime(39);
    expect(fast.expiredAt).toEqual([]);
    vi.advanceTimersByTime(21);
    expect(fast.expiredAt).toHaveLength(1);
    expect(fast.expiredAt[0]! - (start + 999)).toBeGreaterThanOrEqual(40);
    expect(slow.expiredAt).toEqual([]);
    vi.advanceTimersByTime(4000);
    expect(slow.expiredAt).toHaveLength(1);
    expect(slow.expiredAt[0]! - start).toBeGreaterThanOrEqual(4000);
  });

  it('uses the clock it is given', () => {
    let t = 1_000;
    const sweep = new DeadlineSweep<Member>({ clock: () => t });
    const m = new Member();
    m.deadline = sweep.deadline(m, 100);
    expect(m.deadline).toBe(1_000 + 100 + 25);
    t = 1_200;
    vi.advanceTimersByTime(25);
    expect(m.expiredAt).toEqual([1_200]);
  });
});
