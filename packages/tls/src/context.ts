/**
 * TLS contexts: what a server or a client is configured with, built once (per worker) and shared
 * by every connection. Certificates and keys come as PEM text or PEM file paths; the context
 * parses them once into the engine's SSL_CTX. Not for connections: those are TlsStreams
 * (stream.ts), made by tlsAccept/tlsConnect (handshake.ts).
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { NativeTlsContext } from '@loch/native';
import { TlsConfigError } from './errors.js';
import { tlsEngine } from './internal/engine.js';

/** A protocol version Loch speaks. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** A certificate to serve (or, on a client, to present for mTLS). */
export interface TlsCertificateOptions {
  /** The certificate chain, leaf first: PEM text, or the path of a PEM file. */
  readonly chain: string;
  /** The private key: PEM text, or the path of a PEM file. */
  readonly key: string;
  /**
   * Server names this certificate answers for (SNI): exact ("api.example.com") or wildcard
   * ("*.example.com", one label). Default: the certificate's DNS subject alternative names, or
   * its common name when it has none.
   */
  readonly names?: readonly string[];
  /** Serves clients that send no server name or an unknown one. Default: the first certificate. */
  readonly default?: boolean;
}

/** Options every context takes. */
export interface TlsCommonOptions {
  /** ALPN protocols: the server's preference order, or what a client offers (e.g. ['h2', 'http/1.1']). */
  readonly alpn?: readonly string[];
  /** Lowest version accepted. Default 'TLSv1.2'. */
  readonly minVersion?: TlsVersion;
  /** Highest version accepted. Default 'TLSv1.3'. */
  readonly maxVersion?: TlsVersion;
  /**
   * TLS 1.2 cipher list (OpenSSL syntax). Default: ECDHE with AES-GCM or ChaCha20-Poly1305 only
   * (Mozilla's intermediate profile).
   */
  readonly ciphers?: string;
  /** TLS 1.3 suites (OpenSSL syntax). Default: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305. */
  readonly ciphersuites?: string;
}

/** Options of TlsServerContext. */
export interface TlsServerContextOptions extends TlsCommonOptions {
  /** At least one certificate; several are chosen by SNI. */
  readonly certificates: readonly TlsCertificateOptions[];
  /**
   * Session ticket keys, n * 80 bytes (see generateTicketKeys): the first encrypts new tickets,
   * all of them decrypt. Give every worker the same bytes so a client resumes on any worker.
   * Default: a random key of this context's own.
   */
  readonly ticketKeys?: Uint8Array;
  /** CA certificates (PEM text or a path) that client certificates must chain to: mTLS. */
  readonly clientCa?: string;
  /**
   * Whether a client certificate is asked for: 'require' (the default with `clientCa`) fails the
   * handshake without a valid one, 'request' asks and verifies one if sent, 'none' never asks.
   */
  readonly clientCertificate?: 'none' | 'request' | 'require';
  /** Default handshake deadline of tlsAccept, in milliseconds. Default 10,000. */
  readonly handshakeTimeout?: number;
  /**
   * Who runs the TLS 1.3 record layer once a handshake is done: 'loch' (Loch's own,
   * native/src/tls13_record.h: records decrypted where they were received and sealed where they
   * are sent, one copy fewer each way; see the README's "Loch's record layer") or 'openssl'
   * (OpenSSL's, the opt-out). Default: the LOCH_TLS_RECORDS environment variable ('loch' or
   * 'openssl'), else 'loch'. TLS 1.2, the CCM suites and a take-over point that is not clean stay
   * on OpenSSL whatever this says.
   */
  readonly records?: TlsRecordLayer;
  /**
   * TLS 1.3 session tickets sent after a full handshake, 0..16. Default 1 (OpenSSL's is 2; a
   * client resumes with one, and none is sent when a ticket under the current key resumed).
   */
  readonly ticketsPerHandshake?: number;
}

/** Who runs a server's TLS 1.3 record layer after the handshake. */
export type TlsRecordLayer = 'openssl' | 'loch';

/** Options of TlsClientContext. */
export interface TlsClientContextOptions extends TlsCommonOptions {
  /**
   * CAs the server's certificate must chain to: 'system' (the default: the distribution's bundle
   * at /etc/ssl/certs/ca-certificates.crt, else Node's built-in Mozilla list), or PEM text or file
   * paths.
   */
  readonly ca?: 'system' | string | readonly string[];
  /**
   * Verify the server's certificate and host name. Default true; false only for tests and
   * deliberately unauthenticated links.
   */
  readonly verify?: boolean;
  /** A client certificate to present when a server asks (mTLS). */
  readonly certificate?: Pick<TlsCertificateOptions, 'chain' | 'key'>;
  /**
   * Sessions kept for resumption, one per server name and ALPN offer (most recent first out).
   * 0 turns resumption off. Default 256.
   */
  readonly sessionCacheSize?: number;
  /** Default handshake deadline of tlsConnect, in milliseconds. Default 10,000. */
  readonly handshakeTimeout?: number;
}

