/**
 * AES-SIV through OpenSSL's EVP: RFC 5297's test vectors (A.1 deterministic, A.2 nonce-based with
 * three AAD components), open() refusing a wrong key, wrong or reordered AAD and any tampered
 * byte, and the arguments OpenSSL's provider cannot honour refused with typed errors.
 */
import { describe, expect, it } from 'vitest';
import { loadPlatform, loadSiv } from '../index.js';

const loaded = loadSiv();
const siv = 'siv' in loaded ? loaded.siv : undefined;

function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}
function toHex(b: Uint8Array | null): string | null {
  return b === null ? null : Buffer.from(b).toString('hex');
}

// RFC 5297 appendix A.1: deterministic authenticated encryption.
const a1 = {
  key: hex('fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff'),
  aad: [hex('10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627')],
  plaintext: hex('11223344 55667788 99aabbcc ddee'),
  sealed: '85632d07c6e8f37f950acd320a2ecc93' + '40c02b9690c4dc04daef7f6afe5c',
};

// RFC 5297 appendix A.2: nonce-based, two AAD components then the nonce.
const a2 = {
  key: hex('7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f'),
  aad: [
    hex('00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100'),
    hex('10203040 50607080 90a0'),
    hex('09f91102 9d74e35b d84156c5 635688c0'),
  ],
  plaintext: hex(
    '74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 74207573 696e6720 5349562d 414553',
  ),
  sealed:
    '7bdb6e3b432667eb06f4d14bff2fbd0f' +
    'cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d',
};

it('loads wherever the .node file loads (no io_uring needed)', () => {
  if ('platform' in loadPlatform()) expect(loaded).toHaveProperty('siv');
  else expect(loaded).toHaveProperty('error');
});

describe.skipIf(!siv)('AES-SIV (RFC 5297) over OpenSSL EVP', () => {
  const s = siv as NonNullable<typeof siv>;

  it('A.1: deterministic authenticated encryption', () => {
    expect(toHex(s.seal(a1.key, a1.aad, a1.plaintext))).toBe(a1.sealed);
    expect(toHex(s.open(a1.key, a1.aad, hex(a1.sealed)))).toBe(toHex(a1.plaintext));
  });

  it('A.2: nonce-based with several AAD components', () => {
    expect(toHex(s.seal(a2.key, a2.aad, a2.plaintext))).toBe(a2.sealed);
    expect(Buffer.from(s.open(a2.key, a2.aad, hex(a2.sealed)) ?? []).toString()).toBe(
      'this is some plaintext to encrypt using SIV-AES',
    );
  });

  it('is deterministic and 192- and 256-bit keys work', () => {
    for (const length of [32, 48, 64]) {
      const key = new Uint8Array(length).map((_, i) => i * 7);
      const p = new TextEncoder().encode('alice@example.com');
      const one = s.seal(key, [hex('01')], p);
      expect(toHex(s.seal(key, [hex('01')], p))).toBe(toHex(one));
      expect(one.length).toBe(16 + p.length);
      expect(toHex(s.open(key, [hex('01')], one))).toBe(toHex(p));
    }
  });

  it('open() refuses a wrong key', () => {
    const wrong = a1.key.slice();
    wrong[0] = (wrong[0] as number) ^ 1;
    expect(s.open(wrong, a1.aad, hex(a1.sealed))).toBeNull();
    // The CTR half alone differing is caught too (the plaintext changes, so V does not verify).
    const wrongCtr = a1.key.slice();
    wrongCtr[31] = (wrongCtr[31] as number) ^ 1;
    expect(s.open(wrongCtr, a1.aad, hex(a1.sealed))).toBeNull();
  });

  it('open() refuses wrong, missing, extra or reordered AAD', () => {
    const sealed = hex(a2.sealed);
    const [x, y, n] = a2.aad as [Uint8Array, Uint8Array, Uint8Array];
    expect(s.open(a2.key, [x, y], sealed)).toBeNull();
    expect(s.open(a2.key, [y, x, n], sealed)).toBeNull();
    expect(s.open(a2.key, [x, y, n, hex('00')], sealed)).toBeNull();
    const n2 = n.slice();
    n2[15] = (n2[15] as number) ^ 0x80;
    expect(s.open(a2.key, [x, y, n2], sealed)).toBeNull();
    // Components are not concatenated: splitting one differently is a different input.
    expect(
      s.open(
        a1.key,
        [a1.aad[0]?.subarray(0, 4) as Uint8Array, a1.aad[0]?.subarray(4) as Uint8Array],
        hex(a1.sealed),
      ),
    ).toBeNull();
  });

  it('open() refuses every single-bit flip, truncation and extension', () => {
    const sealed = hex(a1.sealed);
    for (let i = 0; i < sealed.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const t = sealed.slice();
        t[i] = (t[i] as number) ^ (1 << bit);
        expect(s.open(a1.key, a1.aad, t)).toBeNull();
      }
    }
    expect(s.open(a1.key, a1.aad, sealed.subarray(0, sealed.length - 1))).toBeNull();
    expect(s.open(a1.key, a1.aad, new Uint8Array([...sealed, 0]))).toBeNull();
    expect(s.open(a1.key, a1.aad, sealed.subarray(0, 16))).toBeNull();
    expect(s.open(a1.key, a1.aad, new Uint8Array(0))).toBeNull();
  });

  it('a key handle gives the same results as the key bytes', () => {
    const h1 = s.key(a1.key);
    const h2 = s.key(a2.key);
    expect(toHex(s.seal(h1, a1.aad, a1.plaintext))).toBe(a1.sealed);
    expect(toHex(s.seal(h2, a2.aad, a2.plaintext))).toBe(a2.sealed);
    // Reused: each call starts from the keyed state, not from the previous call's.
    expect(toHex(s.seal(h2, a2.aad, a2.plaintext))).toBe(a2.sealed);
    expect(toHex(s.open(h1, a1.aad, hex(a1.sealed)))).toBe(toHex(a1.plaintext));
    expect(s.open(h2, a1.aad, hex(a1.sealed))).toBeNull();
    expect(() => s.key(new Uint8Array(16))).toThrow(RangeError);
    // Only a handle of key() stands in for a key.
    expect(() => s.seal({} as never, [], hex('00'))).toThrow(TypeError);
  });

  it('refuses bad arguments with typed errors', () => {
    expect(() => s.seal(new Uint8Array(16), [], hex('00'))).toThrow(RangeError);
    expect(() => s.seal(a1.key, [], new Uint8Array(0))).toThrow(/empty plaintext/);
    expect(() => s.seal(a1.key, [new Uint8Array(0)], hex('00'))).toThrow(/empty AAD/);
    expect(() => s.open(a1.key, [new Uint8Array(0)], hex(a1.sealed))).toThrow(RangeError);
    // @ts-expect-error not a Uint8Array
    expect(() => s.seal('key', [], hex('00'))).toThrow(TypeError);
    // @ts-expect-error aad must be an array
    expect(() => s.seal(a1.key, hex('00'), hex('00'))).toThrow(TypeError);
    // @ts-expect-error aad elements must be Uint8Arrays
    expect(() => s.seal(a1.key, ['x'], hex('00'))).toThrow(TypeError);
    expect(() => s.seal(a1.key, [new Uint16Array(2) as unknown as Uint8Array], hex('00'))).toThrow(TypeError);
  });
});
