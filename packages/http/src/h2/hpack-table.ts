/**
 * HPACK indexing tables (RFC 7541 §2.3): the static table of Appendix A and the dynamic table,
 * a FIFO of recently indexed fields bounded by a size in octets (name + value + 32 each) with
 * eviction from the oldest end (§4). One address space: indexes 1..61 are static, 62 and up
 * name dynamic entries, newest first. Strings are byte strings (one char per byte, latin1).
 *
 * Not for wire parsing or encoding policy: the decoder and encoder own those and share this.
 */

/** Octets a dynamic-table entry costs beyond its name and value (RFC 7541 §4.1). */
export const HPACK_ENTRY_OVERHEAD = 32;

/** RFC 7541 Appendix A, index 1 first. */
export const STATIC_TABLE: readonly (readonly [name: string, value: string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** Number of static entries; the first dynamic index is this plus one. */
export const STATIC_TABLE_LENGTH = 61;

/** Called for each entry the dynamic table evicts, with the insertion number it was added as. */
export type HpackEvictionListener = (name: string, value: string, insertion: number) => void;

/**
 * The dynamic table of one direction of one connection. A ring of names and values (two string
 * arrays, grown by doubling), so adding and evicting allocate nothing in the steady state.
 * Entries are numbered by insertion (`insertCount` before the add); the encoder keys its lookup
 * maps by that number, since dynamic indexes shift with every insertion.
 */
export class HpackDynamicTable {
  #names: string[] = new Array<string>(16).fill('');
  #values: string[] = new Array<string>(16).fill('');
  /** Ring slot of the oldest entry. */
  #head = 0;
  #length = 0;
  #size = 0;
  #maxSize: number;
  #inserted = 0;
  readonly #onEvict: HpackEvictionListener | null;

  constructor(maxSize: number, onEvict: HpackEvictionListener | null = null) {
    this.#maxSize = maxSize;
    this.#onEvict = onEvict;
  }

  /** Entries held. */
  get length(): number {
    return this.#length;
  }

  /** Octets held (sum of name + value + 32 per entry). */
  get size(): number {
    return this.#size;
  }

  /** Current maximum size in octets (the last size update, or the initial setting). */
  get maxSize(): number {
    return this.#maxSize;
  }

  /** Entries ever added; the next entry gets this insertion number. */
  get insertCount(): number {
    return this.#inserted;
  }

  /** Name of the entry at dynamic position `i` (0 = newest; HPACK index 62 + i). */
  nameAt(i: number): string {
    return this.#names[this.#slot(i)]!;
  }

  /** Value of the entry at dynamic position `i` (0 = newest; HPACK index 62 + i). */
  valueAt(i: number): string {
    return this.#values[this.#slot(i)]!;
  }

  /** The dynamic position of the entry added as insertion number `insertion`, or -1 if evicted. */
  positionOf(insertion: number): number {
    const pos = this.#inserted - 1 - insertion;
    return pos >= 0 && pos < this.#length ? pos : -1;
  }

  #slot(i: number): number {
    return (this.#head + this.#length - 1 - i) & (this.#names.length - 1);
  }

  /**
   * Adds `name: value` as the newest entry, evicting the oldest as needed. An entry larger than
   * the maximum size empties the table and is not added (RFC 7541 §4.4).
   */
  add(name: string, value: string): void {
    const entrySize = name.length + value.length + HPACK_ENTRY_OVERHEAD;
    if (entrySize > this.#maxSize) {
      this.#evictTo(0);
      this.#inserted++;
      return;
    }
    this.#evictTo(this.#maxSize - entrySize);
    if (this.#length === this.#names.length) this.#grow();
    const slot = (this.#head + this.#length) & (this.#names.length - 1);
    this.#names[slot] = name;
    this.#values[slot] = value;
    this.#length++;
    this.#size += entrySize;
    this.#inserted++;
  }

  /** Applies a maximum size (a size update, RFC 7541 §4.3), evicting until the table fits. */
  setMaxSize(maxSize: number): void {
    this.#maxSize = maxSize;
    this.#evictTo(maxSize);
  }

  #evictTo(target: number): void {
    const mask = this.#names.length - 1;
    while (this.#size > target) {
      const slot = this.#head;
      // The ring holds insertions #inserted - #length .. #inserted - 1; the oldest goes first.
      const insertion = this.#inserted - this.#length;
      const name = this.#names[slot]!;
      const value = this.#values[slot]!;
      this.#size -= name.length + value.length + HPACK_ENTRY_OVERHEAD;
      this.#names[slot] = '';
      this.#values[slot] = '';
      this.#head = (slot + 1) & mask;
      this.#length--;
      if (this.#onEvict !== null) this.#onEvict(name, value, insertion);
    }
  }

  #grow(): void {
    const n = this.#names.length;
    const names = new Array<string>(n * 2).fill('');
    const values = new Array<string>(n * 2).fill('');
    for (let i = 0; i < this.#length; i++) {
      const from = (this.#head + i) & (n - 1);
      names[i] = this.#names[from]!;
      values[i] = this.#values[from]!;
    }
    this.#names = names;
    this.#values = values;
    this.#head = 0;
  }
}
