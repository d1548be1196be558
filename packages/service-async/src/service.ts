/**
 * The Service contract: one method, `call(req)`, answering with the response or a promise of it.
 * No readiness poll (unlike tower): back-pressure and limits are layers. Not for building
 * services: see MakeService and FactoryStack for that.
 */

/** What `call` answers: the response itself when it is known at once, else a promise of it. */
export type Answer<Res> = Res | Promise<Res>;

/**
 * Something that answers requests. `call` is declared as a property so that request types are
 * checked contravariantly: a `Service<string, R>` may stand in for a `Service<'GET' | 'PUT', R>`,
 * never the other way round. Classes implement it with an ordinary (or async) method.
 *
 * Why `Res | Promise<Res>` and not always `Promise<Res>` (measured, bench/sync-or-promise.ts):
 * a chain of 4 layers over a service that answers at once costs 26-29 ns and 16 B per call when
 * the answer may be a plain value, against 67 ns / 269 B (layers passing the promise on) and
 * 179 ns / 236 B (layers mapping the response with `then`) when it must be a promise; when the
 * innermost service does answer later, the union costs the same as the promise (70 vs 67 ns,
 * 180 vs 179 ns): the consumer's `instanceof Promise` check is noise. So a service that can
 * answer synchronously (a static reply, a cache hit, a rejection) allocates no promise anywhere
 * in the chain, and a request path that must wait pays nothing for that option.
 *
 * What it asks of callers: a layer that only passes the answer on returns it as is; a layer that
 * works on the response branches once (`out instanceof Promise ? out.then(f) : f(out)`) or is
 * `async` and awaits. Errors are thrown or rejected: a caller that needs one error path wraps
 * the call in try/catch and handles rejections (as `await` in a try does).
 */
export interface Service<Req, Res> {
  /** Answers one request, at once or later. Errors are thrown or rejected. */
  readonly call: (req: Req) => Answer<Res>;
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
export function serviceFn<Req, Res>(call: (req: Req) => Answer<Res>): Service<Req, Res> {
  return { call };
}
