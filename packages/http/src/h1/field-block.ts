/**
 * The HTTP/1 wire form of a header list: the field block (`name: value\r\n` lines) an encoder
 * writes, without the framing fields it derives itself (Content-Length, Transfer-Encoding,
 * Connection, Keep-Alive). Lines decoded from the wire and left untouched are forwarded as
 * byte-range copies of their HeadSlab (runs of them in one copy, the start line too when it is
 * the same), added fields are written from their strings. measureFieldBlock also notes what the
 * encoder needs to know (a Date field, `connection: close`, a canonical Content-Length line),
 * cached on the list until it changes. HTTP/2 encodes the same HttpHeaders with HPACK instead.
 */
import type { HttpHeaders } from '../headers.js';
import {
  FRAMING_ID,
  finishMeasure,
  isFramingName,
  measureAddedLine,
  measureDecodedLine,
  startMeasure,
} from '../internal/field-measure.js';
import { CANONICAL, ENTRY, type HeadSlab, ID_MASK } from '../internal/head-slab.js';
import * as known from '../internal/known-names.js';
import { typedArrayCopyWithin, typedArraySet } from '../internal/typed-array-methods.js';

const ID_CONTENT_LENGTH = known.ID_CONTENT_LENGTH;

/** Buffer's native latin1 encoder; works on any Uint8Array. */
const latin1Write = (
  Buffer.prototype as unknown as { latin1Write(this: Uint8Array, s: string, offset: number): number }
).latin1Write;

/**
 * Uint8Array, read once. copyRange's `out` is a Uint8Array (the write slab) or a Buffer (a head
 * encoded on its own): its copies go through typedArraySet (internal/typed-array-methods.ts).
 */
const U8 = Uint8Array;

/**
 * `name: ` as bytes for the known names of 8 chars or more, by id (undefined for the others):
 * an added field with such a name (a proxy's X-Forwarded-For, -Proto, -Host) has its name
 * copied in one native copy (~250 instructions, callgrind) where writing it char by char costs
 * ~35 per char (each char's load and store checks its array in V8's optimized code).
 */
const NAME_PREFIX: readonly (Uint8Array | undefined)[] = known.KNOWN_NAMES.map((name) =>
  name.length >= 8 ? Uint8Array.from(`${name}: `, (c) => c.charCodeAt(0)) : undefined,
);
const knownIdOf = known.knownIdOf;

/**
 * Measures the HTTP/1 field block of this list without the framing fields (Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive) and notes whether a Date field is present and
 * whether Connection names `close`. Cached until the list changes. Returns the byte length.
 */
export function measureFieldBlock(h: HttpHeaders): number {
  if (h.measured === h.revision) return h.fieldsLength;
  startMeasure(h);
  const wc = h.wcount;
  if (wc > 0) {
    const words = h.slab!.words;
    const bytes = h.slab!.bytes;
    for (let e = h.wbase, end = h.wbase + ENTRY * wc; e < end; e += ENTRY)
      measureDecodedLine(h, words, bytes, e);
  }
  const added = h.added;
  for (let j = 0; j < added.length; j += 2) measureAddedLine(h, added[j]!, added[j + 1]!);
  return finishMeasure(h);
}

/**
 * Writes the field block measured by measureFieldBlock (call it first) into `out` at `pos` and
 * returns the position after it. Runs of untouched decoded lines are one copy each (a run may
 * span one stretch of dropped lines: copySpan). With `withStart`, the decoded start line goes
 * first (in the same copy as the lines after it); with `keepLength`, the Content-Length line
 * fieldsContentLength describes stays. The bytes of `out` after the returned position may be
 * overwritten (copySpan): the caller writes them next.
 */
