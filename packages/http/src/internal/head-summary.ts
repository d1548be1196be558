/**
 * The summary of a decoded head's field lines: SUMMARY words after its entries in the HeadSlab
 * (and in the native scanner's record), written by the decoder for every head and trailer block
 * it parses. What HttpHeaders.removeHopByHop needs to skip the lines it would keep unchanged: a
 * head with nothing hop-by-hop costs no pass over its lines, and a head with a few such lines
 * (a proxied response's Connection and Content-Length) costs a visit to those only (issue 18).
 *
 * A line is *flagged* when its known-name id is hop-by-hop (RFC 9110 §7.6.1: Connection,
 * Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Trailer, Upgrade) or Content-Length (a
 * framing field whose measure is more than a length). The words:
 * - S_LENGTH: the encoded bytes of the lines that are not flagged, as measureDecodedLine
 *   (internal/field-measure.ts) counts them: a canonical line as is, another as `name: value\r\n`.
 * - S_LINES: bit k set when line k (k < 32) is flagged.
 * - S_IDS_LO, S_IDS_HI: bit `id & 31` of every line's known-name id (0 for an uncommon name), in
 *   S_IDS_LO for ids with `id & 32` clear, else in S_IDS_HI. A filter: a set of known names whose
 *   ids' bits meet none of them names no line of the head (exact for ids 1-63).
 * - S_FLAGS: SF_DATE (a Date line is present), SF_MORE (a flagged line at index 32 or later: those
 *   are found by id), SF_CONNECTION_HOP_ONLY (a head's, never trailers': every Connection line
 *   lists only bare `keep-alive` and `upgrade`, no other element, no parameters, as the decoder's
 *   list flags of its Connection lines say).
 *
 * The native scanner (native/src/head_scan.cc) computes the summary in its pass over the lines;
 * summarize() here is the same from the entries, for the JavaScript parser and as the reference
 * the tests compare the native one with. The summary describes the lines as decoded: a list from
 * which a decoded line is removed no longer has one (HttpHeaders.summaryAt).
 */
import { decodedLineLength } from './field-measure.js';
import { ENTRY, ID_MASK } from './head-slab.js';
import * as known from './known-names.js';

/** Words of the summary. */
export const SUMMARY = 5;
export const S_LENGTH = 0;
export const S_LINES = 1;
export const S_IDS_LO = 2;
export const S_IDS_HI = 3;
export const S_FLAGS = 4;
export const SF_DATE = 1;
export const SF_MORE = 2;
export const SF_CONNECTION_HOP_ONLY = 4;

/**
 * Whether the head whose summary starts at `words[s]` may have a line of a known name whose id
 * filter bits are `lo` and `hi` (as HeaderNameSet.idsLo and idsHi hold a set's), or, with
 * `uncommon`, a line of an uncommon name. False: it has none of them (exact for ids 1-63; bit 0
 * of S_IDS_LO is id 0's, every uncommon name, and the ids the filter folds onto it, 64 and up).
 * HttpHeaders.presence and removeHopByHop skip the lines it rules out.
 */
export function summaryMayHave(
  words: Int32Array,
  s: number,
  lo: number,
  hi: number,
  uncommon: boolean,
): boolean {
  return ((words[s + S_IDS_LO]! & (uncommon ? lo | 1 : lo)) | (words[s + S_IDS_HI]! & hi)) !== 0;
}

/** The hop-by-hop fields of RFC 9110 §7.6.1, by known-name id (Close is not a field in use). */
export const HOP_ID = new Uint8Array(256);
for (const name of [
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'trailer',
  'upgrade',
])
  HOP_ID[known.knownIdOf(name)] = 1;

/** The ids of the flagged lines: the hop-by-hop ones and Content-Length. */
export const FLAGGED_ID = HOP_ID.slice();
FLAGGED_ID[known.ID_CONTENT_LENGTH] = 1;

// Local copy: transpilers turn imported bindings into getters.
const ID_DATE = known.ID_DATE;

/**
 * Writes the summary of the `n` entries at `words[wbase...]` after them (at wbase + ENTRY * n),
 * with SF_CONNECTION_HOP_ONLY when `connectionHopOnly`: what the native scanner writes for the
 * same lines.
 */
export function summarize(words: Int32Array, wbase: number, n: number, connectionHopOnly: boolean): void {
  let length = 0;
  let lines = 0;
  let lo = 0;
  let hi = 0;
  let flags = 0;
  for (let i = 0, e = wbase; i < n; i++, e += ENTRY) {
    const id = words[e + 4]! & ID_MASK;
    if (FLAGGED_ID[id] === 1) {
      if (i < 32) lines |= 1 << i;
      else flags |= SF_MORE;
    } else {
      length += decodedLineLength(words, e);
      if (id === ID_DATE) flags |= SF_DATE;
    }
    if ((id & 32) === 0) lo |= 1 << (id & 31);
    else hi |= 1 << (id & 31);
  }
  const s = wbase + ENTRY * n;
  words[s + S_LENGTH] = length;
  words[s + S_LINES] = lines;
  words[s + S_IDS_LO] = lo;
  words[s + S_IDS_HI] = hi;
  words[s + S_FLAGS] = connectionHopOnly ? flags | SF_CONNECTION_HOP_ONLY : flags;
}