/** Bytes of one ticket key: 16 name, 32 HMAC key, 32 AES-256 key. */
export const TICKET_KEY_BYTES = 80;

/** `count` fresh random ticket keys, for TlsServerContextOptions.ticketKeys and rotation. */
export function generateTicketKeys(count = 1): Uint8Array {
  if (!Number.isInteger(count) || count < 1)
    throw new TlsConfigError('generateTicketKeys(count): count must be >= 1');
  return new Uint8Array(randomBytes(TICKET_KEY_BYTES * count));
}

/**
 * The key set after one rotation of `keys` (n * 80 bytes): `next` (default: a fresh random key)
 * first, so it encrypts new tickets, then the `keep` most recent keys of `keys`, which still
 * decrypt: a ticket issued before this rotation resumes, one issued `keep + 1` rotations ago does
 * not. Pure, so one process can compute the set and hand it to every worker's setTicketKeys.
 */
export function rotatedTicketKeys(
  keys: Uint8Array,
  next: Uint8Array = generateTicketKeys(),
  keep = 1,
): Uint8Array {
  if (next.byteLength !== TICKET_KEY_BYTES)
    throw new TlsConfigError(`a ticket key is ${TICKET_KEY_BYTES} bytes`);
  if (keys.byteLength % TICKET_KEY_BYTES !== 0)
    throw new TlsConfigError(`ticketKeys must be a multiple of ${TICKET_KEY_BYTES} bytes`);
  const kept = Math.min(Math.max(0, Math.floor(keep)), keys.byteLength / TICKET_KEY_BYTES);
  const all = new Uint8Array((kept + 1) * TICKET_KEY_BYTES);
  all.set(next, 0);
  all.set(keys.subarray(0, kept * TICKET_KEY_BYTES), TICKET_KEY_BYTES);
  return all;
}

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';
const VERSIONS: Record<TlsVersion, number> = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };

/** PEM text as given, or the contents of the file it names. */
function pemOf(value: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new TlsConfigError(`${what}: expected PEM text or a file path`);
  if (value.includes('-----BEGIN ')) return value;
  // Text that is neither PEM nor a plausible path (a DER key read as text, a mangled PEM) is
  // refused without being echoed: it may be a private key.
  if (/[\n\r\0]/.test(value) || value.length > 4096)
    throw new TlsConfigError(`${what}: expected PEM text or a file path (the value is neither; not shown)`);
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new TlsConfigError(
      `${what}: cannot read ${value}: ${(error as Error).message}`,
      'ERR_LOCH_TLS_CONFIG',
      {
        cause: error,
      },
    );
  }
}

/** The wire form of an ALPN list (length-prefixed names). */
export function encodeAlpn(protocols: readonly string[]): Uint8Array {
  const names = protocols.map((p) => Buffer.from(p, 'latin1'));
  const out = new Uint8Array(names.reduce((n, b) => n + 1 + b.byteLength, 0));
  let at = 0;
  for (const [i, name] of names.entries()) {
    if (name.byteLength === 0 || name.byteLength > 255) {
      throw new TlsConfigError(`alpn: protocol name ${JSON.stringify(protocols[i])} must be 1..255 bytes`);
    }
    out[at++] = name.byteLength;
    out.set(name, at);
    at += name.byteLength;
  }
  return out;
}

function versionOf(version: TlsVersion | undefined, what: string): number {
  if (version === undefined) return 0;
  const v = VERSIONS[version];
  if (v === undefined)
    throw new TlsConfigError(`${what}: expected 'TLSv1.2' or 'TLSv1.3', got ${JSON.stringify(version)}`);
  return v;
}

function timeoutOf(value: number | undefined): number {
  if (value === undefined) return DEFAULT_HANDSHAKE_TIMEOUT;
  if (!(value > 0) || !Number.isFinite(value))
    throw new TlsConfigError('handshakeTimeout must be a positive number of ms');
  return value;
}

/** Throws TlsConfigError for an error string from the engine. */
function check(result: string | undefined, what: string): void {
  if (result !== undefined) throw new TlsConfigError(`${what}: ${result}`);
}

function createNative(server: boolean, options: TlsCommonOptions): NativeTlsContext {
  const engine = tlsEngine();
  try {
    return new engine.TlsContext(
      server,
      versionOf(options.minVersion, 'minVersion'),
      versionOf(options.maxVersion, 'maxVersion'),
      options.ciphers ?? '',
      options.ciphersuites ?? '',
    );
  } catch (error) {
    if (error instanceof TlsConfigError) throw error;
    throw new TlsConfigError((error as Error).message, 'ERR_LOCH_TLS_CONFIG', { cause: error });
  }
}

