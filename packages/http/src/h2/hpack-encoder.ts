/**
 * HPACK header-block encoder (RFC 7541 §6) for one direction of one connection. Policy:
 * - a field found whole in the static or dynamic table is sent as one index (in the dynamic
 *   table among its name's 8 newest entries: values are compared, not hashed, see RULES);
 * - sensitive fields (authorization, proxy-authorization, set-cookie, cookies under 20 bytes,
 *   or any field the caller marks) are never-indexed literals (§7.1.3), so an intermediary
 *   must not index them either and they cannot be probed through the table (CRIME-style);
 * - fields that change with every message (`:path`, content-length, etag, location, age, dates
 *   of conditional requests) and fields larger than 3/4 of the table are literals without
 *   indexing, so they do not churn the table (nghttp2's choice);
 * - everything else is indexed; names are referenced by index when the table has them;
 * - a string is Huffman-coded when that is shorter (configurable).
 * The peer's SETTINGS_HEADER_TABLE_SIZE (capped by our own `maxTableSize`) takes effect at the
 * start of the next block with one or two size updates (§4.2: the smallest size reached, then
 * the final one).
 *
 * A value comes as a string (addField) or as the bytes it was decoded from (addFieldBytes: an
 * HTTP/1.1 answer a proxy forwards), under the same policy and giving the same block.
 *
 * Not for validation: names must already be lowercase and names and values byte strings (one
 * char per byte) without CR, LF or NUL; the session checks what it sends. Not for framing: the
 * frame encoders split the block into HEADERS and CONTINUATION frames.
 */
import { HPACK_ENTRY_OVERHEAD, HpackDynamicTable, STATIC_TABLE, STATIC_TABLE_LENGTH } from './hpack-table.js';
import {
  huffmanEncode,
  huffmanEncodeBytes,
  huffmanEncodedLength,
  huffmanEncodedLengthOfBytes,
} from './huffman.js';

/** Buffer's native latin1 decoder; works on any Uint8Array. */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

/** The bytes `b[start, end)` as a byte string. */
function latin1(b: Uint8Array, start: number, end: number): string {
  return latin1Slice.call(b, start, end);
}

/** Options of an {@link HpackEncoder}. */
export interface HpackEncoderOptions {
  /**
   * The largest dynamic table we are willing to keep for this peer, whatever its
   * SETTINGS_HEADER_TABLE_SIZE allows (0 disables indexing). Default 4096.
   */
  readonly maxTableSize?: number;
  /** When to Huffman-code strings: when shorter (default), always, or never. */
  readonly huffman?: 'auto' | 'always' | 'never';
}

/** Names whose values are never indexed: credentials (RFC 7541 §7.1.3). */
const SENSITIVE_NAMES = ['authorization', 'proxy-authorization', 'set-cookie'];
/** Names whose values rarely repeat on a connection: indexing them would only evict others. */
const UNINDEXED_NAMES = [
  ':path',
  'age',
  'content-length',
  'etag',
  'if-modified-since',
  'if-none-match',
  'location',
];

/**
 * What the encoder knows of a name before any connection: its static index, its static
 * `name: value` entries, and how its values are indexed. One lookup per field finds all of it
 * (the name is usually an interned string whose hash is kept); the value is hashed only for the
 * few names the static table lists values of (`:method`, `:status`, `accept-encoding`...).
 */
interface NameRule {
  /** The lowest static index with this name, or 0. */
  readonly staticName: number;
  /** The static index of `name: ""`, or 0. */
  readonly staticEmpty: number;
  /** Static indexes of the name's non-empty values, or null when it has none. */
  readonly staticValues: Map<string, number> | null;
  /** Never indexed (SENSITIVE_NAMES). */
  readonly never: boolean;
  /** Not added to the table (UNINDEXED_NAMES). */
  readonly unindexed: boolean;
}

const NO_RULE: NameRule = {
  staticName: 0,
  staticEmpty: 0,
  staticValues: null,
  never: false,
  unindexed: false,
};

const RULES = ((): Map<string, NameRule> => {
  const names = new Set<string>([
    ...STATIC_TABLE.map(([name]) => name),
    ...SENSITIVE_NAMES,
    ...UNINDEXED_NAMES,
  ]);
  const rules = new Map<string, NameRule>();
  for (const name of names) {
    let staticName = 0;
    let staticEmpty = 0;
    let staticValues: Map<string, number> | null = null;
    for (let i = STATIC_TABLE.length - 1; i >= 0; i--) {
      const [n, value] = STATIC_TABLE[i]!;
      if (n !== name) continue;
      // Walked backwards, so the lowest index of each wins.
      staticName = i + 1;
      if (value === '') staticEmpty = i + 1;
      else (staticValues ??= new Map()).set(value, i + 1);
    }
    rules.set(name, {
      staticName,
      staticEmpty,
      staticValues,
      never: SENSITIVE_NAMES.includes(name),
      unindexed: UNINDEXED_NAMES.includes(name),
    });
  }
  return rules;
})();

/**
 * Dynamic entries remembered per name, newest first: a value is matched by comparing it with
 * these entries' values (no hash of a value string made for this message), so a name that had
 * more distinct values in the table than this is sent as a literal for the older ones.
 */
