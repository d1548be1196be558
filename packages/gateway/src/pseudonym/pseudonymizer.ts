/**
 * Deterministic, keyed, reversible pseudonyms for field values: AES-SIV (RFC 5297, through
 * OpenSSL in @loch/native) used as deterministic authenticated encryption.
 *
 *   token = format(kid, SIV(key[kid], AD = ["loch-pseudonym-v1", kid, field], kind || value))
 *
 * - The same (key, field, value) always gives the same token, so joins, caches and equality
 *   checks downstream keep working; that equality is the one thing a token leaks (besides the
 *   value's length), by design.
 * - `field` (the IDL path, or a domain name several fields share so their tokens join) and the
 *   key id are associated data: a token moved to another field, or relabelled with another key
 *   id, does not open.
 * - `kind` (one byte: text or bytes) keeps a binary value from opening as text, and makes the
 *   plaintext never empty (OpenSSL's SIV cannot take an empty plaintext).
 * - Reveal picks the key by the token's key id, so tokens of retired-but-kept keys still open.
 */
import { loadSiv, type NativeSiv, type SivKey } from '@loch/native';
import { PseudonymError } from './errors.js';
import type { PseudonymKeyring } from './keyring.js';
import { formatToken, parseToken, type TokenFormat } from './token-text.js';

const DOMAIN = new TextEncoder().encode('loch-pseudonym-v1');
const KIND_TEXT = 0x01;
const KIND_BYTES = 0x02;
const encoder = new TextEncoder();
// With the u flag a surrogate pair is one code point, so only an unpaired half matches.
const LONE_SURROGATE = /\p{Cs}/u;
// ignoreBOM: a value's leading U+FEFF is part of it (the default decoder drops it: another
// value's token, and a changed value restored).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type { TokenFormat } from './token-text.js';

export class Pseudonymizer {
  readonly #siv: NativeSiv;
  /** Native key handles by key id, made on first use (the keyring's bytes stay the source). */
  readonly #handles = new Map<string, SivKey>();

  /** `siv` defaults to @loch/native's; throws ERR_PSEUDONYM_UNAVAILABLE when that does not load. */
  constructor(
    readonly keyring: PseudonymKeyring,
    siv?: NativeSiv,
  ) {
    if (siv === undefined) {
      const loaded = loadSiv();
      if (!('siv' in loaded)) {
        throw new PseudonymError('ERR_PSEUDONYM_UNAVAILABLE', `AES-SIV is not available: ${loaded.error}`);
      }
      this.#siv = loaded.siv;
    } else {
      this.#siv = siv;
    }
  }

  /** The token of a text value in `field`, under the current key. */
  pseudonymize(field: string, value: string, format: TokenFormat = 'text'): string {
    if (LONE_SURROGATE.test(value)) {
      throw new PseudonymError(
        'ERR_PSEUDONYM_VALUE',
        `${field}: a string with lone surrogates cannot round-trip`,
      );
    }
    return this.#seal(field, KIND_TEXT, encoder.encode(value), format);
  }

  /** The token of a binary value in `field`, under the current key. */
  pseudonymizeBytes(field: string, value: Uint8Array, format: TokenFormat = 'text'): string {
    return this.#seal(field, KIND_BYTES, value, format);
  }

  /** The text value of a token of `field`; throws PseudonymError when it is not one. */
  reveal(field: string, token: string): string {
    const plain = this.#open(field, KIND_TEXT, token);
    try {
      return decoder.decode(plain);
    } catch {
      throw new PseudonymError('ERR_PSEUDONYM_INVALID', `${field}: token does not hold text`);
    }
  }

  /** The binary value of a token of `field`; throws PseudonymError when it is not one. */
  revealBytes(field: string, token: string): Uint8Array {
    return this.#open(field, KIND_BYTES, token);
  }

  /** Whether `text` has a token's form (says nothing about whether it opens). */
  static isToken(text: string): boolean {
    return parseToken(text) !== undefined;
  }

  #handle(kid: string): SivKey | undefined {
    let handle = this.#handles.get(kid);
    if (handle === undefined) {
      const key = this.keyring.key(kid);
      if (key === undefined) return undefined;
      handle = this.#siv.key(key);
      this.#handles.set(kid, handle);
    }
    return handle;
  }

  #aad(field: string, kid: string): Uint8Array[] {
    if (field === '')
      throw new PseudonymError('ERR_PSEUDONYM_VALUE', 'the field name of a pseudonym must not be empty');
    return [DOMAIN, encoder.encode(kid), encoder.encode(field)];
  }

  #seal(field: string, kind: number, value: Uint8Array, format: TokenFormat): string {
    const kid = this.keyring.current;
    const key = this.#handle(kid) as SivKey;
    const plain = new Uint8Array(value.length + 1);
    plain[0] = kind;
    plain.set(value, 1);
    return formatToken(format, kid, this.#siv.seal(key, this.#aad(field, kid), plain));
  }

  #open(field: string, kind: number, token: string): Uint8Array {
    const parsed = parseToken(token);
    if (parsed === undefined)
      throw new PseudonymError('ERR_PSEUDONYM_TOKEN', `${field}: not a pseudonym token`);
    const key = this.#handle(parsed.kid);
    if (key === undefined) {
      throw new PseudonymError(
        'ERR_PSEUDONYM_UNKNOWN_KEY',
        `${field}: token of unknown key id "${parsed.kid}"`,
      );
    }
    const plain = this.#siv.open(key, this.#aad(field, parsed.kid), parsed.sealed);
    if (plain === null || plain[0] !== kind) {
      throw new PseudonymError(
        'ERR_PSEUDONYM_INVALID',
        `${field}: token does not open (another key, field or changed)`,
      );
    }
    return plain.subarray(1);
  }
}
