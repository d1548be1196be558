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

  it('re-arming a member already in: the same deadline keeps the tick, a shorter one shortens it', () => {
    // deadline()'s fast path takes the first two arms below; the third must not take it.
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    m.deadline = sweep.deadline(m, 4000);
    expect(sweep.tick).toBe(1000);
    vi.advanceTimersByTime(1000);
    const now = performance.now();
    m.deadline = sweep.deadline(m, 4000);
    expect(m.deadline).toBe(now + 4000 + 1000);
    expect(sweep.tick).toBe(1000);
    m.deadline = sweep.deadline(m, 60_000);
    expect(sweep.tick).toBe(1000);
    // 3,999 ms has a tick of 999: the member is in, but the tick must change.
    m.deadline = sweep.deadline(m, 3999);
    expect(sweep.tick).toBe(999);
    expect(sweep.size).toBe(1);
    const armedAt = performance.now();
    vi.advanceTimersByTime(3999 + 2 * 999);
    expect(m.expiredAt).toHaveLength(1);
    expect(m.expiredAt[0]! - armedAt).toBeGreaterThanOrEqual(3999);
  });

  it("re-arming after the sweep stopped starts it again at the deadline's tick", () => {
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    m.deadline = sweep.deadline(m, 100);
    expect(sweep.tick).toBe(25);
    sweep.remove(m);
    expect(vi.getTimerCount()).toBe(0);
    // Stopped: no fast path, whatever was armed before.
    const other = new Member();
    other.deadline = sweep.deadline(other, 60_000);
    expect(sweep.tick).toBe(1000);
    m.deadline = sweep.deadline(m, 100);
    expect(sweep.tick).toBe(25);
    expect(m.deadline).toBe(performance.now() + 100 + 25);
    expect(sweep.deadline(m, 0)).toBe(NO_DEADLINE);
    expect(sweep.deadline(m, NO_DEADLINE)).toBe(NO_DEADLINE);
    expect(sweep.deadline(m, Number.NaN)).toBe(NO_DEADLINE);
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

  it('arming a member already in makes no Set operation (no hashing per arm)', () => {
    const sweep = new DeadlineSweep<Member>();
    const members = Array.from({ length: 8 }, () => new Member());
    for (const m of members) m.deadline = sweep.deadline(m, 1000);
    // Counted by plain wrappers, only around the arming (a spy or the fake timers use Sets).
    const proto = Set.prototype;
    const { add, has, delete: del } = proto;
    let ops = 0;
    proto.add = function (this: Set<unknown>, v: unknown) {
      ops++;
      return add.call(this, v);
    };
    proto.has = function (this: Set<unknown>, v: unknown) {
      ops++;
      return has.call(this, v);
    };
    proto.delete = function (this: Set<unknown>, v: unknown) {
      ops++;
      return del.call(this, v);
    };
    try {
      for (let i = 0; i < 100; i++) for (const m of members) m.deadline = sweep.deadline(m, 1000);
    } finally {
      proto.add = add;
      proto.has = has;
      proto.delete = del;
    }
    expect(ops).toBe(0);
    expect(sweep.size).toBe(8);
  });

  it('a deadline fires once, never after it is disarmed, and a re-arm moves it', () => {
    const sweep = new DeadlineSweep<Member>();
    const m = new Member();
    const keep = new Member();
    keep.deadline = sweep.deadline(keep, 60_000);
    const start = performance.now();
    m.deadline = sweep.deadline(m, 100);
    vi.advanceTimersByTime(60);
    m.deadline = NO_DEADLINE; // disarmed: stays out of the way until armed again
    vi.advanceTimersByTime(500);
    expect(m.expiredAt).toEqual([]);
    const rearmedAt = performance.now();
    m.deadline = sweep.deadline(m, 100);
    vi.advanceTimersByTime(60);
    m.deadline = sweep.deadline(m, 100); // moved 60 ms on
    vi.advanceTimersByTime(90);
    expect(m.expiredAt).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(m.expiredAt).toHaveLength(1);
    expect(m.expiredAt[0]! - rearmedAt).toBeGreaterThanOrEqual(160);
    vi.advanceTimersByTime(2000);
    expect(m.expiredAt).toHaveLength(1);
    expect(rearmedAt - start).toBeGreaterThan(0);
  });

  it('removed and re-armed many times between ticks, a member is in once and swept once per tick', () => {
    const sweep = new DeadlineSweep<Member>();
    const other = new Member();
    other.deadline = sweep.deadline(other, 60_000);
    const m = new Member();
    for (let i = 0; i < 1000; i++) {
      m.deadline = sweep.deadline(m, 100);
      sweep.remove(m);
      expect(sweep.has(m)).toBe(false);
    }
    m.deadline = sweep.deadline(m, 100);
    expect(sweep.size).toBe(2);
    expect(sweep.has(m)).toBe(true);
    vi.advanceTimersByTime(25);
    expect(m.sweeps).toBe(1);
    expect(other.sweeps).toBe(1);
    vi.advanceTimersByTime(200);
    expect(m.expiredAt).toHaveLength(1);
    expect(sweep.size).toBe(1);
    expect(sweep.has(other)).toBe(true);
  });

  it('members removed by another member during a tick are not called back; the remover stays', () => {
    const sweep = new DeadlineSweep<SweepMember>();
    const calls: string[] = [];
    const member = (name: string, onSweep: () => boolean): SweepMember => ({
      onSweep: () => {
        calls.push(name);
        return onSweep();
      },
    });
    const before = member('before', () => true);
    const after = member('after', () => true);
    const remover = member('remover', () => {
      sweep.remove(before);
      sweep.remove(after);
      return true;
    });
    sweep.deadline(before, 100);
    sweep.deadline(remover, 100);
    sweep.deadline(after, 100);
    vi.advanceTimersByTime(25);
    expect(calls).toEqual(['before', 'remover']);
    expect(sweep.size).toBe(1);
    expect(sweep.has(remover)).toBe(true);
    expect(sweep.has(before)).toBe(false);
    vi.advanceTimersByTime(25);
    expect(calls).toEqual(['before', 'remover', 'remover']);
    sweep.remove(remover);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a member that removes itself in onSweep leaves; one that re-arms itself after that stays', () => {
    const sweep = new DeadlineSweep<SweepMember>();
    let rearm = false;
    let calls = 0;
    const self: SweepMember = {
      onSweep: () => {
        calls++;
        sweep.remove(self);
        if (rearm) sweep.deadline(self, 100);
        return true;
      },
    };
    const other = new Member();
    other.deadline = sweep.deadline(other, 60_000);
    sweep.deadline(self, 100);
    vi.advanceTimersByTime(25);
    expect(calls).toBe(1);
    expect(sweep.has(self)).toBe(false);
    expect(sweep.size).toBe(1);
    rearm = true;
    sweep.deadline(self, 100);
    vi.advanceTimersByTime(25);
    // Re-armed during its own call: visited again at the end of that pass, and in after it.
    expect(sweep.has(self)).toBe(true);
    expect(sweep.size).toBe(2);
    const seen = calls;
    vi.advanceTimersByTime(25);
    expect(calls).toBeGreaterThan(seen);
    expect(sweep.has(other)).toBe(true);
  });

  it('a member that throws in onSweep stays, and so do the members after it', () => {
    const sweep = new DeadlineSweep<SweepMember>();
    const failing: SweepMember = {
      onSweep: () => {
        throw new Error('boom');
      },
    };
    const gone = new Member();
    const next = new Member();
    gone.deadline = sweep.deadline(gone, 40); // expires at the first tick, before the throw
    sweep.deadline(failing, 40);
    next.deadline = sweep.deadline(next, 60_000);
    expect(() => vi.advanceTimersByTime(60)).toThrow('boom');
    expect(sweep.has(gone)).toBe(false);
    expect(sweep.has(failing)).toBe(true);
    expect(sweep.has(next)).toBe(true);
    expect(sweep.size).toBe(2);
    sweep.remove(failing);
    vi.advanceTimersByTime(20);
    expect(next.sweeps).toBeGreaterThan(0);
    sweep.clear();
    expect(sweep.size).toBe(0);
    expect(sweep.has(next)).toBe(false);
  });

  it('a member is in one sweep at a time: arming it in a second throws a TypeError', () => {
    const one = new DeadlineSweep<Member>();
    const two = new DeadlineSweep<Member>();
    const m = new Member();
    m.deadline = one.deadline(m, 100);
    expect(() => two.deadline(m, 100)).toThrow(TypeError);
    expect(two.size).toBe(0);
    one.remove(m);
    m.deadline = two.deadline(m, 100);
    expect(two.has(m)).toBe(true);
    expect(one.has(m)).toBe(false);
    two.clear();
  });
});
