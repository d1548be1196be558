/**
 * The process's shared health memory: one SharedArrayBuffer made once per process and handed to
 * every worker, replacements included, in its start data. Three parts:
 * - the verdicts of the active health checker: Int32 slots, one per checked upstream, written
 *   by the main thread (which runs the checks once per process) and read by the workers on the
 *   request path with a plain indexed load: no message, no lock, no allocation. 0 is UP, so a
 *   fresh or freed slot reads as healthy (as nginx, an upstream is used until a check says
 *   otherwise);
 * - the passive health (outlier detection) words every worker updates with Atomics
 *   (outlier-state.ts), placed per route group by the main thread (outlier-slots.ts);
 * - the retry budgets' counts (retry-budget.ts): one block per worker index, in which that
 *   worker alone stores its requests and retries in flight per route group (placed by
 *   retry-slots.ts), summed over the blocks when a retry is decided.
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

/** Route groups with a process-wide retry budget per process. */
export const RETRY_GROUPS = 1024;
/** Int32 words per group in a worker's retry block: requests in flight, retries in flight. */
export const RETRY_WORDS_PER_GROUP = 2;
/** Int32 words of one worker's block of retry counts. */
export const RETRY_BLOCK_WORDS = RETRY_GROUPS * RETRY_WORDS_PER_GROUP;

/**
 * A new, all-healthy, nothing-ejected buffer with retry blocks for `workers` workers (main
 * thread, once per process; the worker count cannot change while loch runs).
 */
export function newHealthBuffer(workers = 1): SharedArrayBuffer {
  return new SharedArrayBuffer(
    (HEALTH_SLOTS + OUTLIER_WORDS + workers * RETRY_BLOCK_WORDS) * Int32Array.BYTES_PER_ELEMENT,
  );
}

/** This thread's view of the active verdicts, or null before one was attached (unit tests, no checks). */
let flags: Int32Array | null = null;
/** This thread's view of the passive part, or null before one was attached. */
let outliers: Int32Array | null = null;
/** This thread's view of the retry blocks, or null. */
let retries: Int32Array | null = null;
/** The worker index this thread writes retry counts as (-1: not a worker). */
let retryWorker = -1;

/**
 * Attaches this thread to the process's buffer (worker start, with the worker's index; main
 * thread when it checks). A worker clears its retry block first: a worker replacing a dead one
 * takes its index, and the dead one's requests in flight died with it.
 */
export function attachHealthFlags(buffer: SharedArrayBuffer | undefined, worker = -1): Int32Array | null {
  const words = buffer === undefined ? 0 : buffer.byteLength / Int32Array.BYTES_PER_ELEMENT;
  flags = buffer === undefined ? null : new Int32Array(buffer, 0, HEALTH_SLOTS);
  outliers =
    buffer === undefined || words < HEALTH_SLOTS + OUTLIER_WORDS
      ? null
      : new Int32Array(buffer, HEALTH_SLOTS * Int32Array.BYTES_PER_ELEMENT, OUTLIER_WORDS);
  const blocks = Math.floor((words - HEALTH_SLOTS - OUTLIER_WORDS) / RETRY_BLOCK_WORDS);
  retries =
    buffer === undefined || blocks < 1
      ? null
      : new Int32Array(
          buffer,
          (HEALTH_SLOTS + OUTLIER_WORDS) * Int32Array.BYTES_PER_ELEMENT,
          blocks * RETRY_BLOCK_WORDS,
        );
  retryWorker = retries !== null && worker >= 0 && worker < blocks ? worker : -1;
  if (retryWorker >= 0)
    for (let i = retryWorker * RETRY_BLOCK_WORDS, end = i + RETRY_BLOCK_WORDS; i < end; i++)
      Atomics.store(retries!, i, 0);
  return flags;
}

/** The attached retry blocks (retry-slots.ts places groups in them), or null. */
export function retryWords(): Int32Array | null {
  return retries;
}

/** The index of this worker's retry block, or -1 (not a worker, or no block for it). */
export function retryBlock(): number {
  return retryWorker;
}

/** The attached passive part (outlier-slots.ts places groups in it), or null. */
export function outlierWords(): Int32Array | null {
  return outliers;
}

/** The attached table, or null. */
export function healthFlags(): Int32Array | null {
  return flags;
}
