/**
 * Declaring a context schema once: `defineContext<Schema>()(keys)` pairs the TypeScript schema
 * with the runtime key list (types are erased, so the keys must be spelled once at runtime) and
 * returns a definition that creates empty contexts of one fixed shape. `Has` lets a service say
 * which keys it needs. Not for per-request work: define a context once at module scope.
 */
import type { CertainMap, SubsetMap } from './certain-map.js';
import { CertainMapError } from './errors.js';
import {
  type CompiledContextClass,
  compileContextClass,
  compileKeyReaders,
  compileKeyWriter,
} from './internal/compiled-map.js';
import { emptySlotRecord, type SlotRecord, SlotRecordMap } from './internal/slot-record-map.js';

/** Schema keys missing from a key list, shown in the compile error when `defineContext` is incomplete. */
type MissingKeys<S extends object, K extends readonly PropertyKey[]> = Exclude<keyof S, K[number]>;

/** Accepts a key list only if it names every key of the schema. */
type ExhaustiveKeys<S extends object, K extends readonly PropertyKey[]> = [MissingKeys<S, K>] extends [never]
  ? unknown
  : { readonly 'missing keys': MissingKeys<S, K> };

/** Options of `defineContext`. */
export interface ContextOptions {
  /**
   * 'compiled' (default) generates a class per schema whose methods switch on the key, so
   * `get('peer')` inlines to a field load; it needs string keys and runtime code generation, and
   * falls back to 'record' without them. 'record' stores slots in a plain record (no codegen).
   */
  readonly implementation?: 'compiled' | 'record';
}

/** A declared context schema: creates contexts whose slots are exactly the schema's keys. */
export class ContextDefinition<S extends object> {
  /** The schema's keys, in slot order. */
  readonly keys: readonly (keyof S)[];
  /** Which implementation this definition's contexts use (after any fallback). */
  readonly implementation: 'compiled' | 'record';
  /** Creates an empty context; every context of this definition has the same V8 shape. */
  readonly #create: () => CertainMap<S, never>;
  /** The generated class ('compiled'), or the empty record template ('record'). */
  readonly #whole: CompiledContextClass<S> | SlotRecord<S>;

  /** Use `defineContext<S>()(keys)`. @internal */
  constructor(keys: readonly (keyof S)[], options: ContextOptions = {}) {
    const seen = new Set<keyof S>();
    for (const key of keys) {
      if (seen.has(key)) throw new CertainMapError('ERR_CERTAIN_MAP_DUPLICATE_KEY', key);
      seen.add(key);
    }
    this.keys = Object.freeze([...keys]);
    const Compiled = options.implementation === 'record' ? undefined : compileContextClass<S>(this.keys);
    if (Compiled !== undefined) {
      this.implementation = 'compiled';
      this.#create = () => new Compiled();
      this.#whole = Compiled;
    } else {
      const template = emptySlotRecord<S>(this.keys);
      this.implementation = 'record';
      this.#create = () => new SlotRecordMap<S>({ ...template });
      this.#whole = template;
    }
  }

