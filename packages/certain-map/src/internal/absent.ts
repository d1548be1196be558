/**
 * The sentinel stored in a slot that holds no value. Distinct from `undefined`, which is a
 * storable value. Internal: users see absence only through `has`/`maybeGet`.
 */
export const ABSENT: unique symbol = Symbol('certain-map.absent');

/** A slot's content: a value or ABSENT. */
export type Slot<T> = T | typeof ABSENT;
