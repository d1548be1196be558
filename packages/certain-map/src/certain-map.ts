/**
 * CertainMap: a context object whose TypeScript type records which of its schema's keys hold a
 * value. `get` compiles only for keys that are present; `set`, `remove` and `take` return the same
 * object retyped. The runtime object keeps one hidden-class shape for its whole life (every key is
 * a preallocated slot; absence is a sentinel, never a missing property), so code that reads
 * contexts stays monomorphic in V8.
 *
 * This module holds the contract only; the implementations live in src/internal/ and are chosen
 * by `defineContext`. Not a general-purpose map: keys are fixed by the schema, and a context is
 * used linearly — after `set`/`remove`/`take`, continue with the returned value.
 */

/** Phantom key of the presence record; it exists only in types, never at runtime. */
declare const presence: unique symbol;

/**
 * A context over schema `S` in which the keys `P` are known to be present. Create one with
 * `defineContext<S>()(keys).empty()`.
 *
 * A larger `P` is a subtype of a smaller one, so a function that declares
 * `(ctx: CertainMap<S, 'peer'>)` (or `Has<typeof Ctx, 'peer'>`) accepts any context holding at
 * least `peer`, and rejects at compile time a context that may lack it.
 *
 * Linearity: `set`, `remove` and `take` mutate this object and return it retyped. Keep using the
 * returned value; an older reference keeps its older (possibly wrong) type. Use `fork()` when
 * two branches need their own copy.
 */
export abstract class CertainMap<S extends object, P extends keyof S = never> {
  /** Type-only record of the present keys; makes `CertainMap<S, 'a' | 'b'>` assignable to `CertainMap<S, 'a'>`. */
  declare readonly [presence]: { readonly [K in P]: true };

  /**
   * The value under a key that the type says is present. Throws `ERR_CERTAIN_MAP_ABSENT_KEY` only
   * if a cast let an absent key through.
   */
  abstract get<K extends P>(key: K): S[K];

  /** The value under any schema key, or `undefined` when the key holds no value. */
  abstract maybeGet<K extends keyof S>(key: K): S[K] | undefined;

  /** Whether `key` holds a value; narrows the type of this context when true. */
  abstract has<K extends keyof S>(key: K): this is CertainMap<S, P | K>;

  /** Stores `value` under `key` (replacing any value) and returns this context typed with `key` present. */
  abstract set<K extends keyof S>(key: K, value: S[K]): CertainMap<S, P | K>;

  /** Clears `key` (present or not) and returns this context typed without it. */
  abstract remove<K extends keyof S>(key: K): CertainMap<S, Exclude<P, K>>;

  /** Removes a present key and returns `[value, this context typed without it]`. */
  abstract take<K extends P>(key: K): [value: S[K], context: CertainMap<S, Exclude<P, K>>];

  /** An independent copy with the same type: later changes to either do not show in the other. */
  abstract fork(): CertainMap<S, P>;

  /** The present entries as a plain object, for logs and debugging (allocates; not for hot paths). */
  abstract toJSON(): Partial<S>;
}

/**
 * A subset context (`Ctx.subset(keys)`): a context over schema `S` with slots for the keys `K`
 * only, `P` present. Its type is a whole context's with one difference: `set` takes only the
 * subset's keys, since the runtime object has no slot for the others (a set of one through a
 * cast throws ERR_CERTAIN_MAP_OUTSIDE_SUBSET). It is a `CertainMap<S, P>` for everything else,
 * and `fork()` makes a whole context, which can set any key.
 */
export interface SubsetMap<S extends object, K extends keyof S, P extends keyof S = never>
  extends CertainMap<S, P> {
  /** Whether `key` holds a value (never true for a key outside the subset); narrows when true. */
  has<J extends keyof S>(key: J): this is SubsetMap<S, K, P | J>;
  /**
   * Stores `value` under a key of the subset and returns this context typed with it present.
   * `key & K`, not a type parameter bounded by `K`: that keeps a subset context assignable to a
   * whole one, whose `set` takes any schema key.
   */
  set<J extends keyof S>(key: J & K, value: S[J]): SubsetMap<S, K, P | J>;
  /** Clears `key` (a no-op for a key outside the subset) and returns this context typed without it. */
  remove<J extends keyof S>(key: J): SubsetMap<S, K, Exclude<P, J>>;
  /** Removes a present key and returns `[value, this context typed without it]`. */
  take<J extends P>(key: J): [value: S[J], context: SubsetMap<S, K, Exclude<P, J>>];
}
