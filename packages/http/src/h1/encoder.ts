/**
 * HTTP/1.1 message encoder: start line and fields written straight into one Buffer (with room
 * left behind the head for a body the caller copies in), framing fields derived from the body,
 * and chunk framing for streamed bodies. Decoded fields are forwarded as byte ranges of the
 * received head (see HttpHeaders), added ones are written from their strings; status lines and
 * fixed fields come from cached bytes. Header names and values are valid by construction
 * (HttpHeaders checks them on insert, the decoder on receipt), so nothing here can inject CR/LF.
 * The string forms (encodeResponseHead, encodeRequestHead) are for tests and tools.
 * Not for I/O (server.ts/client.ts).
 */
import { STATUS_CODES } from 'node:http';
import type { HttpBody } from '../body.js';
import { HttpError } from '../errors.js';
import { HeaderName, type HttpHeaders } from '../headers.js';
import { isFieldValue, isToken, isVisibleAscii } from '../internal/char-classes.js';
import type { BodyFraming } from './decoder.js';
import { measureFieldBlock, writeFieldBlock, writeLatin1 } from './field-block.js';

/** True when a response with this status to this request method carries no body. */
export function responseHasNoBody(status: number, requestMethod: string): boolean {
  return status < 200 || status === 204 || status === 304 || requestMethod === 'HEAD';
}

/**
 * Framing for a response body: `none` for bodiless statuses and HEAD, `length` for known sizes,
 * `chunked` for streams to HTTP/1.1 peers, `eof` (close-delimited) for streams to HTTP/1.0 peers.
 */
export function responseFraming(
  status: number,
  body: HttpBody,
  requestMethod: string,
  requestMinor: number,
): BodyFraming {
  if (responseHasNoBody(status, requestMethod)) return 'none';
  if (body.kind === 'stream') return requestMinor === 1 ? 'chunked' : 'eof';
  return 'length';
}

/** Framing for a request body: `none` when empty, `length` when known, else `chunked`. */
export function requestFraming(body: HttpBody): BodyFraming {
  if (body.kind === 'empty') return 'none';
  return body.kind === 'fixed' ? 'length' : 'chunked';
}

let cachedDate = '';
let dateTimer: ReturnType<typeof setTimeout> | null = null;

/** The IMF-fixdate of now; computed at most once a second (a timer drops it at the next second). */
export function httpDate(): string {
  if (dateTimer === null) {
    const now = Date.now();
    cachedDate = new Date(now).toUTCString();
    dateTimer = setTimeout(
      () => {
        dateTimer = null;
      },
      1000 - (now % 1000),
    );
    dateTimer.unref();
  }
  return cachedDate;
}

/**
 * A head written to a length other than the one measured: the list's cached measure
 * (internal/field-measure.ts) was wrong. Never sent: a shorter head would leave the buffer's
 * stale bytes behind it on the wire, a longer one would be cut. The check runs after the writes:
 * a measure too short has written past `size` by then, but only inside the head's own buffer
 * (a lent piece or a Buffer of exactly `size + trailing` bytes: a typed array drops a store past
 * its end and its `set` throws RangeError), never into another piece of the slab; the trailing
 * room the caller fills next is not filled, as this throws first.
 */
function headMismeasured(written: number, measured: number): never {
  throw new HttpError(
    'ERR_HTTP_HEAD_MISMEASURED',
    500,
    `head written ${written} bytes, measured ${measured}`,
  );
}

/** True when the fields carry `connection: close` (a handler asking to end the connection). */
export function asksToClose(headers: HttpHeaders): boolean {
  measureFieldBlock(headers);
  return headers.fieldsClose;
}

const CONTENT_LENGTH_VALUE = /^\d{1,15}$/;
/** Looked up in every request head: resolved once. */
const HOST_NAME = new HeaderName('host');

/**
 * The Content-Length a HEAD or 304 answer's fields carry, when it is a valid one: RFC 9110
 * 9.3.2 and 8.6 let it announce the length the GET (or 200) would have, so it is kept as is.
 */
function announcedLength(headers: HttpHeaders): string | undefined {
  const length = headers.get('content-length');
  return length !== undefined && CONTENT_LENGTH_VALUE.test(length) ? length : undefined;
}

const STATUS_LINES: (Uint8Array | undefined)[] = [];

function isValidStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 100 && status <= 599;
}

