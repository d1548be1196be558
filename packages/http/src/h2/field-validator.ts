/**
 * RFC 9113 §8.2-§8.3 checks of one decoded field block: what makes a request or response
 * "malformed" (a stream error of type PROTOCOL_ERROR, §8.1.1). Kept apart from the HPACK decoder
 * because the two fail differently: a broken block kills the connection, a malformed field only
 * its stream, and the block must still be decoded to its end to keep the HPACK table in step.
 * The session feeds each field from its {@link HpackFieldSink} to {@link FieldBlockValidator.field}
 * and calls {@link FieldBlockValidator.end} after the block; the first error is the answer.
 *
 * Checks: names are lowercase tokens (RFC 9110 tchar; a colon only to start a pseudo-header);
 * values have no NUL, CR or LF and no leading or trailing SP/HTAB; no connection-specific field
 * (connection, proxy-connection, keep-alive, transfer-encoding, upgrade), `te` only `trailers`;
 * pseudo-headers known for the kind of block, each at most once, all before the regular fields,
 * none in trailers, and the required ones present (`:method`, plus `:scheme` and non-empty `:path`
 * except for CONNECT, which needs `:authority`; `:status` in a response).
 *
 * Not for semantics beyond §8 (content-length against DATA, method-specific rules): the stream
 * layer owns those.
 *
 * @see HpackFieldSink (hpack-decoder.ts)
 */
import { Http2ErrorCode, Http2StreamError, type Http2StreamErrorReason } from './errors.js';

/** What a field block carries, which decides the pseudo-headers it may hold. */
export type FieldBlockKind = 'request' | 'response' | 'trailers';

// Pseudo-header bits.
const METHOD = 1;
const SCHEME = 2;
const AUTHORITY = 4;
const PATH = 8;
const PROTOCOL = 16;
const STATUS = 32;

const REQUEST_PSEUDO: ReadonlyMap<string, number> = new Map([
  [':method', METHOD],
  [':scheme', SCHEME],
  [':authority', AUTHORITY],
  [':path', PATH],
  [':protocol', PROTOCOL],
]);
const RESPONSE_PSEUDO: ReadonlyMap<string, number> = new Map([[':status', STATUS]]);
const NO_PSEUDO: ReadonlyMap<string, number> = new Map();

const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);

/** 1 for bytes allowed in a field name after the first char: RFC 9110 tchar, lowercase only. */
const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

/** Validates the fields of one block after another; reusable, one per session is enough. */
export class FieldBlockValidator {
  #kind: FieldBlockKind = 'request';
  #streamId = 0;
  #allowed: ReadonlyMap<string, number> = REQUEST_PSEUDO;
  #seen = 0;
  #regularSeen = false;
  #isConnect = false;
  #pathEmpty = false;
  #error: Http2StreamError | null = null;

  /** Starts a block of `kind` on `streamId` (the stream errors name it). */
  begin(kind: FieldBlockKind, streamId: number): void {
    this.#kind = kind;
    this.#streamId = streamId;
    this.#allowed = kind === 'request' ? REQUEST_PSEUDO : kind === 'response' ? RESPONSE_PSEUDO : NO_PSEUDO;
    this.#seen = 0;
    this.#regularSeen = false;
    this.#isConnect = false;
    this.#pathEmpty = false;
    this.#error = null;
  }

  /**
   * Checks one field; returns the block's first error so far (null while it is well-formed).
   * After an error, further fields are not checked.
   */
  field(name: string, value: string): Http2StreamError | null {
    if (this.#error !== null) return this.#error;
    if (name.length === 0) return this.#fail('ERR_HTTP2_INVALID_FIELD_NAME', 'empty field name');
    const pseudo = name.charCodeAt(0) === 0x3a;
    for (let i = pseudo ? 1 : 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c > 0xff || NAME_CHAR[c] === 0) {
        return this.#fail('ERR_HTTP2_INVALID_FIELD_NAME', `invalid field name ${JSON.stringify(name)}`);
      }
    }
    if (value.length > 0) {
      const first = value.charCodeAt(0);
      const last = value.charCodeAt(value.length - 1);
      if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) {
        return this.#fail('ERR_HTTP2_INVALID_FIELD_VALUE', `value of ${name} starts or ends with whitespace`);
      }
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if (c === 0x00 || c === 0x0a || c === 0x0d || c > 0xff) {
          return this.#fail('ERR_HTTP2_INVALID_FIELD_VALUE', `value of ${name} contains NUL, CR or LF`);
        }
      }
    }
    if (pseudo) {
      if (this.#kind === 'trailers') {
        return this.#fail('ERR_HTTP2_PSEUDO_HEADER_IN_TRAILERS', `pseudo-header ${name} in trailers`);
      }
      const bit = this.#allowed.get(name);
      if (bit === undefined)
        return this.#fail('ERR_HTTP2_UNKNOWN_PSEUDO_HEADER', `unknown pseudo-header ${name}`);
      if (this.#regularSeen) {
        return this.#fail(
          'ERR_HTTP2_PSEUDO_HEADER_AFTER_REGULAR',
          `pseudo-header ${name} after a regular field`,
        );
      }
      if ((this.#seen & bit) !== 0)
        return this.#fail('ERR_HTTP2_DUPLICATE_PSEUDO_HEADER', `duplicate ${name}`);
      this.#seen |= bit;
      if (bit === METHOD) this.#isConnect = value === 'CONNECT';
      else if (bit === PATH) this.#pathEmpty = value.length === 0;
      return null;
    }
    this.#regularSeen = true;
    if (CONNECTION_SPECIFIC.has(name)) {
      return this.#fail('ERR_HTTP2_CONNECTION_SPECIFIC_FIELD', `connection-specific field ${name}`);
    }
    if (name === 'te' && value !== 'trailers')
      return this.#fail('ERR_HTTP2_INVALID_TE', 'te other than "trailers"');
    return null;
  }

  /** Ends the block: returns its first error, including missing required pseudo-headers. */
  end(): Http2StreamError | null {
    if (this.#error !== null) return this.#error;
    const seen = this.#seen;
    if (this.#kind === 'response') {
      if ((seen & STATUS) === 0)
        return this.#fail('ERR_HTTP2_MISSING_PSEUDO_HEADER', 'response without :status');
    } else if (this.#kind === 'request') {
      if ((seen & METHOD) === 0)
        return this.#fail('ERR_HTTP2_MISSING_PSEUDO_HEADER', 'request without :method');
      if (this.#isConnect && (seen & PROTOCOL) === 0) {
        // Plain CONNECT (§8.5): :authority only.
        if ((seen & AUTHORITY) === 0 || (seen & (SCHEME | PATH)) !== 0) {
          return this.#fail(
            'ERR_HTTP2_MISSING_PSEUDO_HEADER',
            'CONNECT needs :authority and no :scheme or :path',
          );
        }
      } else if ((seen & SCHEME) === 0 || (seen & PATH) === 0 || this.#pathEmpty) {
        return this.#fail('ERR_HTTP2_MISSING_PSEUDO_HEADER', 'request without :scheme or a non-empty :path');
      }
    }
    return null;
  }

  #fail(code: Http2StreamErrorReason, message: string): Http2StreamError {
    this.#error = new Http2StreamError(code, Http2ErrorCode.PROTOCOL_ERROR, this.#streamId, message);
    return this.#error;
  }
}
