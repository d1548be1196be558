/**
 * Debugging aids for memory investigations (bench/idle-memory): a full GC before a worker reports
 * its heap on `stats`, so memory per connection can be read, and a heap snapshot per `stats`.
 * Off unless asked. The main thread reads the environment once (debugAidsFromEnv) and hands the
 * result to every worker in its start data; workers never read the environment for them.
 * Not for metrics or logging (worker.ts `stats`, log.ts), and never on the request path.
 */
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Which debugging aids run before a worker answers `stats`. Structured-clonable. */
export interface DebugAids {
  /** Run a full GC first, so `heapUsed` counts live objects only. */
  readonly gcBeforeStats: boolean;
  /** Write `worker-<index>-<ms>.heapsnapshot` into this directory (after the GC, if any). */
  readonly heapSnapshotDir: string | undefined;
}

/** No aids: what a worker runs with unless the main thread asked for some. */
export const NO_DEBUG_AIDS: DebugAids = Object.freeze({ gcBeforeStats: false, heapSnapshotDir: undefined });

/**
 * The aids the environment asks for: `LOCH_DEBUG_GC=1` (full GC before stats) and
 * `LOCH_DEBUG_HEAPSNAPSHOT=<dir>` (a snapshot per stats; empty means none).
 */
export function debugAidsFromEnv(env: NodeJS.ProcessEnv = process.env): DebugAids {
  const dir = env.LOCH_DEBUG_HEAPSNAPSHOT;
  return {
    gcBeforeStats: env.LOCH_DEBUG_GC === '1',
    heapSnapshotDir: dir === undefined || dir === '' ? undefined : dir,
  };
}

/** A full GC without --expose-gc (which worker threads refuse in execArgv). */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * Runs the aids that precede worker `index`'s stats report; returns the snapshot's path when
 * one was written. Synchronous and slow when on (a full GC, a snapshot of the whole heap).
 */
export function runBeforeStats(aids: DebugAids, index: number): string | undefined {
  if (aids.gcBeforeStats) fullGc();
  if (aids.heapSnapshotDir === undefined) return undefined;
  return writeHeapSnapshot(`${aids.heapSnapshotDir}/worker-${index}-${Date.now()}.heapsnapshot`);
}
