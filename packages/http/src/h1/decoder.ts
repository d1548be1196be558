/**
 * Incremental HTTP/1.1 message decoders (RFC 9112) for requests and responses, pure and
 * I/O-free. Bytes are fed as they arrive (views into the runtime's pooled receive buffers) and
 * `poll()` reports one event at a time: a parsed head, a body data view, or the end of a message.
 * Body data are zero-copy subarrays of the fed input; the head is copied once (only its bytes)
 * into a HeadSlab, followed by the offsets and known-name ids of its field lines, which its
 * HttpHeaders decodes from lazily and the encoder forwards as byte ranges. A complete head is
 * parsed by @loch/native's head scanner where the addon loads (one call per head; see the note
 * above the scanner's record layout), by the JavaScript parser below elsewhere; a head split
 * across feeds is framed line by line with `indexOf` scans and resumable state, so
 * byte-at-a-time input stays linear. Chunk-size lines stay in JavaScript: they are a few bytes
 * each and arrive in pieces, and a crossing (~50 ns) costs more than reading them here.
 *
 * Strict where request smuggling lives: CL with TE, bad or duplicate Content-Length, any
 * Transfer-Encoding other than a single final `chunked`, obs-fold, whitespace before a colon,
 * bare CR (as soon as the byte after it arrives) or LF, NUL and other controls, invalid tokens,
 * chunk extension syntax. Every rejection throws an HttpParseError with a code and the status a
 * server should answer. Lenient where RFC 9112 is: HTAB as optional whitespace around any field
 * value, leading zeros in chunk sizes (the value is bounded, not the digits), HTTP/1.2-1.9 read
 * as HTTP/1.1, a 1xx that says close ends the connection only after the final response.
 *
 * Not for I/O, timeouts or connection policy (server.ts, client.ts) and not for HTTP/2.
 */
import { METHODS } from 'node:http';
import { type HeadScanBinding, loadHeadScan, type NativeHeadScan } from '@loch/native';
import { EMPTY_BODY } from '../body.js';
import { HttpError, HttpParseError, type HttpParseErrorCode } from '../errors.js';
import { HttpHeaders, latin1Of } from '../headers.js';
import * as chars from '../internal/char-classes.js';
import * as headSlab from '../internal/head-slab.js';
import { type HeadSlab, reserveHead, trimHead } from '../internal/head-slab.js';
import { SUMMARY, summarize } from '../internal/head-summary.js';
import * as knownNames from '../internal/known-names.js';
import { typedArraySubarray } from '../internal/typed-array-methods.js';
import type { HttpResponse, HttpServerRequest, HttpVersion, TargetForm } from '../message.js';

/** What `poll()` found. */
export const DecodeEvent = {
  /** All input is consumed; feed more bytes (or call finish() at end of stream). */
  NeedMore: 0,
  /** A message head was parsed: read `decoder.message` and the framing fields. */
  Head: 1,
  /** Body bytes: `decoder.data`, a view into the fed input valid until that input is released. */
  Data: 2,
  /** The message is complete (`decoder.trailers` holds chunked trailers, if any). */
  End: 3,
} as const;
/** One of the DecodeEvent values. */
export type DecodeEvent = (typeof DecodeEvent)[keyof typeof DecodeEvent];

/**
 * How the body of the current message is delimited: `none`, `length` (Content-Length),
 * `chunked`, or `eof` (close-delimited, responses only).
 */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'eof';

/** Size limits; each has its own error code. */
export interface H1Limits {
  /** Max bytes of a head (start line + fields + final CRLF); ERR_HTTP_HEAD_TOO_LARGE (431). */
  readonly maxHeadSize: number;
  /** Max number of header (or trailer) fields; ERR_HTTP_TOO_MANY_HEADERS (431). */
  readonly maxHeaderCount: number;
  /**
   * Max bytes of one line without CRLF; ERR_HTTP_REQUEST_LINE_TOO_LONG (414) for a request line,
   * ERR_HTTP_HEADER_LINE_TOO_LONG (431) for a field line.
   */
  readonly maxLineLength: number;
  /** Max bytes of a chunk-size line with extensions; ERR_HTTP_CHUNK_LINE_TOO_LONG. */
  readonly maxChunkLineLength: number;
}

