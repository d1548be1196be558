/**
 * HPACK Huffman coding (RFC 7541 §5.2, code table of Appendix B). Encoding packs each byte's code
 * MSB first and pads the last byte with the high bits of EOS (ones). Decoding is a table-driven
 * state machine that consumes 4 bits per step (nghttp2's design): a state is an internal node
 * of the code tree, and a step yields the next state and at most one symbol (no code is shorter
 * than 5 bits). Strings are byte strings: a JS string here holds one byte per char (latin1).
 *
 * Not for choosing whether to use Huffman: the HPACK encoder compares
 * {@link huffmanEncodedLength} with the raw length.
 */
import { Http2ConnectionError, Http2ErrorCode } from './errors.js';

/**
 * Code lengths of symbols 0..255 and EOS (256), RFC 7541 Appendix B. The code is canonical
 * (codes of one length are consecutive in symbol order, shorter lengths first), so the codes
 * themselves are derived from the lengths below; the Appendix C vectors check the result.
 */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28,
  28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7,
  8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19,
  13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13,
  28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21,
  22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23,
  22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25,
  25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS = 256;

/** Code of each symbol, right-aligned (up to 30 bits). */
const CODES = new Uint32Array(257);
/** Bit length of each symbol's code. */
const LENGTHS = Uint8Array.from(CODE_LENGTHS);

// Decoder tables: one row of 16 entries per internal tree node (256 of them, node 0 = root).
// An entry packs: next state (bits 0-7), emitted symbol (bits 8-15), EMIT, FAIL (EOS seen) and
// ACCEPT (the next state may end a string: the bits since the last symbol are all ones and
// fewer than 8, RFC 7541 §5.2).
const EMIT = 1 << 16;
const FAIL = 1 << 17;
const ACCEPT = 1 << 18;
const TRANSITIONS = new Uint32Array(256 * 16);

function buildTables(): void {
  const order = Array.from({ length: 257 }, (_, i) => i).sort((a, b) => LENGTHS[a]! - LENGTHS[b]! || a - b);
  let code = 0;
  let prevLength = LENGTHS[order[0]!]!;
  for (const sym of order) {
    const length = LENGTHS[sym]!;
    code *= 2 ** (length - prevLength);
    prevLength = length;
    CODES[sym] = code;
    code++;
  }

  // Tree: children[2 * node + bit] >= 0 is an internal node, < 0 is leaf -(symbol + 1).
  const children = new Int32Array(256 * 2);
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  allOnes[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const length = LENGTHS[sym]!;
    const c = CODES[sym]!;
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const bit = Math.floor(c / 2 ** i) & 1;
      const slot = 2 * node + bit;
      if (children[slot] === 0) {
        const next = nodes++;
        children[slot] = next;
        depth[next] = depth[node]! + 1;
        allOnes[next] = allOnes[node]! & bit;
      }
      node = children[slot]!;
    }
    children[2 * node + (c & 1)] = -(sym + 1);
  }

  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const child = children[2 * node + ((nibble >> i) & 1)]!;
        if (child >= 0) {
          node = child;
          continue;
        }
        const sym = -child - 1;
        if (sym === EOS) entry |= FAIL;
        else entry |= EMIT | (sym << 8);
        node = 0;
      }
      if (allOnes[node] === 1 && depth[node]! <= 7) entry |= ACCEPT;
      TRANSITIONS[state * 16 + nibble] = entry | node;
    }
  }
}
buildTables();

