/**
 * Deferred delivery of recvTo() and writeTo() results: a per-thread queue, so a RecvTarget or
 * WriteTarget is never called from inside recvTo(), writeTo(), close() or the ring's completion
 * dispatch, without a promise, closure or record per delivery. What a completion batch queues
 * (openBatch/closeBatch around a driver's dispatch) is delivered when the batch ends, still
 * inside the driver's callback and with no promise at all; anything queued outside a batch (a
 * recvTo answered from data already held, a close) is delivered in one microtask, scheduled
 * with one settled promise's then(). One queue for both keeps them in the order the driver saw
 * them complete: on the io_uring driver a receive that completed before a write is reported
 * before it, which is how a pooled connection tells bytes that predate its request from its
 * answer. Not for data movement: drivers decide what to deliver.
 */
import type { RuntimeError } from '../errors.js';
import type { RecvChunk, RecvTarget, WriteTarget } from '../stream.js';

/** Marks a queue entry as a writeTo() result. */
const WRITTEN = 1;

// Parallel queues in [head, tail). They keep their capacity between drains (entries are cleared
// as they are delivered), so a delivery allocates nothing once they have grown.
const targets: (RecvTarget | WriteTarget | undefined)[] = [];
/** The received chunk (or null), or WRITTEN for a writeTo() result. */
const chunks: (RecvChunk | null | typeof WRITTEN)[] = [];
const errors: (RuntimeError | undefined)[] = [];
let head = 0;
let tail = 0;
/** Queue entries kept allocated after a drain. */
const KEEP_CAPACITY = 1024;
/** A microtask drain is scheduled. */
let scheduled = false;
/** drain() is running: what targets queue meanwhile runs in the same pass. */
let draining = false;
/** A completion batch is being dispatched: closeBatch() delivers what it queued. */
let inBatch = false;
/**
 * Schedules drain() through a settled promise rather than queueMicrotask(): same checkpoint, but
 * Node's queueMicrotask makes an AsyncResource and a bound function per call (about 300 bytes,
 * measured), a then() only its reaction and derived promise. drain() never throws.
 */
const settled = Promise.resolve();

function drainScheduled(): void {
  scheduled = false;
  if (!draining) drain();
}

/**
 * A driver starts dispatching a batch of completions: deliveries queued until closeBatch() wait
 * for it instead of a microtask. Returns whether a batch was open already (pass it back).
 */
export function openBatch(): boolean {
  const outer = inBatch;
  inBatch = true;
  return outer;
}

/**
 * The batch opened by the matching openBatch() is dispatched: unless it was nested in another,
 * what is queued is delivered now. Why here rather than in a microtask: a completion batch is
 * where nearly every result comes from, and delivering at its end costs no promise and no trip
 * through the microtask queue (a relayed Thrift call's receives and writes complete in 3-4
 * batches: 3-4 promises per call before). It is as deferred as the contract needs: the driver
 * has finished every completion of the batch, and no recvTo(), writeTo() or close() is on the
 * stack (the driver's callback is entered from the event loop). Never throws.
 */
export function closeBatch(outer: boolean): void {
  if (outer) return;
  inBatch = false;
  if (head < tail && !draining) drain();
}

function drain(): void {
  draining = true;
  let failure: unknown;
  let failed = false;
  // Deliveries queued by a target while the queue drains run in this same pass.
  while (head < tail) {
    const i = head++;
    const target = targets[i]!;
    const chunk = chunks[i]!;
    const error = errors[i];
    targets[i] = undefined;
    chunks[i] = null;
    errors[i] = undefined;
    try {
      if (chunk === WRITTEN) (target as WriteTarget).onWritten(error);
      else (target as RecvTarget).onRecv(chunk, error);
    } catch (e) {
      // One target's exception must not cost the others their delivery; it surfaces afterwards
      // as an uncaught exception, like a throw in any callback.
      if (!failed) {
        failed = true;
        failure = e;
      }
    }
  }
  if (tail > KEEP_CAPACITY) {
    // A burst (a server closing thousands of parked connections): let the big arrays go.
    targets.length = 0;
    chunks.length = 0;
    errors.length = 0;
  }
  head = 0;
  tail = 0;
  draining = false;
  if (failed) {
    queueMicrotask(() => {
      throw failure;
    });
  }
}

/** Queues `target.onRecv(chunk, error)` for the end of the batch, else the next microtask checkpoint. */
export function deliverRecv(
  target: RecvTarget,
  chunk: RecvChunk | null,
  error: RuntimeError | undefined,
): void {
  const i = tail++;
  targets[i] = target;
  chunks[i] = chunk;
  errors[i] = error;
  if (!scheduled && !draining && !inBatch) {
    scheduled = true;
    void settled.then(drainScheduled);
  }
}

/** Queues `target.onWritten(error)` like deliverRecv, after earlier deliveries. */
export function deliverWritten(target: WriteTarget, error: RuntimeError | undefined): void {
  const i = tail++;
  targets[i] = target;
  chunks[i] = WRITTEN;
  errors[i] = error;
  if (!scheduled && !draining && !inBatch) {
    scheduled = true;
    void settled.then(drainScheduled);
  }
}
