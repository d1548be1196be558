/**
 * Deferred delivery of recvTo() results: a per-thread queue drained in one microtask, so a
 * RecvTarget is never called from inside recvTo(), close() or the ring's completion dispatch
 * (the same moment a promise reaction would run), without a promise, closure or record per
 * delivery. Not for data movement: drivers decide what to deliver.
 */
import type { RuntimeError } from '../errors.js';
import type { RecvChunk, RecvTarget } from '../stream.js';

// Parallel queues in [head, tail). They keep their capacity between drains (entries are cleared
// as they are delivered), so a delivery allocates nothing once they have grown.
const targets: (RecvTarget | undefined)[] = [];
const chunks: (RecvChunk | null)[] = [];
const errors: (RuntimeError | undefined)[] = [];
let head = 0;
let tail = 0;
/** Queue entries kept allocated after a drain. */
const KEEP_CAPACITY = 1024;
let scheduled = false;

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
      target.onRecv(chunk, error);
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
    queueMicrotask(drain);
  }
}
