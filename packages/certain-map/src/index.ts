/**
 * @loch/certain-map: a typed context map whose type records which keys are present. Reading a
 * key that no earlier step set is a compile error; the runtime object keeps a single shape.
 * Not a general-purpose Map: keys come from a schema declared once with `defineContext`.
 */
export { CertainMap, type SubsetMap } from './certain-map.js';
export {
  ContextDefinition,
  type ContextKeyReader,
  type ContextKeyWriter,
  type ContextOptions,
  ContextSubset,
  defineContext,
  type EmptyContext,
  type Has,
  type SchemaOf,
} from './define-context.js';
export { CertainMapError, type CertainMapErrorCode } from './errors.js';
