import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  AccessLogFileError,
  type AccessRecord,
  FileSink,
  jsonLine,
  TextChunk,
  textField,
  textLine,
  textLineOf,
} from './access-log.js';

const dir = mkdtempSync(join(tmpdir(), 'loch-access-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = (over: Partial<AccessRecord> = {}): AccessRecord => ({
  time: '2026-12-03T10:00:00.000Z',
  server: 'web',
  client: { family: 'ipv4', address: '10.1.2.3', port: 4000 },
  peer: undefined,
  method: 'GET',
  target: '/a?b=1',
  status: 200,
  bytes: 12,
  upstream: 'http://127.0.0.1:9000',
  upstreamStatus: 200,
  upstreamMs: 0.5,
  ms: 1.2345,
  requestId: 'req-1',
  timeChunk: undefined,
  ...over,
});

describe('access-log formats', () => {
  it('writes the text line as before, with "-" for an absent upstream', () => {
    expect(textLine(record())).toBe(
      '2026-12-03T10:00:00.000Z web 10.1.2.3:4000 GET /a?b=1 200 12 http://127.0.0.1:9000 1.23\n',
    );
    expect(textLine(record({ upstream: undefined }))).toContain(' 200 12 - 1.23\n');
  });

  it('copies the time from its chunk when the record has one, to a string and into a file sink alike', async () => {
    const time = '2026-12-05T06:30:00.123Z';
    const chunk = new TextChunk(time.length);
    chunk.bytes.set(Buffer.from(time, 'latin1'));
    const r = record({ time, timeChunk: chunk });
    const line = `${time} web 10.1.2.3:4000 GET /a?b=1 200 12 http://127.0.0.1:9000 1.23\n`;
    expect(textLine(r)).toBe(line);
    const path = join(dir, 'time-bytes.log');
    const sink = new FileSink(path, () => {});
    sink.pushText(r);
    sink.pushText(record({ time: '2026-12-05T06:30:00.124Z' }));
    await sink.close();
    expect(readFileSync(path, 'latin1')).toBe(`${line}${line.replace('.123Z', '.124Z')}`);
  });

  it("copies a long chunk with %TypedArray%.prototype.set itself, never a line buffer's own `set` (a generic load in putChunk)", async () => {
    const time = '2026-12-06T12:40:00.456Z';
    const chunk = new TextChunk(time.length);
    chunk.bytes.set(Buffer.from(time, 'latin1'));
    // Over 32 bytes: the upstream label's chunk is copied natively (the time's is written as doubles).
    const upstream = 'http://a-long-upstream-name.example:9000';
    const r = record({ time, timeChunk: chunk, upstream });
    // An own `set` on both prototypes is found before %TypedArray%.prototype's by `b.set(...)`.
    const real = (Object.getPrototypeOf(Uint8Array.prototype) as { set: (...a: unknown[]) => void }).set;
    const looked: string[] = [];
    for (const [proto, kind] of [
      [Buffer.prototype, 'Buffer'],
      [Uint8Array.prototype, 'Uint8Array'],
    ] as const) {
      Object.defineProperty(proto, 'set', {
        configurable: true,
        writable: true,
        value(this: Uint8Array, ...args: unknown[]) {
          looked.push(kind);
          return real.apply(this, args);
        },
      });
    }
    const path = join(dir, 'chunk-set.log');
    const sink = new FileSink(path, () => {});
    let line: string;
    try {
      line = textLine(r);
      sink.pushText(r);
    } finally {
      delete (Buffer.prototype as unknown as Record<string, unknown>).set;
      delete (Uint8Array.prototype as unknown as Record<string, unknown>).set;
    }
    await sink.close();
    expect(line).toBe(`${time} web 10.1.2.3:4000 GET /a?b=1 200 12 ${upstream} 1.23\n`);
    expect(readFileSync(path, 'latin1')).toBe(line);
    expect(looked).toEqual([]);
  });

  it('writes chunks of every length and ASCII byte the same as their strings (doubles up to 32 bytes, a copy past)', async () => {
    // Lengths 1 to 41 in the client address and upstream fields, and every ASCII byte at every
    // offset of an 8-byte double (32-byte server keys starting at each of the 128 bytes: byte c
    // at every position from c - 31 to c). A fresh module: its chunk caches empty (the tests
    // above filled their 256 strings each), so every string here (164 and 129 a field) is kept
    // as a chunk.
    vi.resetModules();
    const { FileSink, TextChunk, textLine, textLineOf } = await import('./access-log.js');
    const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c)).join('');
    const path = join(dir, 'chunk-lengths.log');
    const sink = new FileSink(path, () => {});
    let expected = '';
    const check = (r: AccessRecord) => {
      const reference = textLineOf(r);
      expect(textLine(r)).toBe(reference);
      sink.pushText(r);
      expected += reference;
    };
    const timed = (ms: number) => {
      const time = new Date(Date.UTC(2026, 11, 7, 1, 2, 3, ms)).toISOString();
      const timeChunk = new TextChunk(24);
      timeChunk.bytes.set(Buffer.from(time, 'latin1'));
      return { time, timeChunk };
    };
    for (let n = 1; n <= 41; n++) {
      for (let from = 0; from < 128; from += 37) {
        const text = (ascii + ascii).slice(from, from + n);
        check(record({ ...timed(n), client: { family: 'ipv4', address: text, port: n }, upstream: text }));
        check(record({ client: { family: 'ipv6', address: text, port: 443 }, upstream: undefined }));
      }
    }
    for (let from = 0; from < 128; from++)
      check(record({ ...timed(from), server: (ascii + ascii).slice(from, from + 32) }));
    await sink.close();
    expect(readFileSync(path, 'latin1')).toBe(expected);
  });

  it('escapes what could split or forge a text line (a Thrift method name is the client’s choice)', () => {
    expect(textField('get\n2026 web 1.2.3.4:1 GET / 200')).toBe(
      'get\\x0a2026\\x20web\\x201.2.3.4:1\\x20GET\\x20/\\x20200',
    );
    expect(textField('a"b\\c')).toBe('a\\x22b\\x5cc');
    expect(textField('é')).toBe('\\xc3\\xa9');
    expect(textField('')).toBe('-');
    const line = textLine(record({ method: 'CALL', target: 'x\ny z' }));
    expect(line.split('\n')).toHaveLength(2);
    expect(line.split(' ')).toHaveLength(9);
  });

  it('writes the text line byte for byte as from its string pieces (textLineOf), whatever the record', () => {
    // Durations where a two-decimal rounding of the double is close: halves, their neighbours, ties
    // the binary value breaks either way (1.005 is 1.00499..., 0.125 exact), -0, the cut-offs.
    const durations = [
      0,
      -0,
      0.004,
      0.005,
      0.015,
      0.125,
      0.135,
      1.005,
      1.2345,
      1.995,
      2.675,
      9.995,
      99.995,
      0.1 + 0.2,
      123.455,
      1e-9,
      999_999.994,
      999_999.995,
      1e6,
      1e6 + 0.5,
      5e9,
      1e21,
      Number.NaN,
      -1,
      3.14158,
    ];
    for (let i = 0; i < 2000; i++) durations.push(Math.random() * 10 ** ((i % 8) - 2));
    for (let i = 0; i < 200; i++) durations.push(Math.floor(Math.random() * 1e7) / 1000 + 0.005);
    const clients = [
      { family: 'ipv4', address: '10.1.2.3', port: 4000 },
      { family: 'ipv4', address: '203.0.113.9', port: 0 },
      { family: 'ipv6', address: '2001:db8::1', port: 65535 },
      { family: 'ipv6', address: '::1', port: 0 },
      { family: 'unix', path: '/run/x.sock' },
    ] as const;
    const strings = [
      '',
      'GET',
      '/a?b=1',
      'x y',
      'a"b',
      'a\\b',
      'tab\there',
      'é',
      '\u00ff',
      '\u0100',
      '€',
      '\u0001',
      `/${'p'.repeat(5000)}`,
      // Labels long enough to be kept as bytes: two of one length, and ones not all ASCII.
      'http://127.0.0.1:9000',
      'http://127.0.0.2:9000',
      'http://caf\u00e9.example:9000',
      'http://\u20ac.example.com:9000',
    ];
    const records: AccessRecord[] = [];
    for (const ms of durations) records.push(record({ ms }));
    for (const client of clients) records.push(record({ client }));
    for (const s of strings) {
      records.push(record({ method: s }), record({ target: s }), record({ server: s }));
      records.push(record({ upstream: s }), record({ time: s }));
    }
    for (const n of [0, 1, 9, 10, 99, 100, 65_535, 2 ** 31, 2 ** 53 - 1, 2 ** 53, 1.5, -3, Number.NaN])
      records.push(record({ status: n }), record({ bytes: n }));
    for (const r of records) expect(textLine(r)).toBe(textLineOf(r));
    // Again, every label now written before (kept as bytes where it can be).
    for (const r of records) expect(textLine(r)).toBe(textLineOf(r));
  });

  it('escapes a long method or target whatever char needs it, wherever', async () => {
    // Every ASCII char, latin1 and beyond, a lone surrogate: one in a field of 23-26 and 80 chars
    // (a long-field path tried at 24 chars, per-request-2026-12-07c.md), at its start, middle, end.
    const chars = Array.from({ length: 0x80 }, (_, c) => String.fromCharCode(c));
    chars.push('\x80', '\xe9', '\xff', '\u0100', '\u20ac', '\ud800');
    const path = join(dir, 'long-fields.log');
    const sink = new FileSink(path, () => {}, 5, 1 << 30, 4096);
    let expected = '';
    let escaped = 0;
    for (const n of [23, 24, 25, 26, 80])
      for (const c of chars)
        for (const at of [0, n >> 1, n - 1]) {
          const s = `${'/abc?d=1&'.repeat(9).slice(0, at)}${c}${'x'.repeat(n - at - 1)}`;
          for (const r of [record({ target: s }), record({ method: s })]) {
            const reference = textLineOf(r);
            expect(textLine(r)).toBe(reference);
            sink.pushText(r);
            expected += reference;
            if (reference.includes('\\x')) escaped++;
          }
        }
    await sink.close();
    expect(readFileSync(path)).toEqual(Buffer.from(expected, 'utf8'));
    // Lines with a char to escape: all but the 92 VCHARs (0x21-0x7e) that are not `"` or `\`.
    expect(escaped).toBe(5 * 3 * 2 * (chars.length - 92));
  });

  it('writes any record as its string pieces do (fast-check: textLine and a file sink against textLineOf)', async () => {
    // Chars a request can choose (method, target, an X-Forwarded-For client): controls, space,
    // quotes, backslashes, DEL, latin1 above 0x7f, beyond latin1, lone surrogates.
    const hostile = fc.constantFrom(
      ...'\x00\x01\t\n\r "\\\x7f\x80\xe9\xff\u0100\u20acaZ09/?=%:.-_',
      '\ud800',
      '\udfff',
      '\u{1f600}',
    );
    const field = fc.oneof(
      fc.string({ unit: hostile, maxLength: 12 }),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
      fc.constantFrom('', 'GET', 'POST', '/b128', '/a?b=1', 'http://127.0.0.1:18081', 'web'),
    );
    const time = fc
      .integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) })
      .map((ms) => new Date(ms).toISOString());
    const client = fc.oneof(
      fc.record({
        family: fc.constant('ipv4' as const),
        address: fc.oneof(fc.ipV4(), field),
        port: fc.integer({ min: 0, max: 65_535 }),
      }),
      fc.record({
        family: fc.constant('ipv6' as const),
        address: fc.oneof(fc.ipV6(), field),
        port: fc.integer({ min: 0, max: 65_535 }),
      }),
      fc.constant({ family: 'unix' as const, path: '/run/x.sock' }),
    );
    const count = fc.oneof(
      fc.integer({ min: 0, max: 2 ** 31 + 5 }),
      fc.constantFrom(100, 200, 599, 999, 1000, 99, 0, 2 ** 53 - 1, 2 ** 53, 1.5, -1, -0, Number.NaN),
      // Where the digit count changes (small integers' lengths are found by comparisons).
      fc.tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: -1, max: 1 })).map(([k, d]) => 10 ** k + d),
      fc.constantFrom(2 ** 31 - 1, 2 ** 31, 99_999, 100_000, 999_999, 1_000_000, 9_999_999, 10_000_000),
    );
    const ms = fc.oneof(
      fc.double({ min: 0, max: 2e6, noNaN: true }),
      fc.integer({ min: 0, max: 10_000_000 }).map((n) => n / 1000 + 0.005),
      fc.constantFrom(-0, -1, 1e6, Number.NaN, Number.POSITIVE_INFINITY, 0.125, 1.005, 2.675),
    );
    const arbitrary = fc.record({
      time: fc.oneof(time, field),
      chunk: fc.boolean(),
      server: field,
      client,
      method: field,
      target: field,
      status: count,
      bytes: count,
      upstream: fc.option(field, { nil: undefined }),
      ms,
    });
    const records = arbitrary.map((a): AccessRecord => {
      let timeChunk: TextChunk | undefined;
      // A logger keeps a chunk only for the 24-char ISO form.
      if (a.chunk && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(a.time)) {
        timeChunk = new TextChunk(a.time.length);
        timeChunk.bytes.set(Buffer.from(a.time, 'latin1'));
      }
      const { chunk: _, ...rest } = a;
      return record({ ...rest, timeChunk });
    });
    const path = join(dir, 'property.log');
    const sink = new FileSink(path, () => {}, 5, 1 << 30, 4096);
    let expected = '';
    fc.assert(
      fc.property(records, (r) => {
        const reference = textLineOf(r);
        expect(textLine(r)).toBe(reference);
        sink.pushText(r);
        expected += reference;
      }),
      { numRuns: 3000 },
    );
    await sink.close();
    expect(readFileSync(path)).toEqual(Buffer.from(expected, 'utf8'));
  });

  it('writes client addresses the same whether kept as chunks or past the bound (256 kept)', () => {
    // Distinct strings of one text too (a second connection from the same host).
    for (let i = 0; i < 600; i++) {
      const address = `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`;
      for (const a of [address, [...address].join('')]) {
        const r = record({ client: { family: 'ipv4', address: a, port: i } });
        expect(textLine(r)).toBe(textLineOf(r));
      }
    }
    for (const address of ['10.0.0.1', '10.5.220.1', 'caf\u00e9', '\u20ac']) {
      const r = record({ client: { family: 'ipv6', address, port: 443 } });
      expect(textLine(r)).toBe(textLineOf(r));
    }
  });

  it('writes one JSON object per line with every field', () => {
    const line = jsonLine(record(), false);
    expect(line.endsWith('}\n')).toBe(true);
    expect(JSON.parse(line)).toEqual({
      time: '2026-12-03T10:00:00.000Z',
      server: 'web',
      client: '10.1.2.3',
      client_port: 4000,
      method: 'GET',
      path: '/a?b=1',
      status: 200,
      bytes: 12,
      duration_ms: 1.235,
      upstream: 'http://127.0.0.1:9000',
      upstream_status: 200,
      upstream_ms: 0.5,
      request_id: 'req-1',
    });
    const bare = JSON.parse(
      jsonLine(
        record({
          upstream: undefined,
          upstreamStatus: undefined,
          upstreamMs: undefined,
          requestId: undefined,
        }),
        false,
      ),
    );
    expect(bare).toMatchObject({
      upstream: null,
      upstream_status: null,
      upstream_ms: null,
      request_id: null,
    });
  });

  it('JSON-escapes client-chosen strings, and names the peer behind a trusted proxy', () => {
    const line = jsonLine(
      record({
        target: '/"}\n{"x":1',
        client: { family: 'ipv6', address: '2001:db8::1', port: 0 },
        peer: { family: 'ipv4', address: '10.0.0.1', port: 5555 },
      }),
      false,
    );
    expect(line.split('\n')).toHaveLength(2);
    const o = JSON.parse(line);
    expect(o).toMatchObject({
      path: '/"}\n{"x":1',
      client: '2001:db8::1',
      client_port: null,
      peer: '10.0.0.1',
    });
    // Backslashes, control characters and lone surrogates are escaped too; a plain value is quoted as it is.
    for (const target of ['/a\\b', '/\u0001', '/\ud800x', '/plain-é?q=1'])
      expect(JSON.parse(jsonLine(record({ target }), false)).path).toBe(target);
  });

  it('writes Thrift calls with kind, service and method', () => {
    const o = JSON.parse(jsonLine(record({ method: 'CALL', target: 'UserService:getUser' }), true));
    expect(o).toMatchObject({ kind: 'call', service: 'UserService', method: 'getUser', status: 200 });
    expect(o).not.toHaveProperty('path');
    const one = JSON.parse(jsonLine(record({ method: 'ONEWAY', target: 'ping' }), true));
    expect(one).toMatchObject({ kind: 'oneway', service: null, method: 'ping' });
  });
});

