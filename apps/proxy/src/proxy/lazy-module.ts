/**
 * A module imported when a worker's config first needs it (a route table with a gateway route,
 * a gRPC pseudonymization route), not when the worker starts: what a worker never uses costs it
 * no heap. The import starts when the table is built, so it usually finished before the first
 * request; a request that comes first waits for it. A failed import is forgotten, so the next
 * load tries again. Not for modules every worker needs.
 */
export class LazyModule<M> {
  /** The module once imported (the request path's synchronous check), else undefined. */
  loaded: M | undefined = undefined;
  #loading: Promise<M> | undefined = undefined;

  constructor(private readonly importer: () => Promise<M>) {}

  /** Imports the module once (concurrent loads share the import); a failure is forgotten. */
  load(): Promise<M> {
    const loaded = this.loaded;
    if (loaded !== undefined) return Promise.resolve(loaded);
    this.#loading ??= this.importer().then(
      (m) => {
        this.loaded = m;
        return m;
      },
      (e: unknown) => {
        this.#loading = undefined;
        throw e;
      },
    );
    return this.#loading;
  }
}
