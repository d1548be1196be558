// HPACK beyond the RFC examples: every decoder error, the header-list bound (HPACK bomb), table
// size rules, the encoder's indexing policy, and a property test that encoder and decoder stay
// in step over random header lists and table sizes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Http2ConnectionError, Http2ErrorCode, Http2StreamError } from '../../src/h2/errors.js';
import { HpackDecoder, type HpackFieldSink } from '../../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import type { HpackDynamicTable } from '../../src/h2/hpack-table.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

function compressionError(d: HpackDecoder, block: Uint8Array, code: string): void {
  const e = thrown(() => d.decodeToList(block));
  expect(e).toBeInstanceOf(Http2ConnectionError);
  expect((e as Http2ConnectionError).code).toBe(code);
  expect((e as Http2ConnectionError).errorCode).toBe(Http2ErrorCode.COMPRESSION_ERROR);
}

function entries(t: HpackDynamicTable): [string, string][] {
  return Array.from({ length: t.length }, (_, i) => [t.nameAt(i), t.valueAt(i)]);
}

/** A literal with incremental indexing and a literal name, raw strings. */
function literalIndexed(name: string, value: string): string {
  const str = (s: string) => {
    if (s.length >= 127) throw new Error('short strings only');
    return s.length.toString(16).padStart(2, '0') + Buffer.from(s, 'latin1').toString('hex');
  };
  return `40${str(name)}${str(value)}`;
}

describe('HPACK decoder errors (COMPRESSION_ERROR)', () => {
  it('index 0 and indexes past the tables', () => {
    compressionError(new HpackDecoder(), hex('80'), 'ERR_HTTP2_HPACK_INDEX');
    compressionError(new HpackDecoder(), hex('be'), 'ERR_HTTP2_HPACK_INDEX'); // 62, empty dynamic table
    compressionError(new HpackDecoder(), hex('7f00 0161'), 'ERR_HTTP2_HPACK_INDEX'); // name index 63
    compressionError(new HpackDecoder(), hex('0f30 0161'), 'ERR_HTTP2_HPACK_INDEX'); // name index 63, not indexed
    const d = new HpackDecoder();
    d.decodeToList(hex(literalIndexed('a', 'b')));
    expect(d.decodeToList(hex('be'))).toEqual([['a', 'b']]);
    compressionError(d, hex('bf'), 'ERR_HTTP2_HPACK_INDEX');
  });

  it('integers above 2^31 - 1 or with too many continuation bytes', () => {
    compressionError(new HpackDecoder(), hex('ff ff ff ff ff 0f'), 'ERR_HTTP2_HPACK_INTEGER');
    compressionError(new HpackDecoder(), hex('ff 80 80 80 80 80 01'), 'ERR_HTTP2_HPACK_INTEGER');
    // 2^31 - 1 itself parses (then fails as an index).
    compressionError(new HpackDecoder(), hex('ff 80 ff ff ff 07'), 'ERR_HTTP2_HPACK_INDEX');
  });

  it('a block that ends inside an integer or a string', () => {
    compressionError(new HpackDecoder(), hex('ff'), 'ERR_HTTP2_HPACK_TRUNCATED');
    compressionError(new HpackDecoder(), hex('ff 80'), 'ERR_HTTP2_HPACK_TRUNCATED');
    compressionError(new HpackDecoder(), hex('40'), 'ERR_HTTP2_HPACK_TRUNCATED');
    compressionError(new HpackDecoder(), hex('40 03 6162'), 'ERR_HTTP2_HPACK_TRUNCATED');
    compressionError(new HpackDecoder(), hex('41 7f'), 'ERR_HTTP2_HPACK_TRUNCATED');
    compressionError(new HpackDecoder(), hex('00 01 61'), 'ERR_HTTP2_HPACK_TRUNCATED');
  });

  it('a string length past the block end is not trusted even for huge lengths', () => {
    compressionError(new HpackDecoder(), hex('00 7f ff ff ff 07'), 'ERR_HTTP2_HPACK_TRUNCATED');
  });

  it('bad Huffman in a name or value', () => {
    compressionError(new HpackDecoder(), hex('00 81 00 00'), 'ERR_HTTP2_HPACK_HUFFMAN');
    compressionError(new HpackDecoder(), hex('01 82 07ff'), 'ERR_HTTP2_HPACK_HUFFMAN');
    compressionError(new HpackDecoder(), hex('41 84 ffffffff'), 'ERR_HTTP2_HPACK_HUFFMAN');
  });
});

