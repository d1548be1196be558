/**
 * The head scanner's JavaScript boundary (binding.headScan): records that point outside the
 * input, short or misaligned records, bindings that are not bindings and a scan before the known
 * names are set are refused with typed errors, never read out of bounds; the known-name list is
 * checked and cannot change once set; a head is copied into the bound slab only when it fits. Its parsing rules are tested in @loch/http (test/head-scan.test.ts) against the decoder's
 * JavaScript parser and llhttp.
 */
import { describe, expect, it } from 'vitest';
import { type HeadScanBinding, loadHeadScan, loadSiv } from '../index.js';

const loaded = loadHeadScan();
const scanner = 'headScan' in loaded ? loaded.headScan : undefined;

const NAMES = ['connection', 'content-length', 'expect', 'host', 'transfer-encoding', 'upgrade', 'x-a'];
const HEAD = Buffer.from('GET /x HTTP/1.1\r\nHost: h\r\nX-A: v\r\n\r\nbody', 'latin1');

function record(start: number, end: number, mode = 0): Int32Array {
  const io = new Int32Array(28 + 5 * 8);
  io.set([start, end, mode, 0, 16384, 100, 8192, -1]);
  return io;
}

/** Binds `io` (and a slab) and scans HEAD with it. */
function scan(io: Int32Array, src: Uint8Array = HEAD, slab = new Uint8Array(0)): number {
  return scanner!.scan(scanner!.bind(io, slab), src);
}

