/**
 * A promise whose settlers are taken out without a closure per promise: `new Promise(capture)`
 * with one module-level executor that parks the settlers in module state, from which the caller
 * moves them into its own fields at once. For services that answer synchronously most of the
 * time and build the promise a caller waits on only when they must (a request body read, a
 * response body step, a waited write on top of promise-free I/O: @loch/http, @loch/transports). Node 20 has no Promise.withResolvers (and it allocates an object
 * per call). Not a deferred class: one promise in flight per field, owned by one connection.
 */

type Settler = (value: unknown) => void;

/** What a settler field holds while nothing waits: compare against it; calling it does nothing. */
export const NO_SETTLER: Settler = () => {};

let lastResolve: Settler = NO_SETTLER;
let lastReject: Settler = NO_SETTLER;

function capture(resolve: Settler, reject: Settler): void {
  lastResolve = resolve;
  lastReject = reject;
}

/**
 * A new pending promise. Call takeResolve() and takeReject() right after it (before anything
 * else makes a promise this way) and keep what they return: nothing else can settle it.
 */
export function pendingPromise<T>(): Promise<T> {
  return new Promise<T>(capture as never);
}

/** The resolve function of the promise pendingPromise() made last. */
export function takeResolve<T>(): (value: T | PromiseLike<T>) => void {
  const resolve = lastResolve as (value: T | PromiseLike<T>) => void;
  lastResolve = NO_SETTLER;
  return resolve;
}

/** The reject function of the promise pendingPromise() made last. */
export function takeReject(): (reason: unknown) => void {
  const reject = lastReject;
  lastReject = NO_SETTLER;
  return reject;
}
