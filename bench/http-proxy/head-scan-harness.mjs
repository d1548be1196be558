// The native head scanner's crossing, counted (issue 18, head-scan-crossing-2026-12-07.md):
// the addon's `scanner(io, slab)` function on proxy-core's request head (GET /b128, 3 fields) and
// nginx's response head (8 fields), N pairs, find mode, each head copied into a 1 MiB slab as the
// decoder's are (outcome kCopied; the slab's top wraps to 0 near its end). The JS loop, the
// crossing and the scan are all counted, so compare trees by whole-process Ir at two N
// (bench/http-proxy/head-scan-counts.sh): (Ir(2N) - Ir(N)) / N is a pair of heads.
// Usage: node bench/http-proxy/head-scan-harness.mjs <built checkout> <N>
import { pathToFileURL } from 'node:url';

const [clone, nArg] = process.argv.slice(2);
const N = Number(nArg ?? 20000);
const { loadHeadScan } = await import(pathToFileURL(`${clone}/native/index.js`).href);
const { KNOWN_NAMES } = await import(
  pathToFileURL(`${clone}/packages/http/dist/internal/known-names.js`).href
);
const loaded = loadHeadScan();
if (!('headScan' in loaded)) throw new Error(loaded.error);
const hs = loaded.headScan;
if (!hs.init(KNOWN_NAMES.slice(1))) throw new Error('init failed');
const SUMMARY = hs.summaryWords;
const REQUEST = new Uint8Array(
  Buffer.from(
    'GET /b128 HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n',
    'latin1',
  ),
);
const RESPONSE = new Uint8Array(
  Buffer.concat([
    Buffer.from(
      'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\n' +
        'Content-Type: text/plain\r\nContent-Length: 128\r\nLast-Modified: Thu, 03 Dec 2026 15:25:59 GMT\r\n' +
        'Connection: keep-alive\r\nETag: "6b118a07-80"\r\nAccept-Ranges: bytes\r\n\r\n',
      'latin1',
    ),
    Buffer.alloc(128, 0x61),
  ]),
);
const SLAB = 1 << 20;
const io = new Int32Array(28 + 5 * 101 + SUMMARY);
const slab = new Uint8Array(SLAB);
const fn = hs.scanner(io, slab);
let top = 0;
let copied = 0;
function scanOne(src, kind) {
  io[0] = 0;
  io[1] = src.length;
  io[2] = 0; // find mode
  io[3] = kind;
  io[4] = 16384;
  io[5] = 100;
  io[6] = 8192;
  if (top + 4096 > SLAB) top = 0;
  io[7] = top;
  const out = fn(src);
  if (out !== 3) throw new Error(`outcome ${out} (kind ${kind})`);
  copied++;
  const len = io[8];
  const n = io[13];
  top = (((top + len + 3) >> 2) + 5 * n + SUMMARY) * 4;
}
for (let i = 0; i < N; i++) {
  scanOne(REQUEST, 0);
  scanOne(RESPONSE, 1);
}
console.log(`pairs ${N} copied ${copied}`);
