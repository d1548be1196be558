/**
 * The open connections of an HttpServer: an array in which each connection knows its own index
 * (`liveSlot`), so adding and removing one cost a few writes and no hash table. A Set cost an idle
 * connection ~33 B (its entry and its share of the buckets, the table sized to the next power of
 * two); a slot costs 8 B in the array plus the 8-B `liveSlot` field (bench/idle-memory/
 * readings-2026-12-05c.md). A removed connection's slot is free, holding the index of the next
 * free one (a Smi), and is reused by the next add. The array is compacted when the server asks
 * (compact()), so a burst of connections gone does not keep its slots.
 */

/** A connection kept here: declare `liveSlot = -1` in its class so its shape does not change. */
export interface LiveSlotted {
  /** Its index in the server's LiveConnections; -1 (or absent) while in none. @internal */
  liveSlot?: number;
}

/** No next free slot (the end of the free list). */
const NONE = -1;

/** The open connections, in slots (see the file's comment). Iterates the connections in slot order. */
export class LiveConnections<C extends LiveSlotted> implements Iterable<C> {
  /** A connection, or a free slot: the index of the next free slot (NONE ends the list). */
  private slots: (C | number)[] = [];
  /** The first free slot, or NONE. */
  private free = NONE;
  /** The connections held. */
  size = 0;

  /** Slots in use or free: the bound of an index walk (at() past it answers null). */
  get length(): number {
    return this.slots.length;
  }

  /** The connection in slot `i`, or null (a free slot, or past the end). */
  at(i: number): C | null {
    const c = this.slots[i];
    return c === undefined || typeof c === 'number' ? null : c;
  }

  add(c: C): void {
    const i = this.free;
    if (i === NONE) {
      c.liveSlot = this.slots.length;
      this.slots.push(c);
    } else {
      this.free = this.slots[i] as number;
      this.slots[i] = c;
      c.liveSlot = i;
    }
    this.size++;
  }

  /** Removes `c`; nothing when it is not here (a second release). */
  delete(c: C): void {
    const i = c.liveSlot ?? NONE;
    if (i === NONE || this.slots[i] !== c) return;
    c.liveSlot = NONE;
    this.size--;
    if (this.size === 0) {
      this.slots = [];
      this.free = NONE;
      return;
    }
    this.slots[i] = this.free;
    this.free = i;
  }

  /** Puts `to` in `from`'s slot (a connection that changed protocol); adds it when `from` is not here. */
  replace(from: C, to: C): void {
    const i = from.liveSlot ?? NONE;
    if (i === NONE || this.slots[i] !== from) {
      this.add(to);
      return;
    }
    from.liveSlot = NONE;
    to.liveSlot = i;
    this.slots[i] = to;
  }

  /**
   * Moves the connections to the front when at most a quarter of the slots hold one, so the
   * array is at most four times the connections. Moves slots: not during an index walk.
   */
  compact(): void {
    const slots = this.slots;
    if (this.size * 4 > slots.length) return;
    const kept: C[] = [];
    for (const c of slots) {
      if (typeof c === 'number') continue;
      c.liveSlot = kept.length;
      kept.push(c);
    }
    this.slots = kept;
    this.free = NONE;
  }

  /** The connections in slot order; one removed meanwhile is not met (nor one added to a slot passed). */
  *[Symbol.iterator](): Iterator<C> {
    for (let i = 0; i < this.slots.length; i++) {
      const c = this.at(i);
      if (c !== null) yield c;
    }
  }
}