describe('headScan', () => {
  it('loads with the addon', () => {
    expect('error' in loaded ? loaded.error : '').toBe('');
  });

  it('refuses a scan before init, then takes a name list once', () => {
    const s = scanner!;
    expect(() => scan(record(0, HEAD.length))).toThrow(RangeError);
    expect(s.init(['Host', ...NAMES])).toBe(false); // not lowercase
    expect(s.init(['content-length'])).toBe(false); // lacks the framing names
    expect(s.init(NAMES)).toBe(true);
    expect(s.init(NAMES)).toBe(true); // the same list again
    expect(s.init([...NAMES, 'x-b'])).toBe(false); // a different one
  });

  it('finds a head and writes its fields', () => {
    const io = record(0, HEAD.length);
    expect(scan(io)).toBe(1);
    expect(io[8]).toBe(HEAD.indexOf('\r\n\r\n') + 4); // length
    expect(io[13]).toBe(2); // fields
    const entry = Array.from(io.subarray(28 + 5, 28 + 10));
    const [ns, ne, vs, ve, meta] = entry as [number, number, number, number, number];
    expect(HEAD.toString('latin1', ns, ne)).toBe('X-A');
    expect(HEAD.toString('latin1', vs, ve)).toBe('v');
    expect(meta & 0xff).toBe(NAMES.indexOf('x-a') + 1);
  });

  it('writes the summary of the field lines after the entries, in the slab or the record', () => {
    // The layout mark the decoder checks.
    expect(scanner!.summaryWords).toBe(5);
    const head = Buffer.from(
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a\r\nX-A:v \r\nContent-Length: 0\r\n\r\n',
      'latin1',
    );
    const io = record(0, head.length);
    const slab = new Uint8Array(256);
    io[7] = 0;
    expect(scan(io, head, slab)).toBe(3);
    // Copied: the entries and the summary are in the slab only (the record's stay as they were).
    expect(io.subarray(28).every((w) => w === 0)).toBe(true);
    const id = (name: string) => NAMES.indexOf(name) + 1;
    // Host's line as is (9 bytes), X-A's as `X-A: v\r\n` (8); Connection and Content-Length
    // (lines 1 and 3) flagged; every line's id in the filter; no Date, no line past 32, and a
    // Connection line that names a field.
    const summary = [
      17,
      0b1010,
      (1 << id('host')) | (1 << id('connection')) | (1 << id('x-a')) | (1 << id('content-length')),
      0,
      0,
    ];
    const wbase = (head.length + 3) >> 2;
    expect(Array.from(new Int32Array(slab.buffer, 4 * (wbase + 5 * 4), 5))).toEqual(summary);
    // Not copied (no slab room): in the record.
    io[7] = -1;
    expect(scan(io, head, slab)).toBe(1);
    expect(Array.from(io.subarray(28 + 5 * 4, 28 + 5 * 5))).toEqual(summary);
    // A flagged line at index 32 or later: SF_MORE (2), not a bit of its own; no Connection
    // line in a head: SF_CONNECTION_HOP_ONLY (4).
    const many = Buffer.from(`GET / HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(40)}Upgrade: w\r\n\r\n`, 'latin1');
    const big = new Int32Array(28 + 5 * 50);
    big.set([0, many.length, 0, 0, 16384, 100, 8192, -1]);
    expect(scanner!.scan(scanner!.bind(big, new Uint8Array(0)), many)).toBe(1);
    expect(Array.from(big.subarray(28 + 5 * 41, 28 + 5 * 42))).toEqual([
      40 * 8,
      0,
      (1 << id('x-a')) | (1 << id('upgrade')),
      0,
      2 | 4,
    ]);
  });

  it('refuses records outside the input, short or misaligned records, other arrays and bindings', () => {
    const s = scanner!;
    expect(() => scan(record(0, HEAD.length + 1))).toThrow(RangeError);
    expect(() => scan(record(5, 4))).toThrow(RangeError);
    expect(() => scan(record(-1, 4))).toThrow(RangeError);
    const bad = record(0, HEAD.length);
    bad[3] = 7; // kind
    expect(() => scan(bad)).toThrow(RangeError);
    const slab = new Uint8Array(64);
    expect(() => s.bind(new Int32Array(8), slab)).toThrow(TypeError);
    expect(() => s.bind(new Int32Array(new ArrayBuffer(4 * 40), 4, 30), slab)).toThrow(TypeError);
    expect(() => s.bind(record(0, 8), new Uint8Array(new ArrayBuffer(64), 1, 32))).toThrow(TypeError);
    expect(() => scan(record(0, 8), new Uint16Array(8) as unknown as Uint8Array)).toThrow(TypeError);
    // Only a binding passes for one: not another External (an AES-SIV key handle), not an object.
    const siv = loadSiv();
    if ('siv' in siv) {
      const key = siv.siv.key(new Uint8Array(32)) as unknown as HeadScanBinding;
      expect(() => s.scan(key, HEAD)).toThrow(TypeError);
    }
    expect(() => s.scan({} as HeadScanBinding, HEAD)).toThrow(TypeError);
  });

  it('copies into the bound slab only when the head and an entry per line fit', () => {
    const io = record(0, HEAD.length);
    const len = HEAD.indexOf('\r\n\r\n') + 4;
    // The head, an entry for each of its three lines (the scanner's bound for its two fields,
    // known before they are parsed) and the summary (5 words).
    const fits = new Uint8Array(4 * Math.ceil(len / 4) + 4 * 20 + 8);
    io[7] = 8;
    expect(scan(io, HEAD, fits)).toBe(3);
    expect(Buffer.from(fits.subarray(8, 8 + len)).toString('latin1')).toBe(HEAD.toString('latin1', 0, len));
    const words = new Int32Array(fits.buffer, 4 * ((8 + len + 3) >> 2), 10);
    expect(HEAD.toString('latin1', words[5]! - 8, words[6]! - 8)).toBe('X-A');
    const tight = new Uint8Array(4 * Math.ceil(len / 4) + 4 * 20 - 4);
    io[7] = 0;
    expect(scan(io, HEAD, tight)).toBe(1);
    expect(tight.every((b) => b === 0)).toBe(true);
    // Not copied: the entries are in the record, from the head's start.
    expect(HEAD.toString('latin1', io[28 + 5]!, io[28 + 6]!)).toBe('X-A');
    // setSlab moves a binding: the next copy lands in the new slab, none in the old one.
    const binding = scanner!.bind(io, tight);
    const next = new Uint8Array(fits.length);
    scanner!.setSlab(binding, next);
    expect(scanner!.scan(binding, HEAD)).toBe(3);
    expect(Buffer.from(next.subarray(0, len)).toString('latin1')).toBe(HEAD.toString('latin1', 0, len));
    expect(tight.every((b) => b === 0)).toBe(true);
    expect(() => scanner!.setSlab({} as HeadScanBinding, next)).toThrow(TypeError);
    expect(() => scanner!.setSlab(binding, new Uint8Array(new ArrayBuffer(64), 2, 8))).toThrow(TypeError);
  });
});
