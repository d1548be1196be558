/**
 * Instructions of HttpHeaders.removeHopByHop on nginx's response head (issue 18): N heads
 * decoded (ResponseDecoder, as the proxy's client decodes an upstream's answer) and each one's
 * hop-by-hop fields removed, as upstream.ts's cleanResponseHeaders does (with the proxy
 * credentials as `also`). Run under callgrind by callgrind-hop-by-hop.sh, which reads
 * removeHopByHop's self instructions per call from the difference of two runs.
 */

import { DecodeEvent, ResponseDecoder } from '../../packages/http/src/h1/index.js';
import { HeaderNameSet, type HttpHeaders } from '../../packages/http/src/index.js';

/** nginx's head for a 128 B body (apps/proxy/bench/proxy-core.ts answers with it). */
const HEAD =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\n' +
  'Content-Type: text/plain\r\nContent-Length: 128\r\nLast-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\n' +
  'Connection: keep-alive\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n\r\n';
const bytes = new Uint8Array(Buffer.from(HEAD, 'latin1'));
const also = new HeaderNameSet(['proxy-authenticate', 'proxy-authorization']);
const n = Number(process.argv[2] ?? 10_000);
let removed = 0;
for (let i = 0; i < n; i++) {
  const d = new ResponseDecoder();
  d.feed(bytes);
  if (d.poll() !== DecodeEvent.Head) throw new Error('no head');
  removed += (d as unknown as { message: { headers: HttpHeaders } }).message.headers.removeHopByHop(also);
}
console.log(`${n} heads, ${removed} fields removed`);
