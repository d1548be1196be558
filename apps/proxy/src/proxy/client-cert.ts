/**
 * The value of x-forwarded-client-cert for a verified client certificate, in Envoy's shape:
 * `Hash=<hex SHA-256 of the DER>;Subject="<subject, RFC 4514 order as OpenSSL prints it,
 * comma-separated>"`, with `"` and `\` escaped. Made once per connection, only for mTLS
 * connections of servers that forward the certificate.
 */
import { createHash, X509Certificate } from 'node:crypto';

export function clientCertHeader(der: Uint8Array): string {
  const hash = createHash('sha256').update(der).digest('hex');
  let subject = '';
  try {
    subject = new X509Certificate(der).subject.split('\n').join(',');
  } catch {
    // A certificate OpenSSL verified but node cannot print: the hash still identifies it.
  }
  return `Hash=${hash};Subject="${subject.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
