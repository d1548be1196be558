/**
 * One coarse-clock deadline sweep for many connections: instead of a timer per read and write,
 * members arm a deadline number and one unref'd interval calls each member back, like nginx's
 * timer tree walked once per tick. Arming a deadline costs a few field reads and writes and no
 * allocation. Not a precise timer: deadlines fire between `ms` and `ms` plus two ticks late;
 * use `setTimeout` (or `sleep`/`timeout`) where a late timer is wrong.
 */

/** No deadline armed: never reached. */
export const NO_DEADLINE = Number.POSITIVE_INFINITY;

/**
 * deadline()'s fast-path bound for a running sweep at tick `tickMs`: the shortest `ms` whose
 * tick (`floor(ms / 4)` clamped to minTick..maxTick) is at least `tickMs`. At minTick every
 * positive `ms` is.
 */
function steadyFrom(tickMs: number, minTick: number): number {
  return tickMs <= minTick ? Number.MIN_VALUE : 4 * Math.ceil(tickMs);
}

/**
 * A connection (or anything with deadlines) that a DeadlineSweep calls back. The member keeps
 * its own deadlines (the numbers `deadline()` returned) and compares them with `now`.
 */
export interface SweepMember {
  /**
   * Called once per tick with the coarse clock: expire whatever deadline is `<= now`, and return
   * whether a deadline is still armed. `false` takes the member out of the sweep (the next
   * `deadline()` puts it back). Should not throw: a throw is an uncaught exception of the timer,
   * and the rest of that tick's members are not swept. May call `remove()` and `deadline()`.
   */
  onSweep(now: number): boolean;
  /**
   * The sweep's own bookkeeping, written only by the DeadlineSweep: where the member sits in its
   * list, -1 (or absent) while in none. Declare it as `sweepSlot = -1` in the member's class so
   * that arming never changes the member's shape; left out, the first `deadline()` adds it. A
   * member is in one sweep at a time.
   */
  sweepSlot?: number;
}

/** DeadlineSweep options (milliseconds). */
export interface DeadlineSweepOptions {
  /** Shortest tick (default 10). */
  readonly minTick?: number;
  /** Longest tick, and the tick before any deadline was armed (default 1000). */
  readonly maxTick?: number;
  /** The clock (default `performance.now`); read once per tick and when the sweep starts. */
  readonly clock?: () => number;
}

/**
 * The deadlines of a set of members, checked by one unref'd interval. A member joins when it
 * arms a deadline (`deadline(member, ms)`) and leaves at the first tick where its `onSweep`
 * returns false, or at `remove(member)`, so a busy keep-alive connection that re-arms on every
 * read stays a member and is added once. The tick is a quarter of the shortest deadline armed
 * since the sweep started, clamped to `minTick..maxTick`; the interval stops when no member is
 * left (the process can exit), and the next sweep starts again from `maxTick`.
 *
 * The clock is coarse: `now` is the clock as of the last tick (or the sweep's start), at most
 * one tick old while the sweep runs. A deadline is `now + ms + tick`, so it never fires early.
 *
 * Members are kept in a plain array, each knowing its index (`sweepSlot`): arming a deadline
 * for a member already in is one field read and one element compare, no hashing (a `Set` made
 * every arm a hash lookup, two or three per request). `remove()` leaves a hole that the next
 * tick closes while it walks the list.
 */
export class DeadlineSweep<M extends SweepMember = SweepMember> {
  /** The members in [0, list.length), and holes (null) left by remove() until the next tick. */
  private list: (M | null)[] = [];
  /** Members in the list (holes not counted). */
  private count = 0;
  /** Holes in the list. */
  private holes = 0;
  /** The index sweep() is at while it runs, else -1: remove() must not compact under it. */
  private walking = -1;
  private timer: ReturnType<typeof setInterval> | null = null;
  private tickMs: number;
  private clockNow = 0;
  /**
   * While the interval runs, the shortest `ms` whose tick is no shorter than the current one
   * (deadline()'s fast path: arming it changes no tick); NO_DEADLINE while stopped. The tick only
   * shortens while the interval runs, so a bound set at an arm stays true until stop().
   */
  private steadyFrom = NO_DEADLINE;
  private readonly minTick: number;
  private readonly maxTick: number;
  private readonly clock: () => number;
  private readonly onTick = (): void => this.sweep();

  constructor(options: DeadlineSweepOptions = {}) {
    this.minTick = Math.max(1, options.minTick ?? 10);
    this.maxTick = Math.max(this.minTick, options.maxTick ?? 1000);
    this.clock = options.clock ?? (() => performance.now());
    this.tickMs = this.maxTick;
  }

  /**
   * The coarse clock: while the sweep runs, the clock as of the last tick (at most one tick
   * old); while it is stopped, the clock read now. Compare deadlines with it, not with the clock.
   */
  get now(): number {
    return this.timer === null ? this.clock() : this.clockNow;
  }

  /** The current tick (ms): how often members are swept. */
  get tick(): number {
    return this.tickMs;
  }

  /** Members in the sweep. */
  get size(): number {
    return this.count;
  }

