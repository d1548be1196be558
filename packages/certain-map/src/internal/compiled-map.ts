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

/** Generates the context class for `keys`, or returns undefined when that is not possible here. */
export function compileContextClass<S extends object>(
  keys: readonly (keyof S)[],
): CompiledContextClass<S> | undefined {
  if (keys.length === 0 || !keys.every((key) => typeof key === 'string')) return undefined;
  // Field names get a '$' prefix so that a schema key can never shadow a method such as `get`.
  const fields = keys.map((key) => ({
    key: JSON.stringify(key),
    field: JSON.stringify(`$${key as string}`),
  }));
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
          default: return fail('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
        }
      }
      remove(key) {
        switch (key) {
          ${cases((slot) => `${slot} = ABSENT; return this;`)}
          default: return fail('ERR_CERTAIN_MAP_UNKNOWN_KEY', key);
        }
      }
      take(key) {
        const value = this.get(key);
        this.remove(key);
        return [value, this];
      }
      fork() {
        return new CompiledContext(this);
      }
      toJSON() {
        const out = {};
        ${each((key, slot) => `if (${slot} !== ABSENT) out[${key}] = ${slot};`)}
        return out;
      }
    };`;
  try {
    return new Function('Base', 'ABSENT', 'fail', source)(
      CertainMap,
      ABSENT,
      fail,
    ) as CompiledContextClass<S>;
  } catch (error) {
    // --disallow-code-generation-from-strings (or a policy) forbids new Function: fall back.
    if (error instanceof EvalError) return undefined;
    throw error;
  }
}
