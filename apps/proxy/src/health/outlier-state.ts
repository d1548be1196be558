/**
 * Passive health (outlier detection) of one route group's upstreams, kept in Int32 words that
 * every worker of the process shares (health-flags.ts, placed by outlier-slots.ts) and updates
 * with Atomics: consecutive failures eject an upstream for a while, longer each time, never
 * more than max_ejection_percent of the group unless every upstream fails. Lock-free and
 * allocation-free on the request path: failures are counted with Atomics.add, an ejection and
 * a return are each won by one compareExchange (so one worker logs and counts it), and the
 * group's ejected count is reserved with compareExchange, so the cap holds across workers.
 * What Envoy does with atomic per-host counters and nginx with its shared `zone`, without the
 * main thread (Envoy) or a lock (nginx) on the way. Without shared words (no slot, unit tests)
 * the same code runs over private words: state per worker, as before.
 * Not for active checks (active-checks.ts) or the retry budget and limits (upstream-group.ts).
 */
import type { OutlierConfig } from './config.js';
import { OUTLIER_WORDS_PER_UPSTREAM } from './health-flags.js';

/**
 * Words of an upstream, from its offset. Times are Date.now() in ms taken mod 2^32 (`| 0`):
 * every thread reads the same clock, and differences of such times are exact as long as they
 * stay under 2^31 ms (~24.8 days), which caps an ejection's length (MAX_EJECTION_MS).
 */
/** 0: not ejected; else the time the ejection ends (never 0: 1 ms later when it would be). */
const UNTIL = 0;
/** Failures in a row (any worker's); a response head from the upstream resets it. */
const FAILURES = 1;
/** Ejections in a row: the back-off's exponent. */
const STREAK = 2;
/** When the upstream last came back from an ejection. */
const RETURNED = 3;

/** The longest ejection the mod-2^32 times can tell apart. */
export const MAX_EJECTION_MS = 2 ** 31 - 1;

/** Where a group's words sit in a shared table. */
export interface OutlierPlace {
  /** The table (health-flags.ts outlierWords()). */
  readonly words: Int32Array;
  /** The index of the group's ejected-count word. */
  readonly group: number;
  /** Per upstream, the index of its first word (OUTLIER_WORDS_PER_UPSTREAM in a row). */
  readonly upstreams: readonly number[];
}

/** What the worker that won an ejection or a return tells (logs, counts). */
export interface OutlierEvents {
  ejected(upstream: number, ms: number, failures: number, streak: number): void;
  returned(upstream: number): void;
}

/** One group's outlier detection over shared (or private) words. */
export class OutlierState {
  readonly #config: OutlierConfig;
  readonly #words: Int32Array;
  readonly #count: number;
  readonly #at: Int32Array;
  readonly #size: number;
  readonly #now: () => number;
  readonly #events: OutlierEvents;

