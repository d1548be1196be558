/**
 * The one error class of @loch/certain-map. The type system rules these failures out for code
 * that stays inside the typed API; they surface only when a cast or `any` let a wrong key through,
 * or when a schema is declared with a bad key list. Not for application errors of the values
 * stored in a context.
 */

/** Stable codes of {@link CertainMapError}. */
export type CertainMapErrorCode =
  /** `get`/`take` of a key that holds no value (reachable only by escaping the types). */
  | 'ERR_CERTAIN_MAP_ABSENT_KEY'
  /** A key that the schema does not declare (reachable only by escaping the types). */
  | 'ERR_CERTAIN_MAP_UNKNOWN_KEY'
  /** `defineContext` got the same key twice. */
  | 'ERR_CERTAIN_MAP_DUPLICATE_KEY'
  /**
   * `set` of a schema key outside a subset context's keys (`Ctx.subset(keys)`): such a context
   * never holds it; `fork()` it into a whole context first.
   */
  | 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET';

/** A misuse of a certain map that the types could not catch; `key` names the key involved. */
export class CertainMapError extends Error {
  override readonly name = 'CertainMapError';
  /** Stable machine-readable code. */
  readonly code: CertainMapErrorCode;
  /** The key that was absent, unknown, duplicated or outside a subset. */
  readonly key: PropertyKey;

  constructor(code: CertainMapErrorCode, key: PropertyKey) {
    const what =
      code === 'ERR_CERTAIN_MAP_ABSENT_KEY'
        ? 'holds no value'
        : code === 'ERR_CERTAIN_MAP_UNKNOWN_KEY'
          ? 'is not declared by the context schema'
          : code === 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET'
            ? 'is outside this subset context (fork() it into a whole context first)'
            : 'is declared twice in the context schema';
    super(`context key ${String(key)} ${what}`);
    this.code = code;
    this.key = key;
  }
}