/** Request decoder options: limits plus the method policy. */
export interface RequestDecoderOptions extends Partial<H1Limits> {
  /**
   * Methods accepted; others fail with ERR_HTTP_UNKNOWN_METHOD (501). Default: the registered
   * methods Node's parser knows (node:http METHODS). Pass 'any' to accept every token (RFC 9110).
   */
  readonly methods?: ReadonlySet<string> | 'any';
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

/** Defaults: 16 KiB head, 100 fields, 8 KiB lines, 1 KiB chunk lines. */
export const DEFAULT_LIMITS: H1Limits = {
  maxHeadSize: 16 * 1024,
  maxHeaderCount: 100,
  maxLineLength: 8 * 1024,
  maxChunkLineLength: 1024,
};

// States.
const S_HEAD = 0;
const S_BODY_LEN = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_EXT = 3;
const S_CHUNK_SIZE_LF = 4;
const S_CHUNK_DATA = 5;
const S_CHUNK_DATA_CR = 6;
const S_CHUNK_DATA_LF = 7;
const S_TRAILERS = 8;
const S_BODY_EOF = 9;
const S_END = 10;
const S_DEAD = 11;
const S_CLOSED = 12;

// Chunk extension sub-states (RFC 9112 §7.1.1, without BWS, as llhttp).
const X_NAME_START = 0;
const X_NAME = 1;
const X_VALUE_START = 2;
const X_VALUE = 3;
const X_QUOTED = 4;
const X_QUOTED_ESC = 5;
const X_AFTER_QUOTED = 6;

// Token list flags (Connection, Transfer-Encoding).
const L_CLOSE = 1;
const L_KEEP_ALIVE = 2;
const L_UPGRADE = 4;
const L_CHUNKED = 8;
const L_OTHER = 16;
const L_LAST_CHUNKED = 32;
const L_CHUNKED_TWICE = 64;
const L_MALFORMED = 128;

const EMPTY = new Uint8Array(0);
/**
 * Largest chunk size accepted: the largest integer a double counts exactly (2^53 - 1, about 9 PB;
 * nginx and llhttp stop at their 63/64-bit off_t). A larger size is ERR_HTTP_INVALID_CHUNK_SIZE.
 */
const MAX_CHUNK_SIZE = Number.MAX_SAFE_INTEGER;

// Module-local copies: transpilers used in tests and tools (tsx, vite) turn imported bindings
// into property getters, which costs a call per byte in the scanners.
const TOKEN = chars.TOKEN;
const FIELD_VALUE = chars.FIELD_VALUE;
const TARGET = chars.TARGET;
const HEX = chars.HEX;
const LOWER = chars.LOWER;
const AUTHORITY = chars.AUTHORITY;
const ENTRY = headSlab.ENTRY;
const CANONICAL = headSlab.CANONICAL;
const lookupKnownId = knownNames.lookupKnownId;
const lookupMethod = knownNames.lookupMethod;
const KNOWN_NAMES = knownNames.KNOWN_NAMES;
const ID_CONTENT_LENGTH = knownNames.ID_CONTENT_LENGTH;
const ID_TRANSFER_ENCODING = knownNames.ID_TRANSFER_ENCODING;
const ID_CONNECTION = knownNames.ID_CONNECTION;
const ID_HOST = knownNames.ID_HOST;
const ID_EXPECT = knownNames.ID_EXPECT;
const ID_UPGRADE = knownNames.ID_UPGRADE;

/** Buffer's native latin1 decoder; works on any Uint8Array (one copy into a one-byte string). */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

/**
 * One word view per thread, over the ArrayBuffer of the last input scanned by the fast head
 * path: the runtime's receive pool is one buffer, so the view is made once; a single slot
 * bounds what it keeps alive.
 */
let words: Int32Array = new Int32Array(0);
let wordsOf: ArrayBufferLike | null = null;
/**
 * Offsets of the CRs that end the lines of the head scanHead last found, relative to its start
 * (start line first): the fast path's field parse takes each value's end from here instead of
 * searching for it. Shared by every decoder of the thread (scan and parse run in one call).
 */
let lineEnds = new Int32Array(128);

/** Buffer's native memchr-based indexOf; works on any Uint8Array (TypedArray's is 2-3x slower). */
const indexOfByte = Buffer.prototype.indexOf as unknown as (
  this: Uint8Array,
  byte: number,
  from: number,
) => number;

/*
 * The native head scanner (@loch/native, native/src/head_scan.cc) parses every complete head and
 * trailer block when the addon loads: it finds a whole head's end, checks the start line and
 * field lines by the same rules as the JavaScript parser below and writes their offsets into a
 * bound record and the HeadSlab, one crossing per head (~50 ns here, against 0.3-1.2 us of
 * per-byte JavaScript). The JavaScript parser (scanHead, parseStartLine, parseFields) is what
 * runs where the addon does not load, and the reference the native one is tested against
 * (test/head-scan.test.ts). Split heads are still framed line by line here (scanBlock: bare CR
 * and limits fail as bytes arrive), then handed to the scanner whole.
 */
// The record's layout (keep in step with head_scan.cc): inputs, outputs, five words per field,
// then the lines' summary (SUMMARY words after the last field: internal/head-summary.ts).
const IO_START = 0;
const IO_END = 1;
const IO_MODE = 2;
const IO_KIND = 3;
const IO_MAX_HEAD = 4;
const IO_MAX_COUNT = 5;
const IO_MAX_LINE = 6;
const IO_SLAB_TOP = 7;
const IO_LENGTH = 8;
const IO_ERROR = 9;
const IO_ERROR_AT = 10;
const IO_ERROR_ARG = 11;
const IO_FIELDS_AT = 12;
const IO_FIELDS = 13;
const IO_METHOD_END = 14;
const IO_TARGET_START = 15;
const IO_TARGET_END = 16;
const IO_MINOR = 17;
const IO_FORM = 18;
const IO_STATUS = 19;
const IO_CL_COUNT = 20;
const IO_TE_FLAGS = 21;
const IO_CONN_FLAGS = 22;
const IO_HOST_COUNT = 23;
const IO_EXPECT = 24;
const IO_UPGRADE = 25;
/** Content-Length as a float64 over int32 words 26-27. */
const IO_CONTENT_LENGTH_F64 = 13;
const IO_ENTRIES = 28;
const MODE_FIND = 0;
const MODE_BLOCK = 1;
const KIND_REQUEST = 0;
const KIND_RESPONSE = 1;
const KIND_TRAILERS = 2;
const SCAN_FALLBACK = 0;
const SCAN_OK = 1;
/** SCAN_OK, and the head with its entries is already in the slab passed, at IO_SLAB_TOP (its entries there only, none in the record). */
const SCAN_COPIED = 3;
const FORMS: readonly TargetForm[] = ['origin', 'absolute', 'authority', 'asterisk'];
/** Fields the scanner's record holds at most (limits above it: such heads are parsed in JS). */
const MAX_SCANNED_FIELDS = 4096;
/** The scanner's errors (head_scan.h Error, same order from 1): code and message. */
const SCAN_ERRORS: readonly (readonly [HttpParseErrorCode, string])[] = [
  ['ERR_HTTP_INVALID_METHOD', 'bad method'],
  ['ERR_HTTP_INVALID_TARGET', 'bad request target'],
  ['ERR_HTTP_INVALID_TARGET', 'bad target'],
  ['ERR_HTTP_INVALID_VERSION', 'bad HTTP version'],
  ['ERR_HTTP_UNSUPPORTED_VERSION', 'HTTP version not supported'],
  ['ERR_HTTP_BARE_CR', 'CR without LF'],
  ['ERR_HTTP_INVALID_STATUS', 'short status line'],
  ['ERR_HTTP_INVALID_STATUS', 'bad status line'],
  ['ERR_HTTP_INVALID_STATUS', 'bad status code'],
  ['ERR_HTTP_INVALID_STATUS', 'bad reason phrase'],
  ['ERR_HTTP_OBS_FOLD', 'obsolete line folding'],
  ['ERR_HTTP_WHITESPACE_BEFORE_COLON', 'whitespace before colon'],
  ['ERR_HTTP_INVALID_HEADER_NAME', 'invalid character in field name'],
  ['ERR_HTTP_INVALID_HEADER_VALUE', 'invalid character in field value'],
  ['ERR_HTTP_FORBIDDEN_TRAILER', 'field not allowed in trailers'],
  ['ERR_HTTP_DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length'],
  ['ERR_HTTP_INVALID_CONTENT_LENGTH', 'bad Content-Length'],
  ['ERR_HTTP_INVALID_TRANSFER_ENCODING', 'bad Transfer-Encoding'],
  ['ERR_HTTP_INVALID_HOST', 'invalid character in Host'],
];
const SE_TARGET_FORM = 3;
const SE_UNSUPPORTED_VERSION = 5;
const SE_FORBIDDEN_TRAILER = 15;

/**
 * The scanner, when the addon loads, writes the summary this module reads (a build from before
 * the summary writes none: its heads would read as having no hop-by-hop line) and takes this
 * module's known names; else null.
 */
const nativeScan: NativeHeadScan | null = (() => {
  const loaded = loadHeadScan();
  if (!('headScan' in loaded)) return null;
  if (loaded.headScan.summaryWords !== SUMMARY) return null;
  try {
    return loaded.headScan.init(KNOWN_NAMES.slice(1)) ? loaded.headScan : null;
  } catch {
    return null;
  }
})();
let headScan: NativeHeadScan | null = nativeScan;
/** The scanner's record, shared by the thread's decoders (one scan at a time), grown on demand. */
let scanIo = new Int32Array(IO_ENTRIES + ENTRY * 101 + SUMMARY);
let scanIoF64 = new Float64Array(scanIo.buffer, 0, IO_ENTRIES >> 1);
/** The scanner's binding of scanIo (a new one when it grows) and of the slab below (moved along). */
let scanBinding: HeadScanBinding | null = null;
let boundIo: Int32Array | null = null;
let boundSlab: HeadSlab | null = null;
/**
 * The binding's own scan function (the addon's `scanner(io, slab)`: one argument, no binding
 * check per call; null with a build that has none, which scan(binding, src) then serves).
 */
let scanFn: ((src: Uint8Array) => number) | null = null;

/**
 * Chooses the head parser of this thread's decoders: the native scanner (the default when
 * @loch/native loads) or the JavaScript one. Returns whether the native scanner is now in use.
 * For tests and benchmarks that compare the two.
 */
export function useNativeHeadScan(on: boolean): boolean {
  headScan = on ? nativeScan : null;
  return headScan !== null;
}

/**
 * Copies a scanned head (src[start, start + len)) into `slab` at `base`, its `n` entries from
 * `from` at word `r` (offsets plus `shift`: to the slab's) and the summary after them into word
 * `wbase`: what the scanner does itself when the head fits the slab it is bound to (all but the
 * first head of a slab). The entries are in the record (offsets from the head's start) or, when
 * the scanner put them in its slab but the head is reserved elsewhere (a slab of its own), in
 * that slab (offsets in it). A function of its own: scanNative stays small enough for V8 to
 * inline what it calls.
 */
function copyScanned(
  from: Int32Array,
  r: number,
  shift: number,
  src: Uint8Array,
  start: number,
  len: number,
  n: number,
  slab: HeadSlab,
  base: number,
  wbase: number,
): void {
  // A plain view (Buffer's subarray costs more) for the one copy.
  slab.bytes.set(new Uint8Array(src.buffer, src.byteOffset + start, len), base);
  const words = slab.words;
  let w = wbase;
  for (let i = 0; i < n; i++, r += ENTRY, w += ENTRY) {
    words[w] = from[r]! + shift;
    words[w + 1] = from[r + 1]! + shift;
    words[w + 2] = from[r + 2]! + shift;
    words[w + 3] = from[r + 3]! + shift;
    words[w + 4] = from[r + 4]!;
  }
  for (let k = 0; k < SUMMARY; k++) words[w + k] = from[r + k]!;
}

/** Shared machinery of the request and response decoders. */
abstract class H1Decoder<M> {
  /** The message whose head was last parsed (valid from a Head event on). */
  message: M | null = null;
  /** The body view of the last Data event. */
  data: Uint8Array = EMPTY;
  /** Trailer fields of the last chunked message, or null. Set at its End event. */
  trailers: HttpHeaders | null = null;
  /** Framing of the current message. */
  framing: BodyFraming = 'none';
  /** Content-Length of the current message, or -1. */
  contentLength = -1;
  /** Whether the connection may carry another message after this one (by version and Connection). */
  keepAlive = true;
  /** The Connection header named `upgrade` (and an Upgrade header was present). */
  upgrade = false;

  protected readonly limits: H1Limits;
  protected state = S_HEAD;
  private input: Uint8Array = EMPTY;
  private pos = 0;
  /** Partial head/trailer block bytes carried between feeds. */
  private acc: Uint8Array = EMPTY;
  private accLen = 0;
  private lineBytes = 0;
  private lastWasCR = false;
  private lines = 0;
  private remaining = 0;
  private chunkDigits = 0;
  private chunkLineLen = 0;
  private extState = 0;
  private error: HttpParseError | null = null;
  /** The complete field block found by scanBlock: bytes blk[blkBase, blkEnd). */
  private blk: Uint8Array = EMPTY;
  private blkBase = 0;
  private blkEnd = 0;
  /** Non-empty lines of the block found by scanBlock (start line included). */
  private blkLines = 0;

