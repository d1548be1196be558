/**
 * Typed errors of @loch/service-async: misuse of a deployment slot (commit with nothing staged,
 * a second precommit while one is pending) and a failed precommit across slots, which names the
 * slot that failed. Not for errors of the services themselves: a service's `call` rejects with
 * whatever its own domain defines.
 */

/** Stable codes of {@link ServiceAsyncError}. */
export type ServiceAsyncErrorCode =
  /** `ServiceSlot.get()` before any service was committed. */
  | 'ERR_SERVICE_SLOT_EMPTY'
  /** `precommit` while another staged (or building) service is pending: commit or abort it first. */
  | 'ERR_SERVICE_ALREADY_STAGED'
  /** `commit` with no staged service. */
  | 'ERR_SERVICE_NOT_STAGED'
  /** A precommit finished building after `abort()`; its service was dropped. */
  | 'ERR_SERVICE_PRECOMMIT_ABORTED'
  /** A synchronous `make` reached a factory that can only build asynchronously. */
  | 'ERR_SERVICE_ASYNC_ONLY_FACTORY'
  /** `Deployment.precommitAll`: building at least one slot's service threw; every slot was aborted. */
  | 'ERR_SERVICE_PRECOMMIT_FAILED';

/** A misuse of the service-async machinery, with a stable `code`. */
export class ServiceAsyncError extends Error {
  override readonly name: string = 'ServiceAsyncError';
  /** Stable machine-readable code. */
  readonly code: ServiceAsyncErrorCode;

  constructor(code: ServiceAsyncErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${message} (${code})`, options);
    this.code = code;
  }
}

/** One slot whose precommit threw. */
export interface PrecommitFailure {
  /** Index of the slot in the deployment. */
  readonly slotIndex: number;
  /** The slot's name (e.g. `worker-3`). */
  readonly slotName: string;
  /** What the factory threw. */
  readonly error: unknown;
}

/**
 * `Deployment.precommitAll` failed: every slot was aborted and keeps serving its current service.
 * `slotIndex`/`slotName`/`cause` describe the first failing slot (by index); `failures` lists all.
 */
export class PrecommitError extends ServiceAsyncError {
  override readonly name = 'PrecommitError';
  /** Index of the first slot that failed. */
  readonly slotIndex: number;
  /** Name of the first slot that failed. */
  readonly slotName: string;
  /** Every slot that failed, in slot order. */
  readonly failures: readonly PrecommitFailure[];

  constructor(failures: readonly PrecommitFailure[]) {
    const first = failures[0];
    if (first === undefined) throw new RangeError('PrecommitError needs at least one failure');
    const reason = first.error instanceof Error ? first.error.message : String(first.error);
    const others = failures.length > 1 ? ` (and ${failures.length - 1} more slot(s))` : '';
    super(
      'ERR_SERVICE_PRECOMMIT_FAILED',
      `precommit of slot ${first.slotName} (#${first.slotIndex}) failed: ${reason}${others}; all slots aborted`,
      { cause: first.error },
    );
    this.slotIndex = first.slotIndex;
    this.slotName = first.slotName;
    this.failures = failures;
  }
}
