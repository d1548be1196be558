/**
 * The PROXY protocol codec (haproxy's proxy-protocol.txt, versions 1 and 2): decodes the header
 * a load balancer puts before a connection's first byte (the original client and destination),
 * and encodes one for an upstream. Pure: no I/O, no timers. The accept step that reads a header
 * off a stream is proxy-protocol-stream.ts; the connector step that writes one is
 * proxy-protocol-connector.ts. Not for trusting a peer: whoever runs the step decides which
 * peers may send a header.
 *
 * Decoding is incremental and bounded: `decodeProxyHeader` is given every byte received so far
 * and answers "need more", the header and its length, or a typed error as soon as the bytes
 * cannot be a header (the first byte of an HTTP request is enough), a v1 line passes 107 bytes,
 * or a v2 header declares more than the caller's limit.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ipv4Text, ipv6Text, type SocketAddress } from '@loch/uring-runtime';

/** Stable codes of PROXY protocol errors. */
export type ProxyProtocolErrorCode =
  /** The connection's first bytes are not a PROXY header (e.g. an HTTP request). */
  | 'ERR_PROXY_PROTOCOL_MISSING'
  /** A PROXY header that breaks the spec (bad address, port, version, command, TLV, checksum). */
  | 'ERR_PROXY_PROTOCOL_INVALID'
  /** A v1 line past 107 bytes, or a v2 header longer than the accepted maximum. */
  | 'ERR_PROXY_PROTOCOL_TOO_LONG'
  /** The header did not arrive within the deadline. */
  | 'ERR_PROXY_PROTOCOL_TIMEOUT'
  /** The peer closed (or the connection failed) before the header was complete. */
  | 'ERR_PROXY_PROTOCOL_CLOSED';

/** A PROXY header that could not be read; the connection it came on is closed. */
export class ProxyProtocolError extends Error {
  override readonly name = 'ProxyProtocolError';
  /** Stable machine-readable code. */
  readonly code: ProxyProtocolErrorCode;
  /** The peer that sent it (the socket's remote address), when known. */
  readonly address: SocketAddress | undefined;

  constructor(
    code: ProxyProtocolErrorCode,
    message: string,
    options: { address?: SocketAddress | undefined; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.address = options.address;
  }
}

/** One v2 TLV (type-length-value) as received; `value` is a copy. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

/** TLV types of the spec (section 2.2). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

/**
 * A decoded (or to-be-encoded) header. `command` 'local' (v2 LOCAL: a health check from the
 * balancer itself) and 'unknown' (v1 UNKNOWN, v2 PROXY with AF_UNSPEC) carry no addresses: the
 * receiver keeps the socket's own. 'proxy' carries both, of one family.
 */
export type ProxyHeader =
  | {
      readonly version: 1 | 2;
      readonly command: 'proxy';
      readonly source: SocketAddress;
      readonly destination: SocketAddress;
      /** v2 only (empty for v1). */
      readonly tlvs: readonly ProxyTlv[];
    }
  | {
      readonly version: 1 | 2;
      readonly command: 'local' | 'unknown';
      readonly source: null;
      readonly destination: null;
      readonly tlvs: readonly ProxyTlv[];
    };

/** Largest v1 header, CRLF included (spec 2.1). */
export const V1_MAX_LENGTH = 107;
/** The 12-byte v2 signature. */
export const V2_SIGNATURE: Uint8Array = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);
const V1_PREFIX = Uint8Array.of(0x50, 0x52, 0x4f, 0x58, 0x59, 0x20); // "PROXY "
/** Default largest v2 header accepted (16-byte fixed part included): TLVs of real balancers fit. */
export const DEFAULT_MAX_V2_LENGTH = 4096;

/** A decoded header and how many bytes of the input it took. */
export interface DecodedProxyHeader {
  readonly header: ProxyHeader;
  readonly length: number;
}

/**
 * Decodes a header from the start of `bytes` (everything received so far). Returns null when
 * more bytes are needed, the header and its length when complete; throws ProxyProtocolError
 * as soon as the bytes cannot begin a valid header. `maxV2Length` bounds a v2 header (16-byte
 * fixed part plus its declared length).
 */
export function decodeProxyHeader(
  bytes: Uint8Array,
  maxV2Length: number = DEFAULT_MAX_V2_LENGTH,
): DecodedProxyHeader | null {
  const n = bytes.byteLength;
  if (n === 0) return null;
  if (bytes[0] === 0x50) {
    if (!startsLike(bytes, V1_PREFIX)) throw missing();
    return decodeV1(bytes);
  }
  if (bytes[0] === 0x0d) {
    if (!startsLike(bytes, V2_SIGNATURE)) throw missing();
    return decodeV2(bytes, maxV2Length);
  }
  throw missing();
}

