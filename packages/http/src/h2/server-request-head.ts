/**
 * The header blocks a client sends to an HTTP/2 server, decoded and checked: HPACK-decodes a
 * block (the HpackFieldSink), validates its fields with the codec's FieldBlockValidator as a
 * request head or as trailers, and keeps what a request needs besides its regular fields
 * (`:method`, `:path`, `:authority`, `host` and whether it disagrees with `:authority`,
 * content-length, the number of cookie fields). The session (server-session.ts) decodes every
 * block through one of these, also the blocks of streams it will not serve (the HPACK table
 * must stay in step), and builds the request from what `decode` left.
 *
 * Not for stream states, limits or answering (server-session.ts).
 */
import { HttpHeaders } from '../headers.js';
import { Http2ErrorCode, Http2StreamError } from './errors.js';
import { FieldBlockValidator } from './field-validator.js';
import { HpackDecoder, type HpackFieldSink } from './hpack-decoder.js';

/** What a decoded header block is for. */
export const BLOCK_REQUEST = 0;
export const BLOCK_TRAILERS = 1;
/** Decoded only to keep the HPACK table in step (a refused, reset or ignored stream). */
export const BLOCK_DISCARD = 2;

/** Decodes and checks the header blocks of one server connection; see the module comment. */
export class H2RequestHeadDecoder implements HpackFieldSink {
  private readonly hpack: HpackDecoder;
  private readonly validator = new FieldBlockValidator();
  private kind = BLOCK_DISCARD;
  private fields: string[] = [];
  /** Regular fields of the last block. */
  count = 0;
  /** Cookie fields of the last request block. */
  cookies = 0;
  /** Pseudo-header values of the last request block ('' when absent). */
  method = '';
  path = '';
  authority = '';
  /** The `host` field of the last request block ('' when absent). */
  host = '';
  private badHost = false;
  /** The content-length value of the last request block ('' when absent, 'x' when two disagree). */
  contentLength = '';

  constructor(maxHeaderListSize: number) {
    this.hpack = new HpackDecoder({ maxHeaderListSize });
  }

  /**
   * HPACK-decodes a block, validating its fields as `kind`; returns the first malformed-field
   * error (or null). Throws the codec's connection errors, and a stream error for an oversized
   * list (after the whole block was walked).
   */
  decode(block: Uint8Array, kind: number, streamId: number): Http2StreamError | null {
    this.kind = kind;
    this.fields = [];
    this.count = 0;
    this.cookies = 0;
    this.method = '';
    this.path = '';
    this.authority = '';
    this.host = '';
    this.badHost = false;
    this.contentLength = '';
    this.validator.begin(kind === BLOCK_REQUEST ? 'request' : 'trailers', streamId);
    if (kind === BLOCK_DISCARD) {
      try {
        this.hpack.decode(block, this);
      } catch (e) {
        // An oversized list of a block nobody reads: the table is in step, that is enough.
        if (!(e instanceof Http2StreamError)) throw e;
      }
      return null;
    }
    this.hpack.decode(block, this);
    const err = this.validator.end();
    if (err !== null) return err;
    if (this.badHost) {
      return new Http2StreamError(
        'ERR_HTTP2_INVALID_FIELD_VALUE',
        Http2ErrorCode.PROTOCOL_ERROR,
        streamId,
        'host and :authority disagree, or host is repeated',
      );
    }
    return null;
  }

  /** One decoded field (HpackFieldSink). @internal */
  onField(name: string, value: string): void {
    const kind = this.kind;
    if (kind === BLOCK_DISCARD) return;
    if (this.validator.field(name, value) !== null) return;
    if (name.charCodeAt(0) === 0x3a) {
      if (name === ':method') this.method = value;
      else if (name === ':path') this.path = value;
      else if (name === ':authority') {
        this.authority = value;
        if (this.host !== '' && this.host !== value) this.badHost = true;
      }
      return;
    }
    this.count++;
    if (kind === BLOCK_REQUEST) {
      if (name === 'host') {
        if (this.host !== '' || (this.authority !== '' && this.authority !== value)) this.badHost = true;
        this.host = value;
      } else if (name === 'cookie') {
        this.cookies++;
      } else if (name === 'content-length') {
        if (this.contentLength !== '' && this.contentLength !== value) this.contentLength = 'x';
        this.contentLength = value;
      }
    }
    this.fields.push(name, value);
  }

  /** The last block's regular fields as an HttpHeaders (already validated: no second check). */
  takeFields(): HttpHeaders {
    const h = new HttpHeaders();
    const f = this.fields;
    this.fields = [];
    if (f.length > 0) h.added = f;
    return h;
  }

  /**
   * The last request block's fields as a request's headers: `:authority` as `host` when the
   * client sent none, cookie fields joined into one (RFC 9113 §8.2.3) for HTTP/1.1 handlers.
   */
  takeRequestFields(): HttpHeaders {
    const headers = this.takeFields();
    if (this.authority !== '' && this.host === '')
      headers.added = appendField(headers, 'host', this.authority);
    if (this.cookies > 1) joinCookies(headers);
    return headers;
  }
}

/** The built fields of `h` plus one more (name and value already valid). */
function appendField(h: HttpHeaders, name: string, value: string): string[] {
  const added = h.added.length === 0 ? [] : h.added;
  added.push(name, value);
  return added;
}

/** Joins the cookie fields of a request into one (RFC 9113 §8.2.3), for HTTP/1.1 handlers. */
function joinCookies(h: HttpHeaders): void {
  const f = h.added;
  let joined = '';
  let first = -1;
  const out: string[] = [];
  for (let i = 0; i < f.length; i += 2) {
    if (f[i] === 'cookie') {
      joined = joined === '' ? f[i + 1]! : `${joined}; ${f[i + 1]}`;
      if (first < 0) {
        first = out.length;
        out.push('cookie', '');
      }
    } else {
      out.push(f[i]!, f[i + 1]!);
    }
  }
  out[first + 1] = joined;
  h.added = out;
}
