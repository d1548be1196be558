/**
 * Throwaway certificates for the TLS suites, made at test time with the openssl CLI (ECDSA P-256,
 * valid two days) in a temp directory: a trusted CA and an untrusted one, server certificates
 * for exact, wildcard and default names, one for localhost from the untrusted CA, and a client
 * certificate for mTLS. Not a test itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One certificate: PEM text and the paths of its files. */
export interface Issued {
  readonly chain: string;
  readonly key: string;
  readonly chainFile: string;
  readonly keyFile: string;
}

/** Everything the suites use. */
export interface TestPki {
  readonly dir: string;
  /** The trusted CA's certificate (PEM) and its file. */
  readonly ca: string;
  readonly caFile: string;
  /** A CA nobody trusts. */
  readonly otherCa: string;
  /** localhost and 127.0.0.1, from the trusted CA. */
  readonly localhost: Issued;
  /** a.example.com (exact). */
  readonly exact: Issued;
  /** *.wild.example.com. */
  readonly wildcard: Issued;
  /** default.example.com: what unknown names get. */
  readonly fallback: Issued;
  /** localhost from the untrusted CA. */
  readonly untrusted: Issued;
  /** A client certificate (CN=loch-client) from the trusted CA. */
  readonly client: Issued;
  /** A client certificate from the untrusted CA. */
  readonly untrustedClient: Issued;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=Loch test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

let serial = 1000;

function issue(dir: string, ca: string, name: string, cn: string, sans: string[]): Issued {
  openssl(dir, [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth,clientAuth',
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
  ];
  writeFileSync(join(dir, `${name}.ext`), `${ext.join('\n')}\n`);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    String(serial++),
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  ]);
  const chainFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { chain: readFileSync(chainFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), chainFile, keyFile };
}

/** Makes the test PKI (about 0.2 s); call remove() when done. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'loch-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    caFile: join(dir, 'ca.pem'),
    otherCa: readFileSync(join(dir, 'other-ca.pem'), 'utf8'),
    localhost: issue(dir, 'ca', 'localhost', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']),
    exact: issue(dir, 'ca', 'exact', 'a.example.com', ['DNS:a.example.com']),
    wildcard: issue(dir, 'ca', 'wildcard', '*.wild.example.com', ['DNS:*.wild.example.com']),
    fallback: issue(dir, 'ca', 'fallback', 'default.example.com', ['DNS:default.example.com']),
    untrusted: issue(dir, 'other-ca', 'untrusted', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']),
    client: issue(dir, 'ca', 'client', 'loch-client', []),
    untrustedClient: issue(dir, 'other-ca', 'untrusted-client', 'loch-intruder', []),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
