/**
 * HTTP/1.1 message encoder: start line and fields as one latin1 string (written into a
 * connection's scratch buffer or a fresh one), framing fields derived from the body, and chunk
 * framing for streamed bodies. Header names and values are valid by construction (HttpHeaders
 * checks them on insert), so nothing here can inject CR/LF. Not for I/O (server.ts/client.ts).
 */
import { STATUS_CODES } from 'node:http';
import type { HttpBody } from '../body.js';
import { HttpError } from '../errors.js';
import type { HttpHeaders } from '../headers.js';
import { isFieldValue, isToken, isVisibleAscii } from '../internal/char-classes.js';
import type { BodyFraming } from './decoder.js';

/** Fields the encoder owns: it derives them from the body and connection state. */
function isFramingField(name: string): boolean {
  return (
    name === 'content-length' ||
    name === 'transfer-encoding' ||
    name === 'connection' ||
    name === 'keep-alive'
  );
}

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

/** Field lines of `headers` without framing fields, cached on the HttpHeaders until it changes. */
function fieldBlock(headers: HttpHeaders): string {
  const cached = headers.wireBlock;
  if (cached !== null) return cached;
  let s = '';
  let hasDate = false;
  let close = false;
  const n = headers.size;
  for (let i = 0; i < n; i++) {
    const name = headers.nameAt(i);
    if (isFramingField(name)) {
      if (name === 'connection' && /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(headers.valueAt(i))) close = true;
      continue;
    }
    if (name === 'date') hasDate = true;
    s += `${name}: ${headers.valueAt(i)}\r\n`;
  }
  headers.wireBlock = s;
  headers.wireHasDate = hasDate;
  headers.wireClose = close;
  return s;
}

/** True when the fields carry `connection: close` (a handler asking to end the connection). */
export function asksToClose(headers: HttpHeaders): boolean {
  fieldBlock(headers);
  return headers.wireClose;
}

const CONTENT_LENGTH_VALUE = /^\d{1,15}$/;

/**
 * The Content-Length a HEAD or 304 answer's fields carry, when it is a valid one: RFC 9110
 * 9.3.2 and 8.6 let it announce the length the GET (or 200) would have, so it is kept as is.
 */
function announcedLength(headers: HttpHeaders): string | undefined {
  const length = headers.get('content-length');
  return length !== undefined && CONTENT_LENGTH_VALUE.test(length) ? length : undefined;
}

const STATUS_LINES: string[] = [];

/** `HTTP/1.1 <status> <phrase>\r\n`, cached for standard phrases. */
function statusLine(status: number, reason: string): string {
  if (reason === '') {
    const cached = STATUS_LINES[status];
    if (cached !== undefined) return cached;
    const line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    STATUS_LINES[status] = line;
    return line;
  }
  if (!isFieldValue(reason))
    throw new HttpError('ERR_HTTP_INVALID_STATUS', 500, 'reason phrase holds CR, LF or controls');
  return `HTTP/1.1 ${status} ${reason}\r\n`;
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

/** Encodes a status line and fields (ending with the empty line) as a latin1 string. */
export function encodeResponseHead(
  status: number,
  reason: string,
  headers: HttpHeaders,
  o: ResponseHeadOptions,
): string {
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new HttpError('ERR_HTTP_INVALID_STATUS', 500, `invalid response status ${status}`);
  }
  const isHead = o.requestMethod === 'HEAD';
  let s = statusLine(status, reason) + fieldBlock(headers);
  if (o.date && !headers.wireHasDate) s += `date: ${httpDate()}\r\n`;
  if (o.framing === 'length') s += `content-length: ${o.length}\r\n`;
  else if (o.framing === 'chunked') s += 'transfer-encoding: chunked\r\n';
  else if (o.framing === 'none' && status >= 200 && status !== 204) {
    // HEAD and 304 announce the length the GET (or 200) would have had: the handler's field as
    // is, else (HEAD only) the body's length when known. Other bodiless answers say 0.
    const announced = isHead || status === 304 ? announcedLength(headers) : undefined;
    if (announced !== undefined) s += `content-length: ${announced}\r\n`;
    else if (status === 304) {
      // no length to announce
    } else if (!isHead) s += 'content-length: 0\r\n';
    else if (o.length >= 0) s += `content-length: ${o.length}\r\n`;
  }
  if (status >= 200) {
    if (!o.keepAlive) s += 'connection: close\r\n';
    else if (o.requestMinor === 0) s += 'connection: keep-alive\r\n';
  }
  return `${s}\r\n`;
}

