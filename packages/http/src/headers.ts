/**
 * HttpHeaders: an ordered multimap of header fields, independent of wire form so the same value
 * serves HTTP/1.1 and HTTP/2 (names are lowercase, as in HTTP/2; order and duplicates are kept).
 *
 * Headers decoded from the wire keep the head's bytes and the offsets of every field line (in a
 * HeadSlab, see internal/head-slab.ts) and become strings only when read: common names come as
 * interned strings from their known-name id, values are decoded on first access. Removing a
 * decoded field drops its line; adding one appends a (name, value) pair after the decoded ones.
 * The HTTP/1 encoder (h1/field-block.ts) then forwards the untouched lines as byte-range copies and writes only the
 * added ones, so a proxied head whose fields are never read never becomes a JS string. Sets of
 * names (HeaderNameSet) are matched by known-name id, without touching the bytes.
 *
 * Every name is a token and every value a valid field value (checked on insert, or by the
 * decoder), so an encoder can write them without re-validation. Not for cookie parsing or
 * content negotiation.
 */
import { InvalidHeaderError } from './errors.js';
import * as chars from './internal/char-classes.js';
import {
  finishMeasure,
  measureAddedLine,
  measureAppended,
  measureDecodedLine,
  startMeasure,
} from './internal/field-measure.js';
import { ENTRY, type HeadSlab, ID_MASK } from './internal/head-slab.js';
import * as summary from './internal/head-summary.js';
import * as known from './internal/known-names.js';

const { isFieldValue, isToken } = chars;
// Local copies: transpilers turn imported bindings into getters (a call per byte).
const LOWER = chars.LOWER;
const KNOWN_NAMES = known.KNOWN_NAMES;
const knownIdOf = known.knownIdOf;
const ID_CONNECTION = known.ID_CONNECTION;
const lookupKnownId = known.lookupKnownId;

/** Anything a header list can be built from. */
export type HeadersInit =
  | HttpHeaders
  | Iterable<readonly [string, string]>
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** The hop-by-hop fields of RFC 9110 §7.6.1, by known-name id (Close is not a field in use). */
const HOP_ID = summary.HOP_ID;
/** Ids whose lines a head's summary flags (the hop-by-hop ones and Content-Length). */
const FLAGGED_ID = summary.FLAGGED_ID;
const S_LENGTH = summary.S_LENGTH;
const S_LINES = summary.S_LINES;
const S_FLAGS = summary.S_FLAGS;
const SF_DATE = summary.SF_DATE;
const SF_MORE = summary.SF_MORE;
const SF_CONNECTION_HOP_ONLY = summary.SF_CONNECTION_HOP_ONLY;
const summaryMayHave = summary.summaryMayHave;
/** Ids named by the Connection fields of the current removeHopByHop call: `connectionNamed[id] === namedGen`. */
const connectionNamed = new Int32Array(256);
let namedGen = 0;

/** Buffer's native latin1 decoder; works on any Uint8Array. */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

/** Longest byte run latin1Of looks up in its table (longer ones are always decoded). */
const INTERN_MAX = 64;
/** Slots of the table (2 ** 10): one string each, the last one decoded there. */
const INTERN_SLOTS = 1024;
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill('');
/** Each slot's string as bytes (INTERN_MAX per slot) and its length: compared byte by byte. */
const internBytes = new Uint8Array(INTERN_SLOTS * INTERN_MAX);
const internLengths = new Int32Array(INTERN_SLOTS);
/** The same table as 32-bit words at any byte offset (a hit compares words, see latin1Of). */
const internView = new DataView(internBytes.buffer);
/**
 * A DataView over the bytes latin1Of was last given, and those bytes: nearly always the current
 * HeadSlab's (a decoded head's values and start line), one slab for a few hundred heads, so a
 * view is made once per slab, not per call. It keeps that one slab reachable until a call with
 * other bytes (the current slab is held by head-slab.ts anyway; a head's own slab is at most one).
 */
let viewedBytes: Uint8Array | null = null;
let viewed: DataView<ArrayBufferLike> = internView;
/** @internal Strings latin1Of returned from its table (tests count them). */
export const latin1Interned = { hits: 0 };

/**
 * @internal The latin1 string of b[s, e), like Buffer's latin1Slice, but a run of up to 64 bytes
 * seen before comes from a per-thread table instead. The slot is picked by the run's length and
 * three of its bytes (first, middle, last), and the slot's bytes are compared with the run's,
 * every one, so a string is returned only when it is exactly those bytes; a new run (or one that
 * shares a slot) is decoded and takes the slot. A request target or a Host value repeats from
 * request to request: latin1Slice is a call into Node's C++ and a new string each time (~730
 * instructions for wrk's target and Host value each, callgrind), a hit ~270 and no allocation.
 * Runs an attacker makes share a slot only miss: a compare and a copy of at most 64 bytes more
 * than latin1Slice alone. The table holds at most 1,024 strings of at most 64 chars, never one
 * with a '?' (queries carry tokens) nor a credential field's value (HttpHeaders.valueAt): what
 * it keeps past its message is what repeats in the open (targets, hosts, reason phrases).
 */
