/**
 * The TLS engine (loch_tls.node) on its own: two sessions talking through memory, no sockets.
 * Handshake and data both ways in one crossing per chunk, ALPN and SNI, a ticket resuming, the
 * failure kinds (garbage, plain HTTP, an untrusted certificate, a fatal alert from the peer), and
 * the plaintext buffer filling up. Interop with real peers is in packages/tls.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTls, type NativeTls, type NativeTlsContext, type NativeTlsSession } from '../index.js';

const loaded = loadTls();
const tls = 'tls' in loaded ? loaded.tls : undefined;
let dir = '';
let cert = '';
let key = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'loch-native-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  key = readFileSync(join(dir, 'key.pem'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const alpn = (names: string[]) => new Uint8Array(names.flatMap((n) => [n.length, ...Buffer.from(n)]));

function server(t: NativeTls): NativeTlsContext {
  const ctx = new t.TlsContext(true, 0, 0, '', '');
  expect(ctx.addCertificate(cert, key, ['localhost'], true)).toBeUndefined();
  expect(ctx.setAlpn(alpn(['h2', 'http/1.1']))).toBeUndefined();
  return ctx;
}

function client(t: NativeTls, trust = cert): NativeTlsContext {
  const ctx = new t.TlsContext(false, 0, 0, '', '');
  expect(ctx.setCaPem(trust)).toBeUndefined();
  ctx.setVerify(true, true);
  return ctx;
}

/** Runs both sessions until neither has anything to send; returns plaintext each side got. */
function pump(t: NativeTls, a: NativeTlsSession, b: NativeTlsSession, first: Uint8Array | undefined) {
  const plain = new Uint8Array(64 * 1024);
  const got: [number[], number[]] = [[], []];
  const flags: [number, number] = [0, 0];
  let toB = first;
  let toA: Uint8Array | undefined;
  for (let i = 0; i < 20 && (toA !== undefined || toB !== undefined); i++) {
    if (toB !== undefined) {
      toA = b.feed(toB, plain);
      flags[1] |= t.info[1]!;
      got[1].push(...plain.subarray(0, t.info[0]!));
      toB = undefined;
    }
    if (toA !== undefined) {
      toB = a.feed(toA, plain);
      flags[0] |= t.info[1]!;
      got[0].push(...plain.subarray(0, t.info[0]!));
      toA = undefined;
    }
  }
  return { got, flags };
}

