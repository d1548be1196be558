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
 */
export class DeadlineSweep<M extends SweepMember = SweepMember> {
  private readonly members = new Set<M>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private tickMs: number;
  private clockNow = 0;
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
    return this.members.size;
  }

  /**
   * Makes `member` part of the sweep and returns the absolute deadline `ms` from now on the
   * coarse clock (`now + ms + tick`: never early). The member stores it and expires it in
   * `onSweep`. `ms <= 0` (or not finite) means no deadline: returns NO_DEADLINE and leaves the
   * membership as it is.
   */
  deadline(member: M, ms: number): number {
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
    this.members.add(member);
    if (this.timer === null) this.start(true);
    return this.clockNow + ms + this.tickMs;
  }

  /** Takes `member` out of the sweep (a closed connection); stops the interval when none is left. */
  remove(member: M): void {
    if (this.members.delete(member) && this.members.size === 0) this.stop();
  }

  /** Whether `member` is in the sweep. */
  has(member: M): boolean {
    return this.members.has(member);
  }

  /** Takes every member out and stops the interval. */
  clear(): void {
    this.members.clear();
    this.stop();
  }

  /** One tick: refreshes the clock and calls every member. */
  private sweep(): void {
    const now = this.clock();
    this.clockNow = now;
    // Deleting the current entry while iterating a Set is safe; members added meanwhile are
    // visited in this pass too, which is harmless (their deadlines lie ahead).
    for (const member of this.members) {
      if (!member.onSweep(now)) this.members.delete(member);
    }
    if (this.members.size === 0) this.stop();
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
  }
}
