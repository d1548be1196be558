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
/** Bucket index -> ids (1-based positions in COMMON) of the names of that length and first letter. */
const buckets: (number[] | undefined)[] = new Array((MAX_LEN + 1) * 32).fill(undefined);
for (let k = 0; k < COMMON.length; k++) {
  const name = COMMON[k]!;
  if (name.length > MAX_LEN) continue;
  const idx = name.length * 32 + (name.charCodeAt(0) & 31);
  (buckets[idx] ??= []).push(k + 1);
}

/**
 * Interned names by id: KNOWN_NAMES[id] for ids 1..KNOWN_NAMES.length - 1; index 0 (no known
 * name) holds ''. Ids are small integers so per-field flags are one table lookup.
 */
export const KNOWN_NAMES: readonly string[] = ['', ...COMMON];

const ID_BY_NAME = new Map<string, number>(COMMON.map((n, k) => [n, k + 1]));

/** The id of a lowercase name, 0 when it is not a common name. */
export function knownIdOf(lname: string): number {
  return ID_BY_NAME.get(lname) ?? 0;
}

/** The id of `buf[start, end)` when it is a common header name (case-insensitive), else 0. */
export function lookupKnownId(buf: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len > MAX_LEN || len === 0) return 0;
  const list = buckets[len * 32 + (LOWER[buf[start]!]! & 31)];
  if (list === undefined) return 0;
  outer: for (let k = 0; k < list.length; k++) {
    const id = list[k]!;
    const cand = COMMON[id - 1]!;
    for (let i = 0; i < len; i++) {
      if (LOWER[buf[start + i]!] !== cand.charCodeAt(i)) continue outer;
    }
    return id;
  }
  return 0;
}

/**
 * Returns the interned lowercase name for `buf[start, end)` when it is a common header name
 * (compared case-insensitively), otherwise undefined.
 */
export function lookupKnownName(buf: Uint8Array, start: number, end: number): string | undefined {
  const id = lookupKnownId(buf, start, end);
  return id === 0 ? undefined : COMMON[id - 1];
}

/** Ids of the names the codec and hop-by-hop hygiene treat specially. */
export const ID_CONNECTION = knownIdOf('connection');
export const ID_CONTENT_LENGTH = knownIdOf('content-length');
export const ID_TRANSFER_ENCODING = knownIdOf('transfer-encoding');
export const ID_KEEP_ALIVE = knownIdOf('keep-alive');
export const ID_HOST = knownIdOf('host');
export const ID_EXPECT = knownIdOf('expect');
export const ID_UPGRADE = knownIdOf('upgrade');
export const ID_DATE = knownIdOf('date');
/** Fields whose values are credentials: never kept past their message (HttpHeaders.valueAt). */
export const ID_AUTHORIZATION = knownIdOf('authorization');
export const ID_PROXY_AUTHORIZATION = knownIdOf('proxy-authorization');
export const ID_COOKIE = knownIdOf('cookie');
export const ID_SET_COOKIE = knownIdOf('set-cookie');

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