const RECENT_PER_NAME = 8;

/** RFC 7541 §7.1.3: short cookies are easy to guess, so they are never indexed. */
const MIN_INDEXED_COOKIE = 20;
/** The protocol's initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;

/** Encodes the header blocks of one direction of a connection; see the module comment. */
export class HpackEncoder {
  /** The dynamic table, exposed for inspection (tests, debugging); do not modify it. */
  readonly table: HpackDynamicTable;
  readonly #cap: number;
  readonly #huffman: 'auto' | 'always' | 'never';
  /**
   * name → insertion numbers of its newest entries in the dynamic table, newest first (at most
   * RECENT_PER_NAME; an evicted entry leaves its list, an empty list its name).
   */
  readonly #recent = new Map<string, number[]>();
  /** Smallest size the table went through since the last block, or -1 when there is none. */
  #pendingMin = -1;
  #pendingSize = -1;
  #buf: Uint8Array = new Uint8Array(512);
  #len = 0;

  constructor(options: HpackEncoderOptions = {}) {
    this.#cap = options.maxTableSize ?? DEFAULT_TABLE_SIZE;
    this.#huffman = options.huffman ?? 'auto';
    this.table = new HpackDynamicTable(DEFAULT_TABLE_SIZE, (name, _value, insertion) => {
      const recent = this.#recent.get(name);
      if (recent === undefined) return;
      const at = recent.indexOf(insertion);
      if (at < 0) return;
      recent.splice(at, 1);
      if (recent.length === 0) this.#recent.delete(name);
    });
    if (this.#cap < DEFAULT_TABLE_SIZE) this.#schedule(this.#cap);
  }

  /** Applies the peer's SETTINGS_HEADER_TABLE_SIZE; the next block announces the new size. */
  setPeerMaxTableSize(peerLimit: number): void {
    this.#schedule(Math.min(peerLimit, this.#cap));
  }

  #schedule(size: number): void {
    const current = this.#pendingSize >= 0 ? this.#pendingSize : this.table.maxSize;
    if (size === current) return;
    this.#pendingMin = this.#pendingMin < 0 ? size : Math.min(this.#pendingMin, size);
    this.#pendingSize = size;
  }

  /**
   * Starts a header block, discarding any unfinished one. Emits pending table size updates.
   */
  begin(): void {
    this.#len = 0;
    if (this.#pendingSize < 0) return;
    if (this.#pendingMin < this.#pendingSize) {
      this.#integer(this.#pendingMin, 5, 0x20);
      this.table.setMaxSize(this.#pendingMin);
    }
    this.#integer(this.#pendingSize, 5, 0x20);
    this.table.setMaxSize(this.#pendingSize);
    this.#pendingMin = -1;
    this.#pendingSize = -1;
  }

  /**
   * Appends one field to the block. `sensitive` forces a never-indexed literal (for values such
   * as tokens that the built-in list of sensitive names does not cover).
   */
  addField(name: string, value: string, sensitive = false): void {
    this.#add(name, value, null, 0, value.length, sensitive);
  }

  /**
   * {@link addField} for a value held as the bytes `bytes[start, end)` (one byte per char, valid
   * as a value; the bytes are read during the call only): a field of a decoded HTTP/1.1 head
   * going out over HTTP/2, which a proxy forwards without reading. Why a path of its own: each
   * such value would otherwise become a string (a native call and an allocation per field) only
   * to be compared with the table and written back as bytes; here it is matched against the
   * dynamic table by comparing bytes and written from them, and a string is made only when the
   * field enters the table or its name has static values to look up. Same policy, same block.
   */
  addFieldBytes(name: string, bytes: Uint8Array, start: number, end: number): void {
    this.#add(name, null, bytes, start, end, false);
  }

  /**
   * The encoding policy of a field whose value is `str`, or, when that is null, `bytes[start,
   * end)` (see addFieldBytes); `end - start` is the value's length either way.
   */
  #add(
    name: string,
    str: string | null,
    bytes: Uint8Array | null,
    start: number,
    end: number,
    sensitive: boolean,
  ): void {
    const rule = RULES.get(name) ?? NO_RULE;
    const length = end - start;
    const never = sensitive || rule.never || (name === 'cookie' && length < MIN_INDEXED_COOKIE);
    const recent = this.#recent.get(name);
    if (!never) {
      let index = 0;
      if (length === 0) index = rule.staticEmpty;
      else if (rule.staticValues !== null) {
        // The few names with static values (:method, :status, accept-encoding...) are looked up
        // by string.
        str ??= latin1(bytes!, start, end);
        index = rule.staticValues.get(str) ?? 0;
      }
      if (index === 0 && recent !== undefined) {
        index =
          str !== null
            ? this.#dynamicIndex(recent, str)
            : this.#dynamicIndexOfBytes(recent, bytes!, start, end);
      }
      if (index !== 0) {
        this.#integer(index, 7, 0x80);
        return;
      }
    }
    let nameIndex = rule.staticName;
    if (nameIndex === 0 && recent !== undefined) {
      const pos = this.table.positionOf(recent[0]!);
      if (pos >= 0) nameIndex = STATIC_TABLE_LENGTH + 1 + pos;
    }
    const entrySize = name.length + length + HPACK_ENTRY_OVERHEAD;
    if (never) {
      this.#integer(nameIndex, 4, 0x10);
    } else if (rule.unindexed || entrySize * 4 > this.table.maxSize * 3) {
      this.#integer(nameIndex, 4, 0x00);
    } else {
      this.#integer(nameIndex, 6, 0x40);
      const insertion = this.table.insertCount;
      // The table keeps strings: a value that enters it becomes one.
      str ??= latin1(bytes!, start, end);
      this.table.add(name, str);
      if (this.table.positionOf(insertion) === 0) {
        // Read again: adding may have evicted this name's last entry (and its list).
        const list = this.#recent.get(name);
        if (list === undefined) this.#recent.set(name, [insertion]);
        else {
          list.unshift(insertion);
          if (list.length > RECENT_PER_NAME) list.pop();
        }
      }
    }
    if (nameIndex === 0) this.#string(name);
    if (str !== null) this.#string(str);
    else this.#bytes(bytes!, start, end);
  }

  /** The dynamic index of one of `recent`'s entries whose value is `value`, or 0. */
  #dynamicIndex(recent: number[], value: string): number {
    const table = this.table;
    for (let i = 0; i < recent.length; i++) {
      const pos = table.positionOf(recent[i]!);
      if (pos >= 0 && table.valueAt(pos) === value) return STATIC_TABLE_LENGTH + 1 + pos;
    }
    return 0;
  }

  /** #dynamicIndex for the value `bytes[start, end)`, compared byte by byte. */
  #dynamicIndexOfBytes(recent: number[], bytes: Uint8Array, start: number, end: number): number {
    const table = this.table;
    const length = end - start;
    outer: for (let i = 0; i < recent.length; i++) {
      const pos = table.positionOf(recent[i]!);
      if (pos < 0) continue;
      const v = table.valueAt(pos);
      if (v.length !== length) continue;
      for (let k = 0; k < length; k++) if (v.charCodeAt(k) !== bytes[start + k]) continue outer;
      return STATIC_TABLE_LENGTH + 1 + pos;
    }
    return 0;
  }

