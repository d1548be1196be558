/**
 * Factories of services. `make(old)` builds a service and may carry state from the service it
 * replaces (a connection pool, a counter, a cache): that is how a hot reload keeps state while
 * swapping configuration. Not for per-request work: factories run at start and on reload.
 */
import { ServiceAsyncError } from './errors.js';

/**
 * Builds services of type `S` synchronously. `old`, when given, is the service being replaced;
 * the factory may move state out of it into the new one (layers pass `old.inner` down so every
 * level can do the same). `make` is a method, so `MakeService<Concrete>` is usable where a
 * `MakeService<Interface>` is expected.
 */
export interface MakeService<S> {
  /** Builds a service, optionally from the one it replaces. Throws if it cannot. */
  make(old?: S): S;
}

/** Builds services of type `S` asynchronously (e.g. when building needs I/O: DNS, a TLS key). */
export interface AsyncMakeService<S> {
  /** Builds a service, optionally from the one it replaces. Rejects if it cannot. */
  makeAsync(old?: S): Promise<S>;
}

/** Any factory of `S`: sync, async, or both. */
export type Factory<S> = MakeService<S> | AsyncMakeService<S>;

/** The service type a factory type builds. */
export type ServiceOf<F> =
  F extends MakeService<infer S> ? S : F extends AsyncMakeService<infer S> ? S : never;

/**
 * The factory type that a wrapper of `Wrapped` factories presents: sync and async when every
 * wrapped factory is sync, async-only when any of them is async-only.
 */
export type FactoryOf<Wrapped, S> = [Wrapped] extends [MakeService<unknown>]
  ? MakeService<S> & AsyncMakeService<S>
  : AsyncMakeService<S>;

/** Wraps a function as a MakeService. */
export function makeFn<S>(make: (old?: S) => S): MakeService<S> {
  return { make };
}

/** Wraps an async function as an AsyncMakeService. */
export function asyncMakeFn<S>(makeAsync: (old?: S) => Promise<S>): AsyncMakeService<S> {
  return { makeAsync };
}

/** Whether `factory` can build synchronously. */
export function isMakeService<S>(factory: Factory<S>): factory is MakeService<S> {
  return typeof (factory as Partial<MakeService<S>>).make === 'function';
}

/** Builds with `makeAsync` when the factory has it, else with `make`. */
export function buildAsync<S>(factory: Factory<S>, old?: S): Promise<S> {
  const async = (factory as Partial<AsyncMakeService<S>>).makeAsync;
  if (typeof async === 'function') return async.call(factory, old);
  try {
    return Promise.resolve((factory as MakeService<S>).make(old));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Builds with `make`; throws `ERR_SERVICE_ASYNC_ONLY_FACTORY` if the factory is async-only. */
export function buildSync<S>(factory: Factory<S>, old?: S): S {
  if (!isMakeService(factory)) {
    throw new ServiceAsyncError(
      'ERR_SERVICE_ASYNC_ONLY_FACTORY',
      'this factory can only build asynchronously: use makeAsync()',
    );
  }
  return factory.make(old);
}