/**
 * `HTTP/1.1 <status> <phrase>\r\n` as bytes, cached for the standard phrases (an empty reason or
 * the standard one, as a decoded upstream answer carries). Throws HttpError for a status outside
 * 100-599 or a reason with CR, LF or controls.
 */
export function statusLineBytes(status: number, reason: string): Uint8Array {
  if (!isValidStatus(status)) {
    throw new HttpError('ERR_HTTP_INVALID_STATUS', 500, `invalid response status ${status}`);
  }
  const standard = STATUS_CODES[status];
  if (reason === '' || reason === standard) {
    const cached = STATUS_LINES[status];
    if (cached !== undefined) return cached;
    const line = Buffer.from(`HTTP/1.1 ${status} ${standard ?? 'Unknown'}\r\n`, 'latin1');
    STATUS_LINES[status] = line;
    return line;
  }
  if (!isFieldValue(reason))
    throw new HttpError('ERR_HTTP_INVALID_STATUS', 500, 'reason phrase holds CR, LF or controls');
  return Buffer.from(`HTTP/1.1 ${status} ${reason}\r\n`, 'latin1');
}

/** Options for {@link encodeResponseHead}. */
export interface ResponseHeadOptions {
  /** Framing chosen by {@link responseFraming}. */
  readonly framing: BodyFraming;
  /** Body length for `length` framing (and for HEAD answers of fixed bodies). */
  readonly length: number;
  /** Whether the connection stays open after this response. */
  readonly keepAlive: boolean;
  /** Minor version of the request (0 adds `connection: keep-alive` when keeping alive). */
  readonly requestMinor: number;
  /** Method of the request (HEAD keeps a handler's content-length). */
  readonly requestMethod: string;
  /** Add a `date` field when the handler did not set one. */
  readonly date: boolean;
}

const CONTENT_LENGTH = Buffer.from('content-length: ', 'latin1');
const CHUNKED = Buffer.from('transfer-encoding: chunked\r\n', 'latin1');
const CLOSE = Buffer.from('connection: close\r\n', 'latin1');
const KEEP_ALIVE = Buffer.from('connection: keep-alive\r\n', 'latin1');
/** RFC 9110 §7.8: Upgrade is hop-by-hop, so a 101 names it in Connection. */
const CONNECTION_UPGRADE = Buffer.from('connection: upgrade\r\n', 'latin1');
const HTTP11 = Buffer.from(' HTTP/1.1\r\n', 'latin1');
const HOST = Buffer.from('host: ', 'latin1');

let dateLine: Uint8Array = new Uint8Array(0);
let dateLineOf = '';

/** `date: <IMF-fixdate>\r\n`, remade once a second. */
function dateLineBytes(): Uint8Array {
  const d = httpDate();
  if (d !== dateLineOf) {
    dateLineOf = d;
    dateLine = Buffer.from(`date: ${d}\r\n`, 'latin1');
  }
  return dateLine;
}

/** Decimal digits of a non-negative integer. */
function digits(n: number): number {
  let k = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    k++;
  }
  return k;
}

