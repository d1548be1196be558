/**
 * Deferred delivery of recvTo() results: a per-thread queue drained in one microtask, so a
 * RecvTarget is never called from inside recvTo(), close() or the ring's completion dispatch
 * (the same moment a promise reaction would run), without a promise, closure or record per
 * delivery. Not for data movement: drivers decide what to deliver.
 */
import type { RuntimeError } from '../errors.js';
import type { RecvChunk, RecvTarget } from '../stream.js';

const targets: (RecvTarget | undefined)[] = [];
const chunks: (RecvChunk | null)[] = [];
const errors: (RuntimeError | undefined)[] = [];
let head = 0;
let scheduled = false;

function drain(): void {
  let failure: unknown;
  let failed = false;
  // Deliveries queued by a target while the queue drains run in this same pass.
  while (head < targets.length) {
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
  targets.length = 0;
  chunks.length = 0;
  errors.length = 0;
  head = 0;
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
  targets.push(target);
  chunks.push(chunk);
  errors.push(error);
  if (!scheduled) {
    scheduled = true;
    queueMicrotask(drain);
  }
}
