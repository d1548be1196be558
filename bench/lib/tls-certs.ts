/**
 * TLS material for the HTTPS benchmarks: self-signed certificates made at start with the openssl
 * CLI (ECDSA P-256 and RSA 2048, for `localhost` and 127.0.0.1) and the one TLS policy every peer
 * is configured with (protocol version and cipher suite), so nginx, HAProxy and Loch negotiate
 * the same thing with wrk. Not a PKI for tests (packages/tls/test has its own) and never used to
 * verify anything: the benchmark clients do not check certificates.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The key types the handshake benchmark compares; ECDSA P-256 serves the request benchmark. */
export type CertificateKind = 'ECDSA P-256' | 'RSA 2048';

/** One certificate and its key as PEM files. */
export interface TlsCertificate {
  readonly kind: CertificateKind;
  /** PEM certificate (self-signed: the chain is the certificate). */
  readonly chain: string;
  /** PEM private key (PKCS#8). */
  readonly key: string;
  /** Certificate followed by key in one PEM file: what HAProxy's `crt` reads. */
  readonly combined: string;
}

/** The certificates of one run, in a temp dir of their own. */
export interface TlsCertificates {
  readonly dir: string;
  readonly ecdsa: TlsCertificate;
  readonly rsa: TlsCertificate;
}

const NEW_KEY: Record<CertificateKind, readonly string[]> = {
  'ECDSA P-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
  'RSA 2048': ['-newkey', 'rsa:2048'],
};

/**
 * Makes an ECDSA P-256 and an RSA 2048 self-signed certificate for `localhost` (SANs
 * DNS:localhost and IP:127.0.0.1) with `openssl req`; throws with openssl's output if it fails.
 */
export function writeTlsCertificates(): TlsCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'loch-bench-tls-'));
  const make = (kind: CertificateKind, name: string): TlsCertificate => {
    const chain = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        ...NEW_KEY[kind],
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        chain,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const combined = join(dir, `${name}.pem`);
    writeFileSync(combined, readFileSync(chain, 'utf8') + readFileSync(key, 'utf8'));
    return { kind, chain, key, combined };
  };
  return { dir, ecdsa: make('ECDSA P-256', 'ecdsa-p256'), rsa: make('RSA 2048', 'rsa-2048') };
}

/** The TLS version and cipher suite every peer is pinned to in one run. */
export interface TlsPolicy {
  /** The only protocol version the servers accept. */
  readonly version: 'TLSv1.2' | 'TLSv1.3';
  /** TLS 1.3 suite (OpenSSL `Ciphersuites`), used when version is TLSv1.3. */
  readonly ciphersuites: string;
  /** TLS 1.2 ciphers (OpenSSL cipher string), used when version is TLSv1.2. */
  readonly ciphers: string;
}

/**
 * The policy of a run: only `version`, with AES-128-GCM (Loch's first choice, OpenSSL's fastest
 * with AES-NI). Pinned because the servers' defaults differ: OpenSSL, hence nginx and HAProxy,
 * follow the client's order, and wrk's OpenSSL offers AES-256-GCM first.
 */
export function tlsPolicy(version: TlsPolicy['version'] = 'TLSv1.3'): TlsPolicy {
  return {
    version,
    ciphersuites: 'TLS_AES_128_GCM_SHA256',
    ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256',
  };
}
