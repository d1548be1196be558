/**
 * The open streams of a thread's ring by descriptor number: one array slot per descriptor (8
 * bytes) instead of a hash-set entry per stream (~33 bytes on Node 20, and the ring kept two sets:
 * every stream, and the plain streams with a multishot recv armed, which are most idle
 * connections). Descriptors are small dense integers, so the array is as long as the highest one
 * seen (like the native ring's owned-descriptor bitmap). Not for lookups by descriptor from
 * outside the ring: a slot may hold a stream whose close is still in flight.
 */

/** Slots the registry adds at least when a descriptor lands past its end (see add). */
const SLOT_STEP = 1024;

/** What the registry holds: something with a descriptor. */
export interface HasFd {
  readonly fd: number;
}

/** Streams by descriptor number; a descriptor reused before its old stream left keeps both. */
export class FdRegistry<T extends HasFd> {
  /** Slot `fd` holds the stream registered last with that descriptor (undefined or a hole: none). */
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
    // Grown in steps (SLOT_STEP, or an eighth once more) by setting the length, as the ring's
    // per-slot arrays are: a push per slot let V8 grow its store by half each time (12 B per
    // descriptor at 10,000 where 8 are used). Never by a store far past the end, which would
    // make V8's elements sparse; holes read as undefined.
    if (fd >= slots.length)
      slots.length = Math.max(fd + 1, slots.length + Math.max(SLOT_STEP, slots.length >> 3));
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
