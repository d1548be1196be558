/**
 * Timers of the runtime: sleep() on the thread's driver (a ring timeout on io_uring) and
 * timeout() around any promise. Not for deadlines of single socket operations: pass `timeout`
 * or a `signal` to the operation itself.
 */
import { RuntimeError } from './errors.js';
import { currentRuntime, type Runtime } from './runtime.js';
import type { IoOptions } from './stream.js';

/** Options of sleep(). */
export interface SleepOptions extends IoOptions {
  readonly runtime?: Runtime | undefined;
}

/** Resolves after `ms` milliseconds; rejects with RuntimeError ECANCELED when `signal` aborts. */
export async function sleep(ms: number, options: SleepOptions = {}): Promise<void> {
  const runtime = options.runtime ?? (await currentRuntime());
  return runtime.driver.sleep(ms, options.signal === undefined ? undefined : { signal: options.signal });
}

/**
 * Settles like `work`, or rejects with RuntimeError ETIMEDOUT (syscall 'timeout') after `ms`.
 * Pass a function to have the work cancelled: it receives a signal that aborts at the deadline.
 */
export function timeout<T>(work: Promise<T> | ((signal: AbortSignal) => Promise<T>), ms: number): Promise<T> {
  const controller = typeof work === 'function' ? new AbortController() : undefined;
  const promise = typeof work === 'function' ? work(controller!.signal) : work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new RuntimeError('ETIMEDOUT', 'timeout', { errno: 110, detail: `no result within ${ms} ms` }));
      controller?.abort();
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
