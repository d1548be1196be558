/**
 * The pseudonymizer's typed errors. Messages name key ids, file paths, variable names and field
 * paths, never key material or the values being protected.
 */

/** Codes of pseudonymization errors. */
export type PseudonymErrorCode =
  /** A key cannot be loaded (unreadable file, unset variable, not 32/48/64 bytes of hex or base64) or a keyring is inconsistent. */
  | 'ERR_PSEUDONYM_KEY'
  /** AES-SIV is not available (the @loch/native addon does not load). */
  | 'ERR_PSEUDONYM_UNAVAILABLE'
  /** A value cannot be pseudonymized (a string with lone surrogates, an empty field name). */
  | 'ERR_PSEUDONYM_VALUE'
  /** Text that is not a token of this format. */
  | 'ERR_PSEUDONYM_TOKEN'
  /** A token whose key id is not in the keyring. */
  | 'ERR_PSEUDONYM_UNKNOWN_KEY'
  /** A token that does not open: another key, another field, or changed bytes. */
  | 'ERR_PSEUDONYM_INVALID'
  /**
   * A message that cannot be rewritten safely: a chosen field on the wire with another type than
   * the IDL's, or a bare method name several services of the IDL declare.
   */
  | 'ERR_PSEUDONYM_MESSAGE';

export class PseudonymError extends Error {
  override readonly name = 'PseudonymError';
  /**
   * Where in a message the value sits, innermost last (`user`, `emails`, `[2]`), filled as the
   * error unwinds through a message rewrite; empty outside one.
   */
  readonly segments: string[] = [];
  constructor(
    readonly code: PseudonymErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The path of `segments` (innermost last) as text: `user.emails[2]`. */
export function segmentsPath(segments: readonly string[]): string {
  let out = '';
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i] as string;
    out += s.charCodeAt(0) === 0x5b || out === '' ? s : `.${s}`;
  }
  return out;
}
