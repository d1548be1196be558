/**
 * The measure of a header list's HTTP/1 field block (h1/field-block.ts measureFieldBlock): its
 * byte length without the framing fields (Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive), whether a Date field is present, whether a Connection field names `close`, and
 * the one canonical decoded Content-Length line. Cached on the list (`measured === revision`).
 *
 * One rule per line, used by every pass that measures: measureFieldBlock's full pass, and the
 * passes that keep the cache up to date as a proxy edits a list (HttpHeaders.removeHopByHop
 * measures the lines it keeps in the pass that removes the others, or takes their length from
 * the decoder's head summary, whose JavaScript form uses decodedLineLength here; append adds its
 * field's line to a list measured before it), so the encoder of a forwarded head does not walk
 * its lines again (issue 18). The encoders check that what they wrote is what was measured.
 */
import type { HttpHeaders } from '../headers.js';
import * as chars from './char-classes.js';
import { CANONICAL, ID_MASK } from './head-slab.js';
import * as known from './known-names.js';

// Local copies: transpilers turn imported bindings into getters (a call per byte).
const LOWER = chars.LOWER;
const ID_CONNECTION = known.ID_CONNECTION;
const ID_CONTENT_LENGTH = known.ID_CONTENT_LENGTH;
const ID_DATE = known.ID_DATE;

/** Fields the HTTP/1 encoder derives from body and connection state, by known-name id. */
export const FRAMING_ID = new Uint8Array(256);
FRAMING_ID[known.ID_CONTENT_LENGTH] = 1;
FRAMING_ID[known.ID_TRANSFER_ENCODING] = 1;
FRAMING_ID[known.ID_CONNECTION] = 1;
FRAMING_ID[known.ID_KEEP_ALIVE] = 1;

/** The framing fields by name (an added field's). */
export function isFramingName(name: string): boolean {
  return (
    name === 'content-length' ||
    name === 'transfer-encoding' ||
    name === 'connection' ||
    name === 'keep-alive'
  );
}

/** A Connection value with a `close` element. */
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;

/** fieldsContentLength while a pass has seen no decoded Content-Length line yet. */
const NO_LENGTH_YET = -2;

/**
 * Starts a pass over `h`: its cache is invalid until finishMeasure, and the pass accumulates in
 * its fields (a known shape: cheaper in optimized code than module variables).
 */
export function startMeasure(h: HttpHeaders): void {
  h.measured = -1;
  h.fieldsLength = 0;
  h.fieldsDate = false;
  h.fieldsClose = false;
  h.fieldsContentLength = NO_LENGTH_YET;
  h.fieldsContentLengthLine = 0;
}

/** Measures the decoded line whose entry starts at word `e` (a line `h` keeps). */
export function measureDecodedLine(h: HttpHeaders, words: Int32Array, bytes: Uint8Array, e: number): void {
  const meta = words[e + 4]!;
  const id = meta & ID_MASK;
  if (FRAMING_ID[id] === 1) {
    if (id === ID_CONNECTION) {
      if (namesClose(bytes, words[e + 2]!, words[e + 3]!)) h.fieldsClose = true;
    } else if (id === ID_CONTENT_LENGTH) {
      // The one canonical line's value and length; several lines (or another form): none.
      if (h.fieldsContentLength === NO_LENGTH_YET && (meta & CANONICAL) !== 0) {
        h.fieldsContentLength = decimal(bytes, words[e + 2]!, words[e + 3]!);
        h.fieldsContentLengthLine = words[e + 3]! + 2 - words[e]!;
      } else h.fieldsContentLength = -1;
    }
    return;
  }
  if (id === ID_DATE) h.fieldsDate = true;
  h.fieldsLength += decodedLineLength(words, e);
}

/**
 * The bytes the encoder writes for the decoded line whose entry starts at word `e`: a canonical
 * line is copied as is; another is rewritten as `name: value\r\n`. Also the head summary's
 * (internal/head-summary.ts summarize).
 */
export function decodedLineLength(words: Int32Array, e: number): number {
  return (words[e + 4]! & CANONICAL) !== 0
    ? words[e + 3]! + 2 - words[e]!
    : words[e + 1]! - words[e]! + words[e + 3]! - words[e + 2]! + 4;
}

/** Measures an added field (lowercase name, checked value) `h` keeps. */
export function measureAddedLine(h: HttpHeaders, name: string, value: string): void {
  if (isFramingName(name)) {
    if (name === 'connection' && CLOSE_TOKEN.test(value)) h.fieldsClose = true;
    return;
  }
  if (name === 'date') h.fieldsDate = true;
  h.fieldsLength += name.length + value.length + 4;
}

/** Ends a pass: the measure is `h`'s as it is now (its current revision). Returns the length. */
export function finishMeasure(h: HttpHeaders): number {
  if (h.fieldsContentLength === NO_LENGTH_YET) h.fieldsContentLength = -1;
  h.measured = h.revision;
  return h.fieldsLength;
}

/**
 * Adds one field appended to `h` to its measure, when `h` was measured just before the append
 * (`revision` is the list's revision after it); else leaves the cache stale.
 */
export function measureAppended(h: HttpHeaders, revision: number, name: string, value: string): void {
  if (h.measured !== revision - 1) return;
  measureAddedLine(h, name, value);
  h.measured = revision;
}

/** Whether the list value in `b[s, e)` has a `close` element (case-insensitive), as CLOSE_TOKEN. */
function namesClose(b: Uint8Array, s: number, e: number): boolean {
  let i = s;
  while (i < e) {
    while (i < e && (b[i] === 0x20 || b[i] === 0x09)) i++;
    const ts = i;
    while (i < e && b[i] !== 0x2c) i++;
    let te = i;
    while (te > ts && (b[te - 1] === 0x20 || b[te - 1] === 0x09)) te--;
    if (
      te - ts === 5 &&
      LOWER[b[ts]!] === 0x63 &&
      LOWER[b[ts + 1]!] === 0x6c &&
      LOWER[b[ts + 2]!] === 0x6f &&
      LOWER[b[ts + 3]!] === 0x73 &&
      LOWER[b[ts + 4]!] === 0x65
    )
      return true;
    i++;
  }
  return false;
}

/** The decimal value of validated digits `b[s, e)`. */
function decimal(b: Uint8Array, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) v = v * 10 + b[i]! - 0x30;
  return v;
}
