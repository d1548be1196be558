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
import { GET, POST } from './messages.js';

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
