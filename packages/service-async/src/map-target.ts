/**
 * MapTargetFactory: a factory that maps every service its inner factory builds (to box it, adapt
 * its types, or attach something). Used by `FactoryStack.pushMapTarget`. Not a request mapper:
 * the function runs once per build, never per request.
 */
import { buildAsync, buildSync, type Factory } from './make-service.js';

/**
 * Mapped service -> the inner service it was made from, so `make(old)` can hand the inner factory
 * its own old service. Module-wide (not per factory) because on a reload the old service was
 * built by the previous stack's factory. Weak, so replaced services are collected.
 */
const sourceOfMapped = new WeakMap<object, unknown>();

/** Builds `map(inner service)`; carries `old` through to the inner factory. */
export class MapTargetFactory<S, T> {
  /** The wrapped factory. */
  readonly inner: Factory<S>;
  /** The mapping, applied once per build. */
  readonly map: (service: S) => T;

  constructor(inner: Factory<S>, map: (service: S) => T) {
    this.inner = inner;
    this.map = map;
  }

  /** Builds synchronously (throws `ERR_SERVICE_ASYNC_ONLY_FACTORY` if the inner factory is async-only). */
  make(old?: T): T {
    return this.#mapped(buildSync(this.inner, this.#source(old)));
  }

  /** Builds. */
  async makeAsync(old?: T): Promise<T> {
    return this.#mapped(await buildAsync(this.inner, this.#source(old)));
  }

  #source(old: T | undefined): S | undefined {
    return (typeof old === 'object' && old !== null) || typeof old === 'function'
      ? (sourceOfMapped.get(old) as S | undefined)
      : undefined;
  }

  #mapped(service: S): T {
    const mapped = this.map(service);
    if ((typeof mapped === 'object' && mapped !== null) || typeof mapped === 'function') {
      sourceOfMapped.set(mapped, service);
    }
    return mapped;
  }
}
