/**
 * The execArgv of a worker thread. Node refuses V8 and process-wide options (`--max-old-space-size`,
 * `--expose-gc`, `--stack-size`...) in a Worker's explicit `execArgv` (ERR_WORKER_INVALID_EXEC_ARGV)
 * but lets a worker inherit them when none is given; V8's flags are the process's anyway. So a
 * worker inherits (no execArgv) unless a flag must be added, and then it gets the parent's flags
 * less those Node refuses. Without this, `node --max-old-space-size=4096 loch run ...` failed every
 * worker at start.
 *
 * Not for V8 flags set at run time (apps/proxy's LOCH_V8_FLAGS).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The explicit execArgv for workers that need `required` flags, or undefined to inherit the parent's. */
export function workerExecArgv(required: readonly string[]): string[] | undefined {
  const missing = required.filter((flag) => !process.execArgv.includes(flag));
  return missing.length === 0 ? undefined : [...process.execArgv, ...missing];
}

const REFUSED = /invalid execArgv flags: (.+)$/;

/**
 * `new Worker(target, options)`; when Node refuses some of an explicit execArgv's flags (the
 * parent's V8 or process-wide ones, named in its error), once more without them.
 */
export function createWorker(target: string | URL, options: WorkerOptions): Worker {
  try {
    return new Worker(target, options);
  } catch (e) {
    const execArgv = options.execArgv;
    const refused =
      (e as { code?: unknown }).code === 'ERR_WORKER_INVALID_EXEC_ARGV'
        ? REFUSED.exec(String((e as Error).message))
        : null;
    if (execArgv === undefined || refused === null) throw e;
    const drop = new Set(refused[1]!.split(', '));
    const kept = execArgv.filter((flag) => !drop.has(flag));
    if (kept.length === execArgv.length) throw e;
    return new Worker(target, { ...options, execArgv: kept });
  }
}