/** Writes `content-length: n\r\n` at pos; returns the position after it. */
function writeLength(out: Uint8Array, pos: number, n: number): number {
  out.set(CONTENT_LENGTH, pos);
  pos += CONTENT_LENGTH.length;
  const k = digits(n);
  for (let i = pos + k - 1; i >= pos; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  pos += k;
  out[pos++] = 0x0d;
  out[pos++] = 0x0a;
  return pos;
}

/**
 * Encodes a status line and fields (ending with the empty line) into a new Buffer, followed by
 * `trailing` bytes left for the caller (a body copied behind the head: one buffer, one send).
 * Decoded fields nobody touched are copied as byte ranges; the head ends at `length - trailing`.
 */
export function encodeResponseHeadBytes(
  status: number,
  reason: string,
  headers: HttpHeaders,
  o: ResponseHeadOptions,
  trailing = 0,
): Buffer {
  return encodeResponseHeadTo(null, status, reason, headers, o, trailing) as Buffer;
}

/**
 * Memory for an encoded head and the bytes copied behind it: a connection that lends pieces of
 * its thread's write slab (internal/write-slab.ts) and gives them back once its write completed.
 */
export interface HeadLender {
  /** `n` bytes, lent to the write they are handed to. */
  lend(n: number): Uint8Array;
}

/**
 * encodeResponseHeadBytes into memory from `lender` (null: a new Buffer). The result is exactly
 * `head + trailing` bytes long.
 */
export function encodeResponseHeadTo(
  lender: HeadLender | null,
  status: number,
  reason: string,
  headers: HttpHeaders,
  o: ResponseHeadOptions,
  trailing = 0,
): Uint8Array {
  // The decoded status line when it says the same (a forwarded answer), else a cached one.
  const reuse =
    headers.startAt >= 0 &&
    headers.startStatus === status &&
    headers.startMethodOrReason === reason &&
    isValidStatus(status);
  const line = reuse ? null : statusLineBytes(status, reason);
  const lineLength = line === null ? headers.startEnd - headers.startAt : line.length;
  const fields = measureFieldBlock(headers);
  const isHead = o.requestMethod === 'HEAD';
  const date = o.date && !headers.fieldsDate ? dateLineBytes() : null;
  // The length field: a number, or a handler's announced value (HEAD, 304).
  let length = -1;
  let announced: string | undefined;
  let chunked = false;
  let keepLength = false;
  if (o.framing === 'length') {
    length = o.length;
    // The received Content-Length line says the same: it stays where it is.
    if (headers.fieldsContentLength === length) {
      keepLength = true;
      length = -1;
    }
  } else if (o.framing === 'chunked') chunked = true;
  else if (o.framing === 'none' && status >= 200 && status !== 204) {
    // HEAD and 304 announce the length the GET (or 200) would have had: the handler's field as
    // is, else (HEAD only) the body's length when known. Other bodiless answers say 0.
    announced = isHead || status === 304 ? announcedLength(headers) : undefined;
    if (announced === undefined && status !== 304) {
      if (!isHead) length = 0;
      else if (o.length >= 0) length = o.length;
    }
  }
  const conn =
    status === 101
      ? CONNECTION_UPGRADE
      : status < 200
        ? null
        : !o.keepAlive
          ? CLOSE
          : o.requestMinor === 0
            ? KEEP_ALIVE
            : null;
  const size =
    lineLength +
    fields +
    (keepLength ? headers.fieldsContentLengthLine : 0) +
    (date === null ? 0 : date.length) +
    (length >= 0 ? CONTENT_LENGTH.length + digits(length) + 2 : 0) +
    (announced !== undefined ? CONTENT_LENGTH.length + announced.length + 2 : 0) +
    (chunked ? CHUNKED.length : 0) +
    (conn === null ? 0 : conn.length) +
    2;
  const out = lender === null ? Buffer.allocUnsafe(size + trailing) : lender.lend(size + trailing);
  let pos: number;
  if (line === null) pos = writeFieldBlock(headers, out, 0, true, keepLength);
  else {
    out.set(line, 0);
    pos = writeFieldBlock(headers, out, line.length, false, keepLength);
  }
  if (date !== null) {
    out.set(date, pos);
    pos += date.length;
  }
  if (length >= 0) pos = writeLength(out, pos, length);
  if (announced !== undefined) {
    out.set(CONTENT_LENGTH, pos);
    pos = writeLatin1(out, pos + CONTENT_LENGTH.length, announced);
    out[pos++] = 0x0d;
    out[pos++] = 0x0a;
  }
  if (chunked) {
    out.set(CHUNKED, pos);
    pos += CHUNKED.length;
  }
  if (conn !== null) {
    out.set(conn, pos);
    pos += conn.length;
  }
  out[pos++] = 0x0d;
  out[pos++] = 0x0a;
  if (pos !== size) headMismeasured(pos, size);
  return out;
}

/** Encodes a status line and fields (ending with the empty line) as a latin1 string. */
export function encodeResponseHead(
  status: number,
  reason: string,
  headers: HttpHeaders,
  o: ResponseHeadOptions,
): string {
  return encodeResponseHeadBytes(status, reason, headers, o).toString('latin1');
}

/** Options for {@link encodeRequestHeadBytes}. */
export interface RequestHeadOptions {
  /** `false` adds `connection: close`. */
  readonly keepAlive?: boolean;
  /**
   * `true` adds `connection: upgrade` (RFC 9110 §7.8): the request asks to switch protocols with
   * its Upgrade field. The encoder owns Connection and writes none of the request's own.
   */
  readonly upgrade?: boolean;
  /** Host to add when the fields have none. */
  readonly authority?: string;
}

/**
 * Encodes a request line and fields (ending with the empty line) into a new Buffer, followed by
 * `trailing` bytes left for the caller; adds `host` from `authority` when missing. Decoded
 * fields nobody touched are copied as byte ranges.
 */
export function encodeRequestHeadBytes(
  method: string,
  target: string,
  headers: HttpHeaders,
  framing: BodyFraming,
  length: number,
  options: RequestHeadOptions = {},
  trailing = 0,
): Buffer {
  return encodeRequestHeadTo(null, method, target, headers, framing, length, options, trailing) as Buffer;
}

/**
 * encodeRequestHeadBytes into memory from `lender` (null: a new Buffer): for a client that gives
 * the piece back once the write it went out in completed (see HeadLender).
 */
export function encodeRequestHeadTo(
  lender: HeadLender | null,
  method: string,
  target: string,
  headers: HttpHeaders,
  framing: BodyFraming,
  length: number,
  options: RequestHeadOptions = {},
  trailing = 0,
): Uint8Array {
  // The decoded request line's method and target (a forwarded request): the decoder checked
  // their bytes as the checks below would (a token, visible ASCII), so the strings need no pass.
  const decoded =
    headers.startAt >= 0 &&
    headers.startStatus === 0 &&
    headers.startMethodOrReason === method &&
    headers.startTarget === target;
  if (!decoded) {
    if (!isToken(method))
      throw new HttpError('ERR_HTTP_INVALID_METHOD', 500, `invalid method ${JSON.stringify(method)}`);
    if (!isVisibleAscii(target)) {
      throw new HttpError('ERR_HTTP_INVALID_TARGET', 500, `invalid request target ${JSON.stringify(target)}`);
    }
  }
  const authority = options.authority;
  const addHost = authority !== undefined && !headers.has(HOST_NAME);
  if (addHost && (!isVisibleAscii(authority) || authority.includes('/'))) {
    throw new HttpError('ERR_HTTP_INVALID_TARGET', 500, 'invalid authority');
  }
  const fields = measureFieldBlock(headers);
  if (framing === 'none' && (method === 'POST' || method === 'PUT' || method === 'PATCH')) length = 0;
  else if (framing !== 'length') length = -1;
  let keepLength = false;
  if (length >= 0 && headers.fieldsContentLength === length) {
    // The received Content-Length line says the same: it stays where it is.
    keepLength = true;
    length = -1;
  }
  // The decoded request line when method and target are the same (a forwarded request), and
  // no Host goes between it and the fields.
  const reuse = decoded && !addHost;
  const close = options.keepAlive === false;
  const upgrade = options.upgrade === true;
  const size =
    (reuse ? headers.startEnd - headers.startAt : method.length + 1 + target.length + HTTP11.length) +
    (addHost ? HOST.length + authority.length + 2 : 0) +
    fields +
    (keepLength ? headers.fieldsContentLengthLine : 0) +
    (length >= 0 ? CONTENT_LENGTH.length + digits(length) + 2 : 0) +
    (framing === 'chunked' ? CHUNKED.length : 0) +
    (close ? CLOSE.length : 0) +
    (upgrade ? CONNECTION_UPGRADE.length : 0) +
    2;
  const out = lender === null ? Buffer.allocUnsafe(size + trailing) : lender.lend(size + trailing);
  let pos = 0;
  if (!reuse) {
    pos = writeLatin1(out, 0, method);
    out[pos++] = 0x20;
    pos = writeLatin1(out, pos, target);
    out.set(HTTP11, pos);
    pos += HTTP11.length;
  }
  if (addHost) {
    out.set(HOST, pos);
    pos = writeLatin1(out, pos + HOST.length, authority);
    out[pos++] = 0x0d;
    out[pos++] = 0x0a;
  }
  pos = writeFieldBlock(headers, out, pos, reuse, keepLength);
  if (length >= 0) pos = writeLength(out, pos, length);
  if (framing === 'chunked') {
    out.set(CHUNKED, pos);
    pos += CHUNKED.length;
  }
  if (close) {
    out.set(CLOSE, pos);
    pos += CLOSE.length;
  }
  if (upgrade) {
    out.set(CONNECTION_UPGRADE, pos);
    pos += CONNECTION_UPGRADE.length;
  }
  out[pos++] = 0x0d;
  out[pos++] = 0x0a;
  if (pos !== size) headMismeasured(pos, size);
  return out;
}

/** Encodes a request line and fields (ending with the empty line); adds `host` from `authority` when missing. */
export function encodeRequestHead(
  method: string,
  target: string,
  headers: HttpHeaders,
  framing: BodyFraming,
  length: number,
  options: RequestHeadOptions = {},
): string {
  return encodeRequestHeadBytes(method, target, headers, framing, length, options).toString('latin1');
}

/**
 * A one-entry cache of encoded response heads with `length` framing, for a server answering
 * many requests with the same status, fields and body length (a static answer): a hit copies
 * the last head's bytes instead of measuring and writing its fields. The key is everything
 * encodeResponseHeadTo reads for `length` framing: the HttpHeaders instance and its
 * revision, status, reason, the Date it adds, length, keep-alive and version, so a hit is
 * byte-identical. The heads it encodes go to writes (and, lent, are reused once written), so
 * it keeps a copy of its own, made when the same key comes twice in a row (a proxy's answers,
 * each with its own fields, never make one).
 */
export class ResponseHeadCache {
  private headers: HttpHeaders | null = null;
  private revision = -1;
  private status = 0;
  private reason = '';
  private date: Uint8Array | null = null;
  private length = -1;
  private keepAlive = false;
  private minor = -1;
  /** The cached head's bytes (a copy of its own), or null. */
  private last: Uint8Array | null = null;

  /** Like encodeResponseHeadTo (head, then `trailing` free bytes), from the cache when it can. */
  encode(
    status: number,
    reason: string,
    headers: HttpHeaders,
    o: ResponseHeadOptions,
    trailing?: number,
  ): Buffer;
  encode(
    status: number,
    reason: string,
    headers: HttpHeaders,
    o: ResponseHeadOptions,
    trailing: number,
    lender: HeadLender | null,
  ): Uint8Array;
  encode(
    status: number,
    reason: string,
    headers: HttpHeaders,
    o: ResponseHeadOptions,
    trailing = 0,
    lender: HeadLender | null = null,
  ): Uint8Array {
    if (o.framing !== 'length') return encodeResponseHeadTo(lender, status, reason, headers, o, trailing);
    const date = o.date && measureFieldBlock(headers) >= 0 && !headers.fieldsDate ? dateLineBytes() : null;
    const same =
      headers === this.headers &&
      headers.revision === this.revision &&
      status === this.status &&
      reason === this.reason &&
      date === this.date &&
      o.length === this.length &&
      o.keepAlive === this.keepAlive &&
      o.requestMinor === this.minor;
    const last = this.last;
    if (same && last !== null) {
      const n = last.length;
      const out = lender === null ? Buffer.allocUnsafe(n + trailing) : lender.lend(n + trailing);
      out.set(last, 0);
      return out;
    }
    const out = encodeResponseHeadTo(lender, status, reason, headers, o, trailing);
    // The same key twice in a row: worth a copy (the output itself is the write's, and may be
    // reused once written). `new Uint8Array(view)` copies into memory of its own, also when `out`
    // is a Buffer of Node's pool (not lent): never a view, unlike Buffer#slice.
    this.last = same ? new Uint8Array(out.subarray(0, out.length - trailing)) : null;
    this.headers = headers;
    this.revision = headers.revision;
    this.status = status;
    this.reason = reason;
    this.date = date;
    this.length = o.length;
    this.keepAlive = o.keepAlive;
    this.minor = o.requestMinor;
    return out;
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/** The CRLF that ends a chunk's data. */
export const CHUNK_END: Uint8Array = CRLF;

/** The chunk-size line for `n` bytes of data. */
export function chunkHeader(n: number): Uint8Array {
  return Buffer.from(`${n.toString(16)}\r\n`, 'latin1');
}

/** The last chunk with trailers (or none) and the final CRLF. */
export function lastChunk(trailers: HttpHeaders | null): Uint8Array {
  if (trailers === null || trailers.size === 0) return LAST_CHUNK;
  const out = Buffer.allocUnsafe(measureFieldBlock(trailers) + 5);
  out[0] = 0x30;
  out[1] = 0x0d;
  out[2] = 0x0a;
  const pos = writeFieldBlock(trailers, out, 3);
  out[pos] = 0x0d;
  out[pos + 1] = 0x0a;
  return out;
}
