/**
 * A worker's runtime numbers for the admin listener's /stats and /metrics: streams open, tasks,
 * and the receive budgets' numbers (bytes held, streams waiting, provided buffers in use:
 * @loch/uring-runtime's `bufferStats()`). Read when the main thread asks for stats, never on the
 * request path. Not for the counters (recorder.ts). Also V8's own mark-compact pauses on the
 * worker's thread (@loch/native's gcPauses: a GC hook times them; a scavenge is not counted).
 */
import { type GcPauses, gcPauseReader } from '@loch/native';
import type { BufferStats } from '@loch/uring-runtime';

/** What /stats shows of a worker's runtime. */
export interface WorkerRuntimeStats {
  readonly openStreams: number;
  readonly tasks: number;
  /** The receive budgets (null when the runtime keeps none). */
  readonly buffers: BufferStats | null;
  /**
   * Wave collections (the runtime's wave-collect policy: a memory-reducing collection after a
   * wave of connections closed): how many, those after a wave of connections OPENED instead (they
   * give back the young generation a burst grew; not in `collections`), the old-generation bytes
   * the close waves' collections freed, the last call's
   * time (ms; V8 finishes the collection incrementally after it), V8's final pause of the last
   * one (ms; 0 before one finished or without the GC hook), the calls made again because a
   * marking V8 began on its own still ran, the collections that never started, and the
   * open-stream high-water mark the policy keeps (since its last collection).
   */
  readonly waves: {
    readonly collections: number;
    readonly openCollections: number;
    readonly freedBytes: number;
    readonly lastCallMs: number;
    readonly lastPauseMs: number;
    readonly retries: number;
    readonly misses: number;
    readonly highWater: number;
  };
  /**
   * The worker thread's mark-compacts since it started and V8's atomic pauses for them (ms: the
   * total and the last; not the incremental steps before them); null when the addon has no GC hook.
   */
  readonly gc: {
    readonly markCompacts: number;
    readonly pauseMs: number;
    readonly lastPauseMs: number;
  } | null;
}

/** The slice of a Runtime read here. */
interface RuntimeLike {
  readonly openStreams?: number;
  readonly tasks?: number;
  readonly waveCollections?: number;
  readonly waveOpenCollections?: number;
  readonly waveCollectFreedBytes?: number;
  readonly waveCollectLastMs?: number;
  readonly waveCollectRetries?: number;
  readonly waveCollectMisses?: number;
  readonly waveHighWater?: number;
  bufferStats?(): BufferStats | undefined;
}

/** This thread's GC pauses from the addon, when it loads and has the hook. */
const readGcPauses = gcPauseReader();

/**
 * The stats of `runtime` (the worker's Runtime), or undefined when there is none (tests); `gc`
 * reads this thread's GC pauses (the addon's, by default).
 */
export function runtimeStats(
  runtime: unknown,
  gc: (() => GcPauses | undefined) | undefined = readGcPauses,
): WorkerRuntimeStats | undefined {
  if (runtime === undefined || runtime === null) return undefined;
  const r = runtime as RuntimeLike;
  const pauses = gc?.();
  return {
    openStreams: r.openStreams ?? 0,
    tasks: r.tasks ?? 0,
    buffers: r.bufferStats?.() ?? null,
    waves: {
      collections: r.waveCollections ?? 0,
      openCollections: r.waveOpenCollections ?? 0,
      freedBytes: r.waveCollectFreedBytes ?? 0,
      lastCallMs: r.waveCollectLastMs ?? 0,
      lastPauseMs: pauses?.lastWavePauseMs ?? 0,
      retries: r.waveCollectRetries ?? 0,
      misses: r.waveCollectMisses ?? 0,
      highWater: r.waveHighWater ?? 0,
    },
    gc:
      pauses === undefined
        ? null
        : { markCompacts: pauses.markCompacts, pauseMs: pauses.pauseMs, lastPauseMs: pauses.lastPauseMs },
  };
}
