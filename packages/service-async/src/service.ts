/**
 * The Service contract: one method, `call(req)`, returning a promise of the response. No
 * readiness poll (unlike tower): back-pressure and limits are layers. Not for building services:
 * see MakeService and FactoryStack for that.
 */

/**
 * Something that answers requests. `call` is declared as a property so that request types are
 * checked contravariantly: a `Service<string, R>` may stand in for a `Service<'GET' | 'PUT', R>`,
 * never the other way round. Classes implement it with an ordinary (async) method.
 *
 * Why always `Promise<Res>` and not `Res | Promise<Res>`: one contract means layers are written
 * as `await inner.call(req)` with a single error path (rejections), where a union would make
 * every layer branch on thenables and handle sync throws and rejections separately. The
 * framework's own wrappers (Either, slot services) return the inner promise as is, adding no
 * allocation per request.
 */
export interface Service<Req, Res> {
  /** Answers one request. Errors are rejections. */
  readonly call: (req: Req) => Promise<Res>;
}

/** The request type of a service type (`unknown` for `never`, so a missing branch stays callable). */
export type RequestOf<S> = [S] extends [never]
  ? unknown
  : S extends Service<infer Req, infer _Res>
    ? Req
    : never;

/** The response type of a service type. */
export type ResponseOf<S> = S extends Service<infer _Req, infer Res> ? Res : never;

/** Wraps a function as a Service (the function is the `call`; no per-request wrapper). */
export function serviceFn<Req, Res>(call: (req: Req) => Promise<Res>): Service<Req, Res> {
  return { call };
}
