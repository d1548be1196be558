/**
 * A worker's runtime numbers for the admin listener's /stats and /metrics: streams open, tasks,
 * and the receive budgets' numbers (bytes held, streams waiting, provided buffers in use:
 * @loch/uring-runtime's `bufferStats()`). Read when the main thread asks for stats, never on the
 * request path. Not for the counters (recorder.ts).
 */
import type { BufferStats } from '@loch/uring-runtime';

/** What /stats shows of a worker's runtime. */
export interface WorkerRuntimeStats {
  readonly openStreams: number;
  readonly tasks: number;
  /** The receive budgets (null when the runtime keeps none). */
  readonly buffers: BufferStats | null;
  /**
   * Wave collections (the runtime's wave-collect policy: a full collection after a wave of
   * connections closed): how many, the old-generation bytes they freed, the last call's time
   * (ms; V8 may finish the collection incrementally after it).
   */
  readonly waves: { readonly collections: number; readonly freedBytes: number; readonly lastCallMs: number };
}

/** The slice of a Runtime read here. */
interface RuntimeLike {
  readonly openStreams?: number;
  readonly tasks?: number;
  readonly waveCollections?: number;
  readonly waveCollectFreedBytes?: number;
  readonly waveCollectLastMs?: number;
  bufferStats?(): BufferStats | undefined;
}

/** The stats of `runtime` (the worker's Runtime), or undefined when there is none (tests). */
export function runtimeStats(runtime: unknown): WorkerRuntimeStats | undefined {
  if (runtime === undefined || runtime === null) return undefined;
  const r = runtime as RuntimeLike;
  return {
    openStreams: r.openStreams ?? 0,
    tasks: r.tasks ?? 0,
    buffers: r.bufferStats?.() ?? null,
    waves: {
      collections: r.waveCollections ?? 0,
      freedBytes: r.waveCollectFreedBytes ?? 0,
      lastCallMs: r.waveCollectLastMs ?? 0,
    },
  };
}
