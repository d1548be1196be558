// Instructions per response write on the TLS engine alone (issue 13): a server session encrypts
// N gathered writes [head, body] (the ring's EncryptPiecesInto, OpenSSL's record layer) and a
// client session decrypts each, in memory. Run under callgrind; callgrind_annotate's inclusive
// cost of loch::tls::TlsSession::EncryptPiecesInto (the server's part) and of TlsSession::Feed
// (the client's decryption), divided by N, is what one response costs each end. Prints the
// records per write. LOCH_NATIVE_TLS_PATH picks the loch_tls.node (an A/B of two builds).
//
// Usage: (cd packages/tls && valgrind --tool=callgrind node --import tsx bench/encrypt-counts.mjs [head=180] [body=11268] [n=2000])
// (tsx: for bench/lib/tls-certs.ts, whose certificate it serves)
import { readFileSync, rmSync } from 'node:fs';
import { loadTls } from '@loch/native';
import { writeTlsCertificates } from '../../../bench/lib/tls-certs.js';

const [head = 180, body = 11268, n = 2000] = process.argv.slice(2).map(Number);
const loaded = loadTls();
if (!('tls' in loaded)) throw new Error(loaded.error);
const t = loaded.tls;
// bench/lib/tls-certs.ts's ECDSA P-256 certificate (the one the request benchmarks serve).
const certs = writeTlsCertificates();
const cert = readFileSync(certs.ecdsa.chain, 'utf8');
const sctx = new t.TlsContext(true, 0x304, 0x304, '', 'TLS_AES_128_GCM_SHA256');
sctx.addCertificate(cert, readFileSync(certs.ecdsa.key, 'utf8'), ['localhost'], true);
rmSync(certs.dir, { recursive: true, force: true });
const cctx = new t.TlsContext(false, 0x304, 0x304, '', 'TLS_AES_128_GCM_SHA256');
cctx.setCaPem(cert);
const server = new t.TlsSession(sctx);
const client = new t.TlsSession(cctx);
client.setServername('localhost', true);
const plain = new Uint8Array(64 * 1024);
let toServer = client.feed(null, plain);
let toClient;
for (let i = 0; i < 10 && (toServer || toClient); i++) {
  if (toServer) [toClient, toServer] = [server.feed(toServer, plain), undefined];
  if (toClient) [toServer, toClient] = [client.feed(toClient, plain), undefined];
}
const pieces = [new Uint8Array(head).fill(104), new Uint8Array(body).fill(98)];
let records = 0;
let got = 0;
for (let i = 0; i < n; i++) {
  const out = server.encrypt(pieces);
  if (out === undefined) throw new Error(`encrypt failed: ${server.error()?.message}`);
  for (let at = 0; at < out.byteLength; records++) at += 5 + ((out[at + 3] << 8) | out[at + 4]);
  client.feed(out, plain);
  got += t.info[0];
  while (t.info[1] & t.flags.morePlaintext) {
    client.feed(null, plain);
    got += t.info[0];
  }
}
if (got !== n * (head + body)) throw new Error(`decrypted ${got} bytes, wrote ${n * (head + body)}`);
console.log(`${n} writes of [${head}, ${body}] bytes: ${records / n} records per write`);