describe('HPACK dynamic table size updates (RFC 7541 §4.2, §6.3)', () => {
  it('apply at the start of a block, several in a row, evicting', () => {
    const d = new HpackDecoder();
    d.decodeToList(hex(literalIndexed('a', 'b') + literalIndexed('c', 'd')));
    expect(d.table.size).toBe(68);
    expect(d.decodeToList(hex('20 3f 11 82'))).toEqual([[':method', 'GET']]); // 0, then 48
    expect(d.table.length).toBe(0);
    expect(d.table.maxSize).toBe(48);
  });

  it('after a field, or above SETTINGS_HEADER_TABLE_SIZE, is an error', () => {
    compressionError(new HpackDecoder(), hex('82 20'), 'ERR_HTTP2_HPACK_TABLE_SIZE');
    compressionError(new HpackDecoder(), hex('3f e2 1f'), 'ERR_HTTP2_HPACK_TABLE_SIZE'); // 4097 > 4096
    expect(new HpackDecoder().decodeToList(hex('3f e1 1f'))).toEqual([]); // 4096
    expect(new HpackDecoder({ maxTableSize: 8192 }).decodeToList(hex('3f e2 1f'))).toEqual([]);
  });

  it('after we lower the limit, the next block must start with an update that fits', () => {
    const d = new HpackDecoder();
    d.decodeToList(hex(literalIndexed('a', 'b')));
    d.setMaxTableSizeLimit(100);
    compressionError(d, hex('82'), 'ERR_HTTP2_HPACK_TABLE_SIZE');
    const d2 = new HpackDecoder();
    d2.setMaxTableSizeLimit(100);
    compressionError(d2, hex('3f 46'), 'ERR_HTTP2_HPACK_TABLE_SIZE'); // 101
    expect(d2.decodeToList(hex('3f 45 82'))).toEqual([[':method', 'GET']]);
    expect(d2.decodeToList(hex('82'))).toEqual([[':method', 'GET']]);
    // Raising the limit needs no update.
    const d3 = new HpackDecoder();
    d3.setMaxTableSizeLimit(65536);
    expect(d3.decodeToList(hex('82'))).toEqual([[':method', 'GET']]);
  });

  it('an entry larger than the table empties it (§4.4); a name may refer to the entry it evicts', () => {
    const d = new HpackDecoder({ maxTableSize: 4096 });
    d.decodeToList(hex(`3f 45 ${literalIndexed('name', 'x'.repeat(50))}`)); // max 100, entry 86
    expect(entries(d.table)).toEqual([['name', 'x'.repeat(50)]]);
    // Name from index 62 (the entry about to be evicted), new value of 20 octets.
    const value = 'y'.repeat(20);
    expect(d.decodeToList(hex(`7e 14 ${Buffer.from(value).toString('hex')}`))).toEqual([['name', value]]);
    expect(entries(d.table)).toEqual([['name', value]]);
    d.decodeToList(hex(literalIndexed('big', 'z'.repeat(70)))); // 105 > 100
    expect(d.table.length).toBe(0);
  });
});