export function latin1Of(b: Uint8Array, s: number, e: number): string {
  const n = e - s;
  if (n > INTERN_MAX || n <= 0) return n > 0 ? latin1Slice.call(b, s, e) : '';
  const slot = Math.imul(n ^ (b[s]! << 8) ^ (b[e - 1]! << 16) ^ (b[s + (n >> 1)]! << 24), 0x9e3779b1) >>> 22;
  const at = slot * INTERN_MAX;
  const bytes = internBytes;
  if (internLengths[slot] === n && sameRun(b, s, n, at)) {
    latin1Interned.hits++;
    return internStrings[slot]!;
  }
  const str = latin1Slice.call(b, s, e);
  // A run with a '?' (a request target's query: tokens travel there) is not kept: the table
  // outlives the request and is shared by every connection of the thread.
  if (hasQuestionMark(b, s, n)) {
    internLengths[slot] = 0;
    return str;
  }
  for (let i = 0; i < n; i++) bytes[at + i] = b[s + i]!;
  internStrings[slot] = str;
  internLengths[slot] = n;
  return str;
}

/** A DataView over `b`: the one kept in `viewed` when `b` is the bytes it was made for, else a new one kept there. */
function viewOf(b: Uint8Array): DataView<ArrayBufferLike> {
  if (b === viewedBytes) return viewed;
  viewedBytes = b;
  viewed = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return viewed;
}

/**
 * Whether b[s, s + n) has a '?', read 32 bits at a time (the last word overlapping the one
 * before): a word w has one when w ^ 0x3f3f3f3f has a zero byte, which
 * `(x - 0x01010101) & ~x & 0x80808080` tells exactly (a borrow only ever starts at a zero byte,
 * whatever the bytes above 0x7f). A target with a query always misses the table; it used to
 * be copied into its slot char by char up to the '?' and then dropped: with a Host lookup,
 * ~870 instructions more a proxied request at a 44-char target (callgrind,
 * bench/http-proxy/per-request-2026-12-07d.md). Runs of fewer than 4 bytes byte by byte.
 */
function hasQuestionMark(b: Uint8Array, s: number, n: number): boolean {
  if (n < 4) {
    for (let i = 0; i < n; i++) if (b[s + i] === 0x3f) return true;
    return false;
  }
  const v = viewOf(b);
  const last = s + n - 4;
  for (let i = s; ; i += 4) {
    if (i > last) i = last;
    const x = v.getInt32(i, true) ^ 0x3f3f3f3f;
    if ((((x - 0x01010101) | 0) & ~x & 0x80808080) !== 0) return true;
    if (i === last) return false;
  }
}

/**
 * Whether b[s, s + n) is the table's run at `at` (n bytes), compared 32 bits at a time: a Host
 * value of 15 bytes is four word loads a side (the last one overlapping the third), where a loop
 * over bytes cost ~29 instructions a byte (callgrind, bench/http-proxy/per-request-2026-12-06e.md).
 * Every byte is compared either way: runs of fewer than 4 bytes byte by byte.
 */
function sameRun(b: Uint8Array, s: number, n: number, at: number): boolean {
  if (n < 4) {
    for (let i = 0; i < n; i++) if (internBytes[at + i] !== b[s + i]) return false;
    return true;
  }
  const v = viewOf(b);
  const t = internView;
  const last = n - 4;
  for (let i = 0; i < last; i += 4) if (v.getInt32(s + i, true) !== t.getInt32(at + i, true)) return false;
  return v.getInt32(s + last, true) === t.getInt32(at + last, true);
}

/**
 * The added fields after a second append: a copy with room for four pairs. A push would grow
 * the two-element array to 19 slots (V8 adds half plus 16): 168 bytes where a proxied request's
 * forwarding fields (X-Forwarded-For, -Proto, -Host, Via) need 8 slots, 80 bytes. Four pops
 * bring the length back to 4 and keep the store (V8 trims a store only when it is far larger
 * than the length, 2 * length + 16 slots or more, which 8 slots never are) and the array's
 * elements kind (packed), so every `added` array keeps one shape. Not `a.length = 4`: a store to
 * an array's length goes through V8's length accessor, a runtime call on every proxied request
 * (Runtime_StoreCallbackProperty, 427 instructions), where the pops are inlined.
 */
function secondAdded(first: string[], name: string, value: string): string[] {
  const a = [first[0]!, first[1]!, name, value, '', '', '', ''];
  a.pop();
  a.pop();
  a.pop();
  a.pop();
  return a;
}

/** Shared by lists without added fields (never written to). */
const NO_ADDED: string[] = Object.freeze([]) as unknown as string[];

/** Names of a HeaderNameSet that HttpHeaders.presence reports (bits 0-29: small integers in V8). */
const PRESENCE_BITS = 30;

/** Per-entry removal marks for the compaction passes (grown as needed, reused). */
let drop = new Uint8Array(128);