function missing(): ProxyProtocolError {
  return new ProxyProtocolError(
    'ERR_PROXY_PROTOCOL_MISSING',
    'the connection did not start with a PROXY protocol header',
  );
}

function invalid(what: string): ProxyProtocolError {
  return new ProxyProtocolError('ERR_PROXY_PROTOCOL_INVALID', `invalid PROXY protocol header: ${what}`);
}

/** True when `bytes` and `prefix` agree on their common length. */
function startsLike(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const m = Math.min(bytes.byteLength, prefix.byteLength);
  for (let i = 0; i < m; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

// ---- v1 ------------------------------------------------------------------------------------

const LATIN1 = new TextDecoder('latin1');

function decodeV1(bytes: Uint8Array): DecodedProxyHeader | null {
  const limit = Math.min(bytes.byteLength, V1_MAX_LENGTH);
  let lf = -1;
  for (let i = V1_PREFIX.byteLength; i < limit; i++) {
    if (bytes[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf < 0) {
    if (bytes.byteLength >= V1_MAX_LENGTH)
      throw new ProxyProtocolError(
        'ERR_PROXY_PROTOCOL_TOO_LONG',
        `PROXY protocol v1 header without CRLF in its first ${V1_MAX_LENGTH} bytes`,
      );
    return null;
  }
  if (bytes[lf - 1] !== 0x0d) throw invalid('v1 line does not end in CRLF');
  const line = LATIN1.decode(bytes.subarray(V1_PREFIX.byteLength, lf - 1));
  const length = lf + 1;
  if (line.startsWith('UNKNOWN')) {
    // The rest of an UNKNOWN line is ignored (spec 2.1).
    if (line.length > 7 && line[7] !== ' ') throw invalid(`unknown protocol "${line}"`);
    return { header: unknownHeader(1), length };
  }
  const parts = line.split(' ');
  if (parts.length !== 5) throw invalid(`expected "TCP4|TCP6 src dst sport dport", got "${line}"`);
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  let family: 'ipv4' | 'ipv6';
  if (proto === 'TCP4') {
    family = 'ipv4';
    if (!isIPv4(src) || !isIPv4(dst)) throw invalid(`TCP4 with a non-IPv4 address in "${line}"`);
  } else if (proto === 'TCP6') {
    family = 'ipv6';
    if (!isIPv6(src) || !isIPv6(dst)) throw invalid(`TCP6 with a non-IPv6 address in "${line}"`);
  } else throw invalid(`unknown protocol "${proto}"`);
  return {
    header: {
      version: 1,
      command: 'proxy',
      source: { family, address: src, port: v1Port(sport) },
      destination: { family, address: dst, port: v1Port(dport) },
      tlvs: [],
    },
    length,
  };
}

function v1Port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) throw invalid(`bad port "${text}"`);
  const port = Number(text);
  if (port > 65535) throw invalid(`port ${port} out of range`);
  return port;
}

function unknownHeader(
  version: 1 | 2,
  command: 'unknown' | 'local' = 'unknown',
  tlvs: ProxyTlv[] = [],
): ProxyHeader {
  return { version, command, source: null, destination: null, tlvs };
}

// ---- v2 ------------------------------------------------------------------------------------

const ADDRESS_LENGTH = [0, 12, 36, 216] as const;

function decodeV2(bytes: Uint8Array, maxLength: number): DecodedProxyHeader | null {
  if (bytes.byteLength < 16) {
    // Reject a bad version as soon as its byte is here.
    if (bytes.byteLength > 12 && bytes[12]! >> 4 !== 2) throw invalid(`version ${bytes[12]! >> 4}`);
    return null;
  }
  const verCmd = bytes[12]!;
  if (verCmd >> 4 !== 2) throw invalid(`version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) throw invalid(`command ${command}`);
  const famByte = bytes[13]!;
  const family = famByte >> 4;
  const transport = famByte & 0x0f;
  if (family > 3 || transport > 2) throw invalid(`address family/protocol byte 0x${famByte.toString(16)}`);
  const bodyLength = (bytes[14]! << 8) | bytes[15]!;
  const length = 16 + bodyLength;
  if (length > maxLength)
    throw new ProxyProtocolError(
      'ERR_PROXY_PROTOCOL_TOO_LONG',
      `PROXY protocol v2 header of ${length} bytes (at most ${maxLength} accepted)`,
    );
  if (bytes.byteLength < length) return null;
  const body = bytes.subarray(16, length);
  if (command === 0) {
    // LOCAL: the balancer's own connection (a health check); addresses are ignored, TLVs kept.
    const skip = family === 0 ? 0 : Math.min(ADDRESS_LENGTH[family as 1 | 2 | 3], body.byteLength);
    return { header: unknownHeader(2, 'local', decodeTlvs(bytes, length, body.subarray(skip))), length };
  }
  if (family === 0) return { header: unknownHeader(2, 'unknown', decodeTlvs(bytes, length, body)), length };
  if (transport === 2) throw invalid('a datagram (UDP) header on a stream connection');
  const need = ADDRESS_LENGTH[family as 1 | 2 | 3];
  if (body.byteLength < need) throw invalid(`${need} address bytes expected, ${body.byteLength} given`);
  let source: SocketAddress;
  let destination: SocketAddress;
  if (family === 1) {
    const view = new DataView(body.buffer, body.byteOffset, need);
    source = { family: 'ipv4', address: ipv4Text(body, 0), port: view.getUint16(8) };
    destination = { family: 'ipv4', address: ipv4Text(body, 4), port: view.getUint16(10) };
  } else if (family === 2) {
    const view = new DataView(body.buffer, body.byteOffset, need);
    source = { family: 'ipv6', address: ipv6Text(body, 0), port: view.getUint16(32) };
    destination = { family: 'ipv6', address: ipv6Text(body, 16), port: view.getUint16(34) };
  } else {
    source = { family: 'unix', path: unixPath(body, 0) };
    destination = { family: 'unix', path: unixPath(body, 108) };
  }
  return {
    header: {
      version: 2,
      command: 'proxy',
      source,
      destination,
      tlvs: decodeTlvs(bytes, length, body.subarray(need)),
    },
    length,
  };
}

/** Walks the TLVs (each must fit what is left); verifies a CRC32C TLV against the header. */
function decodeTlvs(header: Uint8Array, length: number, rest: Uint8Array): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  let at = 0;
  while (at < rest.byteLength) {
    if (rest.byteLength - at < 3) throw invalid('truncated TLV');
    const type = rest[at]!;
    const len = (rest[at + 1]! << 8) | rest[at + 2]!;
    if (at + 3 + len > rest.byteLength)
      throw invalid(`TLV 0x${type.toString(16)} of ${len} bytes overruns the header`);
    const value = rest.slice(at + 3, at + 3 + len);
    if (type === PP2_TYPE.CRC32C) {
      if (len !== 4) throw invalid('CRC32C TLV is not 4 bytes');
      const copy = header.slice(0, length);
      const valueAt = rest.byteOffset - header.byteOffset + at + 3;
      copy.fill(0, valueAt, valueAt + 4);
      const expected = ((value[0]! << 24) | (value[1]! << 16) | (value[2]! << 8) | value[3]!) >>> 0;
      if (crc32c(copy) !== expected) throw invalid('CRC32C checksum mismatch');
    }
    if (type !== PP2_TYPE.NOOP) tlvs.push({ type, value });
    at += 3 + len;
  }
  return tlvs;
}

function unixPath(b: Uint8Array, at: number): string {
  let end = at;
  while (end < at + 108 && b[end] !== 0) end++;
  return LATIN1.decode(b.subarray(at, end));
}

// ---- CRC32C (Castagnoli), for the v2 checksum TLV ------------------------------------------

let crcTable: Uint32Array | undefined;

/** CRC32C of `bytes` (the checksum the v2 PP2_TYPE_CRC32C TLV carries). */
export function crc32c(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.byteLength; i++) crc = crcTable[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// ---- encoding ------------------------------------------------------------------------------

/** What to encode: the client and the address it connected to, or none (UNKNOWN / LOCAL). */
export interface ProxyHeaderInit {
  readonly version: 1 | 2;
  /**
   * The original client and the address it reached. Both null (or of families v1 cannot carry)
   * encode v1 "PROXY UNKNOWN" / a v2 LOCAL header: the receiver then uses the socket's own.
   */
  readonly source: SocketAddress | null;
  readonly destination: SocketAddress | null;
  /** v2 only: TLVs to append (each value at most 65535 bytes). */
  readonly tlvs?: readonly ProxyTlv[] | undefined;
}

/**
 * Encodes a header. An IPv4 and an IPv6 address together are both sent as IPv6 (the IPv4 one
 * as ::ffff:a.b.c.d), since a header carries one family; a Unix address beside an IP one, or a
 * Unix pair in v1, encodes UNKNOWN (v1) or LOCAL (v2), as haproxy's send-proxy does.
 */
export function encodeProxyHeader(init: ProxyHeaderInit): Uint8Array {
  const pair = sameFamily(init.source, init.destination);
  return init.version === 1 ? encodeV1(pair) : encodeV2(pair, init.tlvs ?? []);
}

type Pair =
  | { family: 'ipv4' | 'ipv6'; src: string; dst: string; sport: number; dport: number }
  | { family: 'unix'; src: string; dst: string }
  | null;

function sameFamily(s: SocketAddress | null, d: SocketAddress | null): Pair {
  if (s === null || d === null) return null;
  if (s.family === 'unix' || d.family === 'unix') {
    return s.family === 'unix' && d.family === 'unix' ? { family: 'unix', src: s.path, dst: d.path } : null;
  }
  if (s.family === d.family)
    return { family: s.family, src: s.address, dst: d.address, sport: s.port, dport: d.port };
  const v6 = (a: { family: 'ipv4' | 'ipv6'; address: string }) =>
    a.family === 'ipv4' ? `::ffff:${a.address}` : a.address;
  return { family: 'ipv6', src: v6(s), dst: v6(d), sport: s.port, dport: d.port };
}

const ENCODER = new TextEncoder();

function encodeV1(pair: Pair): Uint8Array {
  if (pair === null || pair.family === 'unix') return ENCODER.encode('PROXY UNKNOWN\r\n');
  const proto = pair.family === 'ipv4' ? 'TCP4' : 'TCP6';
  return ENCODER.encode(`PROXY ${proto} ${pair.src} ${pair.dst} ${pair.sport} ${pair.dport}\r\n`);
}

function encodeV2(pair: Pair, tlvs: readonly ProxyTlv[]): Uint8Array {
  const addressLength =
    pair === null ? 0 : ADDRESS_LENGTH[pair.family === 'ipv4' ? 1 : pair.family === 'ipv6' ? 2 : 3];
  let tlvLength = 0;
  for (const t of tlvs) {
    if (t.value.byteLength > 0xffff)
      throw new RangeError(`TLV 0x${t.type.toString(16)} longer than 65535 bytes`);
    tlvLength += 3 + t.value.byteLength;
  }
  const bodyLength = addressLength + tlvLength;
  if (bodyLength > 0xffff) throw new RangeError('PROXY v2 header longer than 65535 bytes');
  const out = new Uint8Array(16 + bodyLength);
  out.set(V2_SIGNATURE, 0);
  out[12] = pair === null ? 0x20 : 0x21;
  out[13] = pair === null ? 0x00 : pair.family === 'ipv4' ? 0x11 : pair.family === 'ipv6' ? 0x21 : 0x31;
  out[14] = bodyLength >> 8;
  out[15] = bodyLength & 0xff;
  const view = new DataView(out.buffer);
  if (pair !== null) {
    if (pair.family === 'ipv4') {
      out.set(ipv4Bytes(pair.src), 16);
      out.set(ipv4Bytes(pair.dst), 20);
      view.setUint16(24, pair.sport);
      view.setUint16(26, pair.dport);
    } else if (pair.family === 'ipv6') {
      out.set(ipv6Bytes(pair.src), 16);
      out.set(ipv6Bytes(pair.dst), 32);
      view.setUint16(48, pair.sport);
      view.setUint16(50, pair.dport);
    } else {
      out.set(unixBytes(pair.src), 16);
      out.set(unixBytes(pair.dst), 124);
    }
  }
  let at = 16 + addressLength;
  for (const t of tlvs) {
    out[at] = t.type;
    view.setUint16(at + 1, t.value.byteLength);
    out.set(t.value, at + 3);
    at += 3 + t.value.byteLength;
  }
  return out;
}

function ipv4Bytes(text: string): Uint8Array {
  if (!isIPv4(text)) throw new RangeError(`not an IPv4 address: ${text}`);
  return Uint8Array.from(text.split('.').map(Number));
}

/** The 16 bytes of an IPv6 address (with "::" and an embedded IPv4 tail). */
export function ipv6Bytes(text: string): Uint8Array {
  const zone = text.indexOf('%');
  const t = zone >= 0 ? text.slice(0, zone) : text;
  if (!isIPv6(t)) throw new RangeError(`not an IPv6 address: ${text}`);
  let head = t;
  const tail: number[] = [];
  const lastColon = t.lastIndexOf(':');
  if (t.includes('.', lastColon)) {
    const v4 = ipv4Bytes(t.slice(lastColon + 1));
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    head = t.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  let words: number[];
  const gap = head.indexOf('::');
  if (gap >= 0) {
    const left = groups(head.slice(0, gap));
    const right = [...groups(head.slice(gap + 2)), ...tail];
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else words = [...groups(head), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

function unixBytes(path: string): Uint8Array {
  const bytes = ENCODER.encode(path);
  if (bytes.byteLength > 107) throw new RangeError(`unix path longer than 107 bytes: ${path}`);
  const out = new Uint8Array(108);
  out.set(bytes);
  return out;
}
