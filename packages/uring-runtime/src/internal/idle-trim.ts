/**
 * The idle-trim policy: once a thread's driver had activity and then none for `idleMs`, give
 * free memory back to the OS, once per idle period. V8 keeps the heap it committed under load
 * (new space stays at its grown size, old-space pages freed by GC stay mapped), so a worker that
 * served a burst and then holds thousands of idle keep-alive connections would otherwise keep
 * tens of MiB it no longer uses. Not for per-connection memory (the layers keep that small) and
 * not a GC tuner: it runs at most once per idle period, never while I/O flows.
 */

/** What the policy watches and what it calls. */
export interface IdleTrimHooks {
  /** A number that changes whenever the driver did I/O (submits on io_uring, reads on legacy). */
  activity(): number;
  /** Gives memory back (V8 low-memory GC plus malloc_trim); called once per idle period. */
  trim(): void;
  /** Milliseconds since some fixed point (performance.now in production). */
  now(): number;
}

/** Default idle period before a trim, in milliseconds. */
export const DEFAULT_IDLE_TRIM_MS = 1000;

/**
 * Back-off cap as a multiple of the configured idle period (1 s -> at most 32 s), and the window
 * after a trim in which new activity counts as "the thread was not really idle" (the same 32x).
 * A trim costs its worker two forced full GCs and throws compiled code away (memory-reducing GCs
 * flush bytecode and optimized code), so a thread whose traffic comes in bursts with second-long
 * gaps would otherwise pay that, and then run its next requests cold, after every burst.
 */
export const IDLE_TRIM_BACKOFF_FACTOR = 32;

/**
 * Reads the idle period: the option, else env LOCH_IDLE_TRIM_MS, else 1000 ms. 0 disables.
 * A value that is not a finite number >= 0 falls back to the default.
 */
export function resolveIdleTrimMs(
  option: number | undefined,
  env: string | undefined = process.env.LOCH_IDLE_TRIM_MS,
): number {
  return resolveMillisSetting(option, env, DEFAULT_IDLE_TRIM_MS);
}

/**
 * A milliseconds setting of the runtime's memory policies (this one and wave-collect.ts): the
 * option, else the env value, else `fallback`; floored; a value that is not a finite number >= 0
 * falls back to the next source.
 */
export function resolveMillisSetting(
  option: number | undefined,
  env: string | undefined,
  fallback: number,
): number {
  if (option !== undefined && Number.isFinite(option) && option >= 0) return Math.floor(option);
  if (env !== undefined && env !== '') {
    const parsed = Number(env);
    if (Number.isFinite(parsed) && parsed >= 0) return Math.floor(parsed);
  }
  return fallback;
}

/**
 * Checks the activity counter on an unref'd timer (every quarter of the configured idle period):
 * the hot path pays nothing beyond the counter the driver keeps anyway. A trim needs activity
 * first, so a thread that stays idle is trimmed once, not every period.
 *
 * Back-off: when activity comes back within IDLE_TRIM_BACKOFF_FACTOR x the idle period of a trim
 * (the trim did not find a quiet thread, only a gap between bursts) for the second time in a row
 * or more, the idle period doubles, up to that same cap; activity that comes back later than that
 * resets it to the configured one. A worker that goes quiet is still trimmed, after at most the
 * cap (32 s at the default).
 */
export class IdleTrimmer {
  /** Trims done so far. */
  trims = 0;
  /** Milliseconds spent inside trim() so far (by hooks.now). */
  trimMs = 0;
  /** The idle period now in force: the configured one, or doubled by back-off up to the cap. */
  periodMs: number;
  readonly #idleMs: number;
  #trimmedAt: number | undefined;
  #soonAfterTrim = 0;
  readonly #hooks: IdleTrimHooks;
  #last: number;
  #quietSince: number;
  #dirty = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(idleMs: number, hooks: IdleTrimHooks) {
    this.#idleMs = idleMs;
    this.periodMs = idleMs;
    this.#hooks = hooks;
    this.#last = hooks.activity();
    this.#quietSince = hooks.now();
  }

  /** Starts the timer (no-op when the idle period is 0). */
  start(): void {
    if (this.#idleMs <= 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(), Math.max(1, this.#idleMs >> 2));
    this.#timer.unref();
  }

  /** Stops the timer. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One timer step: note activity, or trim when the thread has been quiet long enough. */
  check(): void {
    const seen = this.#hooks.activity();
    const now = this.#hooks.now();
    if (seen !== this.#last) {
      this.#last = seen;
      this.#dirty = true;
      this.#quietSince = now;
      if (this.#trimmedAt !== undefined) {
        // The first activity after a trim: soon means a gap between bursts, not an idle thread.
        // One such trim is allowed (a reading or a client that comes back once after a quiet
        // spell); from the second in a row on, each doubles the period.
        const cap = this.#idleMs * IDLE_TRIM_BACKOFF_FACTOR;
        if (now - this.#trimmedAt < cap) {
          this.#soonAfterTrim++;
          if (this.#soonAfterTrim >= 2) this.periodMs = Math.min(this.periodMs * 2, cap);
        } else {
          this.#soonAfterTrim = 0;
          this.periodMs = this.#idleMs;
        }
        this.#trimmedAt = undefined;
      }
      return;
    }
    if (!this.#dirty || now - this.#quietSince < this.periodMs) return;
    this.#dirty = false;
    this.trims++;
    this.#hooks.trim();
    const done = this.#hooks.now();
    this.trimMs += done - now;
    this.#trimmedAt = done;
    // The trim itself may have submitted nothing, but read the counter again so that what it
    // did (or a flush it caused) is not taken for new activity.
    this.#last = this.#hooks.activity();
  }
}
