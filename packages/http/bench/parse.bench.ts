/**
 * Parser vs llhttp (Node's own HTTP parser, through its internal binding) on a typical browser
 * GET (about 500 bytes, 11 fields) and a small POST. Each iteration parses the same keep-alive
 * message with a reused parser, as a server connection would. "lazy" reads method, target and
 * two headers (what a router and a proxy look at); "all" also decodes every name and value,
 * which is what llhttp always hands to JavaScript.
 */
import { bench, describe } from 'vitest';
import { DecodeEvent, RequestDecoder } from '../src/h1/decoder.js';
import { llparser } from '../test/llhttp.js';

const GET = Buffer.from(
  [
    'GET /api/v1/items/12345?include=details&sort=desc HTTP/1.1',
    'Host: www.example.com',
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language: en-US,en;q=0.9',
    'Accept-Encoding: gzip, deflate, br',
    'Connection: keep-alive',
    'Cookie: session=abc123def456; theme=dark; lang=en',
    'Cache-Control: no-cache',
    'Referer: https://www.example.com/items',
    'Sec-Fetch-Mode: navigate',
    'X-Request-Id: 7f9c2ba4-e88f-4a43-b7c2-6c2a2d0e5a11',
    '',
    '',
  ].join('\r\n'),
  'latin1',
);

const POST = Buffer.from(
  'POST /submit HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{"name":"loch","fast":true}',
  'latin1',
);

function ours(input: Buffer, all: boolean): () => void {
  const d = new RequestDecoder();
  let sink = 0;
  return () => {
    d.feed(input);
    for (;;) {
      const ev = d.poll();
      if (ev === DecodeEvent.NeedMore) break;
      if (ev === DecodeEvent.Head) {
        const m = d.message!;
        sink += m.method.length + m.target.length;
        const h = m.headers;
        if (all) {
          for (let i = 0; i < h.size; i++) sink += h.nameAt(i).length + h.valueAt(i).length;
        } else {
          sink += (h.get('host') ?? '').length + (h.get('content-type') ?? '').length;
        }
      } else if (ev === DecodeEvent.Data) sink += d.data.length;
    }
    if (sink === -1) throw new Error('unreachable');
  };
}

function theirs(input: Buffer): () => void {
  const p = llparser('request');
  return () => {
    p.execute(input);
  };
}

describe('typical GET (~500 B, 11 fields)', () => {
  bench('loch RequestDecoder (lazy headers)', ours(GET, false));
  bench('loch RequestDecoder (all headers decoded)', ours(GET, true));
  bench('llhttp (node internal binding)', theirs(GET));
});

describe('small POST with a 27 B body', () => {
  bench('loch RequestDecoder (lazy headers)', ours(POST, false));
  bench('loch RequestDecoder (all headers decoded)', ours(POST, true));
  bench('llhttp (node internal binding)', theirs(POST));
});