/**
 * A fixed set of lowercase header names, matched by known-name id where it can (one table
 * lookup per field, no string compare): what `HttpHeaders.deleteNames` takes for a set it
 * removes often, such as the hop-by-hop fields. Immutable once built.
 */
export class HeaderNameSet {
  /** 1 at the ids of the known names in the set. @internal */
  readonly ids: Uint8Array = new Uint8Array(256);
  /** Names in the set that are not known names. @internal */
  readonly others: ReadonlySet<string>;
  /** HttpHeaders.presence's bit of each known name's id (0: not in the set, or past the 30th). @internal */
  readonly bits: Int32Array = new Int32Array(256);
  /**
   * The known ids of the set as a head summary's id filter has them (internal/head-summary.ts:
   * bit `id & 31`, in idsHi when `id & 32`): a head whose filter meets neither has none of them. @internal
   */
  readonly idsLo: number = 0;
  /** @internal */
  readonly idsHi: number = 0;
  /** The set's names in order (lowercase) and their presence bits. @internal */
  readonly list: readonly string[];
  /** @internal */
  readonly listBits: readonly number[];
  private readonly all: ReadonlySet<string>;

  /** Builds the set; names are lowercased. Throws InvalidHeaderError for a name that is not a token. */
  constructor(names: Iterable<string>) {
    const all = new Set<string>();
    const others = new Set<string>();
    const list: string[] = [];
    const listBits: number[] = [];
    let lo = 0;
    let hi = 0;
    for (const name of names) {
      const lname = lower(name);
      if (!isToken(lname)) throw new InvalidHeaderError('name', name);
      if (all.has(lname)) continue;
      all.add(lname);
      const bit = list.length < PRESENCE_BITS ? 1 << list.length : 0;
      list.push(lname);
      listBits.push(bit);
      const id = knownIdOf(lname);
      if (id !== 0) {
        this.ids[id] = 1;
        this.bits[id] = bit;
        if ((id & 32) === 0) lo |= 1 << (id & 31);
        else hi |= 1 << (id & 31);
      } else others.add(lname);
    }
    this.idsLo = lo;
    this.idsHi = hi;
    this.all = all;
    this.others = others;
    this.list = list;
    this.listBits = listBits;
  }

  /** Whether `name` (any case) is in the set. */
  has(name: string): boolean {
    return this.all.has(lower(name));
  }

  /** Number of names. */
  get size(): number {
    return this.all.size;
  }

  /** The lowercase names. */
  [Symbol.iterator](): IterableIterator<string> {
    return this.all.values();
  }
}

/**
 * A header name resolved once: its lowercase form and known-name id. The name-taking methods of
 * HttpHeaders accept one in place of a string, which spares them the name's lookup on every call
 * (a Map lookup, and a case or token check): what a path that reads or adds the same fields on
 * every request (a proxy's Host, X-Forwarded-For, Via) keeps in a module constant.
 */
export class HeaderName {
  /** The lowercase name. */
  readonly name: string;
  /** Its known-name id (0 for none). @internal */
  readonly id: number;
  /**
   * The value last appended under this name, as checked then (trimmed, a valid field value; at
   * most KEPT_VALUE_MAX chars): checkValue lets a string `===` to it (the same chars) through
   * without checking it again. A proxy appends the same Via, X-Forwarded-Proto and -Host values
   * request after request. Private, so nothing outside this class can make an unchecked value
   * pass. Never kept for a credential name (its value would outlive its message, as latin1Of's
   * table never keeps one either); x-forwarded-client-cert values (a hash of 64 hex digits and
   * more) are longer than KEPT_VALUE_MAX.
   */
  #lastValue = '';
  readonly #keepsValue: boolean;

  /** Throws InvalidHeaderError for a name that is not a token. */
  constructor(name: string) {
    const lname = tokenLower(name);
    if (lname === '') throw new InvalidHeaderError('name', name);
    this.name = lname;
    this.id = knownIdOf(lname);
    this.#keepsValue = !isCredentialId(this.id);
  }

