// The TLS engine's leak-check workload (run by leak-check.mjs under valgrind): contexts with
// several certificates, ALPN, ticket keys and client CAs; full and resumed handshakes in memory;
// SNI to a second certificate; records split across feeds (an incomplete record held) and a full
// plaintext buffer; close_notify; garbage and plain HTTP failures; sessions destroyed explicitly
// and left to the garbage collector. Not a test: valgrind judges it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTls } from '@loch/native';

const loaded = loadTls();
if ('error' in loaded) throw new Error(loaded.error);
const t = loaded.tls;
const dir = process.env.LOCH_LEAK_DIR;
const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
const key = readFileSync(join(dir, 'key.pem'), 'utf8');
const alpn = new Uint8Array([2, 104, 50]);
const cycles = Number(process.argv[2] ?? 20);
const plain = new Uint8Array(65536);

/** Runs two sessions until neither has anything to send. */
function pump(a, b, first) {
  let toB = first;
  let toA;
  for (let i = 0; i < 20 && (toA || toB); i++) {
    if (toB) {
      toA = b.feed(toB, plain);
      toB = undefined;
    }
    if (toA) {
      toB = a.feed(toA, plain);
      toA = undefined;
    }
  }
}

for (let round = 0; round < cycles; round++) {
  const server = new t.TlsContext(true, 0, 0, '', '');
  server.addCertificate(cert, key, ['localhost', '*.x.example'], true);
  server.addCertificate(cert, key, ['other'], false);
  server.setAlpn(alpn);
  server.setTicketKeys(new Uint8Array(160).fill(round & 255));
  server.setCaPem(cert);
  server.setVerify(true, false);
  const client = new t.TlsContext(false, 0, 0, '', '');
  client.setCaPem(cert);
  client.setAlpn(alpn);
  client.addCertificate(cert, key, [], true);
  let ticket;
  for (let i = 0; i < 3; i++) {
    const s = new t.TlsSession(server);
    const c = new t.TlsSession(client);
    c.setServername(i === 2 ? 'other' : 'localhost', i !== 2);
    if (ticket) c.setSession(ticket);
    pump(c, s, c.feed(null, plain));
    const records = c.encrypt([new Uint8Array(40000), new Uint8Array(3)]);
    s.feed(records.subarray(0, 1000), plain); // an incomplete record: held
    s.feed(records.subarray(1000), new Uint8Array(1000));
    while (t.info[1] & t.flags.morePlaintext) s.feed(null, plain);
    ticket = c.session() ?? ticket;
    s.negotiated();
    c.negotiated();
    s.feed(c.shutdown(), plain);
    const garbage = new t.TlsSession(server);
    garbage.feed(new Uint8Array([0x16, 3, 1, 0, 4, 9, 9, 9, 9]), plain);
    garbage.error();
    const http = new t.TlsSession(server);
    http.feed(new TextEncoder().encode('GET /'), plain);
    if (i === 0) {
      s.destroy();
      c.destroy();
      garbage.destroy();
    }
  }
}
globalThis.gc?.();
console.log('leak workload done');
