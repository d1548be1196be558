/**
 * TlsServerContext takes each certificate, key and CA as PEM text or a file path. Text that is
 * neither (a mangled PEM, a DER key read as text) must be refused without echoing it: it may be
 * a private key, and errors end up in logs.
 */
import { TlsConfigError, TlsServerContext } from '@loch/tls';
import { describe, expect, it } from 'vitest';
import { makeTestPki } from './certs.js';

describe('PEM text or a file path', () => {
  const pki = makeTestPki();
  const mangled = pki.localhost.key.replaceAll('-----BEGIN', '----BEGIN');
  const secretLine = pki.localhost.key.split('\n')[1]!;

  it('refuses a key that is neither PEM nor a path without showing it', () => {
    let error: unknown;
    try {
      new TlsServerContext({ certificates: [{ chain: pki.localhost.chain, key: mangled }] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TlsConfigError);
    expect((error as Error).message).toContain('certificates[0].key');
    expect((error as Error).message).not.toContain(secretLine);
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain(secretLine);
  });

  it('still reads PEM files by path', () => {
    expect(
      () =>
        new TlsServerContext({
          certificates: [{ chain: pki.localhost.chainFile, key: pki.localhost.keyFile }],
        }),
    ).not.toThrow();
  });
});
