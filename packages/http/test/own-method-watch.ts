/**
 * Test support: an own method `name` on Buffer.prototype and Uint8Array.prototype, which a
 * `x.set(...)` / `x.subarray(...)` on either kind finds before %TypedArray%.prototype's, records
 * the calls `on(this, args)` picks (by the prototype's name) and forwards them to the real one.
 * Hot paths that call the %TypedArray% method itself (internal/typed-array-methods.ts) are never
 * recorded. `restore()` removes both.
 */
export function watchOwnMethod(
  name: 'set' | 'subarray',
  on: (self: Uint8Array, args: unknown[]) => boolean,
): { looked: string[]; restore(): void } {
  const real = (Object.getPrototypeOf(Uint8Array.prototype) as Record<string, (...a: unknown[]) => unknown>)[
    name
  ]!;
  const looked: string[] = [];
  for (const [proto, kind] of [
    [Buffer.prototype, 'Buffer'],
    [Uint8Array.prototype, 'Uint8Array'],
  ] as const) {
    Object.defineProperty(proto, name, {
      configurable: true,
      writable: true,
      value(this: Uint8Array, ...args: unknown[]) {
        if (on(this, args)) looked.push(kind);
        return real.apply(this, args);
      },
    });
  }
  return {
    looked,
    restore() {
      delete (Buffer.prototype as unknown as Record<string, unknown>)[name];
      delete (Uint8Array.prototype as unknown as Record<string, unknown>)[name];
    },
  };
}
