/**
 * The verdicts of the active health checker, shared by every thread of the process: one
 * SharedArrayBuffer of Int32 slots, one per checked upstream, written by the main thread (which
 * runs the checks once per process) and read by the workers on the request path with a plain
 * indexed load: no message, no lock, no allocation. 0 is UP, so a fresh or freed slot reads as
 * healthy (as nginx, an upstream is used until a check says otherwise). The buffer is made
 * once per process and handed to every worker, replacements included, in its start data.
 * Not for passive health (upstream-group.ts) or for running checks (active-checks.ts).
 */

/** Slots in the table: checked upstreams (distinct address and check settings) per process. */
export const HEALTH_SLOTS = 4096;

/** Slot values. */
export const SLOT_UP = 0;
export const SLOT_DOWN = 1;

/** A new, all-healthy table (main thread, once per process). */
export function newHealthBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEALTH_SLOTS * Int32Array.BYTES_PER_ELEMENT);
}

/** This thread's view of the table, or null before one was attached (unit tests, no checks). */
let flags: Int32Array | null = null;

/** Attaches this thread to the process's table (worker start; main thread when it checks). */
export function attachHealthFlags(buffer: SharedArrayBuffer | undefined): Int32Array | null {
  flags = buffer === undefined ? null : new Int32Array(buffer);
  return flags;
}

/** The attached table, or null. */
export function healthFlags(): Int32Array | null {
  return flags;
}