/** The record layer when neither the option nor LOCH_TLS_RECORDS says: Loch's own. */
const DEFAULT_RECORD_LAYER: TlsRecordLayer = 'loch';

function recordLayerOf(value: TlsRecordLayer | undefined): TlsRecordLayer {
  const chosen = value ?? process.env.LOCH_TLS_RECORDS ?? DEFAULT_RECORD_LAYER;
  if (chosen !== 'openssl' && chosen !== 'loch') {
    const where = value === undefined ? 'LOCH_TLS_RECORDS' : 'records';
    throw new TlsConfigError(`${where} must be 'openssl' or 'loch', not '${String(chosen)}'`);
  }
  return chosen;
}

/** The names a certificate answers for when none are given: DNS SANs, else the CN. */
function namesOf(chainPem: string): string[] {
  const leaf = new X509Certificate(chainPem);
  const names: string[] = [];
  for (const entry of (leaf.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject);
    if (cn?.[1] !== undefined) names.push(cn[1]);
  }
  return names;
}

function addCertificate(
  native: NativeTlsContext,
  cert: TlsCertificateOptions,
  isDefault: boolean,
  what: string,
) {
  const chain = pemOf(cert.chain, `${what}.chain`);
  const key = pemOf(cert.key, `${what}.key`);
  let names: readonly string[];
  try {
    names = cert.names ?? namesOf(chain);
  } catch (error) {
    throw new TlsConfigError(`${what}.chain: not a PEM certificate: ${(error as Error).message}`);
  }
  check(native.addCertificate(chain, key, names, isDefault), what);
}

let nativeOfServer: (context: TlsServerContext) => NativeTlsContext;
let nativeOfClient: (context: TlsClientContext) => NativeTlsContext;

/** The engine context behind a TlsServerContext or TlsClientContext (for stream.ts). */
export function nativeContext(context: TlsServerContext | TlsClientContext): NativeTlsContext {
  return context instanceof TlsServerContext ? nativeOfServer(context) : nativeOfClient(context);
}

/**
 * A server's TLS configuration: certificates chosen by SNI (exact, wildcard, default), ALPN in
 * the server's preference order, TLS 1.2/1.3, session tickets (keys shared and rotated), and
 * optional client-certificate verification. One per worker; every connection shares it.
 */
export class TlsServerContext {
  readonly #native: NativeTlsContext;
  #ticketKeys: Uint8Array[];
  /** Default handshake deadline of tlsAccept, in milliseconds. */
  readonly handshakeTimeout: number;
  /** The ALPN protocols, in preference order. */
  readonly alpn: readonly string[];
  /** Who runs the TLS 1.3 record layer after the handshake (option `records`). */
  readonly records: TlsRecordLayer;

  static {
    nativeOfServer = (context) => context.#native;
  }