  constructor(
    config: OutlierConfig,
    size: number,
    events: OutlierEvents,
    place?: OutlierPlace | undefined,
    now: () => number = Date.now,
  ) {
    this.#config = config;
    this.#size = size;
    this.#events = events;
    this.#now = now;
    if (place !== undefined && place.upstreams.length === size) {
      this.#words = place.words;
      this.#count = place.group;
      this.#at = Int32Array.from(place.upstreams);
    } else {
      // Private words: the count at 0, the upstreams after it. Shared memory all the same:
      // V8 runs Atomics on a SharedArrayBuffer's view faster than on a plain one (measured:
      // ~20-35 vs ~50-65 ns per pick and success), and every group then has one shape.
      this.#words = new Int32Array(
        new SharedArrayBuffer((1 + size * OUTLIER_WORDS_PER_UPSTREAM) * Int32Array.BYTES_PER_ELEMENT),
      );
      this.#count = 0;
      this.#at = Int32Array.from({ length: size }, (_, i) => 1 + i * OUTLIER_WORDS_PER_UPSTREAM);
    }
  }

  /**
   * Whether upstream `i` is ejected now. An ejection that ran out ends here (one thread wins
   * the return). Reads the clock only while something of the group is ejected.
   */
  ejected(i: number): boolean {
    const w = this.#words;
    // The request path's common case (nothing ejected, nothing to clear in `succeeded`) reads
    // with plain loads, as the active verdicts are read: an aligned Int32 never tears, and a
    // value a moment old only delays an ejection by one request; every change is an Atomics op.
    if (w[this.#count] === 0) return false;
    const at = this.#at[i]!;
    const until = Atomics.load(w, at + UNTIL);
    if (until === 0) return false;
    const now = this.#now();
    if (((until - now) | 0) > 0) return true;
    this.#return(i, until, now);
    return false;
  }

  /** Upstream `i` answered (a response head): its failures in a row end. */
  succeeded(i: number): void {
    const w = this.#words;
    const at = this.#at[i]!;
    // A store only when there is something to clear: the word is shared by every worker.
    if (w[at + FAILURES] !== 0) Atomics.store(w, at + FAILURES, 0);
    // Healthy for a whole base ejection time since it came back: the back-off starts over.
    if (
      w[at + STREAK]! > 0 &&
      ((this.#now() - Atomics.load(w, at + RETURNED)) | 0) >= this.#config.baseEjectionTime
    )
      Atomics.store(w, at + STREAK, 0);
  }

  /** Upstream `i` failed (refused, timed out, reset or broke protocol before a response). */
  failed(i: number): void {
    const w = this.#words;
    const config = this.#config;
    const at = this.#at[i]!;
    const failures = Atomics.add(w, at + FAILURES, 1) + 1;
    if (failures < config.consecutiveFailures || Atomics.load(w, at + UNTIL) !== 0) return;
    const now = this.#now();
    this.#expire(now);
    const cap = Math.max(1, Math.floor((this.#size * config.maxEjectionPercent) / 100));
    if (this.#reserve(cap)) {
      if (!this.#eject(i, now)) Atomics.sub(w, this.#count, 1);
      return;
    }
    // Over the cap, unless every upstream still in use fails too: then all go (the route
    // answers 503 at once instead of sending every request to a dead upstream).
    for (let j = 0; j < this.#size; j++) {
      const a = this.#at[j]!;
      if (Atomics.load(w, a + UNTIL) === 0 && Atomics.load(w, a + FAILURES) < config.consecutiveFailures)
        return;
    }
    for (let j = 0; j < this.#size; j++) {
      if (Atomics.load(w, this.#at[j]! + UNTIL) !== 0) continue;
      Atomics.add(w, this.#count, 1);
      if (!this.#eject(j, now)) Atomics.sub(w, this.#count, 1);
    }
  }

  /** Upstream `i`'s failures in a row (metrics). */
  failures(i: number): number {
    return Atomics.load(this.#words, this.#at[i]! + FAILURES);
  }

  /** Whether upstream `i` is ejected now, without ending a finished ejection (metrics). */
  ejectedNow(i: number): boolean {
    const until = Atomics.load(this.#words, this.#at[i]! + UNTIL);
    return until !== 0 && ((until - this.#now()) | 0) > 0;
  }

  /** Takes one place under the cap of ejected upstreams, if there is one. */
  #reserve(cap: number): boolean {
    const w = this.#words;
    for (;;) {
      const n = Atomics.load(w, this.#count);
      if (n >= cap) return false;
      if (Atomics.compareExchange(w, this.#count, n, n + 1) === n) return true;
    }
  }

  /** Ejects `i` if no other thread did first (the caller holds a place in the count). */
  #eject(i: number, now: number): boolean {
    const w = this.#words;
    const config = this.#config;
    const at = this.#at[i]!;
    const streak = Atomics.load(w, at + STREAK);
    const ms = Math.min(
      MAX_EJECTION_MS,
      config.maxEjectionTime,
      config.baseEjectionTime * 2 ** Math.min(streak, 30),
    );
    const until = (now + ms) | 0 || 1;
    if (Atomics.compareExchange(w, at + UNTIL, 0, until) !== 0) return false;
    Atomics.store(w, at + STREAK, streak + 1);
    this.#events.ejected(i, ms, Atomics.load(w, at + FAILURES), streak + 1);
    return true;
  }

  /** Ends `i`'s ejection that ran out at `until`, if no other thread did first. */
  #return(i: number, until: number, now: number): void {
    const w = this.#words;
    const at = this.#at[i]!;
    if (Atomics.compareExchange(w, at + UNTIL, until, 0) !== until) return;
    Atomics.store(w, at + RETURNED, now | 0);
    // One more failure ejects it again (for twice as long), as Envoy's outlier detection.
    Atomics.store(w, at + FAILURES, this.#config.consecutiveFailures - 1);
    Atomics.sub(w, this.#count, 1);
    this.#events.returned(i);
  }

  #expire(now: number): void {
    const w = this.#words;
    for (let j = 0; j < this.#size; j++) {
      const until = Atomics.load(w, this.#at[j]! + UNTIL);
      if (until !== 0 && ((until - now) | 0) <= 0) this.#return(j, until, now);
    }
  }
}
