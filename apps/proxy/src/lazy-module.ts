/**
 * A module imported when first needed: code an isolate loads only once its config asks for it
 * (a worker's gateway dispatch and gRPC schema side, the main thread's PROXY header encoder;
 * issue 18, bench/idle-memory/readings-2026-12-06c.md). One rule for all of them: `load()`
 * starts the import, or returns the one in flight or done; a failed import is forgotten, so
 * the next `load()` tries again; `loaded` is the module once imported, for a synchronous path
 * that must not wait. Not for modules every isolate needs (those are imported statically), nor
 * for a load whose failure must refuse a config (worker.ts awaits its thrift relay in precommit).
 */

/** A lazily imported module (lazyModule). */
export interface LazyModule<M> {
  /** The module once its import has resolved; undefined before, and while a failed one is retried. */
  readonly loaded: M | undefined;
  /** Starts the import, or returns the one in flight or done; rejects with the import's error. */
  load(): Promise<M>;
}

/** `importer` (an `() => import(...)`) behind the LazyModule rule. */
export function lazyModule<M>(importer: () => Promise<M>): LazyModule<M> {
  let loaded: M | undefined;
  let loading: Promise<M> | undefined;
  return {
    get loaded() {
      return loaded;
    },
    load() {
      if (loaded !== undefined) return Promise.resolve(loaded);
      loading ??= importer().then(
        (m) => {
          loaded = m;
          return m;
        },
        (error: unknown) => {
          // Forgotten: the next load() imports again.
          loading = undefined;
          throw error;
        },
      );
      return loading;
    },
  };
}