  /**
   * Makes `member` part of the sweep and returns the absolute deadline `ms` from now on the
   * coarse clock (`now + ms + tick`: never early). The member stores it and expires it in
   * `onSweep`. `ms <= 0` (or not finite) means no deadline: returns NO_DEADLINE and leaves the
   * membership as it is. Throws a TypeError for a member in another sweep.
   */
  deadline(member: M, ms: number): number {
    // The steady case in one place (a keep-alive connection re-arming its idle or call deadline
    // on every request): the member is in, the interval runs and `ms`'s tick is no shorter than
    // the current one, so nothing changes but the number returned. Small enough for callers to
    // inline; arm() does the rest.
    const slot = member.sweepSlot;
    if (
      ms >= this.steadyFrom &&
      ms < NO_DEADLINE &&
      slot !== undefined &&
      slot >= 0 &&
      this.list[slot] === member
    )
      return this.clockNow + ms + this.tickMs;
    return this.arm(member, ms);
  }

  /** deadline() for a member not in yet, a tick to shorten, a stopped interval or no deadline. */
  private arm(member: M, ms: number): number {
    if (!(ms > 0) || ms === NO_DEADLINE) return NO_DEADLINE;
    const tick = Math.max(this.minTick, Math.min(this.maxTick, Math.floor(ms / 4)));
    if (tick < this.tickMs) {
      this.tickMs = tick;
      if (this.timer !== null) {
        // Restart at the shorter period with a fresh clock: the last tick's clock may be up to
        // one old (long) tick stale, and the deadline below adds only the new (short) tick, so
        // a stale clock would fire it early. Deadlines armed before are absolute numbers and
        // stay as they were.
        clearInterval(this.timer);
        this.start(true);
      }
    }
    const slot = member.sweepSlot;
    if (slot === undefined || slot < 0) this.add(member);
    else if (this.list[slot] !== member) {
      // A slot is -1 whenever the member is in no list: this one is another sweep's.
      throw new TypeError('a SweepMember can be in one DeadlineSweep at a time');
    }
    if (this.timer === null) this.start(true);
    this.steadyFrom = steadyFrom(this.tickMs, this.minTick);
    return this.clockNow + ms + this.tickMs;
  }

  /** Takes `member` out of the sweep (a closed connection); stops the interval when none is left. */
  remove(member: M): void {
    if (!this.has(member)) return;
    this.list[member.sweepSlot!] = null;
    member.sweepSlot = -1;
    this.holes++;
    this.count--;
    if (this.count === 0) {
      if (this.walking < 0) this.empty();
      this.stop();
    } else if (this.walking < 0 && this.holes > 64 && this.holes > this.count) {
      // Members removed and re-armed between ticks: do not let the holes pile up.
      this.compact();
    }
  }

  /** Whether `member` is in the sweep. */
  has(member: M): boolean {
    const slot = member.sweepSlot;
    return slot !== undefined && slot >= 0 && this.list[slot] === member;
  }

  /** Takes every member out and stops the interval. */
  clear(): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const member = list[i];
      if (member != null) {
        member.sweepSlot = -1;
        list[i] = null;
      }
    }
    this.holes += this.count;
    this.count = 0;
    if (this.walking < 0) this.empty();
    this.stop();
  }

  private add(member: M): void {
    member.sweepSlot = this.list.length;
    this.list.push(member);
    this.count++;
  }

  /** No member left and no walk running: the list starts over. */
  private empty(): void {
    this.list.length = 0;
    this.holes = 0;
  }

  /** Closes the holes (not while sweep() walks the list). */
  private compact(): void {
    const list = this.list;
    let kept = 0;
    for (let i = 0; i < list.length; i++) {
      const member = list[i];
      if (member == null) continue;
      member.sweepSlot = kept;
      list[kept++] = member;
    }
    list.length = kept;
    this.holes = 0;
  }

  /**
   * One tick: refreshes the clock and calls every member that was in at its start, closing the
   * holes as it goes. A member armed meanwhile (by a member's onSweep) is kept for the next tick
   * without a call now (so a member that removes and re-arms itself cannot keep a tick going);
   * one removed meanwhile is a hole, skipped.
   */
  private sweep(): void {
    const now = this.clock();
    this.clockNow = now;
    const list = this.list;
    const end = list.length;
    let kept = 0;
    for (let i = 0; i < end; i++) {
      const member = list[i];
      if (member == null) continue;
      this.walking = i;
      let stays: boolean;
      try {
        stays = member.onSweep(now);
      } catch (e) {
        // Not swept this tick: the members after it, as before. Close the holes behind.
        this.walking = -1;
        this.closeWalk(kept, i);
        throw e;
      }
      // onSweep may have removed the member (a hole now) or, removed, re-armed it (at the end).
      if (list[i] !== member) continue;
      if (stays) {
        member.sweepSlot = kept;
        list[kept++] = member;
      } else {
        member.sweepSlot = -1;
        this.count--;
      }
    }
    this.walking = -1;
    this.closeWalk(kept, end);
  }

  /** Ends a walk stopped at `at`: members [0, kept) are in place, [at, length) not yet moved. */
  private closeWalk(kept: number, at: number): void {
    const list = this.list;
    for (let i = at; i < list.length; i++) {
      const member = list[i];
      if (member == null) continue;
      member.sweepSlot = kept;
      list[kept++] = member;
    }
    list.length = kept;
    this.holes = 0;
    if (this.count === 0) this.stop();
  }

  private start(readClock: boolean): void {
    if (readClock) this.clockNow = this.clock();
    this.timer = setInterval(this.onTick, this.tickMs);
    this.timer.unref?.();
  }

  private stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.tickMs = this.maxTick;
    this.steadyFrom = NO_DEADLINE;
  }
}
