/**
 * latin1Of (headers.ts): short byte runs decoded once per thread and then returned from a table,
 * which must only ever return the string of exactly the bytes asked for, whatever the table
 * holds (collisions, other lengths, bytes above 0x7f); and the decoder's request targets,
 * reason phrases and header values come from it with both head parsers.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { useNativeHeadScan } from '../src/h1/decoder.js';
import { latin1Interned, latin1Of } from '../src/headers.js';
import { decode } from './decode-all.js';

const latin1 = (b: Uint8Array, s: number, e: number) =>
  Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1');

afterEach(() => {
  useNativeHeadScan(true);
});

describe('latin1Of', () => {
  it('returns the latin1 string of exactly the bytes asked for, table hits included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 80 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
        (runs, order) => {
          // Each run decoded in some order, many times: hits, misses and slot takeovers mixed.
          for (const k of order) {
            const run = runs[k % runs.length]!;
            const pad = new Uint8Array(run.length + 7);
            pad.set(run, 3);
            expect(latin1Of(pad, 3, 3 + run.length)).toBe(latin1(pad, 3, 3 + run.length));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('tells apart runs that share a slot: same length, first, middle and last byte', () => {
    // Slots are picked by those bytes only: these runs all share one and differ inside.
    const runs = Array.from({ length: 64 }, (_, k) =>
      Buffer.from(`a${String.fromCharCode(0x21 + k, 0x7e - k)}m${String.fromCharCode(0xa0 + k)}z`, 'latin1'),
    );
    for (let round = 0; round < 3; round++)
      for (const run of runs) expect(latin1Of(run, 0, run.length)).toBe(run.toString('latin1'));
  });

  it('tells apart runs that differ in one byte only, at every position, length (1-64) and alignment', () => {
    // A hit compares 32-bit words (the last one overlapping): a byte the words skipped would
    // return the run seen before. Each run sits at offsets 0-3 of views that start at byte
    // offsets 0-3 of their memory, so words are read at every alignment.
    const memory = new Uint8Array(64 + 8 + 8);
    for (let n = 1; n <= 64; n++) {
      for (let shift = 0; shift < 4; shift++) {
        const view = memory.subarray(shift);
        const s = (n + shift) & 3;
        for (let i = 0; i < n; i++) view[s + i] = 0x41 + ((i * 7 + n) % 26);
        const run = latin1(view, s, s + n);
        expect(latin1Of(view, s, s + n)).toBe(run);
        for (let i = 0; i < n; i++) {
          const was = view[s + i]!;
          view[s + i] = was ^ 0x20;
          expect(latin1Of(view, s, s + n)).toBe(latin1(view, s, s + n));
          view[s + i] = was;
          expect(latin1Of(view, s, s + n)).toBe(run);
        }
      }
    }
  });

  it("matches Buffer's latin1 decode for runs of 0-64 bytes (0-255) at every alignment, up to the end of their memory (fast-check)", () => {
    // Differential against today's table (Buffer's decode is what a hit must equal): each run is
    // decoded in place at offset `at` of a view starting at byte `shift` of its memory, ending
    // either inside it or exactly at its end (no word read may pass the run's end), then again
    // with one byte changed (a same-length run, often the same slot), then as it was.
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.nat(3),
        fc.nat(3),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (run, shift, at, atEnd, which, flip) => {
          const memory = new Uint8Array(shift + at + run.length + (atEnd ? 0 : 5));
          const view = memory.subarray(shift);
          view.set(run, at);
          const e = at + run.length;
          if (atEnd) expect(view.byteOffset + e).toBe(memory.buffer.byteLength);
          expect(latin1Of(view, at, e)).toBe(latin1(view, at, e));
          expect(latin1Of(view, at, e)).toBe(latin1(view, at, e));
          if (run.length === 0) return;
          const i = at + (which % run.length);
          view[i] = view[i]! ^ flip;
          expect(latin1Of(view, at, e)).toBe(latin1(view, at, e));
          view[i] = view[i]! ^ flip;
          expect(latin1Of(view, at, e)).toBe(latin1(view, at, e));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('compares the bytes of the view it is given, at its byte offset in its memory', () => {
    // Two runs that share a slot (same length, first, middle and last byte) side by side in one
    // memory: read from the memory's start instead of the view's, the second is the first.
    const memory = new Uint8Array(Buffer.from('host-one.test:1hast-one.test:1', 'latin1'));
    const second = new Uint8Array(memory.buffer, memory.byteOffset + 15, 15);
    for (let round = 0; round < 3; round++) {
      expect(latin1Of(memory, 0, 15)).toBe('host-one.test:1');
      expect(latin1Of(second, 0, 15)).toBe('hast-one.test:1');
      expect(latin1Of(memory, 15, 30)).toBe('hast-one.test:1');
      expect(latin1Of(second, 0, 15)).toBe('hast-one.test:1');
    }
  });

  it('tells apart runs of every 2-byte value, more than the table holds', () => {
    const b = new Uint8Array(2);
    for (let round = 0; round < 2; round++) {
      for (let x = 0; x < 256; x += 3) {
        for (let y = 0; y < 256; y += 5) {
          b[0] = x;
          b[1] = y;
          expect(latin1Of(b, 0, 2)).toBe(String.fromCharCode(x, y));
        }
      }
    }
  });

  it('returns a run seen before from its table, and decodes runs past 64 bytes each time', () => {
    const bytes = Buffer.from('/index.html/x=1 example.test:8080', 'latin1');
    latin1Of(bytes, 0, 15);
    const before = latin1Interned.hits;
    expect(latin1Of(bytes, 0, 15)).toBe('/index.html/x=1');
    expect(latin1Interned.hits).toBe(before + 1);
    const long = Buffer.alloc(65, 0x61);
    latin1Of(long, 0, 65);
    expect(latin1Of(long, 0, 65)).toBe('a'.repeat(65));
    expect(latin1Interned.hits).toBe(before + 1);
    expect(latin1Of(bytes, 4, 4)).toBe('');
  });

  it('never keeps a run with a query mark (tokens travel in queries)', () => {
    const bytes = Buffer.from('/api?token=s3cr3t', 'latin1');
    latin1Of(bytes, 0, bytes.length);
    const before = latin1Interned.hits;
    expect(latin1Of(bytes, 0, bytes.length)).toBe('/api?token=s3cr3t');
    expect(latin1Interned.hits).toBe(before);
  });

  it("keeps a run without a '?' and never one with a '?' at any place, length (1-64) and alignment, whatever the bytes around it", () => {
    // A search for the '?' that missed one (at a word's edge, in the last bytes) would keep a
    // query; one that saw a '?' in its neighbours (0x3e, 0x40, 0xbf = '?' | 0x80, 0xff, 0x00)
    // would keep a plain run out of the table.
    const fillers = [0x3e, 0x40, 0xbf, 0xff, 0x00, 0x7f, 0x1f];
    const memory = new Uint8Array(64 + 8 + 8);
    for (let n = 1; n <= 64; n++) {
      for (let shift = 0; shift < 4; shift++) {
        const view = memory.subarray(shift);
        const s = 1 + ((n + 3 * shift) & 3);
        const filler = fillers[(n + shift) % fillers.length]!;
        for (let i = 0; i < n; i++) view[s + i] = i % 3 === 0 ? filler : 0x61 + ((i * 5 + n) % 26);
        // A '?' just outside the run on both sides: not the run's.
        view[s - 1] = 0x3f;
        view[s + n] = 0x3f;
        const plain = latin1(view, s, s + n);
        latin1Of(view, s, s + n);
        let before = latin1Interned.hits;
        expect(latin1Of(view, s, s + n)).toBe(plain);
        expect(latin1Interned.hits).toBe(before + 1);
        for (let q = 0; q < n; q++) {
          const was = view[s + q]!;
          view[s + q] = 0x3f;
          const query = latin1(view, s, s + n);
          expect(latin1Of(view, s, s + n)).toBe(query);
          before = latin1Interned.hits;
          expect(latin1Of(view, s, s + n)).toBe(query);
          expect(latin1Interned.hits).toBe(before);
          view[s + q] = was;
        }
      }
    }
  });
});

describe('decoded heads read through latin1Of', () => {
  for (const parser of ['native', 'js'] as const) {
    it(`the second request's target, Host value and reason come from the table (${parser} head parser)`, () => {
      expect(useNativeHeadScan(parser === 'native')).toBe(parser === 'native');
      const head = 'GET /latin1-intern/et%C3%A9 HTTP/1.1\r\nHost: intern.test:81\r\nX-V: caf\xe9\r\n\r\n';
      const first = decode('request', head);
      expect(first.error).toBeNull();
      const before = latin1Interned.hits;
      const again = decode('request', head);
      expect(again.messages[0]!.head.target).toBe('/latin1-intern/et%C3%A9');
      expect(again.messages[0]!.head.headers).toEqual([
        ['host', 'intern.test:81'],
        ['x-v', 'caf\xe9'],
      ]);
      // The target, then the two values as the test reads them.
      expect(latin1Interned.hits - before).toBe(3);
      const reply = 'HTTP/1.1 404 Not Here\r\nContent-Length: 0\r\n\r\n';
      decode('response', reply);
      const mid = latin1Interned.hits;
      expect(decode('response', reply).messages[0]!.head.reason).toBe('Not Here');
      expect(latin1Interned.hits - mid).toBe(2);
    });

    it(`credentials and queries are decoded each time, never kept in the table (${parser} head parser)`, () => {
      expect(useNativeHeadScan(parser === 'native')).toBe(parser === 'native');
      const head =
        'GET /latin1-secret?k=v HTTP/1.1\r\nHost: a.test\r\nAuthorization: Bearer t0k3n\r\nCookie: s=1\r\n' +
        'Proxy-Authorization: Basic eDp5\r\n\r\n';
      expect(decode('request', head).error).toBeNull();
      const before = latin1Interned.hits;
      const again = decode('request', head);
      expect(again.messages[0]!.head.target).toBe('/latin1-secret?k=v');
      expect(again.messages[0]!.head.headers).toEqual([
        ['host', 'a.test'],
        ['authorization', 'Bearer t0k3n'],
        ['cookie', 's=1'],
        ['proxy-authorization', 'Basic eDp5'],
      ]);
      // The Host value (read above) is the one hit: it repeats in the open.
      expect(latin1Interned.hits).toBe(before + 1);
      const reply = 'HTTP/1.1 200 OK\r\nSet-Cookie: id=42\r\nContent-Length: 0\r\n\r\n';
      decode('response', reply);
      const mid = latin1Interned.hits;
      expect(decode('response', reply).messages[0]!.head.headers[0]).toEqual(['set-cookie', 'id=42']);
      // Content-Length's value is the one hit.
      expect(latin1Interned.hits).toBe(mid + 1);
    });
  }
});
