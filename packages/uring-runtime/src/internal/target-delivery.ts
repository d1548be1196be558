/**
 * Deferred delivery of recvTo() and writeTo() results: a per-thread queue drained in one
 * microtask, so a RecvTarget or WriteTarget is never called from inside recvTo(), writeTo(),
 * close() or the ring's completion dispatch (the same moment a promise reaction would run),
 * without a promise, closure or record per delivery. One queue for both keeps them in the order
 * the driver saw them complete: on the io_uring driver a receive that completed before a write
 * is reported before it, which is how a pooled connection tells bytes that predate its request
 * from its answer. Not for data movement: drivers decide what to deliver.
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
let scheduled = false;
/**
 * Schedules drain() through a settled promise rather than queueMicrotask(): same checkpoint, but
 * Node's queueMicrotask makes an AsyncResource and a bound function per call (about 300 bytes,
 * measured), a then() only its reaction and derived promise. drain() never throws.
 */
const settled = Promise.resolve();

function drain(): void {
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
  scheduled = false;
  if (failed) {
    queueMicrotask(() => {
      throw failure;
    });
  }
}

/** Queues `target.onRecv(chunk, error)` for the next microtask checkpoint. */
export function deliverRecv(
  target: RecvTarget,
  chunk: RecvChunk | null,
  error: RuntimeError | undefined,
): void {
  const i = tail++;
  targets[i] = target;
  chunks[i] = chunk;
  errors[i] = error;
  if (!scheduled) {
    scheduled = true;
    void settled.then(drain);
  }
}

/** Queues `target.onWritten(error)` for the next microtask checkpoint, after earlier deliveries. */
export function deliverWritten(target: WriteTarget, error: RuntimeError | undefined): void {
  const i = tail++;
  targets[i] = target;
  chunks[i] = WRITTEN;
  errors[i] = error;
  if (!scheduled) {
    scheduled = true;
    void settled.then(drain);
  }
}
