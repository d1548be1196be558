/**
 * The HTTP/1.1 head decoder alone, in CPU time (process.cpuUsage, best of 5 rounds of a fixed
 * count): ns per head for the heads a proxy meets most (wrk's two-line GET, a browser GET with
 * 11 fields, nginx's 8-field response), fed whole, as the runtime hands them over; with the
 * native head scanner (@loch/native) and with the JavaScript parser, rounds interleaved.
 * Run: tsx --conditions=@loch/source bench/head-decode.ts [iterations]
 */
import { DecodeEvent, RequestDecoder, ResponseDecoder, useNativeHeadScan } from '../src/h1/decoder.js';
import { GET } from './messages.js';

const WRK = Buffer.from('GET /128.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', 'latin1');
const NGINX = Buffer.from(
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 08:23:21 GMT\r\n' +
    'Content-Type: application/octet-stream\r\nContent-Length: 0\r\n' +
    'Last-Modified: Thu, 26 Nov 2026 08:23:20 GMT\r\nConnection: keep-alive\r\n' +
    'ETag: "6926b8d8-80"\r\nAccept-Ranges: bytes\r\n\r\n',
  'latin1',
);
const N = Number(process.argv[2] ?? 500_000);
let sink = 0;

function requests(input: Uint8Array): () => void {
  const d = new RequestDecoder();
  return () => {
    d.feed(input);
    if (d.poll() !== DecodeEvent.Head) throw new Error('no head');
    sink += d.message!.target.length;
    if (d.poll() !== DecodeEvent.End) throw new Error('no end');
    d.poll();
  };
}

function responses(input: Uint8Array): () => void {
  const d = new ResponseDecoder();
  return () => {
    d.expectResponseTo('GET');
    d.feed(input);
    if (d.poll() !== DecodeEvent.Head) throw new Error('no head');
    sink += d.message!.status;
    if (d.poll() !== DecodeEvent.End) throw new Error('no end');
    d.poll();
  };
}

const cases: [string, () => void][] = [
  [`request, wrk (${WRK.length} B, 1 field)`, requests(WRK)],
  [`request, browser (${GET.length} B, 11 fields)`, requests(GET)],
  [`response, nginx (${NGINX.length} B, 8 fields)`, responses(NGINX)],
];
const parsers = useNativeHeadScan(true) ? ['native', 'js'] : ['js'];
const best = new Map<string, number>();
for (let round = 0; round < 5; round++) {
  for (const parser of parsers) {
    useNativeHeadScan(parser === 'native');
    for (const [name, fn] of cases) {
      const key = `${name} [${parser}]`;
      const before = process.cpuUsage();
      for (let i = 0; i < N; i++) fn();
      const used = process.cpuUsage(before);
      best.set(
        key,
        Math.min(best.get(key) ?? Number.POSITIVE_INFINITY, ((used.user + used.system) * 1000) / N),
      );
    }
  }
}
if (sink < 0) throw new Error('unreachable');
for (const [name, ns] of best) console.log(`${name}: ${ns.toFixed(0)} ns per head`);
