import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Http2ConnectionError } from '../../src/h2/errors.js';
import {
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
  huffmanEncodeToBytes,
  huffmanMaxDecodedLength,
} from '../../src/h2/huffman.js';

const byteString = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'));

function decode(bytes: Uint8Array): string {
  const out = Buffer.alloc(huffmanMaxDecodedLength(bytes.length));
  const n = huffmanDecode(bytes, 0, bytes.length, out, 0);
  return out.toString('latin1', 0, n);
}

function decodeError(bytes: number[]): unknown {
  try {
    decode(Uint8Array.from(bytes));
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('Huffman (RFC 7541 §5.2, Appendix B)', () => {
  it('round-trips any byte string, with the length it predicts', () => {
    fc.assert(
      fc.property(byteString, (s) => {
        const coded = huffmanEncodeToBytes(s);
        expect(coded.length).toBe(huffmanEncodedLength(s));
        expect(decode(coded)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes at any offset of a shared buffer without touching its neighbours', () => {
    fc.assert(
      fc.property(byteString, fc.nat(16), (s, offset) => {
        const n = huffmanEncodedLength(s);
        const buf = new Uint8Array(offset + n + 4).fill(0xaa);
        expect(huffmanEncode(s, buf, offset)).toBe(offset + n);
        expect(buf.subarray(0, offset).every((b) => b === 0xaa)).toBe(true);
        expect(buf.subarray(offset + n).every((b) => b === 0xaa)).toBe(true);
        expect(decode(buf.subarray(offset, offset + n))).toBe(s);
      }),
    );
  });

  it('matches the RFC examples', () => {
    expect(Buffer.from(huffmanEncodeToBytes('www.example.com')).toString('hex')).toBe(
      'f1e3c2e5f23a6ba0ab90f4ff',
    );
    expect(Buffer.from(huffmanEncodeToBytes('no-cache')).toString('hex')).toBe('a8eb10649cbf');
    expect(decode(Buffer.from('9bd9ab', 'hex'))).toBe('gzip');
  });

  it('accepts exactly the canonical encodings: any bytes either fail or re-encode to themselves', () => {
    // Padding must be the EOS prefix and shorter than a byte, so each string has one encoding.
    let accepted = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        const e = decodeError([...bytes]);
        if (e !== undefined) {
          expect(e).toBeInstanceOf(Http2ConnectionError);
          return;
        }
        accepted++;
        expect(Buffer.from(huffmanEncodeToBytes(decode(bytes))).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('an empty string decodes to nothing', () => {
    expect(decode(new Uint8Array(0))).toBe('');
  });

  it('rejects padding of 8 or more bits', () => {
    // '0' is 00000 (5 bits); a byte of all ones after a full symbol is 8 padding bits.
    expect(decode(Uint8Array.from([0x07]))).toBe('0');
    expect((decodeError([0x07, 0xff]) as Http2ConnectionError).code).toBe('ERR_HTTP2_HPACK_HUFFMAN');
    expect((decodeError([0xff]) as Http2ConnectionError).errorCode).toBe(0x9);
  });

  it('rejects padding that is not all ones', () => {
    // '0' then three zero bits: a prefix of a longer code, not EOS's ones.
    expect((decodeError([0x00]) as Http2ConnectionError).code).toBe('ERR_HTTP2_HPACK_HUFFMAN');
    expect((decodeError([0x06]) as Http2ConnectionError).code).toBe('ERR_HTTP2_HPACK_HUFFMAN');
  });

  it('rejects EOS (30 ones) inside the string, at any bit alignment', () => {
    expect((decodeError([0xff, 0xff, 0xff, 0xfc]) as Http2ConnectionError).code).toBe(
      'ERR_HTTP2_HPACK_HUFFMAN',
    );
    // '0' (00000) then EOS from bit 5.
    expect((decodeError([0x07, 0xff, 0xff, 0xff, 0xff]) as Http2ConnectionError).code).toBe(
      'ERR_HTTP2_HPACK_HUFFMAN',
    );
    for (let shift = 0; shift < 8; shift++) {
      // `shift` symbols 'a' (00011, 5 bits) put EOS at every alignment; then padding.
      const bits = `${'00011'.repeat(shift)}${'1'.repeat(30)}`;
      const padded = bits + '1'.repeat((8 - (bits.length % 8)) % 8);
      const bytes = padded.match(/.{8}/g)!.map((b) => Number.parseInt(b, 2));
      expect(decodeError(bytes), `after ${shift} symbols`).toBeInstanceOf(Http2ConnectionError);
    }
  });
});