  // Per-head scratch filled by parseFields.
  protected clCount = 0;
  protected teFlags = 0;
  protected connFlags = 0;
  protected hostCount = 0;
  protected expectFlag = 0;
  protected hasUpgradeHeader = false;
  /**
   * The start line says HTTP/1.1 as written, so it can be forwarded as is. False for 1.0 and
   * for 1.2-1.9, which are read as 1.1 but must go out as `HTTP/1.1`.
   */
  protected verbatimStart = true;

  constructor(limits: Partial<H1Limits> = {}) {
    this.limits = {
      maxHeadSize: limits.maxHeadSize ?? DEFAULT_LIMITS.maxHeadSize,
      maxHeaderCount: limits.maxHeaderCount ?? DEFAULT_LIMITS.maxHeaderCount,
      maxLineLength: limits.maxLineLength ?? DEFAULT_LIMITS.maxLineLength,
      maxChunkLineLength: limits.maxChunkLineLength ?? DEFAULT_LIMITS.maxChunkLineLength,
    };
    // A field line takes at least 4 bytes (`a:` CRLF), so the head size bounds the count too;
    // a head with more fields than the record holds is parsed in JavaScript.
    this.scanCapacity =
      Math.min(this.limits.maxHeaderCount, this.limits.maxHeadSize >> 2, MAX_SCANNED_FIELDS) + 1;
  }

  /** Field entries the scanner's record must hold for this decoder's limits. */
  private readonly scanCapacity: number;

  /**
   * Sets the next input. The previous input must be fully consumed (poll returned NeedMore);
   * after that the decoder holds no reference to it.
   */
  feed(bytes: Uint8Array): void {
    if (this.pos < this.input.length) {
      throw new HttpError('ERR_HTTP_DECODER_MISUSE', 500, 'feed() before the previous input was consumed');
    }
    this.input = bytes;
    this.pos = 0;
  }

  /** Bytes fed but not consumed (after a Head that ends HTTP/1 framing, e.g. CONNECT or 101). */
  takeRemaining(): Uint8Array {
    const r = this.input.subarray(this.pos);
    this.input = EMPTY;
    this.pos = 0;
    return r;
  }

  /** True when no partial message is buffered and none is in progress (between messages). */
  get idle(): boolean {
    return this.state === S_HEAD && this.accLen === 0 && this.lineBytes === 0 && this.lines === 0;
  }

  /** True while the input is not fully consumed. */
  get hasInput(): boolean {
    return this.pos < this.input.length;
  }

  /** Reports the next event. Throws HttpParseError on malformed input (and on every call after). */
  poll(): DecodeEvent {
    if (this.error !== null) throw this.error;
    try {
      return this.step();
    } catch (e) {
      if (e instanceof HttpParseError) {
        this.error = e;
        this.state = S_DEAD;
      }
      throw e;
    }
  }

  /**
   * Signals end of stream. Returns End when it completes a close-delimited body, NeedMore when
   * the stream ended cleanly between messages; throws ERR_HTTP_INCOMPLETE_MESSAGE otherwise.
   */
  finish(): DecodeEvent {
    if (this.error !== null) throw this.error;
    if (this.state === S_BODY_EOF) {
      this.state = S_CLOSED;
      return DecodeEvent.End;
    }
    // A lone CR after the last message is harmless noise at end of stream.
    const loneCR = this.state === S_HEAD && this.lines === 0 && this.lineBytes === 1 && this.lastWasCR;
    if (this.idle || loneCR || this.state === S_CLOSED) {
      this.state = S_CLOSED;
      return DecodeEvent.NeedMore;
    }
    if (this.state === S_END) {
      this.state = S_CLOSED;
      return DecodeEvent.End;
    }
    this.error = new HttpParseError('ERR_HTTP_INCOMPLETE_MESSAGE', 'stream ended inside a message');
    this.state = S_DEAD;
    throw this.error;
  }

  /** Parses the start line into `this.message` and returns the offset after its CRLF. */
  protected abstract parseStartLine(b: Uint8Array, base: number, end: number): number;
  /** Decides framing and keep-alive once fields are parsed. */
  protected abstract decideFraming(): void;
  /** Code for an over-long first line. */
  protected abstract readonly firstLineTooLong: HttpParseErrorCode;

  private step(): DecodeEvent {
    for (;;) {
      switch (this.state) {
        case S_HEAD: {
          if (this.pos === this.input.length) return this.drained();
          // A whole head in one input (the usual case) takes the fast path; anything else
          // (split heads, leading empty lines, limits, controls) the line-by-line scan.
          if (this.lines === 0 && this.lineBytes === 0 && this.accLen === 0 && this.fastHead()) {
            return DecodeEvent.Head;
          }
          if (!this.scanBlock(false)) return this.drained();
          this.parseHead(null, 0, 0);
          return DecodeEvent.Head;
        }
        case S_BODY_LEN:
        case S_CHUNK_DATA: {
          const avail = this.input.length - this.pos;
          if (avail === 0) return this.drained();
          const n = Math.min(avail, this.remaining);
          this.data = typedArraySubarray.call(this.input, this.pos, this.pos + n);
          this.pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = this.state === S_BODY_LEN ? S_END : S_CHUNK_DATA_CR;
          return DecodeEvent.Data;
        }
        case S_BODY_EOF: {
          if (this.pos === this.input.length) return this.drained();
          this.data = this.pos === 0 ? this.input : this.input.subarray(this.pos);
          this.pos = this.input.length;
          return DecodeEvent.Data;
        }
        case S_CHUNK_SIZE:
          if (!this.chunkSize()) return this.drained();
          break;
        case S_CHUNK_EXT:
          if (!this.chunkExt()) return this.drained();
          break;
        case S_CHUNK_SIZE_LF: {
          if (this.pos === this.input.length) return this.drained();
          if (this.input[this.pos] !== 10) this.fail('ERR_HTTP_BARE_CR', 'CR without LF in chunk line');
          this.pos++;
          this.chunkLineLen = 0;
          this.chunkDigits = 0;
          if (this.remaining === 0) {
            this.state = S_TRAILERS;
          } else {
            this.state = S_CHUNK_DATA;
          }
          break;
        }
        case S_CHUNK_DATA_CR:
        case S_CHUNK_DATA_LF: {
          if (this.pos === this.input.length) return this.drained();
          const want = this.state === S_CHUNK_DATA_CR ? 13 : 10;
          if (this.input[this.pos] !== want)
            this.fail('ERR_HTTP_INVALID_CHUNK_END', 'chunk data not followed by CRLF');
          this.pos++;
          this.state = want === 13 ? S_CHUNK_DATA_LF : S_CHUNK_SIZE;
          break;
        }
        case S_TRAILERS: {
          if (!this.scanBlock(true)) return this.drained();
          this.trailers = this.blkEnd - this.blkBase === 2 ? null : this.parseTrailers();
          this.state = S_END;
          break;
        }
        case S_END:
          this.data = EMPTY;
          this.state = this.keepAlive ? S_HEAD : S_CLOSED;
          return DecodeEvent.End;
        case S_CLOSED:
          if (this.pos < this.input.length)
            this.fail('ERR_HTTP_DATA_AFTER_CLOSE', 'data after a message that closes the connection');
          return this.drained();
        default:
          throw this.error ?? new HttpError('ERR_HTTP_DECODER_MISUSE', 500, 'decoder in an invalid state');
      }
    }
  }

  /** All input is consumed: drop the reference so an idle connection keeps no chunk alive. */
  private drained(): DecodeEvent {
    this.input = EMPTY;
    this.pos = 0;
    return DecodeEvent.NeedMore;
  }

  /** Offsets passed to fail() are relative to this (the head's start in its slab while parsing one). */
  private failBase = 0;

  protected fail(code: HttpParseErrorCode, detail: string, offset = -1): never {
    throw new HttpParseError(code, detail, offset < 0 ? -1 : offset - this.failBase);
  }

