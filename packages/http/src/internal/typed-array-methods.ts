/**
 * %TypedArray%.prototype.set, .subarray and .copyWithin, read once, for the hot paths that copy into or view
 * memory that is sometimes a plain Uint8Array (the runtime's receive chunks, lent pieces of the
 * write slab) and sometimes a Buffer (tests, adapters, heads above the lending size). A site that
 * sees both leaves `x.set` / `x.subarray` a generic load in TurboFan's code: a LoadIC call (with
 * its trampoline, ~150-200 instructions, callgrind: bench/http-proxy/per-request-2026-12-04.md,
 * -06d.md); a known function called with .call is a direct call. Same results: Buffer has no
 * `set` or `subarray` of its own, and subarray still makes its view through the receiver's
 * species (a Buffer's is a Buffer). Not for cold paths, where `x.set(...)` reads better.
 */
const proto = Object.getPrototypeOf(Uint8Array.prototype) as {
  set(this: Uint8Array, src: ArrayLike<number>, offset: number): void;
  subarray(this: Uint8Array, start: number, end?: number): Uint8Array;
  copyWithin(this: Uint8Array, target: number, start: number, end: number): Uint8Array;
};

/** %TypedArray%.prototype.set: `typedArraySet.call(out, src, offset)`. */
export const typedArraySet: (this: Uint8Array, src: ArrayLike<number>, offset: number) => void = proto.set;

/** %TypedArray%.prototype.subarray: `typedArraySubarray.call(input, start, end)`. */
export const typedArraySubarray: (this: Uint8Array, start: number, end?: number) => Uint8Array =
  proto.subarray;

/** %TypedArray%.prototype.copyWithin: `typedArrayCopyWithin.call(out, target, start, end)`. */
export const typedArrayCopyWithin: (
  this: Uint8Array,
  target: number,
  start: number,
  end: number,
) => Uint8Array = proto.copyWithin;
