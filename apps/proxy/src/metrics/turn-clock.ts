/**
 * The metrics' and the logs' clock: `performance.now()` read once per turn of the event loop's
 * microtask queue and shared by every request that starts or ends in that turn, the way nginx
 * caches its time once per event-loop iteration ($request_time, $time_iso8601). On Node 20 each
 * `performance.now()` allocates (it builds an hrtime array internally); read per request it
 * would be two allocations per request for metrics alone. Here it is one read and one queued
 * microtask per turn, however many requests that turn serves, and a read in between allocates
 * nothing (the cached number is returned as it is).
 *
 * The wall clock (turnWallNow, the access log's time) is the same reading moved to Date.now()'s
 * scale: no clock read of its own per line.
 *
 * Precision: a duration is measured between the turns in which loch learned of the request and
 * of its answer, which is all JavaScript can observe of them anyway. Not for deadlines
 * (the runtime's DeadlineSweep has its own coarse clock).
 */

/**
 * The Performance object, read once: `performance` is a lazy accessor on Node's global object
 * (a getter call per use, ~50 instructions; core.ts reads it once too).
 */
const clock = performance;

/**
 * This turn's reading, or -1 (none yet). A `let`: the heap number it holds is returned as it is
 * by every read in the turn (a double from a Float64Array would be boxed anew by each read that
 * V8 does not inline: 16 bytes each).
 */
let cached = -1;
const expire = (): void => {
  cached = -1;
};
/**
 * The expiry is a reaction on this settled promise, not `queueMicrotask(expire)`: both queue one
 * job on V8's microtask queue (the same FIFO, so the cache lasts exactly as long), but Node 20's
 * queueMicrotask builds an AsyncResource, binds a wrapper to it (Function.prototype.bind) and
 * runs it between async-context pushes and pops: ~1.1k instructions more per read that misses
 * (callgrind, apps/proxy/bench/proxy-core.ts with metrics on; issue 18). `expire` cannot throw,
 * so queueMicrotask's error routing is not needed.
 */
const settled = Promise.resolve();

/** Milliseconds on performance.now()'s scale, as of the first read in this turn. */
export function turnNow(): number {
  if (cached < 0) {
    cached = clock.now();
    void settled.then(expire);
  }
  return cached;
}

/** How often (turn-clock ms) turnWallNow compares its offset with Date.now(). */
export const WALL_CHECK_MS = 1000;
/**
 * How far (ms) Date.now() may be from the turn's reading on its scale at a check: Date.now() is
 * read later than the turn's reading, by the turn's age so far. Past it at two checks in a row
 * (a step of the system clock that stays: `date -s`, a VM agent's correction, a small makestep),
 * or past WALL_STEP_MS at one, the offset is taken again from both clocks read then.
 */
const WALL_SLACK_MS = 2;
/** Apart this far (ms) at one check, the offset is taken again at once. */
const WALL_STEP_MS = 100;
/**
 * Date.now()'s scale minus performance.now()'s ([0]), when ([1], turn-clock ms) that was last
 * compared with Date.now(), and how many checks in a row found them WALL_SLACK_MS or more apart
 * ([2]). Both clocks advance at the same rate (NTP slews the monotonic clock with the system
 * clock); only a step of the system clock (settimeofday, a resumed VM) parts them.
 */
const wall = new Float64Array([Number.NaN, Number.NEGATIVE_INFINITY, 0]);

// Date.now() drops the fraction of its millisecond: the middle of it is 0.5 later.
wall[0] = Date.now() + 0.5 - clock.now();

/**
 * Milliseconds since the epoch (Date.now()'s scale, whole) as of this turn's reading: the access
 * log's time without a Date.now() per line (a call into V8's runtime, ~250 instructions). Within
 * 1 ms of Date.now() at the turn's start; it follows a step of the system clock within
 * WALL_CHECK_MS (past WALL_STEP_MS) or twice that (past WALL_SLACK_MS), at checks that read
 * Date.now() alone while the clocks agree (no performance.now() but the turn's own).
 */
export function turnWallNow(): number {
  const now = turnNow();
  if (!(now - wall[1]! < WALL_CHECK_MS)) checkWall(now);
  return Math.floor(now + wall[0]!);
}

function checkWall(now: number): void {
  wall[1] = now;
  const real = Date.now() + 0.5;
  const apart = Math.abs(real - (now + wall[0]!));
  if (apart < WALL_SLACK_MS) {
    wall[2] = 0;
    return;
  }
  // A step (or a long turn, once): at the second such check in a row, or a large one at once,
  // the offset from both clocks read now.
  if (!(apart < WALL_STEP_MS) || ++wall[2]! >= 2) {
    wall[0] = real - clock.now();
    wall[2] = 0;
  }
}