  /**
   * @internal `value` as a field value under this name (trimmed), or throws InvalidHeaderError:
   * what HttpHeaders.append stores. The value this name was last given passes unchecked.
   */
  checkValue(value: string): string {
    if (value === this.#lastValue) return value;
    const v = checkedFieldValue(value, this.name);
    if (this.#keepsValue && v.length <= KEPT_VALUE_MAX) this.#lastValue = v;
    return v;
  }

  /** @internal the value kept as checked ('' for none; tests) */
  get keptValue(): string {
    return this.#lastValue;
  }
}

/** `value` trimmed, or InvalidHeaderError naming `name` when it is not a field value. */
function checkedFieldValue(value: string, name: string): string {
  const v = trimOws(value);
  if (!isFieldValue(v)) throw new InvalidHeaderError('value', name);
  return v;
}

/** Longest value a HeaderName keeps as checked (#lastValue). */
const KEPT_VALUE_MAX = 64;

/** Fields that carry credentials: their values are never kept beyond their message. */
function isCredentialId(id: number): boolean {
  return (
    id === known.ID_AUTHORIZATION ||
    id === known.ID_COOKIE ||
    id === known.ID_PROXY_AUTHORIZATION ||
    id === known.ID_SET_COOKIE
  );
}

/** An ordered list of (lowercase name, value) header fields. */
export class HttpHeaders implements Iterable<[string, string]> {
  /** The slab holding the decoded head (bytes and line offsets), or null for a built list. */
  /** @internal */
  declare slab: HeadSlab | null;
  /** Word index in `slab.words` of the first decoded line's entry. */
  /** @internal */
  declare wbase: number;
  /** Decoded lines still in the list (they come first, in wire order). */
  /** @internal */
  declare wcount: number;
  /**
   * Strings of decoded lines (name, value per line: index 2 * line, 2 * line + 1), made on
   * first read; null until a second one is read (memoKey).
   */
  declare private cache: (string | undefined)[] | null;
  /**
   * The first decoded line's string read, kept here while `cache` is null: its key (2 * the
   * offset of the line's name in the slab, + 1 for its value; -1 for none) and the string. A
   * proxied request reads one (its Host value): an array for it was 96 bytes a head and its
   * allocation (bench/http-proxy/per-request-2026-12-06h.md). Keyed by the line's bytes, not
   * its index: a removal moves entries, never their bytes, so the memo needs no update there.
   */
  declare private memoKey: number;
  declare private memoString: string;
  /** Fields added after decoding (or every field of a built list): name, value pairs. */
  /** @internal */
  declare added: string[];
  /**
   * Bumped by every mutation: an encoder caches what it derived from a list under
   * (list, revision). @internal
   */
  declare revision: number;
  /** Encoder cache (see measureFields): valid while `measured === revision`. @internal */
  declare measured: number;
  /** @internal bytes of the field block measureFields found */
  declare fieldsLength: number;
  /** @internal a `date` field is present */
  declare fieldsDate: boolean;
  /** @internal a `connection` field names `close` */
  declare fieldsClose: boolean;
  /**
   * @internal the value of the one canonical Content-Length line among the decoded lines (-1 when
   * there is none, or several, or it is not canonical) and that line's length: an encoder whose
   * framing says the same length keeps the line where it is.
   */
  declare fieldsContentLength: number;
  /** @internal */
  declare fieldsContentLengthLine: number;
  /**
   * @internal the decoded start line, `slab.bytes[startAt, startEnd)` (-1 when none), and what it
   * says when it is HTTP/1.1 (else startAt is -1): a request's method and target (startStatus 0)
   * or a response's status and reason. An encoder writing the same line copies it with the fields.
   */
  declare startAt: number;
  /** @internal */
  declare startEnd: number;
  /** @internal */
  declare startStatus: number;
  /** @internal */
  declare startMethodOrReason: string;
  /** @internal */
  declare startTarget: string;
  /**
   * @internal word index in `slab.words` of the decoded lines' summary (internal/head-summary.ts,
   * written by the decoder after the entries), -1 for a built list and once a decoded line is
   * removed (the summary describes the lines as decoded). Its SF_CONNECTION_HOP_ONLY: every
   * decoded Connection line lists bare `keep-alive` and `upgrade` tokens only (the decoder's
   * list flags say so), fields removed as hop-by-hop anyway, so removeHopByHop does not read them.
   */
  declare summaryAt: number;

  /**
   * Builds a header list; every name is lowercased and checked, every value checked. The
   * filling is a method of its own: a constructor this small is inlined where the decoder makes
   * a list per head (fromWire), instead of a call through V8's generic construct stub. The
   * fields are `declare`d and set here, in one order (one shape), with no class field
   * initializers: those are a function of their own (V8's instance members initializer), which
   * the decoder's fromWire did not always inline, a call per head (callgrind,
   * bench/http-proxy/per-request-2026-12-06g.md).
   */
  constructor(init?: HeadersInit) {
    this.slab = null;
    this.wbase = 0;
    this.wcount = 0;
    this.cache = null;
    this.memoKey = -1;
    this.memoString = '';
    this.added = NO_ADDED;
    this.revision = 0;
    this.measured = -1;
    this.fieldsLength = 0;
    this.fieldsDate = false;
    this.fieldsClose = false;
    this.fieldsContentLength = -1;
    this.fieldsContentLengthLine = 0;
    this.startAt = -1;
    this.startEnd = -1;
    this.startStatus = 0;
    this.startMethodOrReason = '';
    this.startTarget = '';
    this.summaryAt = -1;
    if (init !== undefined) this.fill(init);
  }

  /** The constructor's `init`, appended. */
  private fill(init: HeadersInit): void {
    if (init instanceof HttpHeaders) {
      const n = init.size;
      if (n > 0) this.added = [];
      for (let i = 0; i < n; i++) this.added.push(init.nameAt(i), init.valueAt(i));
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
   * Internal constructor for the decoder: `count` field lines whose entries start at word
   * `wbase` of `slab` (offsets into `slab.bytes`, validated), followed by their summary
   * (internal/head-summary.ts). Takes ownership of the entries.
   * @internal
   */
  static fromWire(
    slab: HeadSlab,
    wbase: number,
    count: number,
    startAt: number,
    startEnd: number,
  ): HttpHeaders {
    const h = new HttpHeaders();
    h.slab = slab;
    h.wbase = wbase;
    h.wcount = count;
    h.startAt = startAt;
    h.startEnd = startEnd;
    h.summaryAt = wbase + ENTRY * count;
    return h;
  }

  /** Number of fields (duplicates counted). */
  get size(): number {
    return this.wcount + (this.added.length >> 1);
  }

  /** Lowercase name of field `i`. */
  nameAt(i: number): string {
    const wc = this.wcount;
    if (i >= wc) return this.added[2 * (i - wc)]!;
    const words = this.slab!.words;
    const e = this.wbase + ENTRY * i;
    const id = words[e + 4]! & ID_MASK;
    if (id !== 0) return KNOWN_NAMES[id]!;
    const key = 2 * words[e]!;
    let s = this.cached(2 * i, key);
    if (s === undefined) {
      s = latin1Slice.call(this.slab!.bytes, words[e]!, words[e + 1]!).toLowerCase();
      this.keep(2 * i, key, s);
    }
    return s;
  }

  /** Value of field `i`, without surrounding whitespace. */
  valueAt(i: number): string {
    const wc = this.wcount;
    if (i >= wc) return this.added[2 * (i - wc) + 1]!;
    const words = this.slab!.words;
    const e = this.wbase + ENTRY * i;
    const key = 2 * words[e]! + 1;
    let s = this.cached(2 * i + 1, key);
    if (s === undefined) {
      const id = words[e + 4]! & ID_MASK;
      // Credentials are never kept in latin1Of's table, which outlives the message.
      s = isCredentialId(id)
        ? latin1Slice.call(this.slab!.bytes, words[e + 2]!, words[e + 3]!)
        : latin1Of(this.slab!.bytes, words[e + 2]!, words[e + 3]!);
      this.keep(2 * i + 1, key, s);
    }
    return s;
  }

  /** The string made before for `cache` index `at` (memo `key`), or undefined. */
  private cached(at: number, key: number): string | undefined {
    const cache = this.cache;
    if (cache !== null) return cache[at];
    return this.memoKey === key ? this.memoString : undefined;
  }

  /**
   * Keeps `s` for `cache` index `at` (memo `key`): in the memo while it is free, else in `cache`,
   * made then (the memo's string is let go: read again, it is made again).
   */
  private keep(at: number, key: number, s: string): void {
    if (this.cache === null) {
      if (this.memoKey < 0) {
        this.memoKey = key;
        this.memoString = s;
        return;
      }
      this.cache = new Array<string | undefined>(2 * this.wcount);
      this.memoKey = -1;
      this.memoString = '';
    }
    this.cache[at] = s;
  }

  /** Index of the first field named `lname` (lowercase; `id` its known-name id) at or after `from`, or -1. */
  private indexOf(lname: string, id: number, from: number): number {
    const wc = this.wcount;
    if (from < wc) {
      const words = this.slab!.words;
      const bytes = this.slab!.bytes;
      const len = lname.length;
      for (let i = from, e = this.wbase + ENTRY * from; i < wc; i++, e += ENTRY) {
        const wid = words[e + 4]! & ID_MASK;
        if (id !== 0) {
          if (wid === id) return i;
          continue;
        }
        if (wid !== 0) continue;
        // An unknown name: compare the wire bytes case-insensitively, no allocation.
        const s = words[e]!;
        if (words[e + 1]! - s === len && sameName(bytes, s, lname)) return i;
      }
      from = wc;
    }
    const added = this.added;
    for (let j = 2 * (from - wc); j < added.length; j += 2) if (added[j] === lname) return wc + (j >> 1);
    return -1;
  }

  /** First value of `name` (case-insensitive), or undefined. */
  get(name: string | HeaderName): string | undefined {
    if (typeof name !== 'string') {
      const i = this.indexOf(name.name, name.id, 0);
      return i < 0 ? undefined : this.valueAt(i);
    }
    const id = knownIdOf(name);
    const lname = id !== 0 ? name : lower(name);
    const i = this.indexOf(lname, id !== 0 || lname === name ? id : knownIdOf(lname), 0);
    return i < 0 ? undefined : this.valueAt(i);
  }

  /** Every value of `name`, in order. */
  getAll(name: string | HeaderName): string[] {
    let id: number;
    let lname: string;
    if (typeof name !== 'string') {
      id = name.id;
      lname = name.name;
    } else {
      id = knownIdOf(name);
      lname = id !== 0 ? name : lower(name);
      if (id === 0 && lname !== name) id = knownIdOf(lname);
    }
    const out: string[] = [];
    for (let i = this.indexOf(lname, id, 0); i >= 0; i = this.indexOf(lname, id, i + 1))
      out.push(this.valueAt(i));
    return out;
  }

  /** True when at least one field is named `name`. */
  has(name: string | HeaderName): boolean {
    if (typeof name !== 'string') return this.indexOf(name.name, name.id, 0) >= 0;
    // A common name in lowercase (what code passes) is found with one lookup.
    const id = knownIdOf(name);
    const lname = id !== 0 ? name : lower(name);
    return this.indexOf(lname, id !== 0 || lname === name ? id : knownIdOf(lname), 0) >= 0;
  }

  /**
   * Which names of `names` the list has, in one pass over it: bit k (`1 << k`) is set when a
   * field is named the set's k-th name (in the order the set was built from, duplicates
   * skipped; the first 30 names). For a path that asks about several names on every message:
   * one pass where a `has()` per name is one each. Decoded fields with a common name are
   * matched by id, others by their bytes (no string made). With the decoder's summary of the
   * lines (internal/head-summary.ts), a head whose id filter meets none of the set's known ids,
   * and has no uncommon name or the set none, has none of them: its lines are not visited (a
   * proxy's X-Forwarded-* on every request, which most clients do not send).
   */
  presence(names: HeaderNameSet): number {
    const bits = names.bits;
    const uncommon = names.others.size > 0;
    let found = 0;
    const wc = this.wcount;
    if (wc > 0) {
      const words = this.slab!.words;
      const s = this.summaryAt;
      if (s < 0 || summaryMayHave(words, s, names.idsLo, names.idsHi, uncommon)) {
        for (let e = this.wbase, end = this.wbase + ENTRY * wc; e < end; e += ENTRY) {
          const id = words[e + 4]! & ID_MASK;
          if (id !== 0) found |= bits[id]!;
          else if (uncommon) found |= this.otherBit(words[e]!, words[e + 1]!, names);
        }
      }
    }
    const added = this.added;
    for (let j = 0; j < added.length; j += 2) {
      const lname = added[j]!;
      const list = names.list;
      for (let k = 0; k < list.length; k++) {
        if (list[k] === lname) {
          found |= names.listBits[k]!;
          break;
        }
      }
    }
    return found;
  }

  /** The presence bit of the uncommon name in the slab's bytes [s, e) (0 when not in `names`). */
  private otherBit(s: number, e: number, names: HeaderNameSet): number {
    const list = names.list;
    for (let k = 0; k < list.length; k++) {
      const lname = list[k]!;
      if (lname.length === e - s && sameName(this.slab!.bytes, s, lname)) return names.listBits[k]!;
    }
    return 0;
  }

  /** Adds a field at the end. Throws InvalidHeaderError for a bad name or value. */
  append(name: string | HeaderName, value: string): this {
    // A common name in lowercase is a token already, as is a HeaderName's.
    const lname = typeof name !== 'string' ? name.name : knownIdOf(name) !== 0 ? name : tokenLower(name);
    if (lname === '') throw new InvalidHeaderError('name', name as string);
    const v = typeof name !== 'string' ? name.checkValue(value) : checkedFieldValue(value, name);
    const added = this.added;
    if (added === NO_ADDED) this.added = [lname, v];
    else if (added.length === 2) this.added = secondAdded(added, lname, v);
    else added.push(lname, v);
    // A list measured just before (a forwarded head after removeHopByHop) stays measured.
    measureAppended(this, ++this.revision, lname, v);
    return this;
  }

  /** Replaces every field named `name` with one field (at the end). */
  set(name: string | HeaderName, value: string): this {
    this.delete(name);
    return this.append(name, value);
  }

  /** Removes every field named `name`; returns how many were removed. */
  delete(name: string | HeaderName): number {
    const lname = typeof name === 'string' ? lower(name) : name.name;
    const id = typeof name === 'string' ? knownIdOf(lname) : name.id;
    let i = this.indexOf(lname, id, 0);
    if (i < 0) return 0;
    const n = this.size;
    const marks = marksFor(n);
    for (; i >= 0; i = this.indexOf(lname, id, i + 1)) marks[i] = 1;
    return this.dropMarked(marks, n);
  }

  /**
   * Removes every field whose name is in `names`, in one pass over the list; returns how many
   * were removed. With a HeaderNameSet, decoded fields with a common name are matched by id
   * (no bytes read, no string made); a plain set of lowercase names compares names.
   */
  deleteNames(names: HeaderNameSet | ReadonlySet<string>): number {
    const n = this.size;
    const wc = this.wcount;
    let marks: Uint8Array | null = null;
    if (names instanceof HeaderNameSet) {
      const ids = names.ids;
      const others = names.others.size > 0 ? names.others : null;
      if (wc > 0) {
        const words = this.slab!.words;
        for (let i = 0, e = this.wbase + 4; i < wc; i++, e += ENTRY) {
          const id = words[e]! & ID_MASK;
          if (id !== 0 ? ids[id] === 1 : others?.has(this.nameAt(i))) {
            marks ??= marksFor(n);
            marks[i] = 1;
          }
        }
      }
      const added = this.added;
      for (let j = 0; j < added.length; j += 2) {
        const lname = added[j]!;
        const id = knownIdOf(lname);
        if (id !== 0 ? ids[id] === 1 : others?.has(lname)) {
          marks ??= marksFor(n);
          marks[wc + (j >> 1)] = 1;
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        if (names.has(this.nameAt(i))) {
          marks ??= marksFor(n);
          marks[i] = 1;
        }
      }
    }
    return marks === null ? 0 : this.dropMarked(marks, n);
  }

  /**
   * Removes the hop-by-hop fields of RFC 9110 §7.6.1 (Connection, Proxy-Connection, Keep-Alive,
   * TE, Transfer-Encoding, Trailer, Upgrade), every field a Connection field names, and the
   * names in `also`; returns how many fields were removed. What a proxy does to each message it
   * forwards. On decoded fields it is one pass over known-name ids: Connection values are read
   * as bytes (not at all when the decoder found them listing only `keep-alive` and `upgrade`:
   * SF_CONNECTION_HOP_ONLY), and no string is made unless Connection names an uncommon field.
   * With the decoder's summary of the lines (internal/head-summary.ts) and an `also` none of
   * whose known names the head has, the pass visits only the flagged lines (hop-by-hop and
   * Content-Length): the others are kept, and the summary has their measure. A second pass
   * runs only when Connection names a field the first did not remove anyway (`keep-alive`,
   * the usual one, is hop-by-hop itself) or `also` has uncommon names. Without one, the first
   * pass also measures the lines it keeps for the HTTP/1 encoder (internal/field-measure.ts):
   * the forwarded head's lines are not walked again to write it.
   */
  removeHopByHop(also?: HeaderNameSet): number {
    const gen = ++namedGen;
    startMeasure(this);
    const alsoIds = also === undefined ? null : also.ids;
    const alsoOthers = also === undefined || also.others.size === 0 ? null : also.others;
    const n = this.size;
    const wc = this.wcount;
    let marks: Uint8Array | null = null;
    /** Connection named a common name that is not removed by id anyway. */
    let named = false;
    let uncommon: string[] | null = null;
    if (wc > 0) {
      const words = this.slab!.words;
      const b = this.slab!.bytes;
      const wbase = this.wbase;
      const s = this.summaryAt;
      const flags = s >= 0 ? words[s + S_FLAGS]! : 0;
      const readConnection = (flags & SF_CONNECTION_HOP_ONLY) === 0;
      // The lines visited: every one, or, with the summary and an `also` none of whose known
      // names the head has, the flagged ones only (lines 0-31 by the summary's bits, later ones
      // by id): a line not flagged is then neither hop-by-hop nor in `also`, so it is kept as it
      // is, and the summary has its measure. One loop for both: V8 inlines its body once.
      // (`also`'s uncommon names are looked for in the second pass, not here.)
      const summed =
        s >= 0 && (also === undefined || !summaryMayHave(words, s, also.idsLo, also.idsHi, false));
      let bits = 0;
      let i = -1;
      if (summed) {
        this.fieldsLength = words[s + S_LENGTH]!;
        if ((flags & SF_DATE) !== 0) this.fieldsDate = true;
        bits = words[s + S_LINES]!;
        i = (flags & SF_MORE) !== 0 ? 31 : wc;
      }
      for (;;) {
        let at: number;
        if (bits !== 0) {
          at = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
        } else {
          i++;
          if (summed) while (i < wc && FLAGGED_ID[words[wbase + ENTRY * i + 4]! & ID_MASK] !== 1) i++;
          if (i >= wc) break;
          at = i;
        }
        const e = wbase + ENTRY * at;
        const id = words[e + 4]! & ID_MASK;
        if (HOP_ID[id] !== 1 && (alsoIds === null || alsoIds[id] !== 1)) {
          // Kept: measured for the HTTP/1 encoder here, in the pass that reads its id anyway.
          measureDecodedLine(this, words, b, e);
          continue;
        }
        marks ??= marksFor(n);
        marks[at] = 1;
        if (id !== ID_CONNECTION || !readConnection) continue;
        // The names this Connection field lists.
        const end = words[e + 3]!;
        let p = words[e + 2]!;
        while (p < end) {
          const c = b[p]!;
          if (c === 0x2c || c === 0x20 || c === 0x09) {
            p++;
            continue;
          }
          const ts = p;
          while (p < end && b[p] !== 0x2c && b[p] !== 0x20 && b[p] !== 0x09) p++;
          const tid = lookupKnownId(b, ts, p);
          if (tid === 0) (uncommon ??= []).push(latin1Slice.call(b, ts, p).toLowerCase());
          else if (HOP_ID[tid] !== 1 && (alsoIds === null || alsoIds[tid] !== 1)) {
            connectionNamed[tid] = gen;
            named = true;
          }
        }
      }
    }
    const added = this.added;
    for (let j = 0; j < added.length; j += 2) {
      const id = knownIdOf(added[j]!);
      if (HOP_ID[id] !== 1 && (alsoIds === null || alsoIds[id] !== 1)) {
        measureAddedLine(this, added[j]!, added[j + 1]!);
        continue;
      }
      marks ??= marksFor(n);
      marks[wc + (j >> 1)] = 1;
      if (id !== ID_CONNECTION) continue;
      for (const token of added[j + 1]!.split(',')) {
        const t = token.trim().toLowerCase();
        if (t === '') continue;
        const tid = knownIdOf(t);
        if (tid === 0) (uncommon ??= []).push(t);
        else if (HOP_ID[tid] !== 1 && (alsoIds === null || alsoIds[tid] !== 1)) {
          connectionNamed[tid] = gen;
          named = true;
        }
      }
    }
    if (named || uncommon !== null || alsoOthers !== null) {
      // Fields named by Connection (or uncommon `also` names) go too: the measure of the first
      // pass counted them, so the encoder measures the list again.
      const words = wc > 0 ? this.slab!.words : null;
      for (let i = 0; i < n; i++) {
        if (marks !== null && marks[i] === 1) continue;
        const id = i < wc ? words![this.wbase + ENTRY * i + 4]! & ID_MASK : knownIdOf(added[2 * (i - wc)]!);
        let hop: boolean;
        if (id !== 0) hop = connectionNamed[id] === gen;
        else {
          const lname = this.nameAt(i);
          hop = uncommon?.includes(lname) === true || alsoOthers?.has(lname) === true;
        }
        if (hop) {
          marks ??= marksFor(n);
          marks[i] = 1;
        }
      }
      return marks === null ? 0 : this.dropMarked(marks, n);
    }
    const removed = marks === null ? 0 : this.dropMarked(marks, n);
    finishMeasure(this);
    return removed;
  }

  /** Removes the fields marked in `marks[0, n)` (and clears the marks); returns how many. */
  private dropMarked(marks: Uint8Array, n: number): number {
    const wc = this.wcount;
    let w = 0;
    if (wc > 0) {
      const words = this.slab!.words;
      const cache = this.cache;
      const base = this.wbase;
      for (let i = 0; i < wc; i++) {
        if (marks[i] === 1) {
          marks[i] = 0;
          continue;
        }
        if (w !== i) {
          // Five words: cheaper in place than a native copyWithin call.
          const to = base + ENTRY * w;
          const from = base + ENTRY * i;
          words[to] = words[from]!;
          words[to + 1] = words[from + 1]!;
          words[to + 2] = words[from + 2]!;
          words[to + 3] = words[from + 3]!;
          words[to + 4] = words[from + 4]!;
          if (cache !== null) {
            cache[2 * w] = cache[2 * i];
            cache[2 * w + 1] = cache[2 * i + 1];
          }
        }
        w++;
      }
      if (cache !== null) cache.length = 2 * w;
      this.wcount = w;
      if (w !== wc) this.summaryAt = -1;
    }
    const added = this.added;
    let a = 0;
    for (let i = wc; i < n; i++) {
      const j = 2 * (i - wc);
      if (marks[i] === 1) {
        marks[i] = 0;
        continue;
      }
      added[2 * a] = added[j]!;
      added[2 * a + 1] = added[j + 1]!;
      a++;
    }
    if (added !== NO_ADDED) added.length = 2 * a;
    this.revision++;
    return n - w - a;
  }

  /** Iterates `[name, value]` pairs in order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (let i = 0; i < this.size; i++) yield [this.nameAt(i), this.valueAt(i)];
  }

  /** Same as iterating the list. */
  entries(): IterableIterator<[string, string]> {
    return this[Symbol.iterator]();
  }

  /** A plain object; repeated names join with ", " (set-cookie values are kept as an array). */
  toObject(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < this.size; i++) {
      const n = this.nameAt(i);
      const v = this.valueAt(i);
      const prev = out[n];
      if (prev === undefined) out[n] = n === 'set-cookie' ? [v] : v;
      else if (Array.isArray(prev)) prev.push(v);
      else out[n] = `${prev}, ${v}`;
    }
    return out;
  }
}

/** Whether the wire name at `b[s, s + lname.length)` is `lname` (lowercase), case-insensitively. */
function sameName(b: Uint8Array, s: number, lname: string): boolean {
  const len = lname.length;
  let k = 0;
  while (k < len && LOWER[b[s + k]!] === lname.charCodeAt(k)) k++;
  return k === len;
}

/** The marks array with room for `n` entries (all zero between uses). */
function marksFor(n: number): Uint8Array {
  if (drop.length < n) drop = new Uint8Array(Math.max(n, drop.length * 2));
  return drop;
}

const TOKEN = chars.TOKEN;

/** The lowercase form of `name` when it is a token, else '' (one pass). */
function tokenLower(name: string): string {
  let upper = false;
  const n = name.length;
  if (n === 0) return '';
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || TOKEN[c] !== 1) return '';
    if (c >= 0x41 && c <= 0x5a) upper = true;
  }
  return upper ? name.toLowerCase() : name;
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
