/**
 * spawn(): starts a detached task on a runtime. The task counts as open work, so a graceful stop
 * (Runtime.whenIdle, WorkerPool.stop) waits for it, and its failure is reported instead of
 * becoming an unhandled rejection. Not a scheduler: the task runs on this thread's event loop
 * like any async function.
 */
import { currentRuntime, type Runtime } from './runtime.js';

/** Options of spawn(). */
export interface SpawnOptions {
  /** Runtime the task belongs to. Default: the thread's runtime. */
  readonly runtime?: Runtime | undefined;
  /** Receives the task's failure. Default: printed to stderr with `loch: spawned task failed`. */
  readonly onError?: ((error: unknown) => void) | undefined;
}

function reportFailure(error: unknown): void {
  console.error('loch: spawned task failed:', error);
}

/**
 * Runs `task` detached. Resolves once it has been registered with its runtime (not when it
 * ends); `runtime.whenIdle()` includes it until it settles.
 */
export async function spawn(
  task: () => Promise<unknown> | unknown,
  options: SpawnOptions = {},
): Promise<void> {
  const runtime = options.runtime ?? (await currentRuntime());
  const activity = runtime.activity;
  activity.taskStarted();
  const onError = options.onError ?? reportFailure;
  void Promise.resolve()
    .then(task)
    .catch((error: unknown) => {
      try {
        onError(error);
      } catch (handlerError) {
        reportFailure(handlerError);
      }
    })
    .finally(() => activity.taskEnded());
}
