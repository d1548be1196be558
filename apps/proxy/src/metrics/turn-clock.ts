/**
 * The metrics' clock: `performance.now()` read once per turn of the event loop's microtask
 * queue and shared by every request that starts or ends in that turn, the way nginx caches its
 * time once per event-loop iteration ($request_time). On Node 20 each `performance.now()`
 * allocates (it builds an hrtime array internally); read per request it would be two
 * allocations per request for metrics alone. Here it is one read and one queued microtask per
 * turn, however many requests that turn serves, and a read in between allocates nothing (the
 * cached number is returned as it is).
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
