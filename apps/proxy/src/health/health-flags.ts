/**
 * The process's shared health memory: one SharedArrayBuffer made once per process and handed to
 * every worker, replacements included, in its start data. Two parts:
 * - the verdicts of the active health checker: Int32 slots, one per checked upstream, written
 *   by the main thread (which runs the checks once per process) and read by the workers on the
 *   request path with a plain indexed load: no message, no lock, no allocation. 0 is UP, so a
 *   fresh or freed slot reads as healthy (as nginx, an upstream is used until a check says
 *   otherwise);
 * - the passive health (outlier detection) words every worker updates with Atomics
 *   (outlier-state.ts), placed per route group by the main thread (outlier-slots.ts).
 * Not for the outlier arithmetic (outlier-state.ts) or for running checks (active-checks.ts).
 */

/** Slots in the table: checked upstreams (distinct address and check settings) per process. */
export const HEALTH_SLOTS = 4096;

/** Slot values. */
export const SLOT_UP = 0;
export const SLOT_DOWN = 1;

/** Route groups with shared passive health per process (one word each: the group's ejected count). */
export const OUTLIER_GROUPS = 4096;
/** Upstreams (of those groups) with shared passive health per process. */
export const OUTLIER_UPSTREAMS = 16_384;
/** Int32 words per upstream of the passive part (outlier-state.ts says what each holds). */
export const OUTLIER_WORDS_PER_UPSTREAM = 4;
/** Int32 words of the passive part: the group words, then the upstreams' words. */
export const OUTLIER_WORDS = OUTLIER_GROUPS + OUTLIER_UPSTREAMS * OUTLIER_WORDS_PER_UPSTREAM;

/** A new, all-healthy, nothing-ejected buffer (main thread, once per process). */
export function newHealthBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer((HEALTH_SLOTS + OUTLIER_WORDS) * Int32Array.BYTES_PER_ELEMENT);
}

/** This thread's view of the active verdicts, or null before one was attached (unit tests, no checks). */
let flags: Int32Array | null = null;
/** This thread's view of the passive part, or null before one was attached. */
let outliers: Int32Array | null = null;

/** Attaches this thread to the process's buffer (worker start; main thread when it checks). */
export function attachHealthFlags(buffer: SharedArrayBuffer | undefined): Int32Array | null {
  flags = buffer === undefined ? null : new Int32Array(buffer, 0, HEALTH_SLOTS);
  outliers =
    buffer === undefined || buffer.byteLength < (HEALTH_SLOTS + OUTLIER_WORDS) * Int32Array.BYTES_PER_ELEMENT
      ? null
      : new Int32Array(buffer, HEALTH_SLOTS * Int32Array.BYTES_PER_ELEMENT, OUTLIER_WORDS);
  return flags;
}

/** The attached passive part (outlier-slots.ts places groups in it), or null. */
export function outlierWords(): Int32Array | null {
  return outliers;
}

/** The attached table, or null. */
export function healthFlags(): Int32Array | null {
  return flags;
}
