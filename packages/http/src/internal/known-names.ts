/**
 * Interned lowercase strings for common header names, found straight from the wire bytes
 * without building a string: the parser gets the same string instance for every `Host`, so
 * names cost no allocation and framing headers are recognised by identity. Names not in the
 * table are decoded lazily by HttpHeaders. Not a registry of valid names.
 */
import * as chars from './char-classes.js';

// Local copy: transpilers turn imported bindings into getters (a call per byte).
const LOWER = chars.LOWER;

const COMMON = [
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'access-control-allow-origin',
  'age',
  'allow',
  'authorization',
  'cache-control',
  'connection',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-range',
  'content-type',
  'cookie',
  'date',
  'dnt',
  'etag',
  'expect',
  'expires',
  'forwarded',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'keep-alive',
  'last-modified',
  'link',
  'location',
  'max-forwards',
  'origin',
  'pragma',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'range',
  'referer',
  'retry-after',
  'sec-fetch-dest',
  'sec-fetch-mode',
  'sec-fetch-site',
  'server',
  'set-cookie',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'upgrade-insecure-requests',
  'user-agent',
  'vary',
  'via',
  'warning',
  'www-authenticate',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
] as const;

const MAX_LEN = 32;
const buckets: (string[] | undefined)[] = new Array((MAX_LEN + 1) * 32).fill(undefined);
for (const name of COMMON) {
  if (name.length > MAX_LEN) continue;
  const idx = name.length * 32 + (name.charCodeAt(0) & 31);
  (buckets[idx] ??= []).push(name);
}

/**
 * Returns the interned lowercase name for `buf[start, end)` when it is a common header name
 * (compared case-insensitively), otherwise undefined.
 */
export function lookupKnownName(buf: Uint8Array, start: number, end: number): string | undefined {
  const len = end - start;
  if (len > MAX_LEN || len === 0) return undefined;
  const list = buckets[len * 32 + (LOWER[buf[start]!]! & 31)];
  if (list === undefined) return undefined;
  outer: for (let k = 0; k < list.length; k++) {
    const cand = list[k]!;
    for (let i = 0; i < len; i++) {
      if (LOWER[buf[start + i]!] !== cand.charCodeAt(i)) continue outer;
    }
    return cand;
  }
  return undefined;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'] as const;

/** Returns the interned method string for `buf[start, end)` when it is a standard method (case-sensitive). */
export function lookupMethod(buf: Uint8Array, start: number, end: number): string | undefined {
  const len = end - start;
  outer: for (let k = 0; k < METHODS.length; k++) {
    const m = METHODS[k]!;
    if (m.length !== len) continue;
    for (let i = 0; i < len; i++) if (buf[start + i] !== m.charCodeAt(i)) continue outer;
    return m;
  }
  return undefined;
}
