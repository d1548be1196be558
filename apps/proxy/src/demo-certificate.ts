/**
 * A self-signed certificate for demos and tests (`pnpm start`'s HTTPS listener): ECDSA P-256,
 * valid 30 days, for the given DNS names and 127.0.0.1, made with the openssl CLI (scripts/setup
 * installs it). Reused while it is valid for a day more. Never for production: a real
 * deployment names its own certificate and key in the config.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Writes (or keeps) `<dir>/<name>.pem` and `<dir>/<name>.key`; returns their paths. */
export function selfSignedCertificate(
  dir: string,
  name = 'localhost',
  dnsNames: readonly string[] = ['localhost'],
): { chain: string; key: string } {
  const chain = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  if (existsSync(chain) && existsSync(key)) {
    try {
      const cert = new X509Certificate(readFileSync(chain));
      if (Date.parse(cert.validTo) - Date.now() > DAY_MS) return { chain, key };
    } catch {
      // Unreadable: make a new one.
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const san = [...dnsNames.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
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
      key,
      '-out',
      chain,
      '-days',
      '30',
      '-subj',
      `/CN=${dnsNames[0] ?? name}`,
      '-addext',
      `subjectAltName=${san}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { chain, key };
}
