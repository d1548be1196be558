/**
 * The HTTP/1.1 head path of a proxied request, in CPU time (process.cpuUsage, best of 5 rounds):
 * decode a client's request head, drop its hop-by-hop fields, add the forwarding fields, encode
 * it for upstream; decode nginx's answer (128 B body in the same chunk), clean it, add Via,
 * encode it with the body behind it. What apps/proxy does per request, without I/O.
 * Run: tsx --conditions=@loch/source bench/head-path.ts (tsx turns imported bindings into
 * getters, which costs a little; compare runs of the same kind).
 */
import { DecodeEvent, RequestDecoder, ResponseDecoder } from '../src/h1/decoder.js';
import {
  encodeRequestHeadBytes,
  encodeResponseHeadBytes,
  type ResponseHeadOptions,
} from '../src/h1/encoder.js';
import { HeaderNameSet } from '../src/headers.js';

const REQUEST = Buffer.from('GET /128.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', 'latin1');
const RESPONSE = Buffer.concat([
  Buffer.from(
    'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 08:23:21 GMT\r\n' +
      'Content-Type: application/octet-stream\r\nContent-Length: 128\r\n' +
      'Last-Modified: Thu, 26 Nov 2026 08:23:20 GMT\r\nConnection: keep-alive\r\n' +
      'ETag: "6926b8d8-80"\r\nAccept-Ranges: bytes\r\n\r\n',
    'latin1',
  ),
  Buffer.alloc(128, 0x61),
]);
const CREDENTIALS = new HeaderNameSet(['proxy-authenticate', 'proxy-authorization']);
const OPTIONS: ResponseHeadOptions = {
  framing: 'length',
  length: 128,
  keepAlive: true,
  requestMinor: 1,
  requestMethod: 'GET',
  date: true,
};

const requests = new RequestDecoder();
const responses = new ResponseDecoder();
let sink = 0;

function once(): void {
  requests.feed(REQUEST);
  if (requests.poll() !== DecodeEvent.Head) throw new Error('no request head');
  const req = requests.message!;
  requests.message = null;
  requests.poll();
  const h = req.headers;
  h.removeHopByHop(CREDENTIALS);
  const host = h.get('host');
  if (!h.has('x-forwarded-for')) h.append('x-forwarded-for', '127.0.0.1');
  if (!h.has('x-forwarded-proto')) h.append('x-forwarded-proto', 'http');
  if (host !== undefined && !h.has('x-forwarded-host')) h.append('x-forwarded-host', host);
  h.append('via', '1.1 loch');
  sink += encodeRequestHeadBytes(req.method, req.target, h, 'none', 0).length;
  responses.expectResponseTo('GET');
  responses.feed(RESPONSE);
  if (responses.poll() !== DecodeEvent.Head) throw new Error('no response head');
  const res = responses.message!;
  res.headers.removeHopByHop(CREDENTIALS);
  res.headers.append('via', '1.1 loch');
  responses.poll();
  const out = encodeResponseHeadBytes(res.status, res.reason, res.headers, OPTIONS, 128);
  out.set(responses.data, out.length - 128);
  responses.poll();
  sink += out.length;
}

const N = 300_000;
for (let i = 0; i < N; i++) once();
let best = Number.POSITIVE_INFINITY;
for (let round = 0; round < 5; round++) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) once();
  const t = process.cpuUsage(t0);
  best = Math.min(best, ((t.user + t.system) * 1000) / N);
}
if (sink < 0) throw new Error('unreachable');
console.log(`head path (request + response, 128 B): ${best.toFixed(0)} ns CPU per request`);