  /**
   * Finds the end of a field block (head or trailers) across feeds. When complete, sets
   * blk/blkBase/blkEnd to it (in the input itself, or in the carry buffer when it spanned feeds)
   * and returns true; otherwise saves the partial bytes and returns false.
   */
  private scanBlock(trailers: boolean): boolean {
    const inp = this.input;
    const end = inp.length;
    const lim = this.limits;
    let p = this.pos;
    // A CR must be followed by LF: a bare one fails as soon as the byte after it is in, not
    // when the block completes (which may never happen: the peer can stall until a timeout).
    if (this.lastWasCR && this.lineBytes > 0 && p < end && inp[p] !== 10) {
      this.fail('ERR_HTTP_BARE_CR', 'CR without LF', this.accLen - 1);
    }
    for (;;) {
      const lf = indexOfByte.call(inp, 10, p);
      // Any CR before the one that may end this line (right before its LF, or the last byte fed).
      const crEnd = lf < 0 ? end - 1 : lf - 1;
      if (crEnd > p) {
        const cr = indexOfByte.call(inp, 13, p);
        if (cr >= 0 && cr < crEnd)
          this.fail('ERR_HTTP_BARE_CR', 'CR without LF', this.accLen + cr - this.pos);
      }
      if (lf < 0) {
        const n = end - p;
        if (n > 0) {
          this.lineBytes += n;
          this.lastWasCR = inp[end - 1] === 13;
        }
        if (this.lineBytes > lim.maxLineLength + 1) this.lineTooLong(trailers);
        this.save(this.pos, end);
        this.pos = end;
        return false;
      }
      const prevCR = lf > p ? inp[lf - 1] === 13 : this.lineBytes > 0 && this.lastWasCR;
      if (!prevCR) this.fail('ERR_HTTP_BARE_LF', 'LF without CR', this.accLen + lf - this.pos);
      const lineLen = this.lineBytes + (lf - p);
      p = lf + 1;
      this.lineBytes = 0;
      this.lastWasCR = false;
      if (lineLen === 1) {
        if (this.lines === 0 && !trailers) {
          // Empty lines before a start line are ignored (RFC 9112 §2.2).
          this.pos = p;
          this.accLen = 0;
          continue;
        }
        const total = this.accLen + (p - this.pos);
        if (total > lim.maxHeadSize)
          this.fail('ERR_HTTP_HEAD_TOO_LARGE', `head exceeds ${lim.maxHeadSize} bytes`);
        if (this.accLen > 0) {
          this.save(this.pos, p);
          this.blk = this.acc;
          this.blkBase = 0;
          this.blkEnd = this.accLen;
        } else {
          this.blk = inp;
          this.blkBase = this.pos;
          this.blkEnd = p;
        }
        this.pos = p;
        this.accLen = 0;
        this.blkLines = this.lines;
        this.lines = 0;
        return true;
      }
      if (lineLen - 1 > lim.maxLineLength) this.lineTooLong(trailers);
      this.lines++;
      if (this.lines > lim.maxHeaderCount + (trailers ? 0 : 1)) {
        this.fail('ERR_HTTP_TOO_MANY_HEADERS', `more than ${lim.maxHeaderCount} fields`);
      }
      if (this.accLen + (p - this.pos) > lim.maxHeadSize) {
        this.fail('ERR_HTTP_HEAD_TOO_LARGE', `head exceeds ${lim.maxHeadSize} bytes`);
      }
    }
  }

  private lineTooLong(trailers: boolean): never {
    if (this.lines === 0 && !trailers) this.fail(this.firstLineTooLong, 'start line too long');
    this.fail('ERR_HTTP_HEADER_LINE_TOO_LONG', `field line exceeds ${this.limits.maxLineLength} bytes`);
  }

  private save(from: number, to: number): void {
    const n = to - from;
    if (n === 0) return;
    const need = this.accLen + n;
    if (need > this.limits.maxHeadSize)
      this.fail('ERR_HTTP_HEAD_TOO_LARGE', `head exceeds ${this.limits.maxHeadSize} bytes`);
    if (need > this.acc.length) {
      const grown = new Uint8Array(
        Math.min(this.limits.maxHeadSize, Math.max(need, this.acc.length * 2, 512)),
      );
      grown.set(this.acc.subarray(0, this.accLen));
      this.acc = grown;
    }
    this.acc.set(this.input.subarray(from, to), this.accLen);
    this.accLen = need;
  }

  /**
   * The fast path of a head that is whole in the current input: one pass over the input
   * (scanHead) finds its end and checks what scanBlock checks line by line (bare CR or LF,
   * line lengths, field count, size) along with the control bytes blockIsClean looks for; then
   * one copy into the slab. Returns false, consuming nothing, when the head is not whole or any
   * check fails: the line-by-line path then decides (and reports the same errors as always).
   */
  private fastHead(): boolean {
    const inp = this.input;
    const start = this.pos;
    if (start >= inp.length) return false;
    const c0 = inp[start]!;
    if (c0 === 0x0d || c0 === 0x0a) return false;
    if (headScan !== null) {
      const headers = this.scanNative(inp, start, inp.length, true, true);
      if (headers === null) return false;
      this.pos = start + scanIo[IO_LENGTH]!;
      this.trailers = null;
      this.startBody(headers);
      return true;
    }
    const end = this.scanHead(inp, start);
    if (end < 0) return false;
    const len = end - start;
    const lim = this.limits;
    const slab = reserveHead(len, ENTRY * Math.min(lim.maxHeaderCount + 1, (len >> 2) + 1) + SUMMARY);
    const base = slab.mark;
    // A plain view (Buffer's subarray costs more) for the one copy.
    slab.bytes.set(new Uint8Array(inp.buffer, inp.byteOffset + start, len), base);
    this.pos = end;
    this.parseHead(slab, base, len);
    return true;
  }

