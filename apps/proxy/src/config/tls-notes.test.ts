/**
 * A server's tls table, the keys that change nothing on the wire or pick Loch's default: Monolake's
 * `stack = "rustls" | "native_tls"` loads and is noted as served by OpenSSL (issue 13: "accepted
 * and noted"), and `records` absent means Loch's own TLS 1.3 record layer, `"openssl"` the opt-out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../demo-certificate.js';
import { parseConfig } from './load.js';
import { tlsNotes, tlsServerContext } from './tls.js';

let dir: string;
let cert: { chain: string; key: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'loch-tls-notes-'));
  cert = selfSignedCertificate(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (tls: string) =>
  parseConfig(`
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "${cert.chain}", key = "${cert.key}"${tls} }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]

[servers.plain]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.plain.routes]]
path = "/"
upstreams = [{ endpoint = "http://127.0.0.1:9000" }]
`);

describe('tls.stack (Monolake)', () => {
  it.each(['rustls', 'native_tls'])('"%s" loads and is noted as served by OpenSSL', (stack) => {
    const c = config(`, stack = "${stack}"`);
    expect(c.servers.find((s) => s.key === 'web')?.tls?.stack).toBe(stack);
    expect(tlsNotes(c)).toEqual([
      `servers.web.tls.stack = "${stack}": accepted; Loch serves TLS with OpenSSL (node's) whichever stack is named`,
    ]);
  });

  it('no stack key, no note', () => {
    expect(tlsNotes(config(''))).toEqual([]);
  });
});

describe('tls.records', () => {
  it('absent: Loch\'s record layer (unless LOCH_TLS_RECORDS says); "openssl" opts out, winning over the variable', () => {
    const previous = process.env.LOCH_TLS_RECORDS;
    const layer = (tls: string) => tlsServerContext(config(tls).servers[0]!.tls!, ['http/1.1']).records;
    try {
      delete process.env.LOCH_TLS_RECORDS;
      expect(layer('')).toBe('loch');
      expect(layer(', records = "openssl"')).toBe('openssl');
      process.env.LOCH_TLS_RECORDS = 'openssl';
      expect(layer('')).toBe('openssl');
      expect(layer(', records = "loch"')).toBe('loch');
      process.env.LOCH_TLS_RECORDS = 'loch';
      expect(layer(', records = "openssl"')).toBe('openssl');
    } finally {
      if (previous === undefined) delete process.env.LOCH_TLS_RECORDS;
      else process.env.LOCH_TLS_RECORDS = previous;
    }
  });
});
