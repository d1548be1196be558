/**
 * The portable CertainMap implementation: slots live in a plain record with one own property per
 * schema key, copied from a template so every context of a schema shares one V8 shape. Used when
 * the compiled implementation is unavailable (runtime code generation disallowed, non-string
 * keys) or turned off. Not exported to users.
 */
import { CertainMap } from '../certain-map.js';
import { CertainMapError } from '../errors.js';
import { ABSENT, type Slot } from './absent.js';

/** Storage record of a context: one own property per schema key. */
export type SlotRecord<S extends object> = { [K in keyof S]: Slot<S[K]> };

/** Builds the storage record of an empty context for `keys`, all slots absent. */
export function emptySlotRecord<S extends object>(keys: readonly (keyof S)[]): SlotRecord<S> {
  const slots = {} as SlotRecord<S>;
  for (const key of keys) slots[key] = ABSENT;
  return slots;
}

/** CertainMap over a slot record (see the module header). */
export class SlotRecordMap<S extends object, P extends keyof S = never> extends CertainMap<S, P> {
  /** Preallocated slots; the record's shape never changes after construction. */
  readonly #slots: SlotRecord<S>;
  /**
   * A subset context's whole template (every schema key absent): keys of it that `#slots` lacks
   * are always absent here, and fork() makes a whole context. Undefined for a whole context.
   */
  readonly #whole: SlotRecord<S> | undefined;

  /**
   * Takes ownership of `slots`, a copy of a template made by `emptySlotRecord`; with `whole`, a
   * subset context (see `ContextDefinition.subset`).
   */
  constructor(slots: SlotRecord<S>, whole?: SlotRecord<S>) {
    super();
    this.#slots = slots;
    this.#whole = whole;
  }

  /** Throws for a key that is neither a slot here nor (subset contexts) a key of the schema. */
  #unknown(key: PropertyKey): never {
    throw new CertainMapError(
      this.#whole !== undefined && Object.hasOwn(this.#whole, key)
        ? 'ERR_CERTAIN_MAP_ABSENT_KEY'
        : 'ERR_CERTAIN_MAP_UNKNOWN_KEY',
      key,
    );
  }

  get<K extends P>(key: K): S[K] {
    const value = this.#slots[key];
    if (value === ABSENT) throw new CertainMapError('ERR_CERTAIN_MAP_ABSENT_KEY', key);
    if (value === undefined && !Object.hasOwn(this.#slots, key)) this.#unknown(key);
    return value as S[K];
  }

  maybeGet<K extends keyof S>(key: K): S[K] | undefined {
    const value = this.#slots[key];
    return value === ABSENT ? undefined : (value as S[K]);
  }

  has<K extends keyof S>(key: K): this is CertainMap<S, P | K> {
    const value = this.#slots[key];
    return value !== ABSENT && (value !== undefined || Object.hasOwn(this.#slots, key));
  }

  set<K extends keyof S>(key: K, value: S[K]): CertainMap<S, P | K> {
    const slots = this.#slots;
    if (!Object.hasOwn(slots, key)) {
      throw new CertainMapError(
        this.#whole !== undefined && Object.hasOwn(this.#whole, key)
          ? 'ERR_CERTAIN_MAP_OUTSIDE_SUBSET'
          : 'ERR_CERTAIN_MAP_UNKNOWN_KEY',
        key,
      );
    }
    slots[key] = value;
    return this as CertainMap<S, P | K>;
  }

  remove<K extends keyof S>(key: K): CertainMap<S, Exclude<P, K>> {
    const slots = this.#slots;
    if (!Object.hasOwn(slots, key)) {
      // A subset context never holds a schema key outside its subset: removing it is a no-op.
      if (this.#whole !== undefined && Object.hasOwn(this.#whole, key))
        return this as CertainMap<S, Exclude<P, K>>;
      throw new CertainMapError('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
    }
    slots[key] = ABSENT;
    return this as CertainMap<S, Exclude<P, K>>;
  }

  take<K extends P>(key: K): [value: S[K], context: CertainMap<S, Exclude<P, K>>] {
    const value = this.get(key);
    this.#slots[key] = ABSENT;
    return [value, this as CertainMap<S, Exclude<P, K>>];
  }

  fork(): CertainMap<S, P> {
    // A subset's fork is whole: the template first keeps the whole contexts' property order.
    const whole = this.#whole;
    return new SlotRecordMap<S, P>(whole === undefined ? { ...this.#slots } : { ...whole, ...this.#slots });
  }

  toJSON(): Partial<S> {
    const out: Partial<S> = {};
    const slots = this.#slots;
    for (const key of Reflect.ownKeys(slots) as (keyof S)[]) {
      const value = slots[key];
      if (value !== ABSENT) out[key] = value as S[keyof S];
    }
    return out;
  }
}