export function writeFieldBlock(
  h: HttpHeaders,
  out: Uint8Array,
  pos: number,
  withStart = false,
  keepLength = false,
): number {
  const wc = h.wcount;
  if (wc > 0 || withStart) {
    const words = h.slab!.words;
    const slab = h.slab!;
    // The run: the slab's [runStart, runEnd) without [gapStart, gapEnd) when gapStart >= 0.
    let runStart = withStart ? h.startAt : -1;
    let runEnd = withStart ? h.startEnd : -1;
    let gapStart = -1;
    let gapEnd = -1;
    for (let e = h.wbase, end = h.wbase + ENTRY * wc; e < end; e += ENTRY) {
      const meta = words[e + 4]!;
      const id = meta & ID_MASK;
      if (FRAMING_ID[id] === 1 && !(keepLength && id === ID_CONTENT_LENGTH)) continue;
      const ns = words[e]!;
      if ((meta & CANONICAL) !== 0) {
        const le = words[e + 3]! + 2;
        if (ns === runEnd) {
          runEnd = le;
          continue;
        }
        // Dropped lines (framing, hop-by-hop) between the run and this line: the run's gap.
        if (runStart >= 0 && gapStart < 0 && ns > runEnd) {
          gapStart = runEnd;
          gapEnd = ns;
          runEnd = le;
          continue;
        }
        if (runStart >= 0) pos = copySpan(slab, runStart, runEnd, gapStart, gapEnd, out, pos);
        runStart = ns;
        runEnd = le;
        gapStart = gapEnd = -1;
        continue;
      }
      if (runStart >= 0) {
        pos = copySpan(slab, runStart, runEnd, gapStart, gapEnd, out, pos);
        runStart = runEnd = gapStart = gapEnd = -1;
      }
      // Odd whitespace around the value (`name:value`, `name:  value \r\n`): normalized.
      pos = copyRange(slab, ns, words[e + 1]!, out, pos);
      out[pos++] = 0x3a;
      out[pos++] = 0x20;
      pos = copyRange(slab, words[e + 2]!, words[e + 3]!, out, pos);
      out[pos++] = 0x0d;
      out[pos++] = 0x0a;
    }
    if (runStart >= 0) pos = copySpan(slab, runStart, runEnd, gapStart, gapEnd, out, pos);
  }
  const added = h.added;
  return added.length === 0 ? pos : writeAdded(added, out, pos);
}

/** Added pairs a kept block may have (a proxied request adds 4: X-Forwarded-For, -Proto, -Host, Via). */
const KEPT_MAX_PAIRS = 8;
/** Longest block of added lines kept (bytes). */
const KEPT_MAX_BYTES = 512;
/** Kept blocks: one per count of added pairs modulo 4 (a request's 4, a response's 1: two slots). */
const KEPT_SLOTS = 4;

/** The lines of one list of added fields as writeAdded wrote them last: the strings and their bytes. */
interface KeptBlock {
  /** The added list's strings (name, value, ...), `count` of them; the rest are ''. */
  readonly strings: string[];
  count: number;
  /** Exactly the bytes written for them. */
  bytes: Uint8Array;
}

const keptBlocks: KeptBlock[] = Array.from({ length: KEPT_SLOTS }, () => ({
  strings: new Array<string>(2 * KEPT_MAX_PAIRS).fill(''),
  count: 0,
  bytes: new U8(0),
}));

/** @internal Every string the kept blocks hold (tests: no credential is among them). */
export function keptAddedStrings(): string[] {
  return keptBlocks.flatMap((k) => k.strings.slice(0, k.count));
}

/** Credentials: their lines are never kept past their message (as latin1Of never keeps them). */
const SECRET_ID = new Uint8Array(256);
SECRET_ID[known.ID_AUTHORIZATION] = 1;
SECRET_ID[known.ID_PROXY_AUTHORIZATION] = 1;
SECRET_ID[known.ID_COOKIE] = 1;
SECRET_ID[known.ID_SET_COOKIE] = 1;

/**
 * Writes the added fields' lines (`name: value\r\n`, framing names skipped) at pos; returns the
 * position after them. A proxy adds the same fields with the same strings to message after
 * message (X-Forwarded-For's client address, -Proto, -Host, Via): written char by char they
 * cost ~35 instructions per char in V8's optimized code (each char's load and store checks its
 * array again), ~2,000 per proxied request at 128 B. So the block last written for a list of
 * the same number of pairs is kept as bytes, and a list whose strings are all equal (`===`:
 * the same chars, so the same bytes) gets it in one native copy. A list that differs is
 * written as before and replaces the kept one (one copy more). Lists with a credential field
 * are never kept.
 */