describe('HPACK header-list bound (RFC 9113 §6.5.2) and the HPACK bomb', () => {
  it('a small block of repeated references to a big entry is rejected without emitting past the bound', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 16384 });
    const big = 'v'.repeat(4000);
    // Literal with indexing, name 'b', value of 4000 octets: 127 + 3873, 3873 = 0x21 + 0x1e * 128.
    const first = Buffer.concat([hex('40 01 62 7f a1 1e'), Buffer.from(big)]);
    d.decodeToList(first);
    expect(entries(d.table)).toEqual([['b', big]]);
    // 10000 references (10 KB) would decode to 40 MB.
    const bomb = new Uint8Array(10000).fill(0xbe);
    let emitted = 0;
    const sink: HpackFieldSink = {
      onField: () => {
        emitted++;
      },
    };
    const e = thrown(() => d.decode(bomb, sink));
    expect(e).toBeInstanceOf(Http2StreamError);
    expect((e as Http2StreamError).code).toBe('ERR_HTTP2_HEADER_LIST_TOO_LARGE');
    expect(emitted).toBe(4); // 4 * 4033 <= 16384 < 5 * 4033
  });

  it('past the bound the block is still walked: table insertions happen, so the next block decodes', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder({ maxHeaderListSize: 200 });
    const fields: [string, string][] = Array.from({ length: 10 }, (_, i) => [`x-field-${i}`, `value-${i}`]);
    expect(thrown(() => d.decodeToList(e.encode(fields)))).toBeInstanceOf(Http2StreamError);
    expect(entries(d.table)).toEqual(entries(e.table));
    expect(d.decodeToList(e.encode(fields.slice(0, 2)))).toEqual(fields.slice(0, 2));
  });

  it('counts name + value + 32 per field, exactly at the bound is fine', () => {
    const d = new HpackDecoder({ maxHeaderListSize: 42 + 42 }); // ':method GET' is 7 + 3 + 32
    expect(d.decodeToList(hex('82 82'))).toEqual([
      [':method', 'GET'],
      [':method', 'GET'],
    ]);
    expect(thrown(() => d.decodeToList(hex('82 82 82')))).toBeInstanceOf(Http2StreamError);
  });
});

describe('HPACK encoder policy', () => {
  function decodeWithFlags(block: Uint8Array, d = new HpackDecoder()): [string, string, boolean][] {
    const out: [string, string, boolean][] = [];
    d.decode(block, { onField: (n, v, s) => out.push([n, v, s]) });
    return out;
  }

  it('repeated fields become one-octet indexes', () => {
    const e = new HpackEncoder();
    const fields: [string, string][] = [
      [':authority', 'example.com'],
      ['user-agent', 'loch-test/1.0'],
    ];
    e.encode(fields);
    expect(toHex(e.encode(fields))).toBe('bfbe');
  });

  it('credentials and short cookies are never indexed, and the decoder reports them sensitive', () => {
    const e = new HpackEncoder();
    const fields: [string, string][] = [
      ['authorization', 'Bearer abc'],
      ['proxy-authorization', 'Basic Zm9v'],
      ['set-cookie', 'id=1; HttpOnly'],
      ['cookie', 'a=1'],
      ['cookie', 'session=0123456789abcdef0123'],
    ];
    const block = e.encode(fields);
    expect(decodeWithFlags(block)).toEqual([
      ['authorization', 'Bearer abc', true],
      ['proxy-authorization', 'Basic Zm9v', true],
      ['set-cookie', 'id=1; HttpOnly', true],
      ['cookie', 'a=1', true],
      ['cookie', 'session=0123456789abcdef0123', false],
    ]);
    expect(entries(e.table)).toEqual([['cookie', 'session=0123456789abcdef0123']]);
    // A second time the sensitive ones are literals again, not indexes.
    const again = e.encode(fields);
    expect(again.length).toBeGreaterThan(20);
    expect(again[again.length - 1]).toBe(0xbe);
  });

  it('the caller can mark any field sensitive', () => {
    const e = new HpackEncoder();
    e.begin();
    e.addField('x-api-key', 'secret', true);
    e.addField(':method', 'GET', true);
    expect(decodeWithFlags(e.finish())).toEqual([
      ['x-api-key', 'secret', true],
      [':method', 'GET', true],
    ]);
    expect(e.table.length).toBe(0);
  });

  it('per-message fields and fields over 3/4 of the table are not indexed', () => {
    const e = new HpackEncoder({ maxTableSize: 256 });
    e.encode([
      [':path', '/a?b=c'],
      ['content-length', '1234'],
      ['etag', '"abc"'],
      ['x-large', 'l'.repeat(200)],
    ]);
    expect(e.table.length).toBe(0);
    e.encode([['x-small', 's']]);
    expect(entries(e.table)).toEqual([['x-small', 's']]);
  });

  it('literal names use the dynamic table when the static one lacks them', () => {
    const e = new HpackEncoder({ huffman: 'never' });
    e.encode([['x-custom', 'one']]);
    // 0x40 | 62 = 0x7e: name from the dynamic entry.
    expect(toHex(e.encode([['x-custom', 'two']]))).toBe('7e0374776f');
  });

  it('Huffman only when shorter, or always/never as configured', () => {
    const digits = '0123456789'; // 5-6 bits each: shorter coded
    const rare = '\u00fe\u00ff'; // 26+ bits each: longer coded
    const auto = new HpackEncoder({ maxTableSize: 0 });
    auto.begin(); // consumes the size update
    const block = auto.encode([
      ['x', digits],
      ['y', rare],
    ]);
    // value of x Huffman-coded (high bit set), y raw
    expect(new HpackDecoder().decodeToList(Uint8Array.from([0x20, ...block]))).toEqual([
      ['x', digits],
      ['y', rare],
    ]);
    const valueX = block[3]!;
    expect(valueX & 0x80).toBe(0x80);
    const always = new HpackEncoder({ huffman: 'always' });
    const never = new HpackEncoder({ huffman: 'never' });
    expect(always.encode([['x-y', rare]]).length).toBeGreaterThan(never.encode([['x-y', rare]]).length);
  });

  it('announces table size changes at the next block: the minimum, then the final size', () => {
    const e = new HpackEncoder();
    e.encode([['x-a', '1']]);
    e.setPeerMaxTableSize(0);
    e.setPeerMaxTableSize(4096);
    const d = new HpackDecoder();
    d.decodeToList(hex(literalIndexed('x-a', '1')));
    const block = e.encode([[':method', 'GET']]);
    expect(toHex(block)).toBe('20' + '3fe11f' + '82');
    d.decodeToList(block);
    expect(d.table.length).toBe(0);
    expect(e.table.length).toBe(0);
    // Our own cap bounds what the peer allows; an initial cap below 4096 is announced at once.
    const capped = new HpackEncoder({ maxTableSize: 1024 });
    capped.setPeerMaxTableSize(65536);
    expect(toHex(capped.encode([]))).toBe('3fe107');
    // No change, no update.
    expect(toHex(capped.encode([]))).toBe('');
  });

  it('finish() is a view valid until the next begin(); encode() copies', () => {
    const e = new HpackEncoder();
    e.begin();
    e.addField(':method', 'GET');
    const view = e.finish();
    const copy = e.encode([[':method', 'POST']]);
    expect(toHex(copy)).toBe('83');
    expect(view.length).toBe(1);
  });
});