  /**
   * A subset of this schema for contexts that live long and hold few keys (a server's context
   * per connection, forked into a whole context per request): its contexts have a slot only for
   * `keys` (on Node 20, 8 bytes per slot saved per context), the schema's other keys are always
   * absent in them (`set` of one throws ERR_CERTAIN_MAP_OUTSIDE_SUBSET), and their `fork()` is a
   * whole context of this definition holding the same entries. Typed `SubsetMap`: a whole
   * context's type whose `set` takes the subset's keys only. Define it once, at module scope,
   * like the definition.
   */
  subset<const K extends readonly (keyof S)[]>(keys: K): ContextSubset<S, K[number]> {
    return new ContextSubset<S, K[number]>(this.keys, keys, this.#whole);
  }

  /**
   * One key's readers as standalone functions, for a hot path that reads several keys of a
   * context: `const Request = Ctx.reader('request')` once at module scope, then
   * `Request.get(ctx)` is `ctx.get('request')` (compiles only where the key is present, throws
   * the same errors) and `Request.maybeGet(ctx)` is `ctx.maybeGet('request')`. Why: with the
   * compiled implementation a reader is one field load of a few bytecodes, where the `get` method
   * switches over every key, so V8 stops inlining it after a few calls in one function (its
   * cumulative inlining budget) and each further read is a call. Works with subset contexts too.
   */
  reader<K extends keyof S>(key: K): ContextKeyReader<S, K> {
    if (!this.keys.includes(key)) throw new CertainMapError('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
    if (this.implementation === 'compiled') {
      const { get, maybeGet } = compileKeyReaders(key as string);
      return { key, get, maybeGet } as ContextKeyReader<S, K>;
    }
    return {
      key,
      get: (context: CertainMap<S, K>) => context.get(key),
      maybeGet: (context: CertainMap<S, never>) => context.maybeGet(key),
    };
  }

  /**
   * One key's writer as a standalone function, the `set` counterpart of `reader`: `const
   * SetRoute = Ctx.writer('route')` once at module scope, then `SetRoute.set(ctx, match)` is
   * `ctx.set('route', match)`: it stores the value and returns the same context typed with the
   * key present. Why: with the compiled implementation it is one field store, where the `set`
   * method switches over every key and stops being inlined after a few calls in one function.
   * For whole contexts: its type does not know a subset context's keys, so on a subset context
   * a key outside the subset compiles and throws ERR_CERTAIN_MAP_OUTSIDE_SUBSET (the subset's
   * own `set` does not compile there).
   */
  writer<K extends keyof S>(key: K): ContextKeyWriter<S, K> {
    if (!this.keys.includes(key)) throw new CertainMapError('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
    if (this.implementation === 'compiled') {
      return { key, set: compileKeyWriter(key as string) } as ContextKeyWriter<S, K>;
    }
    return {
      key,
      set: <P extends keyof S>(context: CertainMap<S, P>, value: S[K]) => context.set(key, value),
    };
  }

  /** A new context with no key present. */
  empty(): CertainMap<S, never> {
    return this.#create();
  }

  /** A new context holding the given entries, typed with exactly those keys present. */
  of<P extends keyof S>(entries: Pick<S, P>): CertainMap<S, P> {
    let context: CertainMap<S, keyof S> = this.#create() as CertainMap<S, keyof S>;
    for (const key of Object.keys(entries) as P[]) context = context.set(key, entries[key]);
    return context;
  }
}

/** One key's readers (`Ctx.reader(key)`): the `get` and `maybeGet` of contexts of the definition. */
export interface ContextKeyReader<S extends object, K extends keyof S> {
  /** The key read. */
  readonly key: K;
  /** `context.get(key)`: compiles only for a context holding the key. */
  readonly get: (context: CertainMap<S, K>) => S[K];
  /** `context.maybeGet(key)`: the value or `undefined`, for any context of the schema. */
  readonly maybeGet: (context: CertainMap<S, never>) => S[K] | undefined;
}

/** One key's writer (`Ctx.writer(key)`): the `set` of contexts of the definition. */
export interface ContextKeyWriter<S extends object, K extends keyof S> {
  /** The key written. */
  readonly key: K;
  /** `context.set(key, value)`: stores the value, returns the same context typed with the key present. */
  readonly set: <P extends keyof S>(context: CertainMap<S, P>, value: S[K]) => CertainMap<S, P | K>;
}

/** A subset of a schema's keys (`Ctx.subset(keys)`): creates subset contexts. */
export class ContextSubset<S extends object, K extends keyof S> {
  /** The subset's keys, in slot order. */
  readonly keys: readonly K[];
  readonly #create: () => SubsetMap<S, K>;

  /** Use `Ctx.subset(keys)`. @internal */
  constructor(
    allKeys: readonly (keyof S)[],
    keys: readonly K[],
    whole: CompiledContextClass<S> | SlotRecord<S>,
  ) {
    const seen = new Set<keyof S>();
    for (const key of keys) {
      if (seen.has(key)) throw new CertainMapError('ERR_CERTAIN_MAP_DUPLICATE_KEY', key);
      if (!allKeys.includes(key)) throw new CertainMapError('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
      seen.add(key);
    }
    this.keys = Object.freeze([...keys]);
    const Compiled =
      typeof whole === 'function' ? compileContextClass<S>(this.keys, { Whole: whole, allKeys }) : undefined;
    // The runtime classes implement the whole contract; SubsetMap only narrows `set`'s keys.
    if (Compiled !== undefined) this.#create = () => new Compiled() as SubsetMap<S, K>;
    else {
      const template = emptySlotRecord<S>(this.keys);
      const wholeTemplate = typeof whole === 'function' ? emptySlotRecord<S>(allKeys) : whole;
      this.#create = () => new SlotRecordMap<S>({ ...template }, wholeTemplate) as SubsetMap<S, K>;
    }
  }

  /** A new subset context with no key present: `set` takes the subset's keys only. */
  empty(): SubsetMap<S, K> {
    return this.#create();
  }

  /** A new subset context holding the given entries (keys of the subset only). */
  of<P extends K>(entries: Pick<S, P>): SubsetMap<S, K, P> {
    let context: SubsetMap<S, K, keyof S> = this.#create() as SubsetMap<S, K, keyof S>;
    for (const key of Object.keys(entries) as P[]) context = context.set(key, entries[key]);
    return context;
  }
}

/**
 * Declares a context schema. Curried so that the schema is given explicitly while the key list
 * is inferred: `defineContext<{ peer: SocketAddress; requestId: string }>()(['peer', 'requestId'])`.
 * The key list must name every schema key exactly once (checked at compile time and at runtime).
 */
export function defineContext<S extends object>(): <const K extends readonly (keyof S)[]>(
  keys: K & ExhaustiveKeys<S, K>,
  options?: ContextOptions,
) => ContextDefinition<S> {
  return (keys, options) => new ContextDefinition<S>(keys, options);
}

/** The schema of a definition (`typeof Ctx`), of a context type, or a schema type itself. */
export type SchemaOf<T> =
  T extends ContextDefinition<infer S>
    ? S
    : T extends CertainMap<infer S, infer _P>
      ? S
      : T extends object
        ? T
        : never;

/**
 * The type of a context that holds at least the keys `K`: a service declares its needs with
 * `(ctx: Has<typeof Ctx, 'peer' | 'requestId'>)`, and callers with a context that may lack one of
 * them do not compile. `T` is a definition (`typeof Ctx`), a schema type, or a context type.
 */
export type Has<T, K extends keyof SchemaOf<T>> = CertainMap<SchemaOf<T>, K>;

/** The type of an empty context of `T` (a definition, schema or context type). */
export type EmptyContext<T> = CertainMap<SchemaOf<T>, never>;
