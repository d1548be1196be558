/**
 * HttpHeaders: an ordered multimap of header fields, independent of wire form so the same value
 * serves HTTP/1.1 and HTTP/2 (names are lowercase, as in HTTP/2; order and duplicates are kept).
 * Headers parsed from the wire keep their bytes and offsets and decode each name and value only
 * when read: common names come interned from the parser, values are decoded on first access.
 * Every name is a token and every value a valid field value, checked on insert, so an encoder
 * can write them without re-validation. Not for cookie parsing or content negotiation.
 */
import { InvalidHeaderError } from './errors.js';
import * as chars from './internal/char-classes.js';

const { isFieldValue, isToken } = chars;
// Local copy: transpilers turn imported bindings into getters (a call per byte).
const LOWER = chars.LOWER;

/** Anything a header list can be built from. */
export type HeadersInit =
  | HttpHeaders
  | Iterable<readonly [string, string]>
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** An ordered list of (lowercase name, value) header fields. */
export class HttpHeaders implements Iterable<[string, string]> {
  /** Wire bytes the offsets point into, or null once everything is decoded. */
  private wire: string | null;
  /** Per entry: nameStart, nameEnd, valueStart, valueEnd into `wire`. */
  private offsets: number[] | null;
  /** Per entry: name, value; undefined while not yet decoded. */
  private strs: (string | undefined)[];
  private count: number;
  /**
   * Encoder cache: the fields as an HTTP/1 field block (framing fields left out), whether a
   * `date` field is present and whether `connection` names `close`. Null until first encoded;
   * reset by every mutation, so a handler that reuses one HttpHeaders pays the encoding once.
   * @internal
   */
  wireBlock: string | null = null;
  /** @internal */
  wireHasDate = false;
  /** @internal */
  wireClose = false;

  /** Builds a header list; every name is lowercased and checked, every value checked. */
  constructor(init?: HeadersInit) {
    this.wire = null;
    this.offsets = null;
    this.strs = [];
    this.count = 0;
    if (init === undefined) return;
    if (init instanceof HttpHeaders) {
      for (let i = 0; i < init.count; i++) this.push(init.nameAt(i), init.valueAt(i));
    } else if (Symbol.iterator in init) {
      for (const [name, value] of init as Iterable<readonly [string, string]>) this.append(name, value);
    } else {
      for (const name of Object.keys(init)) {
        const v = (init as Record<string, string | readonly string[] | undefined>)[name];
        if (v === undefined) continue;
        if (typeof v === 'string') this.append(name, v);
        else for (const one of v) this.append(name, one);
      }
    }
  }

  /**
   * Internal constructor for the parser: `wire` is the head decoded as latin1 and `offsets` holds 4 numbers per entry into it,
   * `names` the interned names (undefined where not common). Takes ownership of the arrays.
   * @internal
   */
  static fromWire(
    wire: string,
    offsets: number[],
    names: (string | undefined)[],
    count: number,
  ): HttpHeaders {
    const h = new HttpHeaders();
    h.wire = wire;
    h.offsets = offsets;
    h.strs = names;
    h.count = count;
    return h;
  }

  /** Number of fields (duplicates counted). */
  get size(): number {
    return this.count;
  }

  /** Lowercase name of field `i`. */
  nameAt(i: number): string {
    let s = this.strs[2 * i];
    if (s === undefined) {
      const o = this.offsets!;
      s = this.wire!.slice(o[4 * i]!, o[4 * i + 1]!).toLowerCase();
      this.strs[2 * i] = s;
    }
    return s;
  }

  /** Value of field `i`, without surrounding whitespace. */
  valueAt(i: number): string {
    let s = this.strs[2 * i + 1];
    if (s === undefined) {
      const o = this.offsets!;
      s = this.wire!.slice(o[4 * i + 2]!, o[4 * i + 3]!);
      this.strs[2 * i + 1] = s;
    }
    return s;
  }

  /** Index of the first field named `lname` (lowercase) at or after `from`, or -1. */
  private indexOf(lname: string, from: number): number {
    const strs = this.strs;
    for (let i = from; i < this.count; i++) {
      const n = strs[2 * i];
      if (n !== undefined) {
        if (n === lname) return i;
        continue;
      }
      // Not decoded yet: compare the wire bytes case-insensitively, no allocation.
      const o = this.offsets!;
      const s = o[4 * i]!;
      const len = o[4 * i + 1]! - s;
      if (len !== lname.length) continue;
      const w = this.wire!;
      let k = 0;
      while (k < len && LOWER[w.charCodeAt(s + k)] === lname.charCodeAt(k)) k++;
      if (k === len) return i;
    }
    return -1;
  }

