/**
 * Deferred delivery of a TlsStream's recvTo()/writeTo() results that are known at once (data
 * already decrypted, a closed or failed stream): one per-thread queue drained at the next
 * microtask checkpoint, so a target is never called from inside recvTo(), writeTo() or close(),
 * as the ByteStream contract says. Results that come from the stream below are delivered from
 * its own (already deferred) callbacks. A copy of the runtime's internal target delivery, which
 * @loch/uring-runtime does not export; not for anything else.
 */
import type { RecvChunk, RecvTarget, RuntimeError, WriteTarget } from '@loch/uring-runtime';

const WRITTEN = 1;
const targets: (RecvTarget | WriteTarget | undefined)[] = [];
const chunks: (RecvChunk | null | typeof WRITTEN)[] = [];
const errors: (RuntimeError | undefined)[] = [];
let head = 0;
let tail = 0;
let scheduled = false;
const settled = Promise.resolve();

function drain(): void {
  let failure: unknown;
  let failed = false;
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
      if (!failed) {
        failed = true;
        failure = e;
      }
    }
  }
  if (tail > 1024) {
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

function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    void settled.then(drain);
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
  schedule();
}

/** Queues `target.onWritten(error)` for the next microtask checkpoint. */
export function deliverWritten(target: WriteTarget, error: RuntimeError | undefined): void {
  const i = tail++;
  targets[i] = target;
  chunks[i] = WRITTEN;
  errors[i] = error;
  schedule();
}