describe('HPACK encoder and decoder stay in step (property)', () => {
  const name = fc.oneof(
    fc.constantFrom(
      ':method',
      ':path',
      ':authority',
      'cookie',
      'set-cookie',
      'content-length',
      'accept',
      'x-id',
    ),
    fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  );
  const value = fc.oneof(
    fc.constantFrom('', 'GET', '/', 'gzip, deflate', 'a=1'),
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  const field = fc.tuple(name, value);
  const step = fc.oneof(
    { weight: 5, arbitrary: fc.record({ fields: fc.array(field, { maxLength: 12 }) }) },
    { weight: 1, arbitrary: fc.record({ peerTableSize: fc.constantFrom(0, 64, 256, 4096, 10000) }) },
  );

  it('decodes what it encodes, with identical tables, over random sequences', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'auto' | 'always' | 'never'>('auto', 'always', 'never'),
        fc.constantFrom(0, 100, 4096),
        fc.array(step, { maxLength: 20 }),
        (huffman, cap, steps) => {
          const e = new HpackEncoder({ huffman, maxTableSize: cap });
          const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 30 });
          let limit = 4096;
          for (const s of steps) {
            if ('peerTableSize' in s) {
              // Our decoder's SETTINGS_HEADER_TABLE_SIZE is what the encoder's peer limit is.
              limit = s.peerTableSize;
              d.setMaxTableSizeLimit(limit);
              e.setPeerMaxTableSize(limit);
              continue;
            }
            expect(d.decodeToList(e.encode(s.fields))).toEqual(s.fields);
            expect(entries(d.table)).toEqual(entries(e.table));
            expect(d.table.size).toBe(e.table.size);
            expect(e.table.maxSize).toBeLessThanOrEqual(Math.min(cap, limit));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
