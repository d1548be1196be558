/**
 * HTTP/2 wire codec micro-benchmarks: HPACK decode and encode of the browser GET of
 * messages.ts as HTTP/2 fields (first block on a connection: literals, Huffman; later blocks:
 * dynamic-table indexes), Huffman decoding of a long cookie, and the frame decoder on a
 * connection's worth of HEADERS and DATA frames fed in TCP-sized chunks. Absolute numbers:
 * there is no in-process reference HPACK in Node to compare against (nghttp2 is behind
 * node:http2's sessions); node-differential.test.ts covers agreement with it.
 */
import { bench, describe } from 'vitest';
import { Http2FrameDecoder, type Http2FrameHandler } from '../src/h2/frame-decoder.js';
import { encodeData, encodeHeaders, encodeSettings } from '../src/h2/frames.js';
import { HpackDecoder, type HpackFieldSink } from '../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../src/h2/hpack-encoder.js';
import { huffmanDecode, huffmanEncodeToBytes, huffmanMaxDecodedLength } from '../src/h2/huffman.js';
import { connectionWire, BROWSER_GET_FIELDS as FIELDS } from './h2-codec-fields.js';

const encoder = new HpackEncoder();
const FIRST = encoder.encode(FIELDS);
const STEADY = encoder.encode(FIELDS);

let sink = 0;
const counter: HpackFieldSink = {
  onField(name, value) {
    sink += name.length + value.length;
  },
};

describe(`HPACK decode, browser GET (13 fields; first block ${FIRST.length} B, later ${STEADY.length} B)`, () => {
  bench('first block on a connection (literals, Huffman, inserts)', () => {
    new HpackDecoder().decode(FIRST, counter);
  });
  const warm = new HpackDecoder();
  warm.decode(FIRST, counter);
  bench('later block (dynamic-table indexes)', () => {
    warm.decode(STEADY, counter);
  });
});

describe('HPACK encode, browser GET', () => {
  bench('first block on a connection', () => {
    new HpackEncoder().encode(FIELDS);
  });
  const e = new HpackEncoder();
  e.encode(FIELDS);
  bench('later block, begin/addField/finish (no copy)', () => {
    e.begin();
    for (const [n, v] of FIELDS) e.addField(n, v);
    sink += e.finish().length;
  });
});

const COOKIE = huffmanEncodeToBytes(
  'session=0123456789abcdef0123456789abcdef; theme=dark; lang=en-US; _ga=GA1.2.1234567890.1234567890',
);
const OUT = new Uint8Array(huffmanMaxDecodedLength(COOKIE.length));

describe(`Huffman decode, ${COOKIE.length} B cookie`, () => {
  bench('huffmanDecode (4-bit table)', () => {
    sink += huffmanDecode(COOKIE, 0, COOKIE.length, OUT, 0);
  });
});

// One connection's traffic: SETTINGS, then 20 requests, each HEADERS + 4 KiB of DATA, cut into
// 1460-octet chunks (one TCP segment each).
const wire = Buffer.concat([
  encodeSettings({}),
  ...Array.from({ length: 20 }, (_, i) => {
    const id = 2 * i + 1;
    return Buffer.concat([
      encodeHeaders(id, STEADY),
      encodeData(id, new Uint8Array(4096), { endStream: true }),
    ]);
  }),
]);
const CHUNKS = Array.from({ length: Math.ceil(wire.length / 1460) }, (_, i) =>
  wire.subarray(i * 1460, (i + 1) * 1460),
);
const frameSink: Http2FrameHandler = {
  onData: (_s, data) => {
    sink += data.length;
  },
  onHeaders: (_s, block) => {
    sink += block.length;
  },
  onPriority: () => {},
  onRstStream: () => {},
  onSettings: () => {},
  onSettingsAck: () => {},
  onPushPromise: () => {},
  onPing: () => {},
  onGoaway: () => {},
  onWindowUpdate: () => {},
  onStreamError: () => {},
};

describe(`frame decoder, ${wire.length} B in ${CHUNKS.length} chunks (20 x HEADERS + 4 KiB DATA)`, () => {
  bench('Http2FrameDecoder.feed', () => {
    const d = new Http2FrameDecoder(frameSink, { role: 'client' });
    for (const c of CHUNKS) d.feed(c);
  });
});

// The server's read of one connection, what nghttp2's nghttp2_session_mem_recv does (bench/nghttp2/
// codec.c runs it on the same bytes): the client preface, SETTINGS, then 20 requests, each HEADERS
// (the first block with literals, the later ones dynamic-table indexes) + 4 KiB of DATA, in
// 1460-octet chunks; frames decoded and every header block HPACK-decoded.
const serverWire = connectionWire(true);
const SERVER_CHUNKS = Array.from({ length: Math.ceil(serverWire.length / 1460) }, (_, i) =>
  serverWire.subarray(i * 1460, (i + 1) * 1460),
);

describe(`server read: frames + HPACK, ${serverWire.length} B in ${SERVER_CHUNKS.length} chunks (preface + 20 requests)`, () => {
  bench('Http2FrameDecoder.feed + HpackDecoder.decode', () => {
    const hpack = new HpackDecoder();
    const d = new Http2FrameDecoder(
      {
        ...frameSink,
        onHeaders: (_s, block) => {
          hpack.decode(block, counter);
        },
      },
      { role: 'server' },
    );
    for (const c of SERVER_CHUNKS) d.feed(c);
  });
});

export { sink };
