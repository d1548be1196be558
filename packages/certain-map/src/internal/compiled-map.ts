/**
 * The fast CertainMap implementation: for each schema, generate (once, at `defineContext` time) a
 * class whose instances hold every key as an own field, and whose methods `switch` on the key.
 * `ctx.get('peer')` then compiles to one monomorphic field load when V8 inlines it, where a
 * shared `slots[key]` lookup would go megamorphic as soon as a program reads two different keys.
 * One allocation per context, one shape per schema.
 *
 * Code generation uses `new Function` over the key names, each emitted as a JSON string literal
 * (never spliced raw). When a key is not a string, or the process forbids code generation from
 * strings, `compileContextClass` returns undefined and the slot-record implementation is used.
 * Not exported to users.
 */
import { CertainMap } from '../certain-map.js';
import { CertainMapError, type CertainMapErrorCode } from '../errors.js';
import { ABSENT } from './absent.js';

/** Constructor of a generated class: no argument for an empty context, a context of the same class to copy. */
export type CompiledContextClass<S extends object> = new (
  source?: CertainMap<S, keyof S>,
) => CertainMap<S, never>;

function fail(code: CertainMapErrorCode, key: PropertyKey): never {
  throw new CertainMapError(code, key);
}

/**
 * A subset class's whole class and schema keys: its contexts hold only some keys, the others are
 * always absent (set refuses them), and fork() makes a context of `Whole` with the subset copied.
 */
export interface SubsetOf<S extends object> {
  readonly Whole: CompiledContextClass<S>;
  readonly allKeys: readonly (keyof S)[];
}

/**
 * Generates the context class for `keys`, or returns undefined when that is not possible here.
 * With `subset`, a class holding only `keys` of the schema `subset.allKeys` (see SubsetOf).
 */
export function compileContextClass<S extends object>(
  keys: readonly (keyof S)[],
  subset?: SubsetOf<S>,
): CompiledContextClass<S> | undefined {
  // A subset of no keys is compiled too: its prototype's accessors (below) are what make a key
  // reader or writer given one of its contexts see the key absent or throw (REVIEW F186).
  if ((keys.length === 0 && subset === undefined) || !keys.every((key) => typeof key === 'string'))
    return undefined;
  // Field names get a '$' prefix so that a schema key can never shadow a method such as `get`.
  const fieldOf = (key: keyof S) => ({
    key: JSON.stringify(key),
    field: JSON.stringify(`$${key as string}`),
  });
  const fields = keys.map(fieldOf);
  // Schema keys a subset context never holds.
  const outside = (subset?.allKeys ?? [])
    .filter((key) => !(keys as readonly (keyof S)[]).includes(key))
    .map(fieldOf);
  const outsideCases = (emit: string) => outside.map(({ key }) => `case ${key}: ${emit}`).join('\n');
  const fork =
    subset === undefined
      ? 'return new CompiledContext(this);'
      : `const whole = new Whole();
        ${fields.map(({ field }) => `whole[${field}] = this[${field}];`).join('\n')}
        return whole;`;
  const each = (emit: (key: string, slot: string) => string) =>
    fields.map(({ key, field }) => emit(key, `this[${field}]`)).join('\n');
  const cases = (emit: (slot: string) => string) =>
    fields.map(({ key, field }) => `case ${key}: ${emit(`this[${field}]`)}`).join('\n');
  const source = `
    return class CompiledContext extends Base {
      constructor(source) {
        super();
        if (source === undefined) {
          ${each((_key, slot) => `${slot} = ABSENT;`)}
        } else {
          ${fields.map(({ field }) => `this[${field}] = source[${field}];`).join('\n')}
        }
      }
      get(key) {
        let value;
        switch (key) {
          ${cases((slot) => `value = ${slot}; break;`)}
          ${outsideCases("return fail('ERR_CERTAIN_MAP_ABSENT_KEY', key);")}
          default: return fail('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
        }
        if (value === ABSENT) fail('ERR_CERTAIN_MAP_ABSENT_KEY', key);
        return value;
      }
      maybeGet(key) {
        let value;
        switch (key) {
          ${cases((slot) => `value = ${slot}; break;`)}
          default: return undefined;
        }
        return value === ABSENT ? undefined : value;
      }
      has(key) {
        switch (key) {
          ${cases((slot) => `return ${slot} !== ABSENT;`)}
          default: return false;
        }
      }
      set(key, value) {
        switch (key) {
          ${cases((slot) => `${slot} = value; return this;`)}
          ${outsideCases("return fail('ERR_CERTAIN_MAP_OUTSIDE_SUBSET', key);")}
          default: return fail('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
        }
      }
      remove(key) {
        switch (key) {
          ${cases((slot) => `${slot} = ABSENT; return this;`)}
          ${outsideCases('return this;')}
          default: return fail('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
        }
      }
      take(key) {
        const value = this.get(key);
        this.remove(key);
        return [value, this];
      }
      fork() {
        ${fork}
      }
      toJSON() {
        const out = {};
        ${each((key, slot) => `if (${slot} !== ABSENT) out[${key}] = ${slot};`)}
        return out;
      }
    };`;
  try {
    const Compiled = new Function('Base', 'ABSENT', 'fail', 'Whole', source)(
      CertainMap,
      ABSENT,
      fail,
      subset?.Whole,
    ) as CompiledContextClass<S>;
    // A subset context has no slot for the schema's other keys: its prototype answers ABSENT for
    // them, so a key reader (compileKeyReaders) given a subset context sees the key absent, and
    // refuses a store, so a key writer (compileKeyWriter) given one throws as `set` does
    // instead of adding a property (which would change the context's shape).
    for (const { key, field } of outside) {
      const name = JSON.parse(key) as string;
      Object.defineProperty(Compiled.prototype, JSON.parse(field), {
        get: () => ABSENT,
        set: () => fail('ERR_CERTAIN_MAP_OUTSIDE_SUBSET', name),
      });
    }
    return Compiled;
  } catch (error) {
    // --disallow-code-generation-from-strings (or a policy) forbids new Function: fall back.
    if (error instanceof EvalError) return undefined;
    throw error;
  }
}

