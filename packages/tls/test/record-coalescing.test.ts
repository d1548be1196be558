/**
 * How many TLS records a gathered write becomes on OpenSSL's record layer (the engine's
 * EncryptPiecesInto, what the ring runs for a writev): an HTTP head and a body that fit in one
 * 16 KiB record together go out as one record, as nginx's ssl_buffer_size coalesces a chain
 * (bench/results/https-adds-counts-2026-12-05.md: a proxied 11,268 B response was two records).
 * Every write is decrypted by the peer session and compared, so coalescing never reorders or
 * loses a byte. The engine alone (two sessions in memory, no sockets).
 */
import { loadTls, type NativeTls, type NativeTlsSession } from '@loch/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './certs.js';

const loaded = loadTls();
const tls = 'tls' in loaded ? loaded.tls : undefined;
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());

/** A server and a client session after a TLS 1.3 handshake through memory. */
function connected(t: NativeTls): { server: NativeTlsSession; client: NativeTlsSession } {
  const sctx = new t.TlsContext(true, 0, 0, '', '');
  expect(sctx.addCertificate(pki.localhost.chain, pki.localhost.key, ['localhost'], true)).toBeUndefined();
  const cctx = new t.TlsContext(false, 0, 0, '', '');
  expect(cctx.setCaPem(pki.ca)).toBeUndefined();
  cctx.setVerify(true, true);
  const server = new t.TlsSession(sctx);
  const client = new t.TlsSession(cctx);
  client.setServername('localhost', true);
  const plain = new Uint8Array(16 * 1024);
  let toServer = client.feed(null, plain);
  let toClient: Uint8Array | undefined;
  for (let i = 0; i < 10 && (toServer !== undefined || toClient !== undefined); i++) {
    if (toServer !== undefined) {
      toClient = server.feed(toServer, plain);
      toServer = undefined;
    }
    if (toClient !== undefined) {
      toServer = client.feed(toClient, plain);
      toClient = undefined;
    }
  }
  expect(server.negotiated()).toMatchObject({ version: 'TLSv1.3' });
  return { server, client };
}

/** The lengths of the TLS records in `bytes` (5-byte headers: type, version, length). */
function recordLengths(bytes: Uint8Array): number[] {
  const lengths: number[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const n = (bytes[at + 3]! << 8) | bytes[at + 4]!;
    lengths.push(n);
    at += 5 + n;
  }
  return lengths;
}

const bytes = (n: number, from: number) => new Uint8Array(n).map((_, i) => (from + i) & 0xff);

describe.skipIf(tls === undefined)('records per gathered write (OpenSSL record layer)', () => {
  const t = tls!;

  /** Encrypts `pieces` as one write on the server, checks the client decrypts them in order. */
  function records(pieces: Uint8Array[]): number {
    const { server, client } = connected(t);
    const out = server.encrypt(pieces)!;
    const plain = new Uint8Array(256 * 1024);
    const got: Uint8Array[] = [];
    client.feed(out, plain);
    got.push(plain.slice(0, t.info[0]!));
    while (t.info[1]! & t.flags.morePlaintext) {
      client.feed(null, plain);
      got.push(plain.slice(0, t.info[0]!));
    }
    expect(Buffer.concat(got).equals(Buffer.concat(pieces))).toBe(true);
    return recordLengths(out).length;
  }

  it('puts an HTTP head and a body that fit in 16 KiB together into one record', () => {
    // The bench's 11,268 B response behind a head: one record (two before: the head alone).
    expect(records([bytes(180, 1), bytes(11_268, 2)])).toBe(1);
    // Exactly one full record's worth.
    expect(records([bytes(200, 3), bytes(16_184, 4)])).toBe(1);
    // A chunked body: head, chunk-size line, the data, CRLF.
    expect(records([bytes(180, 5), Buffer.from('2c04\r\n'), bytes(11_268, 6), Buffer.from('\r\n')])).toBe(1);
    // Small pieces after a full stage start the next record.
    expect(records([bytes(200, 7), bytes(16_184, 8), bytes(100, 9)])).toBe(2);
  });

  it('still sends a body that does not fit with the head in place', () => {
    // One byte more than the record holds: the head alone, the body in place (no 16 KiB copy).
    expect(records([bytes(200, 10), bytes(16_185, 11)])).toBe(2);
    // A lone large piece: in place, whole records.
    expect(records([bytes(11_268, 12)])).toBe(1);
    expect(records([bytes(40_000, 13)])).toBe(3);
  });
});