  /**
   * Finds the end of a head that starts at `inp[start]` (not CR or LF) and returns the offset
   * after its final CRLF, or -1 when the input ends first or the head breaks a rule scanBlock or
   * blockIsClean checks: a control byte other than HTAB and CRLF pairs, DEL, a line longer than
   * maxLineLength, more than maxHeaderCount fields, more than maxHeadSize bytes. Four bytes at a
   * time (SWAR) over a word view of the input's buffer; CR and LF are controls, so every line
   * end goes through the per-byte check.
   */
  private scanHead(inp: Uint8Array, start: number): number {
    const buf = inp.buffer;
    if (buf !== wordsOf) {
      wordsOf = buf;
      words = new Int32Array(buf, 0, buf.byteLength >> 2);
    }
    const w32 = words;
    const lim = this.limits;
    const off = inp.byteOffset;
    const s = off + start;
    const e = off + Math.min(inp.length, start + lim.maxHeadSize);
    const maxLine = lim.maxLineLength;
    // The start line and the field lines.
    const maxLines = lim.maxHeaderCount + 1;
    let lines = 0;
    let lineStart = s;
    if (lineEnds.length < maxLines + 1) lineEnds = new Int32Array(maxLines + 1);
    const ends = lineEnds;
    const wEnd = Math.min((e + 3) >> 2, w32.length);
    let a = s;
    for (let wi = s >> 2; wi < wEnd; wi++) {
      const w = w32[wi]!;
      const x = w ^ 0x7f7f7f7f;
      if (((((w - 0x20202020) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) === 0) continue;
      for (a = wi << 2; a < (wi + 1) << 2; a++) {
        if (a < s || a >= e) continue;
        const c = inp[a - off]!;
        if (c >= 0x20 && c !== 0x7f) continue;
        if (c === 0x09) continue;
        if (c === 0x0d) {
          if (a + 1 >= e || inp[a + 1 - off] !== 0x0a) return -1;
        } else if (c === 0x0a) {
          if (inp[a - 1 - off] !== 0x0d) return -1;
          if (a - 1 === lineStart) return a + 1 - off;
          if (a - 1 - lineStart > maxLine || lines >= maxLines) return -1;
          ends[lines++] = a - 1 - s;
          lineStart = a + 1;
        } else return -1;
      }
    }
    // Bytes past the last whole word of the buffer.
    for (a = Math.max(s, wEnd << 2); a < e; a++) {
      const c = inp[a - off]!;
      if ((c >= 0x20 && c !== 0x7f) || c === 0x09) continue;
      if (c === 0x0d) {
        if (a + 1 >= e || inp[a + 1 - off] !== 0x0a) return -1;
      } else if (c === 0x0a) {
        if (inp[a - 1 - off] !== 0x0d) return -1;
        if (a - 1 === lineStart) return a + 1 - off;
        if (a - 1 - lineStart > maxLine || lines >= maxLines) return -1;
        ends[lines++] = a - 1 - s;
        lineStart = a + 1;
      } else return -1;
    }
    return -1;
  }

  /** Parses a head: from the block scanBlock found (`slab` null), or one fastHead copied (and vetted). */
  private parseHead(slab: HeadSlab | null, base: number, len: number): void {
    this.clCount = 0;
    this.contentLength = -1;
    this.teFlags = 0;
    this.connFlags = 0;
    this.hostCount = 0;
    this.expectFlag = 0;
    this.hasUpgradeHeader = false;
    this.trailers = null;
    const headers =
      slab === null ? this.parseBlock(true) : this.parseCopied(slab, base, len, true, true, true);
    this.startBody(headers);
  }

  /** Sets the parsed head's headers, decides its framing and enters the body's state. */
  private startBody(headers: HttpHeaders): void {
    this.setHeaders(headers);
    this.decideFraming();
    switch (this.framing) {
      case 'none':
        this.state = S_END;
        break;
      case 'length':
        this.remaining = this.contentLength;
        this.state = S_BODY_LEN;
        break;
      case 'chunked':
        this.remaining = 0;
        this.chunkDigits = 0;
        this.chunkLineLen = 0;
        this.state = S_CHUNK_SIZE;
        break;
      case 'eof':
        this.state = S_BODY_EOF;
        break;
    }
  }

  protected abstract setHeaders(headers: HttpHeaders): void;

  /**
   * True when b[s, e) holds no control byte other than HTAB and CRLF pairs, and no DEL, checked
   * four bytes at a time (SWAR) over an Int32Array view of the chunk's ArrayBuffer. Field values
   * then need no per-byte check.
   */
  private blockIsClean(b: Uint8Array, words: Int32Array, s: number, e: number): boolean {
    const off = b.byteOffset;
    const a0 = off + s;
    const a1 = off + e;
    const wEnd = Math.min((a1 + 3) >> 2, words.length);
    for (let wi = a0 >> 2; wi < wEnd; wi++) {
      const w = words[wi]!;
      const x = w ^ 0x7f7f7f7f;
      // A byte below 0x20, or equal to 0x7f, somewhere in the word.
      if ((((w - 0x20202020) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) {
        for (let a = wi << 2, k = 0; k < 4; k++, a++) {
          if (a < a0 || a >= a1) continue;
          const c = b[a - off]!;
          if (c === 0x7f) return false;
          if (c < 0x20 && c !== 0x09 && c !== 0x0a && !(c === 0x0d && b[a - off + 1] === 0x0a)) return false;
        }
      }
    }
    // Bytes past the last whole word of the buffer.
    for (let a = Math.max(a0, wEnd << 2); a < a1; a++) {
      const c = b[a - off]!;
      if (c === 0x7f) return false;
      if (c < 0x20 && c !== 0x09 && c !== 0x0a && !(c === 0x0d && b[a - off + 1] === 0x0a)) return false;
    }
    return true;
  }

  /**
   * Copies the block scanBlock found into a HeadSlab (its only copy) and parses it there: the
   * start line (when `head`) and the field lines, whose offsets and ids go after the bytes.
   */
  private parseBlock(head: boolean): HttpHeaders {
    const src = this.blk;
    const len = this.blkEnd - this.blkBase;
    this.blk = EMPTY;
    if (headScan !== null) {
      // Null only for more fields than the scanner's record holds (MAX_SCANNED_FIELDS).
      const headers = this.scanNative(src, this.blkBase, this.blkEnd, false, head);
      if (headers !== null) return headers;
    }
    const slab = reserveHead(len, ENTRY * this.blkLines + SUMMARY);
    const base = slab.mark;
    slab.bytes.set(src.subarray(this.blkBase, this.blkEnd), base);
    return this.parseCopied(slab, base, len, head, false);
  }

  /** Parses a block copied into `slab` at `base` (`clean`: headIsClean vetted it). */
  private parseCopied(
    slab: HeadSlab,
    base: number,
    len: number,
    head: boolean,
    clean: boolean,
    scanned = false,
  ): HttpHeaders {
    const b = slab.bytes;
    const end = base + len;
    this.failBase = base;
    const p = head ? this.parseStartLine(b, base, end) : base;
    const wbase = (end + 3) >> 2;
    if (head && !clean) clean = this.blockIsClean(b, slab.words, base, end);
    const n = this.parseFields(b, slab.words, wbase, scanned ? base : -1, p, end, head, clean);
    this.failBase = 0;
    // A head's Connection lines listing only `keep-alive` and `upgrade` (hop-by-hop fields
    // themselves): removeHopByHop need not read them (nginx answers and most clients send that).
    summarize(slab.words, wbase, n, head && (this.connFlags & ~(L_KEEP_ALIVE | L_UPGRADE)) === 0);
    trimHead(slab, wbase + ENTRY * n + SUMMARY);
    return HttpHeaders.fromWire(slab, wbase, n, head ? base : -1, head ? p : -1);
  }

  /**
   * Parses the head (`find`: whole at src[start...], end to be found; else the block scanBlock
   * framed, src[start, end)) or trailers with the native scanner, copies it into a HeadSlab with
   * its field entries and returns its headers. For a head, builds the message and sets the
   * framing scratch. Null when find mode falls back (nothing consumed). Throws what the
   * JavaScript parser throws for the same bytes.
   */
  private scanNative(
    src: Uint8Array,
    start: number,
    end: number,
    find: boolean,
    head: boolean,
  ): HttpHeaders | null {
    let io = scanIo;
    if (io.length < IO_ENTRIES + ENTRY * this.scanCapacity + SUMMARY) {
      io = scanIo = new Int32Array(IO_ENTRIES + ENTRY * this.scanCapacity + SUMMARY);
      scanIoF64 = new Float64Array(io.buffer, 0, IO_ENTRIES >> 1);
    }
    const lim = this.limits;
    io[IO_START] = start;
    io[IO_END] = end;
    io[IO_MODE] = find ? MODE_FIND : MODE_BLOCK;
    io[IO_KIND] = head ? this.scanKind : KIND_TRAILERS;
    io[IO_MAX_HEAD] = lim.maxHeadSize;
    io[IO_MAX_COUNT] = lim.maxHeaderCount;
    io[IO_MAX_LINE] = lim.maxLineLength;
    // The scanner copies the head into the current slab's free space when it fits there, which
    // the reservation below then covers (it takes the same span unless the head needs a slab of
    // its own or a new one; then the copy is made here).
    const current = reserveHead(0, 0);
    if (io !== boundIo) {
      // Undefined from an addon built before 21a707b (which added scanner()): bind() then serves.
      const scanner: NativeHeadScan['scanner'] | undefined = headScan!.scanner;
      if (scanner !== undefined) {
        const fn = scanner(io, current.bytes);
        scanBinding = fn;
        scanFn = fn;
      } else {
        scanBinding = headScan!.bind(io, current.bytes);
        scanFn = null;
      }
      boundIo = io;
      boundSlab = current;
    } else if (current !== boundSlab) {
      // Moving the binding lets go of the last slab now (a new binding would hold it until its
      // finalizer ran, after a turn of the event loop).
      headScan!.setSlab(scanBinding!, current.bytes);
      boundSlab = current;
    }
    io[IO_SLAB_TOP] = current.mark;
    const outcome = scanFn !== null ? scanFn(src) : headScan!.scan(scanBinding!, src);
    if (outcome !== SCAN_OK && outcome !== SCAN_COPIED) {
      if (outcome === SCAN_FALLBACK) return null;
      this.scanFailed(src, start, head);
    }
    const len = io[IO_LENGTH]!;
    const n = io[IO_FIELDS]!;
    const top = current.mark;
    const slab = reserveHead(len, ENTRY * n + SUMMARY);
    const base = slab.mark;
    const wbase = (base + len + 3) >> 2;
    // SCAN_COPIED: the head and its entries are in `current` at `top` (and none in the record).
    if (outcome !== SCAN_COPIED) copyScanned(io, IO_ENTRIES, base, src, start, len, n, slab, base, wbase);
    else if (slab !== current || base !== top)
      copyScanned(current.words, (top + len + 3) >> 2, base - top, src, start, len, n, slab, base, wbase);
    if (!head) return HttpHeaders.fromWire(slab, wbase, n, -1, -1);
    this.clCount = io[IO_CL_COUNT]!;
    this.contentLength = scanIoF64[IO_CONTENT_LENGTH_F64]!;
    this.teFlags = io[IO_TE_FLAGS]!;
    this.connFlags = io[IO_CONN_FLAGS]!;
    this.hostCount = io[IO_HOST_COUNT]!;
    this.expectFlag = io[IO_EXPECT]!;
    this.hasUpgradeHeader = io[IO_UPGRADE] === 1;
    this.failBase = base;
    this.startFromScan(slab.bytes, base, io);
    this.failBase = 0;
    return HttpHeaders.fromWire(slab, wbase, n, base, base + io[IO_FIELDS_AT]!);
  }

  /** Throws the HttpParseError for the rule the scanner reported (the method policy first, as parseStartLine). */
  private scanFailed(src: Uint8Array, start: number, head: boolean): never {
    const io = scanIo;
    const methodEnd = io[IO_METHOD_END]!;
    let method = '';
    if (head && methodEnd > 0) method = this.scannedMethod(src, start, start + methodEnd);
    const arg = io[IO_ERROR_ARG]!;
    let detail: string;
    const err = io[IO_ERROR]!;
    if (err === SE_UNSUPPORTED_VERSION) detail = `HTTP/${Math.trunc(arg / 10)}.${arg % 10} not supported`;
    else if (err === SE_TARGET_FORM) detail = `bad ${method} target`;
    else if (err === SE_FORBIDDEN_TRAILER) detail = `${KNOWN_NAMES[arg]} in trailers`;
    else detail = SCAN_ERRORS[err - 1]![1];
    throw new HttpParseError(SCAN_ERRORS[err - 1]![0], detail, io[IO_ERROR_AT]!);
  }

  /** Which start line the scanner parses for this decoder. */
  protected abstract readonly scanKind: number;
  /** Builds `this.message` from the scanner's start-line offsets (relative to `base` in `b`). */
  protected abstract startFromScan(b: Uint8Array, base: number, io: Int32Array): void;
  /** The method of src[start, end), checked against the method policy (requests). */
  protected scannedMethod(_src: Uint8Array, _start: number, _end: number): string {
    return '';
  }

  private parseTrailers(): HttpHeaders {
    return this.parseBlock(false);
  }

  /**
   * Parses field lines from `p` to the final CRLF into entries at `words[w...]`; returns their
   * number. Framing headers are interpreted only when `head`.
   */
  private parseFields(
    b: Uint8Array,
    words: Int32Array,
    w: number,
    scannedBase: number,
    p: number,
    blockEnd: number,
    head: boolean,
    clean: boolean,
  ): number {
    const end = blockEnd - 2;
    let n = 0;
    // After scanHead, line k + 1 (k = field index) ends at lineEnds[k + 1] from the head's start.
    const ends = lineEnds;
    while (p < end) {
      const ns = p;
      let c = b[p]!;
      if (c === 0x20 || c === 0x09) this.fail('ERR_HTTP_OBS_FOLD', 'obsolete line folding', p);
      while (TOKEN[c] === 1) c = b[++p]!;
      const ne = p;
      if (c !== 0x3a || ne === ns) {
        if (ne > ns && (c === 0x20 || c === 0x09))
          this.fail('ERR_HTTP_WHITESPACE_BEFORE_COLON', 'whitespace before colon', p);
        if (c === 0x0d && b[p + 1] !== 0x0a) this.fail('ERR_HTTP_BARE_CR', 'CR without LF', p);
        this.fail('ERR_HTTP_INVALID_HEADER_NAME', 'invalid character in field name', p);
      }
      c = b[++p]!;
      while (c === 0x20 || c === 0x09) c = b[++p]!;
      const vs = p;
      if (clean) {
        // Every byte was vetted word by word: the value runs to the next CR.
        if (c !== 0x0d) p = scannedBase >= 0 ? scannedBase + ends[n + 1]! : indexOfByte.call(b, 0x0d, p);
      } else {
        while (FIELD_VALUE[c] === 1) c = b[++p]!;
        if (c !== 0x0d) this.fail('ERR_HTTP_INVALID_HEADER_VALUE', 'invalid character in field value', p);
        if (b[p + 1] !== 0x0a) this.fail('ERR_HTTP_BARE_CR', 'CR without LF', p);
      }
      let ve = p;
      while (ve > vs && (b[ve - 1] === 0x20 || b[ve - 1] === 0x09)) ve--;
      const canonical = ve === p && vs === ne + 2 && b[ne + 1] === 0x20;
      p += 2;
      const id = lookupKnownId(b, ns, ne);
      words[w] = ns;
      words[w + 1] = ne;
      words[w + 2] = vs;
      words[w + 3] = ve;
      words[w + 4] = canonical ? id | CANONICAL : id;
      w += ENTRY;
      n++;
      if (id !== 0) {
        if (head) this.specialField(id, b, vs, ve);
        else if (id === ID_CONTENT_LENGTH || id === ID_TRANSFER_ENCODING || id === ID_HOST) {
          // Framing and routing fields must not arrive late (RFC 9110 §6.5.1).
          this.fail('ERR_HTTP_FORBIDDEN_TRAILER', `${KNOWN_NAMES[id]} in trailers`, ns);
        }
      }
    }
    return n;
  }

  /** Interprets the fields that decide framing and connection reuse (names are interned). */
  private specialField(id: number, b: Uint8Array, vs: number, ve: number): void {
    if (id === ID_CONTENT_LENGTH) {
      if (++this.clCount > 1)
        this.fail('ERR_HTTP_DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length', vs);
      if (ve === vs || ve - vs > 15) this.fail('ERR_HTTP_INVALID_CONTENT_LENGTH', 'bad Content-Length', vs);
      let v = 0;
      for (let i = vs; i < ve; i++) {
        const d = b[i]! - 0x30;
        if (d < 0 || d > 9) this.fail('ERR_HTTP_INVALID_CONTENT_LENGTH', 'bad Content-Length', i);
        v = v * 10 + d;
      }
      this.contentLength = v;
    } else if (id === ID_TRANSFER_ENCODING) {
      const f = listFlags(b, vs, ve);
      if (f === 0 || (f & L_MALFORMED) !== 0 || hasEmptyElement(b, vs, ve))
        this.fail('ERR_HTTP_INVALID_TRANSFER_ENCODING', 'bad Transfer-Encoding', vs);
      const prev = this.teFlags;
      let next = (prev & ~L_LAST_CHUNKED) | f;
      if ((prev & L_CHUNKED) !== 0 && (f & L_CHUNKED) !== 0) next |= L_CHUNKED_TWICE;
      if ((prev & L_CHUNKED) !== 0 && (f & L_LAST_CHUNKED) === 0) next |= L_OTHER;
      this.teFlags = next;
    } else if (id === ID_CONNECTION) {
      this.connFlags |= listFlags(b, vs, ve);
    } else if (id === ID_HOST) {
      this.hostCount++;
      for (let i = vs; i < ve; i++) {
        if (AUTHORITY[b[i]!] !== 1) this.fail('ERR_HTTP_INVALID_HOST', 'invalid character in Host', i);
      }
    } else if (id === ID_EXPECT) {
      this.expectFlag = equalsIgnoreCase(b, vs, ve, '100-continue') ? 1 : 2;
    } else if (id === ID_UPGRADE) {
      this.hasUpgradeHeader = true;
    }
  }

  /** Keep-alive per RFC 9112 §9.3 from version and Connection tokens. */
  protected keepAliveFor(minor: number): boolean {
    if ((this.connFlags & L_CLOSE) !== 0) return false;
    return minor === 1 || (this.connFlags & L_KEEP_ALIVE) !== 0;
  }

  protected get teChunkedOnly(): boolean {
    const f = this.teFlags;
    return (f & L_LAST_CHUNKED) !== 0 && (f & (L_CHUNKED_TWICE | L_OTHER)) === 0;
  }

  protected get teLastChunked(): boolean {
    return (this.teFlags & L_LAST_CHUNKED) !== 0 && (this.teFlags & L_CHUNKED_TWICE) === 0;
  }

  protected get teCodingsUnsupported(): boolean {
    return (this.teFlags & L_OTHER) !== 0;
  }

  protected get connUpgrade(): boolean {
    return (this.connFlags & L_UPGRADE) !== 0 && this.hasUpgradeHeader;
  }

  private chunkLineTooLong(): never {
    this.fail('ERR_HTTP_CHUNK_LINE_TOO_LONG', `chunk line exceeds ${this.limits.maxChunkLineLength} bytes`);
  }

  private chunkSize(): boolean {
    const inp = this.input;
    const end = inp.length;
    let p = this.pos;
    while (p < end) {
      const c = inp[p]!;
      const h = HEX[c]!;
      if (h !== 0) {
        // The value is bounded, not the digit count: leading zeros are valid (RFC 9112 §7.1,
        // as nginx, haproxy and llhttp), and the digits count towards the chunk line limit.
        if (++this.chunkDigits > this.limits.maxChunkLineLength) this.chunkLineTooLong();
        // (h - 1) first: 2^53 + 1 - 1 would round to 2^53 - 1 and pass the bound.
        const v = this.remaining * 16 + (h - 1);
        if (v > MAX_CHUNK_SIZE) this.fail('ERR_HTTP_INVALID_CHUNK_SIZE', 'chunk size too large');
        this.remaining = v;
        p++;
        continue;
      }
      if (this.chunkDigits === 0) this.fail('ERR_HTTP_INVALID_CHUNK_SIZE', 'chunk size is not hex');
      if (c === 0x0d) {
        this.state = S_CHUNK_SIZE_LF;
        this.pos = p + 1;
        return true;
      }
      if (c === 0x3b) {
        this.state = S_CHUNK_EXT;
        this.extState = X_NAME_START;
        this.chunkLineLen = this.chunkDigits + 1;
        this.pos = p + 1;
        return true;
      }
      this.fail('ERR_HTTP_INVALID_CHUNK_SIZE', 'invalid character in chunk size');
    }
    this.pos = p;
    return false;
  }

  private chunkExt(): boolean {
    const inp = this.input;
    const end = inp.length;
    const start = this.pos;
    let p = start;
    let s = this.extState;
    while (p < end) {
      const c = inp[p]!;
      switch (s) {
        case X_NAME_START:
          if (TOKEN[c] !== 1) this.fail('ERR_HTTP_INVALID_CHUNK_EXTENSION', 'bad chunk extension name');
          s = X_NAME;
          break;
        case X_NAME:
        case X_VALUE:
        case X_AFTER_QUOTED:
          if (s !== X_AFTER_QUOTED && TOKEN[c] === 1) break;
          if (c === 0x3b) s = X_NAME_START;
          else if (c === 0x3d && s === X_NAME) s = X_VALUE_START;
          else if (c === 0x0d) {
            this.state = S_CHUNK_SIZE_LF;
            this.pos = p + 1;
            return true;
          } else this.fail('ERR_HTTP_INVALID_CHUNK_EXTENSION', 'bad character in chunk extension');
          break;
        case X_VALUE_START:
          if (c === 0x22) s = X_QUOTED;
          else if (TOKEN[c] === 1) s = X_VALUE;
          else this.fail('ERR_HTTP_INVALID_CHUNK_EXTENSION', 'bad chunk extension value');
          break;
        case X_QUOTED:
          if (c === 0x22) s = X_AFTER_QUOTED;
          else if (c === 0x5c) s = X_QUOTED_ESC;
          else if (FIELD_VALUE[c] !== 1)
            this.fail('ERR_HTTP_INVALID_CHUNK_EXTENSION', 'bad quoted chunk extension');
          break;
        default:
          // X_QUOTED_ESC
          if (FIELD_VALUE[c] !== 1) this.fail('ERR_HTTP_INVALID_CHUNK_EXTENSION', 'bad quoted-pair');
          s = X_QUOTED;
      }
      p++;
      if (++this.chunkLineLen > this.limits.maxChunkLineLength) this.chunkLineTooLong();
    }
    this.extState = s;
    this.pos = p;
    return false;
  }
}

/**
 * Parses the version `HTTP/d.d` at `p` and returns its minor digit (0-9). A major other than 1
 * is ERR_HTTP_UNSUPPORTED_VERSION (505); a minor above 1 is for the caller to read as 1.1
 * (RFC 9112 §2.3: the highest minor version the recipient supports).
 */
function parseVersion(d: H1Decoder<unknown>, b: Uint8Array, p: number, fail: FailFn): number {
  if (b[p] !== 0x48 || b[p + 1] !== 0x54 || b[p + 2] !== 0x54 || b[p + 3] !== 0x50 || b[p + 4] !== 0x2f) {
    fail.call(d, 'ERR_HTTP_INVALID_VERSION', 'bad HTTP version', p);
  }
  const major = b[p + 5]! - 0x30;
  const minor = b[p + 7]! - 0x30;
  if (major < 0 || major > 9 || b[p + 6] !== 0x2e || minor < 0 || minor > 9) {
    fail.call(d, 'ERR_HTTP_INVALID_VERSION', 'bad HTTP version', p);
  }
  if (major !== 1) fail.call(d, 'ERR_HTTP_UNSUPPORTED_VERSION', `HTTP/${major}.${minor} not supported`, p);
  return minor;
}

type FailFn = (code: HttpParseErrorCode, detail: string, offset?: number) => never;

/** Request decoder: one per server connection; pipelined requests come out one after another. */
export class RequestDecoder extends H1Decoder<HttpServerRequest<unknown>> {
  /** The request carried `Expect: 100-continue`. */
  expectContinue = false;
  /** The request carried an Expect value other than 100-continue (answer 417). */
  expectUnsupported = false;
  protected readonly firstLineTooLong: HttpParseErrorCode = 'ERR_HTTP_REQUEST_LINE_TOO_LONG';
  private minor = 1;
  private readonly methods: ReadonlySet<string> | 'any';

  constructor(options: RequestDecoderOptions = {}) {
    super(options);
    this.methods = options.methods ?? KNOWN_METHODS;
  }

  protected readonly scanKind = KIND_REQUEST;

  /** The method of b[s, e) (a token), interned when standard; ERR_HTTP_UNKNOWN_METHOD when the policy refuses it. */
  protected override scannedMethod(b: Uint8Array, s: number, e: number): string {
    let method = lookupMethod(b, s, e);
    if (method === undefined) {
      method = latin1Slice.call(b, s, e);
      if (this.methods !== 'any' && !this.methods.has(method))
        throw new HttpParseError('ERR_HTTP_UNKNOWN_METHOD', `unknown method ${method}`, 0);
    }
    return method;
  }

  protected startFromScan(b: Uint8Array, base: number, io: Int32Array): void {
    const method = this.scannedMethod(b, base, base + io[IO_METHOD_END]!);
    const minor = io[IO_MINOR]!;
    this.minor = Math.min(minor, 1);
    this.verbatimStart = minor === 1;
    this.setRequest(
      method,
      latin1Of(b, base + io[IO_TARGET_START]!, base + io[IO_TARGET_END]!),
      FORMS[io[IO_FORM]!]!,
    );
  }

  private setRequest(method: string, target: string, targetForm: TargetForm): void {
    this.message = {
      method,
      target,
      targetForm,
      version: (this.minor === 1 ? '1.1' : '1.0') as HttpVersion,
      headers: EMPTY_HEADERS,
      body: EMPTY_BODY,
      // The server sets it before the handler runs; present from the start so the shape stays one.
      context: undefined,
    };
  }

  protected parseStartLine(b: Uint8Array, base: number, end: number): number {
    let p = base;
    while (TOKEN[b[p]!] === 1) p++;
    if (p === base || b[p] !== 0x20) this.fail('ERR_HTTP_INVALID_METHOD', 'bad method', p);
    const method = this.scannedMethod(b, base, p);
    const ts = ++p;
    while (TARGET[b[p]!] === 1) p++;
    const te = p;
    if (te === ts || b[p] !== 0x20) this.fail('ERR_HTTP_INVALID_TARGET', 'bad request target', p);
    p++;
    if (p + 10 > end) this.fail('ERR_HTTP_INVALID_VERSION', 'bad HTTP version', p);
    const minor = parseVersion(this, b, p, this.fail);
    this.minor = Math.min(minor, 1);
    this.verbatimStart = minor === 1;
    p += 8;
    if (b[p] !== 0x0d) this.fail('ERR_HTTP_INVALID_VERSION', 'bad HTTP version', p);
    if (b[p + 1] !== 0x0a) this.fail('ERR_HTTP_BARE_CR', 'CR without LF', p);
    const form = targetForm(b, ts, te, method);
    if (form === null) this.fail('ERR_HTTP_INVALID_TARGET', `bad ${method} target`, ts);
    this.setRequest(method, latin1Of(b, ts, te), form);
    return p + 2;
  }

  protected setHeaders(headers: HttpHeaders): void {
    const m = this.message!;
    m.headers = headers;
    // An HTTP/1.1 request line can be forwarded as is while method and target stay the same.
    if (this.verbatimStart) {
      headers.startMethodOrReason = m.method;
      headers.startTarget = m.target;
    } else headers.startAt = -1;
  }

  protected decideFraming(): void {
    const minor = this.minor;
    if (this.hostCount > 1) this.fail('ERR_HTTP_DUPLICATE_HOST', 'more than one Host');
    if (this.hostCount === 0 && minor === 1)
      this.fail('ERR_HTTP_MISSING_HOST', 'HTTP/1.1 request without Host');
    this.keepAlive = this.keepAliveFor(minor);
    this.upgrade = this.connUpgrade;
    this.expectContinue = this.expectFlag === 1 && minor === 1;
    // RFC 9110 §10.1.1: an HTTP/1.0 request's Expect is ignored.
    this.expectUnsupported = this.expectFlag === 2 && minor === 1;
    if (this.teFlags !== 0) {
      if (this.clCount > 0) {
        this.fail(
          'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
          'both Content-Length and Transfer-Encoding',
        );
      }
      if (minor === 0)
        this.fail('ERR_HTTP_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding in an HTTP/1.0 request');
      if (!this.teLastChunked)
        this.fail('ERR_HTTP_INVALID_TRANSFER_ENCODING', 'chunked is not the final coding');
      if (!this.teChunkedOnly) this.fail('ERR_HTTP_UNSUPPORTED_TRANSFER_CODING', 'only chunked is supported');
      this.framing = 'chunked';
      this.contentLength = -1;
    } else if (this.contentLength > 0) {
      this.framing = 'length';
    } else {
      this.framing = 'none';
    }
  }
}

/** Response decoder: one per client connection. Call `expectResponseTo(method)` before each response. */
export class ResponseDecoder extends H1Decoder<HttpResponse> {
  protected readonly firstLineTooLong: HttpParseErrorCode = 'ERR_HTTP_HEADER_LINE_TOO_LONG';
  private requestMethod = 'GET';
  private minor = 1;
  private status = 0;
  /** An interim response of this exchange asked to close after the final one. */
  private closeAfterFinal = false;

  /** Sets the method of the request the next response answers (HEAD and CONNECT change framing). */
  expectResponseTo(method: string): void {
    this.requestMethod = method;
  }

  protected readonly scanKind = KIND_RESPONSE;

  protected startFromScan(b: Uint8Array, base: number, io: Int32Array): void {
    const minor = io[IO_MINOR]!;
    this.minor = Math.min(minor, 1);
    this.verbatimStart = minor === 1;
    this.status = io[IO_STATUS]!;
    this.setResponse(reasonOf(b, base + io[IO_TARGET_START]!, base + io[IO_TARGET_END]!));
  }

  private setResponse(reason: string): void {
    this.message = {
      status: this.status,
      reason,
      version: (this.minor === 1 ? '1.1' : '1.0') as HttpVersion,
      headers: EMPTY_HEADERS,
      body: EMPTY_BODY,
    };
  }

  protected parseStartLine(b: Uint8Array, base: number, end: number): number {
    if (end - base < 14) this.fail('ERR_HTTP_INVALID_STATUS', 'short status line', base);
    const minor = parseVersion(this, b, base, this.fail);
    this.minor = Math.min(minor, 1);
    this.verbatimStart = minor === 1;
    let p = base + 8;
    if (b[p] !== 0x20) this.fail('ERR_HTTP_INVALID_STATUS', 'bad status line', p);
    const d0 = b[p + 1]! - 0x30;
    const d1 = b[p + 2]! - 0x30;
    const d2 = b[p + 3]! - 0x30;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9)
      this.fail('ERR_HTTP_INVALID_STATUS', 'bad status code', p);
    this.status = d0 * 100 + d1 * 10 + d2;
    p += 4;
    let rs = p;
    if (b[p] === 0x20) {
      rs = ++p;
      while (FIELD_VALUE[b[p]!] === 1) p++;
    }
    if (b[p] !== 0x0d) this.fail('ERR_HTTP_INVALID_STATUS', 'bad reason phrase', p);
    if (b[p + 1] !== 0x0a) this.fail('ERR_HTTP_BARE_CR', 'CR without LF', p);
    this.setResponse(reasonOf(b, rs, p));
    return p + 2;
  }

  protected setHeaders(headers: HttpHeaders): void {
    const m = this.message!;
    m.headers = headers;
    // An HTTP/1.1 status line can be forwarded as is while status and reason stay the same.
    if (this.verbatimStart) {
      headers.startStatus = m.status;
      headers.startMethodOrReason = m.reason;
    } else headers.startAt = -1;
  }

  protected decideFraming(): void {
    const status = this.status;
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing; read it, then
    // close (nginx and haproxy do the same), whatever Connection says.
    this.keepAlive = this.keepAliveFor(this.minor) && !(this.teFlags !== 0 && this.minor === 0);
    this.upgrade = status === 101;
    if (this.teFlags !== 0 && this.clCount > 0) {
      this.fail(
        'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
        'both Content-Length and Transfer-Encoding',
      );
    }
    if (status < 200 && status !== 101) {
      // Interim: the exchange goes on to the final response, which a `close` here (or an
      // HTTP/1.0 1xx) then ends the connection after (RFC 9110 §15.2, §7.6.1).
      if (!this.keepAlive) this.closeAfterFinal = true;
      this.keepAlive = true;
      this.framing = 'none';
      return;
    }
    if (this.closeAfterFinal) {
      this.closeAfterFinal = false;
      this.keepAlive = false;
    }
    if (status < 200 || status === 204 || status === 304 || this.requestMethod === 'HEAD') {
      this.framing = 'none';
      return;
    }
    if (this.requestMethod === 'CONNECT' && status < 300) {
      this.framing = 'none';
      this.upgrade = true;
      this.keepAlive = false;
      return;
    }
    if (this.teFlags !== 0) {
      if ((this.teFlags & L_CHUNKED_TWICE) !== 0)
        this.fail('ERR_HTTP_INVALID_TRANSFER_ENCODING', 'chunked twice');
      if (this.teLastChunked) {
        this.framing = 'chunked';
      } else {
        this.framing = 'eof';
        this.keepAlive = false;
      }
      this.contentLength = -1;
    } else if (this.contentLength >= 0) {
      this.framing = this.contentLength > 0 ? 'length' : 'none';
    } else {
      this.framing = 'eof';
      this.keepAlive = false;
    }
  }
}

const EMPTY_HEADERS = new HttpHeaders();

/** The reason phrase b[s, e), with `OK` interned. */
function reasonOf(b: Uint8Array, s: number, e: number): string {
  if (e - s === 2 && b[s] === 0x4f && b[s + 1] === 0x4b) return 'OK';
  return latin1Of(b, s, e);
}

/** Classifies a request target; null when the form is not allowed for the method. */
function targetForm(b: Uint8Array, s: number, e: number, method: string): TargetForm | null {
  const c = b[s]!;
  if (method === 'CONNECT') {
    // authority-form: host ":" port, no userinfo, path, query or fragment.
    let colon = -1;
    for (let i = s; i < e; i++) {
      const x = b[i]!;
      if (x === 0x2f || x === 0x3f || x === 0x23 || x === 0x40) return null;
      if (x === 0x3a) colon = i;
    }
    if (colon <= s || colon === e - 1 || e - colon - 1 > 5) return null;
    for (let i = colon + 1; i < e; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return null;
    return 'authority';
  }
  if (c === 0x2f) return 'origin';
  if (c === 0x2a && e - s === 1) return method === 'OPTIONS' ? 'asterisk' : null;
  // absolute-form: scheme "://" authority ...; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a))) return null;
  for (let i = s + 1; i < e; i++) {
    const x = b[i]!;
    if (x === 0x3a) {
      // Only hierarchical URIs with an authority (`scheme://host...`), as llhttp.
      if (b[i + 1] !== 0x2f || b[i + 2] !== 0x2f || i + 3 >= e || b[i + 3] === 0x2f) return null;
      return 'absolute';
    }
    const ok =
      (x >= 0x41 && x <= 0x5a) ||
      (x >= 0x61 && x <= 0x7a) ||
      (x >= 0x30 && x <= 0x39) ||
      x === 0x2b ||
      x === 0x2d ||
      x === 0x2e;
    if (!ok) return null;
  }
  return null;
}

/** Flags for a comma-separated token list (Connection, Transfer-Encoding); no allocation. */
function listFlags(b: Uint8Array, s: number, e: number): number {
  let flags = 0;
  let i = s;
  while (i < e) {
    const c = b[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x2c) {
      i++;
      continue;
    }
    const ts = i;
    while (i < e && TOKEN[b[i]!] === 1) i++;
    const te = i;
    if (te === ts) return flags | L_MALFORMED;
    let params = false;
    while (i < e && b[i] !== 0x2c) {
      if (b[i] !== 0x20 && b[i] !== 0x09) params = true;
      i++;
    }
    if (!params && equalsIgnoreCase(b, ts, te, 'chunked')) {
      if ((flags & L_CHUNKED) !== 0) flags |= L_CHUNKED_TWICE;
      flags |= L_CHUNKED | L_LAST_CHUNKED;
      continue;
    }
    flags &= ~L_LAST_CHUNKED;
    // An element with parameters is not a bare option: `close;x` is not `close` (as llhttp).
    if (params) flags |= L_OTHER;
    else if (equalsIgnoreCase(b, ts, te, 'close')) flags |= L_CLOSE;
    else if (equalsIgnoreCase(b, ts, te, 'keep-alive')) flags |= L_KEEP_ALIVE;
    else if (equalsIgnoreCase(b, ts, te, 'upgrade')) flags |= L_UPGRADE;
    else flags |= L_OTHER;
  }
  return flags;
}

/**
 * Whether a list has an empty element (`chunked,`, `,chunked`, `gzip,,chunked`). RFC 9110 5.6.1
 * lets a recipient skip them, but in Transfer-Encoding peers disagree (llhttp and nginx refuse
 * `chunked,`; a lenient one reads a body we frame as chunked another way), so framing that
 * depends on them is refused.
 */
function hasEmptyElement(b: Uint8Array, s: number, e: number): boolean {
  let empty = true;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === 0x2c) {
      if (empty) return true;
      empty = true;
    } else if (c !== 0x20 && c !== 0x09) empty = false;
  }
  return empty;
}

function equalsIgnoreCase(b: Uint8Array, s: number, e: number, lower: string): boolean {
  if (e - s !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if (LOWER[b[s + i]!] !== lower.charCodeAt(i)) return false;
  return true;
}
