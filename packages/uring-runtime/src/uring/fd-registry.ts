/**
 * The open streams of a thread's ring by descriptor number: one array slot per descriptor (8
 * bytes) instead of a hash-set entry per stream (~33 bytes on Node 20, and the ring kept two sets:
 * every stream, and the plain streams with a multishot recv armed, which are most idle
 * connections). Descriptors are small dense integers, so the array is as long as the highest one
 * seen (like the native ring's owned-descriptor bitmap). Not for lookups by descriptor from
 * outside the ring: a slot may hold a stream whose close is still in flight.
 */

/** What the registry holds: something with a descriptor. */
export interface HasFd {
  readonly fd: number;
}

/** Streams by descriptor number; a descriptor reused before its old stream left keeps both. */
export class FdRegistry<T extends HasFd> {
  /** Slot `fd` holds the stream registered last with that descriptor (a packed array of undefined). */
  private readonly slots: (T | undefined)[] = [];
  /**
   * Streams pushed out of their slot by a new stream with the same descriptor: a stream whose
   * close completed (the kernel reused its number) before it left (rare; see UringStream).
   */
  private clash: Set<T> | undefined = undefined;
  /** Registered streams. */
  size = 0;

  add(item: T): void {
    const fd = item.fd;
    const slots = this.slots;
    // Grown by push (never by a store far past the end, which would make V8's elements sparse).
    while (slots.length <= fd) slots.push(undefined);
    const old = slots[fd];
    if (old === item) return;
    if (old !== undefined) (this.clash ??= new Set()).add(old);
    slots[fd] = item;
    this.size++;
  }

  delete(item: T): void {
    const fd = item.fd;
    if (this.slots[fd] === item) this.slots[fd] = undefined;
    else if (this.clash?.delete(item) !== true) return;
    this.size--;
  }

  /** Every registered stream, in descriptor order (the pushed-out ones last); a copy. */
  values(): T[] {
    const out: T[] = [];
    for (const item of this.slots) if (item !== undefined) out.push(item);
    if (this.clash !== undefined) for (const item of this.clash) out.push(item);
    return out;
  }

  /** Calls `fn` on every registered stream; `fn` must not add or delete. */
  forEach(fn: (item: T) => void): void {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const item = slots[i];
      if (item !== undefined) fn(item);
    }
    if (this.clash !== undefined) for (const item of this.clash) fn(item);
  }
}