/** Encodes a request line and fields (ending with the empty line); adds `host` from `authority` when missing. */
export function encodeRequestHead(
  method: string,
  target: string,
  headers: HttpHeaders,
  framing: BodyFraming,
  length: number,
  options: { keepAlive?: boolean; authority?: string } = {},
): string {
  if (!isToken(method))
    throw new HttpError('ERR_HTTP_INVALID_METHOD', 500, `invalid method ${JSON.stringify(method)}`);
  if (!isVisibleAscii(target)) {
    throw new HttpError('ERR_HTTP_INVALID_TARGET', 500, `invalid request target ${JSON.stringify(target)}`);
  }
  let s = `${method} ${target} HTTP/1.1\r\n`;
  if (options.authority !== undefined && !headers.has('host')) {
    if (!isVisibleAscii(options.authority) || options.authority.includes('/')) {
      throw new HttpError('ERR_HTTP_INVALID_TARGET', 500, 'invalid authority');
    }
    s += `host: ${options.authority}\r\n`;
  }
  s += fieldBlock(headers);
  if (framing === 'length') s += `content-length: ${length}\r\n`;
  else if (framing === 'chunked') s += 'transfer-encoding: chunked\r\n';
  else if (method === 'POST' || method === 'PUT' || method === 'PATCH') s += 'content-length: 0\r\n';
  if (options.keepAlive === false) s += 'connection: close\r\n';
  return `${s}\r\n`;
}

/**
 * A one-entry cache of encoded response heads with `length` framing, for a server answering
 * many requests with the same status, fields and body length (a static answer): a hit reuses
 * the head's bytes instead of building its string and encoding it. The key is everything
 * encodeResponseHead reads for `length` framing, including the Date it adds, so a hit is
 * byte-identical. A miss only records the key and string; the bytes are made on the second
 * use, so changing heads cost no extra copy.
 */
export class ResponseHeadCache {
  private status = 0;
  private reason = '';
  private block: string | null = null;
  private date = '';
  private length = -1;
  private keepAlive = false;
  private minor = -1;
  private head = '';
  private bytes: Buffer | null = null;

  /** The head of a `length`-framed response: bytes when cached (do not modify), else a string. */
  encode(status: number, reason: string, headers: HttpHeaders, o: ResponseHeadOptions): Buffer | string {
    const block = fieldBlock(headers);
    const date = o.date && !headers.wireHasDate ? httpDate() : '';
    if (
      o.framing === 'length' &&
      block === this.block &&
      status === this.status &&
      reason === this.reason &&
      date === this.date &&
      o.length === this.length &&
      o.keepAlive === this.keepAlive &&
      o.requestMinor === this.minor
    ) {
      this.bytes ??= Buffer.from(this.head, 'latin1');
      return this.bytes;
    }
    const head = encodeResponseHead(status, reason, headers, o);
    if (o.framing === 'length') {
      this.status = status;
      this.reason = reason;
      this.block = block;
      this.date = date;
      this.length = o.length;
      this.keepAlive = o.keepAlive;
      this.minor = o.requestMinor;
      this.head = head;
      this.bytes = null;
    }
    return head;
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
  return Buffer.from(`0\r\n${fieldBlock(trailers)}\r\n`, 'latin1');
}
