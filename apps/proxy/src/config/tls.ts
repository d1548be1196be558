/**
 * A server's `tls` table -> its effective TLS settings: certificate and key files read as PEM
 * (relative paths from the config file's directory), Monolake's single `chain`/`key` pair or
 * Loch's `certificates` list (several, chosen by SNI), and a trial TLS context built from them,
 * so a key that does not match its certificate, an unreadable file or a bad cipher string is a
 * config error naming the key (a reload with such an error keeps the running config). Not for
 * serving: the worker builds its own context from the result (worker.ts).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { generateTicketKeys, TlsServerContext } from '@loch/tls';
import type { ConfigIssue } from './config-error.js';
import type { TlsFile, TlsServerConfig } from './schema.js';

export { certificateWarnings, keepTicketKeys, redactSecrets, tlsFiles, tlsNotes } from './tls-view.js';

/** Default handshake deadline (ms): a handshake takes a few round trips, never seconds. */
export const DEFAULT_HANDSHAKE_MS = 10_000;

/**
 * Default session ticket key rotation (ms): 12 h, as Caddy and Envoy deployments rotate. With the
 * previous key kept for decryption, a ticket resumes for 12-24 h, and a stolen key opens at
 * most a day of recorded TLS 1.2 sessions.
 */
export const DEFAULT_TICKET_ROTATION_MS = 12 * 3_600_000;

/** The longest rotation period: a Node timer's limit (2^31 - 1 ms, about 596 h); longer would fire at once, forever. */
export const MAX_TICKET_ROTATION_MS = 2 ** 31 - 1;

/** The TLS settings of `file`, or undefined after adding the reasons to `issues`. */
export function normalizeTls(
  file: TlsFile,
  at: string,
  issues: ConfigIssue[],
  baseDir: string,
  handshakeTimeout: number,
  ticketRotation: number = DEFAULT_TICKET_ROTATION_MS,
): TlsServerConfig | undefined {
  const start = issues.length;
  const files: string[] = [];
  /** Each pair's name in the config and its files (full paths), in the order of `pairs`. */
  const pairFiles: { label: string; chain: string; key: string }[] = [];
  const full = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const read = (path: string, key: string): string => {
    const fullPath = full(path);
    files.push(fullPath);
    let text: string;
    try {
      text = readFileSync(fullPath, 'utf8');
    } catch (err) {
      issues.push({ path: `${at}.${key}`, message: `cannot read ${fullPath}: ${(err as Error).message}` });
      return '';
    }
    // @loch/tls takes PEM text or a file path: text without a PEM block handed on would be taken
    // for a path (a file holding a path would be followed to a pair the config does not name)
    // and, failing that, echoed into the error (a DER private key in the log). Say which file,
    // never what it holds.
    if (!text.includes('-----BEGIN ')) {
      issues.push({ path: `${at}.${key}`, message: `${fullPath} is not PEM (no "-----BEGIN" block)` });
      return '';
    }
    return text;
  };
  const pairs: TlsServerConfig['certificates'][number][] = [];
  if (file.chain !== undefined || file.key !== undefined) {
    if (file.chain === undefined || file.key === undefined) {
      issues.push({ path: at, message: 'give both "chain" and "key"' });
    } else {
      pairs.push({
        chain: read(file.chain, 'chain'),
        key: read(file.key, 'key'),
        names: undefined,
        default: true,
        file: file.chain,
      });
      pairFiles.push({ label: 'chain/key', chain: full(file.chain), key: full(file.key) });
    }
  }
  (file.certificates ?? []).forEach((c, i) => {
    const cat = `certificates[${i}]`;
    pairs.push({
      chain: read(c.chain, `${cat}.chain`),
      key: read(c.key, `${cat}.key`),
      names: c.names,
      // Monolake's pair, when given, stays the default.
      default: pairs.length === 0 ? (c.default ?? false) : false,
      file: c.chain,
    });
    pairFiles.push({ label: cat, chain: full(c.chain), key: full(c.key) });
  });
  if (pairs.length === 0 && issues.length === start) {
    issues.push({
      path: at,
      message: 'a TLS server needs a certificate: "chain" and "key", or "certificates"',
    });
  }
  if (
    file.client_certificate !== undefined &&
    file.client_certificate !== 'off' &&
    file.client_ca === undefined
  ) {
    issues.push({ path: `${at}.client_certificate`, message: 'needs "client_ca"' });
  }
  const clientCa = file.client_ca === undefined ? undefined : read(file.client_ca, 'client_ca');
  if (ticketRotation > MAX_TICKET_ROTATION_MS) {
    issues.push({
      path: `${at}.session_ticket_rotation`,
      message: 'at most "596h" (the longest timer); "0s" turns rotation off',
    });
  }
  if (issues.length > start) return undefined;
  const config: TlsServerConfig = {
    certificates: pairs,
    minVersion: file.min_version,
    maxVersion: file.max_version,
    ciphers: file.ciphers,
    ciphersuites: file.ciphersuites,
    clientCa,
    clientCertificate:
      file.client_certificate === 'optional'
        ? 'request'
        : file.client_certificate === 'off' || clientCa === undefined
          ? 'none'
          : 'require',
    handshakeTimeout,
    forwardClientCertificate: file.forward_client_certificate ?? false,
    ticketKeys: generateTicketKeys(),
    ticketRotation,
    files,
    records: file.records,
    stack: file.stack,
  };
  try {
    // A trial context: OpenSSL checks each key against its certificate, the cipher strings,
    // the CA file. The worker builds its own (contexts do not cross threads).
    tlsServerContext(config, ['http/1.1']);
  } catch (err) {
    // @loch/tls names a pair by its place in the list it was given (certificates[i], Monolake's
    // chain/key pair first when present); a reload that SIGHUP or a config edit started has
    // nothing else saying which files are bad, so name the pair as the config does, and its files.
    const message = (err as Error).message.replace(/certificates\[(\d+)\]/g, (place, i: string) => {
      const pair = pairFiles[Number(i)];
      return pair === undefined ? place : `${pair.label} (${pair.chain}, ${pair.key})`;
    });
    issues.push({ path: at, message });
    return undefined;
  }
  return config;
}

/** The OpenSSL context of a TLS server config, offering `alpn` in preference order. */
export function tlsServerContext(config: TlsServerConfig, alpn: readonly string[]): TlsServerContext {
  return new TlsServerContext({
    certificates: config.certificates.map((c) => ({
      chain: c.chain,
      key: c.key,
      ...(c.names === undefined ? {} : { names: c.names }),
      default: c.default,
    })),
    alpn,
    ...(config.minVersion === undefined ? {} : { minVersion: config.minVersion }),
    ...(config.maxVersion === undefined ? {} : { maxVersion: config.maxVersion }),
    ...(config.ciphers === undefined ? {} : { ciphers: config.ciphers }),
    ...(config.ciphersuites === undefined ? {} : { ciphersuites: config.ciphersuites }),
    ...(config.clientCa === undefined ? {} : { clientCa: config.clientCa }),
    clientCertificate: config.clientCertificate,
    handshakeTimeout: config.handshakeTimeout,
    ticketKeys: config.ticketKeys,
    ...(config.records === undefined ? {} : { records: config.records }),
  });
}