  /** First value of `name` (case-insensitive), or undefined. */
  get(name: string): string | undefined {
    const i = this.indexOf(lower(name), 0);
    return i < 0 ? undefined : this.valueAt(i);
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const lname = lower(name);
    const out: string[] = [];
    for (let i = this.indexOf(lname, 0); i >= 0; i = this.indexOf(lname, i + 1)) out.push(this.valueAt(i));
    return out;
  }

  /** True when at least one field is named `name`. */
  has(name: string): boolean {
    return this.indexOf(lower(name), 0) >= 0;
  }

  /** Adds a field at the end. Throws InvalidHeaderError for a bad name or value. */
  append(name: string, value: string): this {
    const lname = lower(name);
    if (!isToken(lname)) throw new InvalidHeaderError('name', name);
    const v = trimOws(value);
    if (!isFieldValue(v)) throw new InvalidHeaderError('value', name);
    this.materialize();
    this.push(lname, v);
    return this;
  }

  /** Replaces every field named `name` with one field. */
  set(name: string, value: string): this {
    this.delete(name);
    return this.append(name, value);
  }

  /** Removes every field named `name`; returns how many were removed. */
  delete(name: string): number {
    const lname = lower(name);
    if (this.indexOf(lname, 0) < 0) return 0;
    this.materialize();
    const strs = this.strs;
    let w = 0;
    for (let i = 0; i < this.count; i++) {
      if (strs[2 * i] === lname) continue;
      strs[2 * w] = strs[2 * i];
      strs[2 * w + 1] = strs[2 * i + 1];
      w++;
    }
    const removed = this.count - w;
    this.wireBlock = null;
    this.count = w;
    strs.length = 2 * w;
    return removed;
  }

  /**
   * Removes every field whose name is in `names` (lowercase names), in one pass over the list;
   * returns how many were removed. For dropping a fixed set (hop-by-hop fields) at once.
   */
  deleteNames(names: ReadonlySet<string>): number {
    let first = -1;
    for (let i = 0; i < this.count; i++) {
      if (names.has(this.nameAt(i))) {
        first = i;
        break;
      }
    }
    if (first < 0) return 0;
    this.materialize();
    const strs = this.strs;
    let w = first;
    for (let i = first + 1; i < this.count; i++) {
      if (names.has(strs[2 * i]!)) continue;
      strs[2 * w] = strs[2 * i];
      strs[2 * w + 1] = strs[2 * i + 1];
      w++;
    }
    const removed = this.count - w;
    this.wireBlock = null;
    this.count = w;
    strs.length = 2 * w;
    return removed;
  }

  /** Iterates `[name, value]` pairs in order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (let i = 0; i < this.count; i++) yield [this.nameAt(i), this.valueAt(i)];
  }

  /** Same as iterating the list. */
  entries(): IterableIterator<[string, string]> {
    return this[Symbol.iterator]();
  }

  /** A plain object; repeated names join with ", " (set-cookie values are kept as an array). */
  toObject(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < this.count; i++) {
      const n = this.nameAt(i);
      const v = this.valueAt(i);
      const prev = out[n];
      if (prev === undefined) out[n] = n === 'set-cookie' ? [v] : v;
      else if (Array.isArray(prev)) prev.push(v);
      else out[n] = `${prev}, ${v}`;
    }
    return out;
  }

  private push(lname: string, value: string): void {
    this.wireBlock = null;
    this.strs[2 * this.count] = lname;
    this.strs[2 * this.count + 1] = value;
    this.count++;
  }

  /** Decodes everything and drops the wire bytes, before a mutation. */
  private materialize(): void {
    if (this.wire === null) return;
    for (let i = 0; i < this.count; i++) {
      this.nameAt(i);
      this.valueAt(i);
    }
    this.wire = null;
    this.offsets = null;
  }
}

function lower(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return name.toLowerCase();
  }
  return name;
}

function trimOws(v: string): string {
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09)
    return v.replace(/^[ \t]+|[ \t]+$/g, '');
  return v;
}
