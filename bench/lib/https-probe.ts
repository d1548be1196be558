/**
 * The HTTPS readiness probe of the TLS benchmarks: one GET over a fresh TLS connection (no
 * certificate check: the benchmark's certificates are self-signed), retried until the peer
 * answers 200 with the whole body, and what was negotiated (version, cipher, key exchange
 * group). A peer that answers in plain HTTP, or not at all, fails the probe with the last reason.
 * Not a client for load (wrk does that).
 */

import { setTimeout as delay } from 'node:timers/promises';
import { connect } from 'node:tls';

/** What the probe's connection negotiated. */
export interface HttpsProbe {
  /** "TLSv1.3". */
  readonly protocol: string;
  /** OpenSSL/IANA suite name, e.g. "TLS_AES_128_GCM_SHA256". */
  readonly cipher: string;
  /** Key exchange group, e.g. "X25519". */
  readonly group: string;
}

/** One GET of `path` over TLS; resolves with what was negotiated once the response is complete. */
function probeOnce(host: string, port: number, path: string, timeoutMs: number): Promise<HttpsProbe> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, servername: 'localhost', rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    let received = Buffer.alloc(0);
    let negotiated: HttpsProbe | undefined;
    socket.once('secureConnect', () => {
      // Empty ({}) on a resumed or non-ECDHE connection; the probe's are full ECDHE handshakes.
      const key = socket.getEphemeralKeyInfo() as { type?: string; name?: string } | null;
      negotiated = {
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: socket.getCipher().standardName,
        group: key?.name ?? key?.type ?? 'unknown',
      };
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = received.subarray(0, end).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
      if (length !== undefined && received.length < end + 4 + Number(length)) return;
      clearTimeout(timer);
      socket.destroy();
      if (status !== '200') reject(new Error(`status ${status ?? 'unreadable'}: ${head.split('\r\n')[0]}`));
      else resolve(negotiated!);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before a complete response'));
    });
  });
}

/**
 * Resolves once `GET https://host:port<path>` answers 200 with its full body over TLS (or throws
 * after `timeoutMs` with the last failure: a handshake error, a refused connection, a status).
 */
export async function waitForHttps(
  port: number,
  path = '/',
  host = '127.0.0.1',
  timeoutMs = 10_000,
): Promise<HttpsProbe> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      return await probeOnce(host, port, path, 2000);
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > until)
      throw new Error(`GET https://${host}:${port}${path} not 200 over TLS after ${timeoutMs} ms (${last})`);
    await delay(100);
  }
}
