/**
 * The open streams of a thread's ring by descriptor number: one array slot per descriptor (8
 * bytes) instead of a hash-set entry per stream (~33 bytes on Node 20, and the ring kept two sets:
 * every stream, and the plain streams with a multishot recv armed, which are most idle
 * connections). Descriptors are small dense integers, so the slots run up to the highest one
 * seen, in pages of 1,024 (like the native ring's owned-descriptor bitmap). Not for lookups by descriptor from
 * outside the ring: a slot may hold a stream whose close is still in flight.
 */

/**
 * Descriptors per page of slots (see FdRegistry.pages): descriptor `fd` is entry `fd & PAGE_MASK`
 * of page `fd >>> PAGE_SHIFT`.
 */
const PAGE_SHIFT = 10;
const PAGE_SLOTS = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_SLOTS - 1;

/** What the registry holds: something with a descriptor. */
export interface HasFd {
  readonly fd: number;
}

/** Streams by descriptor number; a descriptor reused before its old stream left keeps both. */
export class FdRegistry<T extends HasFd> {
  /**
   * The slots in pages of PAGE_SLOTS, made when a descriptor first lands in them (undefined: no
   * page yet) and never replaced: a registry that grows copies nothing. One flat array grown in
   * steps (1,024 or an eighth, as before) left each replaced array to the GC, ~6x the final
   * size by 19,300 descriptors, kept by a busy worker until its next major GC (issue 18). Slot
   * `fd` holds the stream registered last with that descriptor (undefined or a hole: none).
   */
  private readonly pages: ((T | undefined)[] | undefined)[] = [];
  /**
   * Streams pushed out of their slot by a new stream with the same descriptor: a stream whose
   * close completed (the kernel reused its number) before it left (rare; see UringStream).
   */
  private clash: Set<T> | undefined = undefined;
  /** Registered streams. */
  size = 0;

  add(item: T): void {
    const fd = item.fd;
    const p = fd >>> PAGE_SHIFT;
    const pages = this.pages;
    // Never a store far past the end, which would make V8's elements sparse (holes read as
    // undefined); the page list itself is short (a pointer per PAGE_SLOTS descriptors).
    if (p >= pages.length) pages.length = p + 1;
    let slots = pages[p];
    if (slots === undefined) {
      slots = [];
      slots.length = PAGE_SLOTS;
      pages[p] = slots;
    }
    const at = fd & PAGE_MASK;
    const old = slots[at];
    if (old === item) return;
    if (old !== undefined) (this.clash ??= new Set()).add(old);
    slots[at] = item;
    this.size++;
  }

  delete(item: T): void {
    const fd = item.fd;
    const slots = this.pages[fd >>> PAGE_SHIFT];
    const at = fd & PAGE_MASK;
    if (slots !== undefined && slots[at] === item) slots[at] = undefined;
    else if (this.clash?.delete(item) !== true) return;
    this.size--;
  }

  /** Every registered stream, in descriptor order (the pushed-out ones last); a copy. */
  values(): T[] {
    const out: T[] = [];
    this.forEach((item) => {
      out.push(item);
    });
    return out;
  }

  /** Calls `fn` on every registered stream; `fn` must not add or delete. */
  forEach(fn: (item: T) => void): void {
    const pages = this.pages;
    for (let p = 0; p < pages.length; p++) {
      const slots = pages[p];
      if (slots === undefined) continue;
      for (let i = 0; i < PAGE_SLOTS; i++) {
        const item = slots[i];
        if (item !== undefined) fn(item);
      }
    }
    if (this.clash !== undefined) for (const item of this.clash) fn(item);
  }
}
