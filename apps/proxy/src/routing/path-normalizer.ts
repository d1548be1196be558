/**
 * Normalizes the path of a request target before routing, per RFC 3986 §6.2.2: percent-encoded
 * unreserved characters (ALPHA / DIGIT / "-" / "." / "_" / "~") are decoded, the hex digits of
 * every other escape are uppercased, and dot segments (also encoded ones, `%2e%2e`) are removed
 * (§5.2.4). The proxy routes on the result and forwards exactly it, so a route rule cannot be
 * bypassed by spelling a path differently, and the upstream sees the path the route matched.
 * Reserved characters are never decoded (`%3F` stays `%3F`: decoding it would change the
 * target's meaning). Refused: a malformed escape, an encoded NUL, an encoded "/" (unless the
 * server allows it; it is then kept encoded, never decoded) and a path that climbs above the root.
 * The common path, with no "%" and no "/.", is returned as is: two scans, no allocation.
 * Not for the query (forwarded untouched) or for route matching (router.ts).
 */

/** Why a path was refused (each one is a 400). */
export const PathRejection = {
  /** `/..`, `/a/../../b`: the path climbs above the root. */
  AboveRoot: 1,
  /** A "%" not followed by two hex digits. */
  BadEscape: 2,
  /** `%2F` while encoded slashes are not allowed. */
  EncodedSlash: 3,
  /** `%00`. */
  EncodedNul: 4,
} as const;

/** One of PathRejection's values. */
export type PathRejection = (typeof PathRejection)[keyof typeof PathRejection];

/** 1 for RFC 3986 unreserved bytes: the escapes that are decoded. */
const UNRESERVED = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (alnum || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e) UNRESERVED[c] = 1;
}

const HEX_DIGITS = '0123456789ABCDEF';

/** The value of a hex digit's char code, -1 for anything else (NaN past the end included). */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Normalizes `path` (the target's path, starting with "/", without the query). Returns the
 * normalized path, or the PathRejection that makes it a 400. `encodedSlashes` keeps `%2F`
 * (encoded, not a segment separator) instead of refusing it. Idempotent.
 */
export function normalizePath(path: string, encodedSlashes = false): string | PathRejection {
  const pct = path.indexOf('%');
  if (pct < 0) return path.indexOf('/.') < 0 ? path : removeDotSegments(path);
  const decoded = decodeUnreserved(path, pct, encodedSlashes);
  if (typeof decoded === 'number') return decoded;
  return decoded.indexOf('/.') < 0 ? decoded : removeDotSegments(decoded);
}

/**
 * Decodes unreserved escapes and uppercases the others, starting at the first "%" (`first`).
 * Returns `path` itself when nothing changes (already normalized escapes allocate nothing).
 */
function decodeUnreserved(path: string, first: number, encodedSlashes: boolean): string | PathRejection {
  let out = '';
  let last = 0;
  for (let i = first; i >= 0; i = path.indexOf('%', i)) {
    const c1 = path.charCodeAt(i + 1);
    const c2 = path.charCodeAt(i + 2);
    const hi = hexValue(c1);
    const lo = hexValue(c2);
    if (hi < 0 || lo < 0) return PathRejection.BadEscape;
    const byte = (hi << 4) | lo;
    let replacement: string;
    if (byte < 0x80 && UNRESERVED[byte] === 1) {
      replacement = String.fromCharCode(byte);
    } else if (byte === 0 || (byte === 0x2f && !encodedSlashes)) {
      return byte === 0 ? PathRejection.EncodedNul : PathRejection.EncodedSlash;
    } else if (c1 >= 0x61 || c2 >= 0x61) {
      replacement = `%${HEX_DIGITS[hi]}${HEX_DIGITS[lo]}`;
    } else {
      // already normalized (uppercase, not unreserved): left where it is
      i += 3;
      continue;
    }
    out += path.slice(last, i) + replacement;
    i += 3;
    last = i;
  }
  return last === 0 ? path : out + path.slice(last);
}

/**
 * Removes dot segments (RFC 3986 §5.2.4) from an absolute path; PathRejection.AboveRoot when a
 * ".." would leave the root (RFC 3986 would stop at the root; a 400 is what nginx answers).
 */
function removeDotSegments(path: string): string | PathRejection {
  const out: string[] = [];
  const segs = path.split('/');
  const lastIndex = segs.length - 1;
  for (let i = 1; i <= lastIndex; i++) {
    const s = segs[i]!;
    if (s === '.') {
      if (i === lastIndex) out.push('');
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return PathRejection.AboveRoot;
      out.pop();
      if (i === lastIndex) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}
