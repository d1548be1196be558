/**
 * Byte classification tables for the HTTP/1 codec (RFC 9110 §5.6.2 tokens, §5.5 field values).
 * One 256-entry table lookup per byte keeps the scanners branch-light. Not for HTTP/2 (HPACK
 * has its own rules) and not a general ASCII library.
 */

/** 1 for tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
export const TOKEN: Uint8Array = new Uint8Array(256);
/** 1 for bytes allowed inside a field value: SP, HTAB, VCHAR, obs-text (0x80-0xFF). */
export const FIELD_VALUE: Uint8Array = new Uint8Array(256);
/** 1 for bytes allowed in a request-target: VCHAR (0x21-0x7E); obs-text and controls are rejected. */
export const TARGET: Uint8Array = new Uint8Array(256);
/**
 * 1 for bytes allowed in a Host value (RFC 3986 authority without userinfo): unreserved,
 * pct-encoded, sub-delims, ":" and the brackets of IP literals.
 */
export const AUTHORITY: Uint8Array = new Uint8Array(256);
/** Hex digit value + 1 (0 = not a hex digit). */
export const HEX: Uint8Array = new Uint8Array(256);
/** ASCII lowercase mapping of every byte (non-letters map to themselves). */
export const LOWER: Uint8Array = new Uint8Array(256);

for (let c = 0; c < 256; c++) {
  const isAlpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  const isDigit = c >= 0x30 && c <= 0x39;
  if (isAlpha || isDigit || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c))) TOKEN[c] = 1;
  if (c === 0x20 || c === 0x09 || (c >= 0x21 && c <= 0x7e) || c >= 0x80) FIELD_VALUE[c] = 1;
  if (c >= 0x21 && c <= 0x7e) TARGET[c] = 1;
  if (isAlpha || isDigit || "-._~%!$&'()*+,;=:[]".includes(String.fromCharCode(c))) AUTHORITY[c] = 1;
  if (isDigit) HEX[c] = c - 0x30 + 1;
  else if (c >= 0x41 && c <= 0x46) HEX[c] = c - 0x41 + 11;
  else if (c >= 0x61 && c <= 0x66) HEX[c] = c - 0x61 + 11;
  LOWER[c] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/** True when `s` is a non-empty token (used by the encoder to validate names and methods). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** True when `s` is a valid field value (no CR, LF, NUL or other controls; no leading/trailing whitespace required). */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || FIELD_VALUE[c] !== 1) return false;
  }
  return true;
}

/** True when `s` is non-empty and every char is a VCHAR (request targets, authorities). */
export function isVisibleAscii(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TARGET[c] !== 1) return false;
  }
  return true;
}