describe('FileSink', () => {
  const reports: string[] = [];
  const report = (m: string) => reports.push(m);

  it('appends lines in order, written on the tick, and everything on close', async () => {
    const path = join(dir, 'a.log');
    const sink = new FileSink(path, report, 5);
    for (let i = 0; i < 10; i++) sink.push(`line ${i}\n`);
    // Written by the tick, not by close(): wait for the file (a loaded machine runs timers late).
    const ten = Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join('');
    for (let waited = 0; readFileSync(path, 'utf8') !== ten && waited < 30_000; waited += 20)
      await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(path, 'utf8')).toBe(ten);
    sink.push('last\n');
    await sink.close();
    expect(readFileSync(path, 'utf8').endsWith('line 9\nlast\n')).toBe(true);
    sink.push('after close\n');
    expect(readFileSync(path, 'utf8')).not.toContain('after close');
  });

  it('reopen(): lines before it stay in the renamed file, later ones go to a new file at the path', async () => {
    const path = join(dir, 'rotate.log');
    const sink = new FileSink(path, report, 5);
    sink.push('before 1\n');
    sink.push('before 2\n');
    renameSync(path, `${path}.1`);
    // Pending lines are written to the file that was open (the renamed one), then it is reopened.
    await sink.reopen();
    sink.push('after\n');
    await sink.close();
    expect(readFileSync(`${path}.1`, 'utf8')).toBe('before 1\nbefore 2\n');
    expect(readFileSync(path, 'utf8')).toBe('after\n');
  });

  it('keeps at most maxPending bytes while a write is in flight, drops and reports the rest', async () => {
    const path = join(dir, 'slow.log');
    const seen: string[] = [];
    // flushBytes 100: the second line starts a write; until it completes (not within this
    // synchronous loop) lines wait, up to 1000 bytes; the rest is dropped.
    const sink = new FileSink(path, (m) => seen.push(m), 5, 1000, 100);
    const line = (i: number) => `${String(i).padStart(49, '0')}\n`; // 50 bytes
    for (let i = 0; i < 100; i++) sink.push(line(i));
    await sink.close();
    const written = readFileSync(path, 'utf8');
    // 2 lines in the first write, then 20 lines (1000 bytes) waited; 78 dropped.
    expect(written).toBe(Array.from({ length: 22 }, (_, i) => line(i)).join(''));
    expect(seen).toEqual([expect.stringMatching(/78 line\(s\) dropped: the disk did not keep up/)]);
  });

  it('pushText writes every record text line byte for byte (escaped and non-latin1 lines too), in order with push()', async () => {
    const path = join(dir, 'bytes.log');
    // flushBytes 300: writes start while lines keep coming, so lines also land in the spare buffer.
    const sink = new FileSink(path, report, 5, 1 << 20, 300);
    const records: AccessRecord[] = [];
    for (const ms of [0, 0.125, 1.005, 2.675, 999_999.99, 1e6, -1, Number.NaN]) records.push(record({ ms }));
    for (const client of [
      { family: 'ipv6', address: '::1', port: 443 },
      { family: 'ipv4', address: '192.0.2.1', port: 0 },
      { family: 'unix', path: '/run/x.sock' },
    ] as const)
      records.push(record({ client }));
    // The last three: labels kept as bytes once written (one of the same length as the default
    // upstream's), and one with a latin1 char above 0x7f, written to a latin1 string (textLine)
    // and to the file (UTF-8) in turns.
    for (const s of [
      '',
      'x y',
      'a"b',
      'é',
      '\u0100',
      '€',
      '\u0001',
      `/${'p'.repeat(5000)}`,
      'http://127.0.0.2:9000',
      'http://caf\u00e9.example:9000',
      'http://\u20ac.example.com:9000',
    ]) {
      records.push(record({ method: s }), record({ target: s }), record({ server: s }));
      records.push(record({ upstream: s }), record({ time: s }));
    }
    let expected = '';
    for (let round = 0; round < 20; round++) {
      for (const r of records) {
        sink.pushText(r);
        expected += textLine(r);
      }
      const json = jsonLine(record({ status: round }), false);
      sink.push(json);
      expected += json;
      // Some rounds wait for the writes in flight, some do not.
      if (round % 3 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await sink.close();
    expect(readFileSync(path, 'latin1')).toBe(Buffer.from(expected, 'utf8').toString('latin1'));
  });

  it('pushText keeps at most maxPending bytes while a write is in flight, as push does', async () => {
    const path = join(dir, 'slow-text.log');
    const seen: string[] = [];
    const r = record();
    const line = textLine(r);
    const sink = new FileSink(path, (m) => seen.push(m), 5, 10 * line.length, 2 * line.length);
    for (let i = 0; i < 50; i++) sink.pushText(r);
    await sink.close();
    // 2 lines in the first write, then 10 waited; 38 dropped.
    expect(readFileSync(path, 'utf8')).toBe(line.repeat(12));
    expect(seen).toEqual([expect.stringMatching(/38 line\(s\) dropped: the disk did not keep up/)]);
  });

  it('pushText lines are written on the tick, not only on close', async () => {
    // pushText's common case only stores the line: the write must still be timed by the first.
    const path = join(dir, 'tick-text.log');
    const sink = new FileSink(path, report, 5);
    const records = Array.from({ length: 10 }, (_, i) => record({ status: 200 + i }));
    for (const r of records) sink.pushText(r);
    const ten = records.map((r) => textLine(r)).join('');
    // Written by the tick, not by close(): wait for the file (a loaded machine runs timers late).
    for (let waited = 0; readFileSync(path, 'utf8') !== ten && waited < 30_000; waited += 20)
      await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(path, 'utf8')).toBe(ten);
    await sink.close();
  });

  it('pushText drops what is past maxPending even with no write in flight (maxPending below flushBytes)', async () => {
    const path = join(dir, 'small-pending-text.log');
    const seen: string[] = [];
    const r = record();
    const line = textLine(r);
    // No write starts before 10 lines; only 3 may wait.
    const sink = new FileSink(path, (m) => seen.push(m), 5, 3 * line.length, 10 * line.length);
    for (let i = 0; i < 5; i++) sink.pushText(r);
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe(line.repeat(3));
    expect(seen).toEqual([expect.stringMatching(/2 line\(s\) dropped: the disk did not keep up/)]);
  });

  it('refuses a path that cannot be opened with a typed error', () => {
    expect(() => new FileSink(join(dir, 'missing-dir', 'x.log'), report)).toThrow(AccessLogFileError);
    try {
      new FileSink(join(dir, 'missing-dir', 'x.log'), report);
    } catch (error) {
      expect((error as AccessLogFileError).code).toBe('ERR_LOCH_ACCESS_LOG_FILE');
      expect((error as Error).message).toMatch(/missing-dir.*ENOENT/);
    }
  });
});
