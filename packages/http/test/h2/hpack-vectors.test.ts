// RFC 7541 Appendix C: every example, decoded (checking the decoded list and the dynamic table
// after each block) and, for the request examples, re-encoded byte for byte.
import { describe, expect, it } from 'vitest';
import { HpackDecoder } from '../../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import type { HpackDynamicTable } from '../../src/h2/hpack-table.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
type Fields = [string, string][];

function tableOf(t: HpackDynamicTable): { entries: Fields; size: number } {
  const entries: Fields = [];
  for (let i = 0; i < t.length; i++) entries.push([t.nameAt(i), t.valueAt(i)]);
  return { entries, size: t.size };
}

interface Step {
  wire: string;
  fields: Fields;
  table: Fields;
  size: number;
}

const REQ1: Fields = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const REQ2: Fields = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: Fields = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];
const AUTH: [string, string] = [':authority', 'www.example.com'];
const NOCACHE: [string, string] = ['cache-control', 'no-cache'];
const CUSTOM: [string, string] = ['custom-key', 'custom-value'];

const requests = (w1: string, w2: string, w3: string): Step[] => [
  { wire: w1, fields: REQ1, table: [AUTH], size: 57 },
  { wire: w2, fields: REQ2, table: [NOCACHE, AUTH], size: 110 },
  { wire: w3, fields: REQ3, table: [CUSTOM, NOCACHE, AUTH], size: 164 },
];

const C3 = requests(
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
);
const C4 = requests(
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
);

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESP1: Fields = [
  [':status', '302'],
  ['cache-control', 'private'],
  ['date', DATE1],
  ['location', LOC],
];
const RESP2: Fields = [[':status', '307'], ...RESP1.slice(1)];
const RESP3: Fields = [
  [':status', '200'],
  ['cache-control', 'private'],
  ['date', DATE2],
  ['location', LOC],
  ['content-encoding', 'gzip'],
  ['set-cookie', COOKIE],
];
const responses = (w1: string, w2: string, w3: string): Step[] => [
  {
    wire: w1,
    fields: RESP1,
    table: [
      ['location', LOC],
      ['date', DATE1],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
    size: 222,
  },
  {
    wire: w2,
    fields: RESP2,
    table: [
      [':status', '307'],
      ['location', LOC],
      ['date', DATE1],
      ['cache-control', 'private'],
    ],
    size: 222,
  },
  {
    wire: w3,
    fields: RESP3,
    table: [
      ['set-cookie', COOKIE],
      ['content-encoding', 'gzip'],
      ['date', DATE2],
    ],
    size: 215,
  },
];
const C5 = responses(
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
   2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
  '4803 3330 37c1 c0bf',
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
   54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
   5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
);
const C6 = responses(
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
   2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
  '4883 640e ffc1 c0bf',
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
   77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
   9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
);

function decodeSteps(steps: Step[], maxTableSize: number): void {
  const d = new HpackDecoder({ maxTableSize });
  for (const step of steps) {
    expect(d.decodeToList(hex(step.wire))).toEqual(step.fields);
    expect(tableOf(d.table)).toEqual({ entries: step.table, size: step.size });
  }
}

describe('RFC 7541 Appendix C', () => {
  it('C.1 integers: 10 and 1337 with a 5-bit prefix, 42 on an octet boundary', () => {
    // Through representations: a size update carries a 5-bit-prefix integer.
    const d = new HpackDecoder({ maxTableSize: 2000 });
    d.decodeToList(hex('2a')); // 0x20 | 10
    expect(d.table.maxSize).toBe(10);
    d.decodeToList(hex('3f9a0a')); // 31, 154, 10 -> 1337
    expect(d.table.maxSize).toBe(1337);
    const e = new HpackEncoder({ maxTableSize: 1337 });
    e.setPeerMaxTableSize(1337);
    e.begin();
    expect(Buffer.from(e.finish()).toString('hex')).toBe('3f9a0a');
  });

  it('C.2.1 literal with indexing', () => {
    const d = new HpackDecoder();
    expect(d.decodeToList(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))).toEqual([
      ['custom-key', 'custom-header'],
    ]);
    expect(tableOf(d.table)).toEqual({ entries: [['custom-key', 'custom-header']], size: 55 });
  });

  it('C.2.2 literal without indexing', () => {
    const d = new HpackDecoder();
    expect(d.decodeToList(hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([[':path', '/sample/path']]);
    expect(d.table.length).toBe(0);
  });

  it('C.2.3 literal never indexed, reported as sensitive', () => {
    const d = new HpackDecoder();
    const seen: [string, string, boolean][] = [];
    d.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'), {
      onField: (n, v, s) => seen.push([n, v, s]),
    });
    expect(seen).toEqual([['password', 'secret', true]]);
    expect(d.table.length).toBe(0);
  });

  it('C.2.4 indexed field', () => {
    const d = new HpackDecoder();
    expect(d.decodeToList(hex('82'))).toEqual([[':method', 'GET']]);
    expect(d.table.length).toBe(0);
  });

  it('C.3 requests without Huffman: decode', () => decodeSteps(C3, 4096));
  it('C.4 requests with Huffman: decode', () => decodeSteps(C4, 4096));
  it('C.5 responses without Huffman, 256-octet table: decode with evictions', () => decodeSteps(C5, 256));
  it('C.6 responses with Huffman, 256-octet table: decode with evictions', () => decodeSteps(C6, 256));

  for (const [name, steps, huffman] of [
    ['C.3', C3, 'never'],
    ['C.4', C4, 'auto'],
  ] as const) {
    it(`${name} requests: the encoder produces the RFC bytes and table`, () => {
      const e = new HpackEncoder({ huffman });
      for (const step of steps) {
        expect(Buffer.from(e.encode(step.fields)).toString('hex')).toBe(step.wire.replace(/\s+/g, ''));
        expect(tableOf(e.table)).toEqual({ entries: step.table, size: step.size });
      }
    });
  }

  for (const [name, steps, huffman] of [
    ['C.5', C5, 'never'],
    ['C.6', C6, 'auto'],
  ] as const) {
    it(`${name} responses: the encoder's own choices decode to the same lists, tables in step`, () => {
      const e = new HpackEncoder({ huffman, maxTableSize: 256 });
      const d = new HpackDecoder({ maxTableSize: 256 });
      for (const step of steps) {
        const block = e.encode(step.fields);
        expect(d.decodeToList(block)).toEqual(step.fields);
        expect(tableOf(d.table)).toEqual(tableOf(e.table));
      }
      // set-cookie is never indexed by our encoder.
      expect(tableOf(e.table).entries.some(([n]) => n === 'set-cookie')).toBe(false);
    });
  }
});