/** Bytes {@link huffmanEncode} writes for `src` (a byte string). */
export function huffmanEncodedLength(src: string): number {
  let bits = 0;
  for (let i = 0; i < src.length; i++) bits += LENGTHS[src.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman code of `src` (a byte string; chars above 0xff are cut to their low byte,
 * so validate first) into `out` at `offset` and returns the offset after it. `out` must have
 * {@link huffmanEncodedLength} bytes free.
 */
export function huffmanEncode(src: string, out: Uint8Array, offset: number): number {
  // `acc` holds `bits` pending bits (fewer than 8 between symbols) in its low end. A code of up to
  // 24 bits joins them in one shift (at most 31 bits, still a positive int32); a longer code (rare
  // bytes only) goes in two parts, so no step leaves 32-bit integer arithmetic.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < src.length; i++) {
    const sym = src.charCodeAt(i) & 0xff;
    const length = LENGTHS[sym]!;
    const code = CODES[sym]!;
    if (length <= 24) {
      acc = (acc << length) | code;
      bits += length;
    } else {
      acc = (acc << (length - 16)) | (code >>> 16);
      bits += length - 16;
      while (bits >= 8) {
        bits -= 8;
        out[offset++] = acc >>> bits;
      }
      acc = ((acc & ((1 << bits) - 1)) << 16) | (code & 0xffff);
      bits += 16;
    }
    while (bits >= 8) {
      bits -= 8;
      out[offset++] = acc >>> bits;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out[offset++] = (acc << (8 - bits)) | (0xff >>> bits);
  return offset;
}

/**
 * {@link huffmanEncodedLength} of the bytes `src[start, end)`: for a value held as bytes (a field
 * of a decoded HTTP/1.1 head) that the HPACK encoder writes without making it a string.
 */
export function huffmanEncodedLengthOfBytes(src: Uint8Array, start: number, end: number): number {
  let bits = 0;
  for (let i = start; i < end; i++) bits += LENGTHS[src[i]!]!;
  return (bits + 7) >>> 3;
}

/**
 * {@link huffmanEncode} of the bytes `src[start, end)` (the same code, read from bytes instead of
 * a string's chars); `out` must have {@link huffmanEncodedLengthOfBytes} bytes free.
 */
export function huffmanEncodeBytes(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  offset: number,
): number {
  let acc = 0;
  let bits = 0;
  for (let i = start; i < end; i++) {
    const sym = src[i]!;
    const length = LENGTHS[sym]!;
    const code = CODES[sym]!;
    if (length <= 24) {
      acc = (acc << length) | code;
      bits += length;
    } else {
      acc = (acc << (length - 16)) | (code >>> 16);
      bits += length - 16;
      while (bits >= 8) {
        bits -= 8;
        out[offset++] = acc >>> bits;
      }
      acc = ((acc & ((1 << bits) - 1)) << 16) | (code & 0xffff);
      bits += 16;
    }
    while (bits >= 8) {
      bits -= 8;
      out[offset++] = acc >>> bits;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out[offset++] = (acc << (8 - bits)) | (0xff >>> bits);
  return offset;
}

/** Huffman-encodes a byte string into a new array. */
export function huffmanEncodeToBytes(src: string): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(src));
  huffmanEncode(src, out, 0);
  return out;
}

/** Most bytes a Huffman string of `encodedLength` bytes decodes to (codes are 5 bits or more). */
export function huffmanMaxDecodedLength(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}

function huffmanError(message: string): Http2ConnectionError {
  return new Http2ConnectionError('ERR_HTTP2_HPACK_HUFFMAN', Http2ErrorCode.COMPRESSION_ERROR, message);
}

/**
 * Decodes the Huffman string `src[start, end)` into `out` at `offset` and returns the offset
 * after the decoded bytes. `out` must have {@link huffmanMaxDecodedLength} bytes free. Throws a
 * COMPRESSION_ERROR {@link Http2ConnectionError} when the string contains EOS or ends in padding
 * that is longer than 7 bits or not all ones (RFC 7541 §5.2).
 */
export function huffmanDecode(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  offset: number,
): number {
  let state = 0;
  let accept = ACCEPT;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    let t = TRANSITIONS[(state << 4) | (byte >>> 4)]!;
    if ((t & (EMIT | FAIL)) !== 0) {
      if ((t & FAIL) !== 0) throw huffmanError('Huffman string contains EOS');
      out[offset++] = (t >>> 8) & 0xff;
    }
    t = TRANSITIONS[((t & 0xff) << 4) | (byte & 0xf)]!;
    if ((t & (EMIT | FAIL)) !== 0) {
      if ((t & FAIL) !== 0) throw huffmanError('Huffman string contains EOS');
      out[offset++] = (t >>> 8) & 0xff;
    }
    state = t & 0xff;
    accept = t & ACCEPT;
  }
  if (accept === 0) throw huffmanError('Huffman string ends in padding longer than 7 bits or not all ones');
  return offset;
}
