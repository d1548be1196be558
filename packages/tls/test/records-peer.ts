/**
 * Test support for the records-*.test.ts suites: a TLS 1.3 client that writes records of its own
 * making beneath a node:tls session, so a test can send what no TLS stack sends on demand (empty
 * records, KeyUpdates, alerts, padding, malformed inner plaintexts) to Loch's record layer. The
 * node:tls client does the handshake and one exchange ('ok' echoed: its record 0 under the
 * application key, and the server's session is on Loch's record layer); from then on the test
 * seals every record itself, under node:tls's logged CLIENT_TRAFFIC_SECRET_0 (RFC 8446 7.1-7.3,
 * 5.2-5.3, 4.6.3), and node:tls still reads and decrypts what the server sends (its KeyUpdates
 * included). node:tls runs over a Duplex of the test's in front of the TCP socket, so the test
 * sees every byte the server sends (`wire`) and writes its own records beneath the session.
 * Not a test itself.
 */
import { createCipheriv, createHmac } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';

/** Content types (RFC 8446 5.1). */
export const ALERT = 21;
export const HANDSHAKE = 22;
export const APPLICATION_DATA = 23;

const SUITES: Record<string, { hash: string; hashLen: number; cipher: string; keyLen: number }> = {
  TLS_AES_128_GCM_SHA256: { hash: 'sha256', hashLen: 32, cipher: 'aes-128-gcm', keyLen: 16 },
  TLS_AES_256_GCM_SHA384: { hash: 'sha384', hashLen: 48, cipher: 'aes-256-gcm', keyLen: 32 },
  TLS_CHACHA20_POLY1305_SHA256: { hash: 'sha256', hashLen: 32, cipher: 'chacha20-poly1305', keyLen: 32 },
};

/** HKDF-Expand-Label(secret, label, "", length) (RFC 8446 7.1), for lengths up to the hash's. */
function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, full.length]),
    full,
    Buffer.from([0]),
  ]);
  return createHmac(hash, secret)
    .update(Buffer.concat([info, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

/** A TLS 1.3 record header (RFC 8446 5.1): opaque type, legacy version 0x0303, length. */
export function header(type: number, length: number): Buffer {
  return Buffer.from([type, 3, 3, length >> 8, length & 0xff]);
}

/** The server's records in `bytes` (whole ones), as [outer type, body length]. */
export function records(bytes: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    const length = bytes.readUInt16BE(at + 3);
    if (at + 5 + length > bytes.length) break;
    out.push([bytes[at]!, length]);
    at += 5 + length;
  }
  return out;
}

/** A node:tls client whose records after the first exchange are sealed by the test. */
export class RecordPeer {
  /** Plaintext the server sent, decrypted by node:tls. */
  readonly received: Buffer[] = [];
  /** Every byte the server sent, as it came (records). */
  readonly wire: Buffer[];
  /** Resolves when the TCP connection closed. */
  readonly closed: Promise<void>;
  /** The error node:tls reported (the server's alert), if any. */
  error: Error | undefined;
  #secret: Buffer;
  #seq = 1n; // 'ok' was record 0

  private constructor(
    readonly tls: TLSSocket,
    readonly raw: Socket,
    readonly suite: string,
    secret: Buffer,
    wire: Buffer[],
  ) {
    this.wire = wire;
    this.#secret = secret;
    tls.on('data', (b: Buffer) => this.received.push(b));
    tls.on('error', (e: Error) => {
      this.error ??= e;
    });
    this.closed = new Promise((resolve) => raw.once('close', () => resolve()));
  }

  /** Connects, handshakes, and has 'ok' echoed (the server's echo handler must be running). */
  static async connect(port: number, ca: string, ciphersuites?: string): Promise<RecordPeer> {
    const raw = netConnect({ host: '127.0.0.1', port });
    raw.setNoDelay(true);
    const wire: Buffer[] = [];
    // node:tls reads and writes through this; a net.Socket given to it directly would be read in
    // C++, past any listener of the test's.
    const between = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        raw.write(chunk, () => done());
      },
      final(done) {
        raw.end();
        done();
      },
    });
    raw.on('data', (b: Buffer) => {
      wire.push(b);
      between.push(b);
    });
    raw.on('end', () => between.push(null));
    raw.on('error', () => undefined);
    between.on('error', () => undefined);
    const tls = tlsConnect({
      socket: between,
      ca,
      servername: 'localhost',
      ...(ciphersuites ? { ciphersuites } : {}),
    });
    let secret: Buffer | undefined;
    tls.on('keylog', (line: Buffer) => {
      const [label, , hex] = line.toString('latin1').trim().split(' ');
      if (label === 'CLIENT_TRAFFIC_SECRET_0') secret = Buffer.from(hex!, 'hex');
    });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    const suite = tls.getCipher().standardName;
    if (secret === undefined || SUITES[suite] === undefined) throw new Error(`no usable secret for ${suite}`);
    const peer = new RecordPeer(tls, raw, suite, secret, wire);
    await peer.waitFor(
      () => Buffer.concat(peer.received).toString() === 'ok',
      'the first echo',
      () => tls.write('ok'),
    );
    peer.received.length = 0;
    return peer;
  }

  /** Polls `check` (after running `start`) for up to `ms`; throws naming `what` when it never holds. */
  async waitFor(check: () => boolean, what: string, start?: () => unknown, ms = 10_000): Promise<void> {
    start?.();
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Plaintext received so far. */
  text(): Buffer {
    return Buffer.concat(this.received);
  }

  /**
   * Seals `inner` (the whole TLSInnerPlaintext: content, content type, padding; the test builds
   * malformed ones) as the next record, `seqSkip` sequence numbers ahead (a wrong one for > 0).
   */
  sealInner(inner: Buffer, seqSkip = 0): Buffer {
    const s = SUITES[this.suite]!;
    const key = expandLabel(s.hash, this.#secret, 'key', s.keyLen);
    const nonce = expandLabel(s.hash, this.#secret, 'iv', 12);
    const seq = this.#seq + BigInt(seqSkip);
    nonce.writeBigUInt64BE(nonce.readBigUInt64BE(4) ^ seq, 4);
    const head = header(APPLICATION_DATA, inner.length + 16);
    const cipher = createCipheriv(s.cipher as 'aes-128-gcm', key, nonce, { authTagLength: 16 }).setAAD(head);
    const record = Buffer.concat([head, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
    this.#seq = seq + 1n;
    return record;
  }

  /** The next record: `content` of `type`, then `padding` zero bytes (RFC 8446 5.4). */
  seal(type: number, content: Uint8Array, padding = 0): Buffer {
    return this.sealInner(Buffer.concat([content, Buffer.from([type]), Buffer.alloc(padding)]));
  }

  /** A KeyUpdate record (RFC 8446 4.6.3); the write secret moves on after it. */
  keyUpdate(requested: boolean): Buffer {
    const record = this.seal(HANDSHAKE, Buffer.from([24, 0, 0, 1, requested ? 1 : 0]));
    this.nextKey();
    return record;
  }

  /** Moves the write secret on ("traffic upd"), sequence 0: after a KeyUpdate the test made itself. */
  nextKey(): void {
    const s = SUITES[this.suite]!;
    this.#secret = expandLabel(s.hash, this.#secret, 'traffic upd', s.hashLen);
    this.#seq = 0n;
  }

  /** Writes raw bytes beneath the session. */
  write(bytes: Uint8Array): void {
    this.raw.write(bytes);
  }

  destroy(): void {
    this.tls.destroy();
    this.raw.destroy();
  }
}
