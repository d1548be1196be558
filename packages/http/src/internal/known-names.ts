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

/** The first four bytes of an ASCII string (fewer when shorter) as a little-endian 32-bit key. */
function key4(s: string): number {
  let k = 0;
  for (let i = 0; i < 4 && i < s.length; i++) k |= s.charCodeAt(i) << (8 * i);
  return k;
}

const K_GET = key4('GET');
const K_PUT = key4('PUT');
const K_POST = key4('POST');
const K_HEAD = key4('HEAD');
const K_PATC = key4('PATC');
const K_TRAC = key4('TRAC');
const K_DELE = key4('DELE');
const K_OPTI = key4('OPTI');
const K_CONN = key4('CONN');

/**
 * Returns the interned method string for `buf[start, end)` when it is a standard method
 * (case-sensitive): GET, POST, PUT, DELETE, HEAD, OPTIONS, PATCH, CONNECT, TRACE. Every byte is
 * compared: the first four as one 32-bit key per candidate of the length, the rest one by one.
 * Called for every request head; a loop over the names and their chars cost ~185 instructions
 * for `GET` (callgrind, bench/http-proxy/per-request-2026-12-06g.md).
 */
export function lookupMethod(buf: Uint8Array, start: number, end: number): string | undefined {
  const len = end - start;
  if (len < 3 || len > 7) return undefined;
  const k =
    buf[start]! | (buf[start + 1]! << 8) | (buf[start + 2]! << 16) | (len > 3 ? buf[start + 3]! << 24 : 0);
  switch (len) {
    case 3:
      return k === K_GET ? 'GET' : k === K_PUT ? 'PUT' : undefined;
    case 4:
      return k === K_POST ? 'POST' : k === K_HEAD ? 'HEAD' : undefined;
    case 5: {
      const c = buf[start + 4]!;
      return k === K_PATC && c === 0x48 ? 'PATCH' : k === K_TRAC && c === 0x45 ? 'TRACE' : undefined;
    }
    case 6:
      return k === K_DELE && buf[start + 4] === 0x54 && buf[start + 5] === 0x45 ? 'DELETE' : undefined;
    default: {
      const c4 = buf[start + 4]!;
      const c5 = buf[start + 5]!;
      const c6 = buf[start + 6]!;
      if (k === K_OPTI && c4 === 0x4f && c5 === 0x4e && c6 === 0x53) return 'OPTIONS';
      return k === K_CONN && c4 === 0x45 && c5 === 0x43 && c6 === 0x54 ? 'CONNECT' : undefined;
    }
  }
}
