/**
 * The key schedule of Loch's TLS 1.3 record layer (native/src/tls13_record.cc: HKDF-Expand-Label
 * as one HMAC block per output): the keys and IVs of RFC 8448's simple 1-RTT handshake (section 3)
 * from its application traffic secrets, both directions; and, for the SHA-384 suite and the
 * KeyUpdate's next secret (RFC 8448 has no vectors for them), the same values computed here from
 * RFC 5869 and RFC 8446 7.1 with node:crypto's HMAC.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadTls } from '../index.js';

type Tls13TrafficKeys = (
  suite: number,
  secret: Uint8Array,
) => { key: Buffer; iv: Buffer; next: Buffer } | undefined;

const loaded = loadTls();
// A test hook of the addon (not in NativeTls's typed surface): the record layer's derivation
// for one traffic secret, from the bytes given.
const derive =
  'tls' in loaded
    ? (loaded.tls as unknown as { tls13TrafficKeys: Tls13TrafficKeys }).tls13TrafficKeys
    : undefined;

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** HKDF-Expand-Label(secret, label, "", length) (RFC 8446 7.1), HKDF-Expand's blocks (RFC 5869 2.3). */
function expandLabel(hash: 'sha256' | 'sha384', secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`);
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, full.length]),
    full,
    Buffer.from([0]),
  ]);
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    previous = createHmac(hash, secret)
      .update(Buffer.concat([previous, info, Buffer.from([i])]))
      .digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

describe.skipIf(derive === undefined)('TLS 1.3 key schedule of the record layer', () => {
  const keys = derive as Tls13TrafficKeys;

  it("derives RFC 8448's application keys and IVs, client and server (TLS_AES_128_GCM_SHA256)", () => {
    const client = keys(0x1301, hex('9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5'));
    expect(client?.key.toString('hex')).toBe('17422dda596ed5d9acd890e3c63f5051');
    expect(client?.iv.toString('hex')).toBe('5b78923dee08579033e523d9');
    const server = keys(0x1301, hex('a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643'));
    expect(server?.key.toString('hex')).toBe('9f02283b6c9c07efc26bb9f2ac92e356');
    expect(server?.iv.toString('hex')).toBe('cf782b88dd83549aadf1e984');
  });

  it('derives the next secret (KeyUpdate) and the SHA-384 and ChaCha20 suites as RFC 5869 / 8446 7.1 say', () => {
    const cases = [
      { suite: 0x1301, hash: 'sha256', keyLen: 16, secret: Buffer.alloc(32, 0x5a) },
      {
        suite: 0x1302,
        hash: 'sha384',
        keyLen: 32,
        secret: Buffer.from(Array.from({ length: 48 }, (_, i) => i * 7)),
      },
      {
        suite: 0x1303,
        hash: 'sha256',
        keyLen: 32,
        secret: Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i)),
      },
    ] as const;
    for (const { suite, hash, keyLen, secret } of cases) {
      const got = keys(suite, secret);
      expect(got?.key.toString('hex')).toBe(expandLabel(hash, secret, 'key', keyLen).toString('hex'));
      expect(got?.iv.toString('hex')).toBe(expandLabel(hash, secret, 'iv', 12).toString('hex'));
      expect(got?.next.toString('hex')).toBe(
        expandLabel(hash, secret, 'traffic upd', secret.length).toString('hex'),
      );
    }
    // The RFC's server secret rolled once, and its keys, as a KeyUpdate does.
    const secret = hex('a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643');
    const next = keys(0x1301, secret)?.next as Buffer;
    expect(next.toString('hex')).toBe(expandLabel('sha256', secret, 'traffic upd', 32).toString('hex'));
    expect(keys(0x1301, next)?.key.toString('hex')).toBe(
      expandLabel('sha256', next, 'key', 16).toString('hex'),
    );
  });

  it('refuses a secret of the wrong length and a suite it does not run', () => {
    expect(keys(0x1301, Buffer.alloc(48))).toBeUndefined();
    expect(keys(0x1302, Buffer.alloc(32))).toBeUndefined();
    expect(keys(0x1304, Buffer.alloc(32))).toBeUndefined(); // TLS_AES_128_CCM_SHA256
  });
});
