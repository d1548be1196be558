/**
 * What a worker started by start() sees: its index, the runtime, the stop signal and the command
 * channel (onCommand). Available through workerContext() in any module of the worker thread.
 * Not for the main thread, where workerContext() is undefined.
 */
import { RuntimeError } from '../errors.js';
import type { Runtime } from '../runtime.js';

/** Handles a command sent with broadcast()/send(); its return value (or promise) is the reply. */
export type CommandHandler = (message: unknown) => unknown;

/** The context passed to a worker's main and returned by workerContext(). */
export interface WorkerContext {
  /** 0-based index of this worker. */
  readonly index: number;
  /** Number of workers started. */
  readonly workers: number;
  /**
   * How many threads ran this index before this one: 0 for the worker start() started, n for
   * the n-th replacement after a crash (StartOptions.restart).
   */
  readonly restarts: number;
  /** This thread's runtime (its own driver, and its own ring on io_uring). */
  readonly runtime: Runtime;
  /** `data` given to start() (a replacement: the last `pool.setData()`), structured-cloned. */
  readonly data: unknown;
  /** Aborted when a graceful stop begins: stop taking new work, finish what is open. */
  readonly signal: AbortSignal;
  /** CPU this worker's thread was pinned to, when cpuAffinity was asked and worked. */
  readonly cpu: number | undefined;
  /** Registers the command handler (one per worker; a later call replaces it). */
  onCommand(handler: CommandHandler): void;
  /**
   * A graceful stop ends this thread only once `work` has settled (and then every stream is
   * closed): e.g. the worker's own shutdown, which logs and flushes after its connections end.
   * Without it the thread may end as soon as its last stream closes, with that work unfinished.
   * Hand it over before the stop, or synchronously in `signal`'s abort listener: the stop takes
   * the list a few steps after the abort, and work handed over later is not waited for. Work
   * that never settles (a log close stuck on a dead disk) keeps the thread until the stop's
   * deadline forces it.
   */
  waitUntil(work: PromiseLike<unknown>): void;
}

const CONTEXT_KEY = Symbol.for('@loch/uring-runtime.worker');

/** The calling thread's worker context, or undefined outside workers started by start(). */
export function workerContext(): WorkerContext | undefined {
  return (globalThis as { [CONTEXT_KEY]?: WorkerContext })[CONTEXT_KEY];
}

/** @internal Installs the context of this worker thread (bootstrap). */
export function setWorkerContext(context: WorkerContext): void {
  (globalThis as { [CONTEXT_KEY]?: WorkerContext })[CONTEXT_KEY] = context;
}

/**
 * Registers this worker's command handler. Throws ERR_LOCH_NOT_A_WORKER outside a worker
 * started by start().
 */
export function onCommand(handler: CommandHandler): void {
  const context = workerContext();
  if (context === undefined) {
    throw new RuntimeError('ERR_LOCH_NOT_A_WORKER', 'onCommand', {
      detail: 'only available in workers started by start()',
    });
  }
  context.onCommand(handler);
}