function writeAdded(added: string[], out: Uint8Array, pos: number): number {
  const n = added.length;
  const kept = keptBlocks[(n >> 1) & (KEPT_SLOTS - 1)]!;
  const strings = kept.strings;
  if (kept.count === n) {
    let j = 0;
    while (j < n && strings[j] === added[j]) j++;
    if (j === n) {
      const bytes = kept.bytes;
      typedArraySet.call(out, bytes, pos);
      return pos + bytes.length;
    }
  }
  const start = pos;
  let secret = false;
  for (let j = 0; j < n; j += 2) {
    const name = added[j]!;
    if (isFramingName(name)) continue;
    const id = knownIdOf(name);
    if (SECRET_ID[id] === 1) secret = true;
    const prefix = NAME_PREFIX[id];
    if (prefix !== undefined) {
      typedArraySet.call(out, prefix, pos);
      pos += prefix.length;
    } else {
      pos = writeLatin1(out, pos, name);
      out[pos++] = 0x3a;
      out[pos++] = 0x20;
    }
    pos = writeLatin1(out, pos, added[j + 1]!);
    out[pos++] = 0x0d;
    out[pos++] = 0x0a;
  }
  const len = pos - start;
  if (secret || n > 2 * KEPT_MAX_PAIRS || len > KEPT_MAX_BYTES) return pos;
  // Kept: the strings, and a copy of the bytes just written (its array reused at the same length).
  for (let j = 0; j < n; j++) strings[j] = added[j]!;
  for (let j = n; j < kept.count; j++) strings[j] = '';
  kept.count = n;
  if (kept.bytes.length !== len) kept.bytes = new U8(len);
  typedArraySet.call(kept.bytes, new U8(out.buffer, out.byteOffset + start, len), 0);
  return pos;
}

/**
 * Copies the slab's bytes [s, e) to out at pos; short ranges byte by byte (cheaper than a view
 * and a native copy). A longer range's view is made on the slab's ArrayBuffer directly: no
 * `subarray` (its species constructor lookup) and no `bytes.buffer` (a call into V8's runtime):
 * ~390 fewer instructions in V8's builtins per proxied request (callgrind,
 * apps/proxy/bench/proxy-core.ts).
 */
function copyRange(slab: HeadSlab, s: number, e: number, out: Uint8Array, pos: number): number {
  const n = e - s;
  if (n <= 16) {
    const src = slab.bytes;
    for (let k = 0; k < n; k++) out[pos + k] = src[s + k]!;
  } else typedArraySet.call(out, new U8(slab.buffer, s, n), pos);
  return pos + n;
}

/**
 * Copies the slab's [s, e) without its bytes [gs, ge) (a stretch of dropped lines; gs < 0: none)
 * to out at pos; returns the position after them. When both pieces are longer than copyRange
 * copies byte by byte, the whole span is copied and the gap closed with copyWithin, which makes
 * no view: a view (~200 instructions) and a `set` (~160) less, a copyWithin (~220, a C++
 * builtin) more. A proxied answer from nginx has such a gap (its Connection line) in every head:
 * bench/http-proxy/per-request-2026-12-07b.md. The span's tail lands past the returned position
 * first (out's bytes the caller writes next); without room there for it, two copies.
 */
function copySpan(
  slab: HeadSlab,
  s: number,
  e: number,
  gs: number,
  ge: number,
  out: Uint8Array,
  pos: number,
): number {
  if (gs < 0) return copyRange(slab, s, e, out, pos);
  if (gs - s <= 16 || e - ge <= 16 || pos + (e - s) > out.length) {
    pos = copyRange(slab, s, gs, out, pos);
    return copyRange(slab, ge, e, out, pos);
  }
  copyRange(slab, s, e, out, pos);
  typedArrayCopyWithin.call(out, pos + (gs - s), pos + (ge - s), pos + (e - s));
  return pos + (e - s) - (ge - gs);
}

/**
 * Writes a latin1 string (every char below 0x100, as validated names and values are) at pos;
 * short strings in JS, long ones natively. Returns the position after it. @internal
 */
export function writeLatin1(out: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  if (n <= 24) {
    for (let k = 0; k < n; k++) out[pos + k] = s.charCodeAt(k);
  } else latin1Write.call(out, s, pos);
  return pos + n;
}