  /**
   * Ends the block and returns its bytes: a view of the encoder's buffer, valid until the next
   * {@link begin}. Copy it if it must outlive that.
   */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Bytes of the block so far. */
  get blockLength(): number {
    return this.#len;
  }

  /**
   * Copies the block so far into `out` at `at` (room for {@link blockLength} bytes): finish()
   * for a writer that copies the block into its output anyway, without a view of it (an object
   * and a species lookup per block).
   */
  copyBlockTo(out: Uint8Array, at: number): void {
    const n = this.#len;
    const buf = this.#buf;
    if (n <= 64) for (let i = 0; i < n; i++) out[at + i] = buf[i]!;
    else out.set(buf.subarray(0, n), at);
  }

  /** Encodes a whole header block into a new array. */
  encode(fields: readonly (readonly [name: string, value: string])[]): Uint8Array {
    this.begin();
    for (const [name, value] of fields) this.addField(name, value);
    return this.finish().slice();
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** An HPACK integer with a `prefixBits`-bit prefix after the `flags` bits (RFC 7541 §5.1). */
  #integer(value: number, prefixBits: number, flags: number): void {
    this.#ensure(6);
    const buf = this.#buf;
    const max = (1 << prefixBits) - 1;
    if (value < max) {
      buf[this.#len++] = flags | value;
      return;
    }
    buf[this.#len++] = flags | max;
    value -= max;
    while (value >= 0x80) {
      buf[this.#len++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[this.#len++] = value;
  }

  #string(s: string): void {
    const raw = s.length;
    const mode = this.#huffman;
    const coded = mode === 'never' ? raw + 1 : huffmanEncodedLength(s);
    if (mode === 'always' || coded < raw) {
      this.#integer(coded, 7, 0x80);
      this.#ensure(coded);
      this.#len = huffmanEncode(s, this.#buf, this.#len);
      return;
    }
    this.#integer(raw, 7, 0x00);
    this.#ensure(raw);
    const buf = this.#buf;
    let p = this.#len;
    for (let i = 0; i < raw; i++) buf[p++] = s.charCodeAt(i);
    this.#len = p;
  }

  /** #string of the bytes `src[start, end)`. */
  #bytes(src: Uint8Array, start: number, end: number): void {
    const raw = end - start;
    const mode = this.#huffman;
    const coded = mode === 'never' ? raw + 1 : huffmanEncodedLengthOfBytes(src, start, end);
    if (mode === 'always' || coded < raw) {
      this.#integer(coded, 7, 0x80);
      this.#ensure(coded);
      this.#len = huffmanEncodeBytes(src, start, end, this.#buf, this.#len);
      return;
    }
    this.#integer(raw, 7, 0x00);
    this.#ensure(raw);
    const buf = this.#buf;
    let p = this.#len;
    for (let i = start; i < end; i++) buf[p++] = src[i]!;
    this.#len = p;
  }
}