describe.skipIf(tls === undefined)('TLS engine', () => {
  const t = tls!;

  it('handshakes in memory and carries data both ways, one crossing per chunk', () => {
    const s = new t.TlsSession(server(t));
    const c = new t.TlsSession(client(t));
    expect(c.setServername('localhost', true)).toBe(true);
    expect(c.setAlpn(alpn(['http/1.1', 'h2']))).toBe(true);
    const hello = c.feed(null, new Uint8Array(16));
    expect(hello?.[0]).toBe(0x16); // a handshake record
    const { flags } = pump(t, c, s, hello);
    expect(flags[0] & t.flags.handshakeDone).not.toBe(0);
    expect(flags[1] & t.flags.handshakeDone).not.toBe(0);
    const n = s.negotiated();
    expect(n).toMatchObject({
      alpnProtocol: 'h2',
      servername: 'localhost',
      version: 'TLSv1.3',
      sessionReused: false,
    });
    expect(c.negotiated().peerCertificate?.byteLength).toBeGreaterThan(100);

    const record = c.encrypt([Buffer.from('hello '), Buffer.from('world')]);
    const out = new Uint8Array(100);
    expect(s.feed(record!, out)).toBeUndefined();
    expect(Buffer.from(out.subarray(0, t.info[0]!)).toString()).toBe('hello world');
    // close_notify reaches the other side as peerClosed.
    const bye = c.shutdown();
    s.feed(bye!, out);
    expect(t.info[1]! & t.flags.peerClosed).not.toBe(0);
    s.destroy();
    c.destroy();
    expect(() => s.feed(null, out)).toThrow(/destroyed/);
  });

  it('resumes with a session ticket and shared ticket keys', () => {
    const keys = new Uint8Array(80).fill(7);
    const serverA = server(t);
    const serverB = server(t);
    expect(serverA.setTicketKeys(keys)).toBeUndefined();
    expect(serverB.setTicketKeys(keys)).toBeUndefined();
    expect(serverA.setTicketKeys(new Uint8Array(79))).toMatch(/multiple of 80/);
    const clientCtx = client(t);
    const c1 = new t.TlsSession(clientCtx);
    c1.setServername('localhost', true);
    const s1 = new t.TlsSession(serverA);
    const { flags } = pump(t, c1, s1, c1.feed(null, new Uint8Array(1)));
    expect(flags[0] & t.flags.newSession).not.toBe(0);
    const ticket = c1.session();
    expect(ticket).toBeDefined();
    const c2 = new t.TlsSession(clientCtx);
    c2.setServername('localhost', true);
    expect(c2.setSession(ticket!)).toBe(true);
    const s2 = new t.TlsSession(serverB);
    pump(t, c2, s2, c2.feed(null, new Uint8Array(1)));
    expect(s2.negotiated().sessionReused).toBe(true);
    expect(c2.negotiated().sessionReused).toBe(true);
    expect(c2.setSession(new Uint8Array([1, 2, 3]))).toBe(false);
  });

  it('reports failures by kind: garbage, plain HTTP, untrusted certificate, alert from the peer', () => {
    const plain = new Uint8Array(64);
    const garbage = new t.TlsSession(server(t));
    garbage.feed(new Uint8Array([0x16, 3, 1, 0, 4, 9, 9, 9, 9]), plain);
    expect(t.info[1]! & t.flags.failed).not.toBe(0);
    expect(garbage.error()).toMatchObject({ kind: 1 });

    const http = new t.TlsSession(server(t));
    http.feed(Buffer.from('GET / HTTP/1.1\r\n'), plain);
    expect(http.error()).toMatchObject({ kind: 4 });

    const s = new t.TlsSession(server(t));
    // A client that trusts another CA: verification fails on the client, the server hears the alert.
    const other = new t.TlsContext(false, 0, 0, '', '');
    expect(other.setCaPem('no pem here')).toMatch(/no PEM certificate/);
    other.setVerify(true, true);
    const c2 = new t.TlsSession(other);
    c2.setServername('localhost', true);
    pump(t, c2, s, c2.feed(null, plain));
    expect(c2.error()).toMatchObject({ kind: 2 });
    expect(c2.error()?.message).toMatch(/certificate/);
    expect(s.error()).toMatchObject({ kind: 3, alertFromPeer: true });
  });

  it('asks for another call when the plaintext buffer fills up', () => {
    const s = new t.TlsSession(server(t));
    const c = new t.TlsSession(client(t));
    c.setServername('localhost', true);
    pump(t, c, s, c.feed(null, new Uint8Array(1)));
    const data = new Uint8Array(40_000).map((_, i) => i & 0xff);
    const records = c.encrypt(data)!;
    const small = new Uint8Array(10_000);
    const got: number[] = [];
    s.feed(records, small);
    got.push(...small.subarray(0, t.info[0]!));
    while (t.info[1]! & t.flags.morePlaintext) {
      s.feed(null, small);
      got.push(...small.subarray(0, t.info[0]!));
    }
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
  });

  it('puts neighbouring small pieces of a write into one record and large pieces in place', () => {
    const s = new t.TlsSession(server(t));
    const c = new t.TlsSession(client(t));
    c.setServername('localhost', true);
    pump(t, c, s, c.feed(null, new Uint8Array(1)));
    /** The lengths of the TLS records in `bytes` (5-byte headers: type, version, length). */
    const recordLengths = (bytes: Uint8Array) => {
      const lengths: number[] = [];
      for (let at = 0; at < bytes.byteLength; ) {
        const n = (bytes[at + 3]! << 8) | bytes[at + 4]!;
        lengths.push(n);
        at += 5 + n;
      }
      return lengths;
    };
    const plain = new Uint8Array(256 * 1024);
    const check = (pieces: Uint8Array[], records: number) => {
      const out = c.encrypt(pieces)!;
      expect(recordLengths(out)).toHaveLength(records);
      s.feed(out, plain);
      expect(Buffer.from(plain.subarray(0, t.info[0]!)).equals(Buffer.concat(pieces))).toBe(true);
    };
    const bytes = (n: number, from: number) => new Uint8Array(n).map((_, i) => (from + i) & 0xff);
    // A chunk-size line, its data and CRLF: one record, not three.
    check([Buffer.from('64\r\n'), bytes(100, 1), Buffer.from('\r\n')], 1);
    // Ten 4,000-byte pieces fill full-size records: 40,000 bytes in three, not ten.
    check(
      Array.from({ length: 10 }, (_, i) => bytes(4000, i)),
      3,
    );
    // A head before a large body: only the body's part beyond 16 KiB (3,616 bytes) is copied to
    // share the head's record, the rest goes out in place (2 records; 3 when the head was alone).
    check([bytes(200, 3), bytes(20_000, 4)], 2);
    // ... not when that part is large: the head alone, the body in place.
    check([bytes(200, 3), bytes(30_000, 4)], 3);
    // A lone piece and a large one with a small tail: each in place or with its neighbours.
    check([bytes(300, 5)], 1);
    check([bytes(20_000, 6), bytes(2, 7), bytes(3, 8)], 2);
    // HTTP/2 output arenas: a HEADERS frame and two 16,393-byte DATA frames, two more DATA frames,
    // two more, the last DATA frame. In place each run left a record of its last 18-78 bytes (10
    // records); the small ends and starts now share records (8; 165,859 bytes need 11 at least).
    check([bytes(32_846, 9), bytes(32_786, 10), bytes(32_786, 11), bytes(2_032, 12)], 8);
    // Two large pieces with small ends and no neighbours after them: 2 + 1 + 1 records.
    check([bytes(16_500, 13), bytes(16_500, 14)], 3);
  });

  it('runs in worker threads, each with its own info slots; a worker exiting leaves the rest working', async () => {
    const url = new URL('../index.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(url)}).then(({ loadTls }) => {
        const t = loadTls().tls;
        const s = new t.TlsContext(true, 0, 0, '', '');
        s.addCertificate(workerData.cert, workerData.key, ['localhost'], true);
        const c = new t.TlsContext(false, 0, 0, '', '');
        c.setCaPem(workerData.cert);
        const ss = new t.TlsSession(s), cs = new t.TlsSession(c);
        cs.setServername('localhost', true);
        const plain = new Uint8Array(1024);
        let toS = cs.feed(null, plain), toC;
        for (let i = 0; i < 10 && (toS || toC); i++) {
          if (toS) { toC = ss.feed(toS, plain); toS = undefined; }
          if (toC) { toS = cs.feed(toC, plain); toC = undefined; }
        }
        parentPort.postMessage(ss.negotiated().version + ' ' + (t.info !== undefined));
      });`;
    const results = await Promise.all(
      [1, 2].map(
        () =>
          new Promise<string>((resolve, reject) => {
            const worker = new Worker(code, { eval: true, workerData: { cert, key } });
            worker.once('message', (m: string) => {
              void worker.terminate();
              resolve(m);
            });
            worker.once('error', reject);
          }),
      ),
    );
    expect(results).toEqual(['TLSv1.3 true', 'TLSv1.3 true']);
    // This thread's engine still works after the workers' environments went away.
    const s = new t.TlsSession(server(t));
    const c = new t.TlsSession(client(t));
    c.setServername('localhost', true);
    const { flags } = pump(t, c, s, c.feed(null, new Uint8Array(1)));
    expect(flags[1] & t.flags.handshakeDone).not.toBe(0);
  });

  it('refuses bad configuration with OpenSSL reasons', () => {
    const ctx = new t.TlsContext(true, 0, 0, '', '');
    expect(ctx.addCertificate('nope', key, [], true)).toMatch(/certificate/);
    expect(ctx.addCertificate(cert, 'nope', [], true)).toMatch(/key/);
    expect(ctx.setAlpn(new Uint8Array([5, 1]))).toMatch(/malformed/);
    expect(() => new t.TlsContext(true, 0x0301, 0, '', '')).toThrow(/TLSv1.2/);
    expect(() => new t.TlsContext(true, 0, 0, 'NOT-A-CIPHER', '')).toThrow(/cipher/);
    expect(t.opensslVersion()).toMatch(/^OpenSSL 3/);
  });
});