  constructor(options: TlsServerContextOptions) {
    const certificates = options.certificates;
    if (!Array.isArray(certificates) || certificates.length === 0) {
      throw new TlsConfigError('certificates: a server needs at least one certificate');
    }
    this.handshakeTimeout = timeoutOf(options.handshakeTimeout);
    this.#native = createNative(true, options);
    this.records = recordLayerOf(options.records);
    if (this.records === 'loch') this.#native.setOwnRecords(true);
    const tickets = options.ticketsPerHandshake;
    if (tickets !== undefined) {
      if (!Number.isInteger(tickets) || tickets < 0 || tickets > 16)
        throw new TlsConfigError('ticketsPerHandshake must be an integer within 0..16');
      this.#native.setNumTickets(tickets);
    }
    const defaultIndex = Math.max(
      0,
      certificates.findIndex((c) => c.default === true),
    );
    // The default goes in first so that it is the context's own certificate.
    addCertificate(this.#native, certificates[defaultIndex]!, true, `certificates[${defaultIndex}]`);
    certificates.forEach((cert, i) => {
      if (i !== defaultIndex) addCertificate(this.#native, cert, false, `certificates[${i}]`);
    });
    this.alpn = [...(options.alpn ?? [])];
    if (this.alpn.length > 0) check(this.#native.setAlpn(encodeAlpn(this.alpn)), 'alpn');
    const mode = options.clientCertificate ?? (options.clientCa === undefined ? 'none' : 'require');
    if (mode !== 'none') {
      if (options.clientCa === undefined)
        throw new TlsConfigError(`clientCertificate '${mode}' needs clientCa`);
      check(this.#native.setCaPem(pemOf(options.clientCa, 'clientCa')), 'clientCa');
      this.#native.setVerify(true, mode === 'require');
    }
    this.#ticketKeys = [];
    this.setTicketKeys(options.ticketKeys ?? generateTicketKeys());
  }

  /**
   * Connections this context's handshakes moved to Loch's record layer (`loch`), and TLS 1.3 ones
   * that stayed on OpenSSL because the point was not clean to take over at (`declined`).
   */
  recordStats(): { loch: number; declined: number } {
    return this.#native.recordStats();
  }

  /**
   * Replaces the ticket keys (n * 80 bytes): the first encrypts new tickets, all decrypt. Takes
   * effect for the next handshake; open connections are not affected.
   */
  setTicketKeys(keys: Uint8Array): void {
    if (!(keys instanceof Uint8Array) || keys.byteLength === 0 || keys.byteLength % TICKET_KEY_BYTES !== 0) {
      throw new TlsConfigError(`ticketKeys must be a non-empty multiple of ${TICKET_KEY_BYTES} bytes`);
    }
    check(this.#native.setTicketKeys(keys), 'ticketKeys');
    const list: Uint8Array[] = [];
    for (let at = 0; at < keys.byteLength; at += TICKET_KEY_BYTES)
      list.push(keys.slice(at, at + TICKET_KEY_BYTES));
    this.#ticketKeys = list;
  }

  /**
   * Rotates: `next` (default: a fresh random key) encrypts from now on, and the `keep` most
   * recent keys before it still decrypt, so tickets issued a moment ago keep resuming. Returns
   * the new key set (to hand to the other workers' setTicketKeys).
   */
  rotateTicketKeys(next: Uint8Array = generateTicketKeys(), keep = 1): Uint8Array {
    const current = new Uint8Array(this.#ticketKeys.length * TICKET_KEY_BYTES);
    for (const [i, k] of this.#ticketKeys.entries()) current.set(k, i * TICKET_KEY_BYTES);
    const all = rotatedTicketKeys(current, next, keep);
    this.setTicketKeys(all);
    return all;
  }
}

/**
 * A client's TLS configuration: the CAs a server must chain to (system ones by default), host
 * name verification, ALPN offer, an optional client certificate, and a small session cache so a
 * second connection to the same server resumes.
 */
export class TlsClientContext {
  readonly #native: NativeTlsContext;
  readonly #sessions = new Map<string, Uint8Array>();
  readonly #sessionCacheSize: number;
  /** Whether server certificates and host names are verified. */
  readonly verify: boolean;
  /** The ALPN protocols offered by default. */
  readonly alpn: readonly string[];
  /** Default handshake deadline of tlsConnect, in milliseconds. */
  readonly handshakeTimeout: number;

  static {
    nativeOfClient = (context) => context.#native;
  }

  constructor(options: TlsClientContextOptions = {}) {
    this.handshakeTimeout = timeoutOf(options.handshakeTimeout);
    this.#native = createNative(false, options);
    this.verify = options.verify ?? true;
    this.#native.setVerify(this.verify, this.verify);
    if (this.verify) {
      const ca = options.ca ?? 'system';
      if (ca === 'system') {
        if (existsSync(SYSTEM_CA_FILE)) check(this.#native.loadCaFile(SYSTEM_CA_FILE), 'ca');
        else check(this.#native.setCaPem(rootCertificates.join('\n')), 'ca');
      } else {
        const list = typeof ca === 'string' ? [ca] : ca;
        check(this.#native.setCaPem(list.map((c, i) => pemOf(c, `ca[${i}]`)).join('\n')), 'ca');
      }
    }
    if (options.certificate !== undefined)
      addCertificate(this.#native, { ...options.certificate, names: [] }, true, 'certificate');
    this.alpn = [...(options.alpn ?? [])];
    if (this.alpn.length > 0) check(this.#native.setAlpn(encodeAlpn(this.alpn)), 'alpn');
    const size = options.sessionCacheSize ?? 256;
    if (!Number.isInteger(size) || size < 0)
      throw new TlsConfigError('sessionCacheSize must be an integer >= 0');
    this.#sessionCacheSize = size;
  }

  /** The session kept for `key` (server name and ALPN offer), if any. */
  sessionFor(key: string): Uint8Array | undefined {
    return this.#sessions.get(key);
  }

  /** Keeps `session` for `key`, dropping the oldest entry beyond the cache size. */
  keepSession(key: string, session: Uint8Array): void {
    if (this.#sessionCacheSize === 0) return;
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    if (this.#sessions.size > this.#sessionCacheSize) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#sessions.delete(oldest);
    }
  }

  /** Forgets every kept session (e.g. after the server's keys changed). */
  clearSessions(): void {
    this.#sessions.clear();
  }
}