/** A key's readers as standalone functions (see `ContextDefinition.reader`). */
export interface KeyReaders {
  readonly get: (context: object) => unknown;
  readonly maybeGet: (context: object) => unknown;
}

/**
 * Generates the readers of one key of a compiled schema: each is a function of a few bytecodes
 * that loads the key's field, where the class's `get` is a switch over every key (270 bytes of
 * bytecode for 16 keys), so a caller that reads several keys stays within V8's inlining budget.
 * Same contract as the methods: `get` throws ERR_CERTAIN_MAP_ABSENT_KEY for an absent key.
 */
export function compileKeyReaders(key: string): KeyReaders {
  const field = JSON.stringify(`$${key}`);
  const name = JSON.stringify(key);
  return new Function(
    'ABSENT',
    'fail',
    `return {
      get: function get(context) {
        const value = context[${field}];
        if (value === ABSENT) fail('ERR_CERTAIN_MAP_ABSENT_KEY', ${name});
        return value;
      },
      maybeGet: function maybeGet(context) {
        const value = context[${field}];
        return value === ABSENT ? undefined : value;
      },
    };`,
  )(ABSENT, fail) as KeyReaders;
}

/** A key's writer as a standalone function (see `ContextDefinition.writer`). */
export type KeyWriter = (context: object, value: unknown) => object;

/**
 * Generates the writer of one key of a compiled schema: a function of a few bytecodes that stores
 * the key's field and returns the context, where the class's `set` is a switch over every key.
 * Same contract as the method: a subset context's prototype refuses a key outside the subset
 * (ERR_CERTAIN_MAP_OUTSIDE_SUBSET, from its accessor: compileContextClass).
 */
export function compileKeyWriter(key: string): KeyWriter {
  const field = JSON.stringify(`$${key}`);
  return new Function(
    `return function set(context, value) {
      context[${field}] = value;
      return context;
    };`,
  )() as KeyWriter;
}
