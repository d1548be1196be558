/**
 * The head scanner's function form (@loch/native `headScan.scanner(io, slab)`, which the decoder
 * uses): a function that is its own binding. It scans exactly as `scan(bind(io, slab), src)`
 * does, `setSlab` moves it, and it refuses what `scan` refuses (other arrays; a plain function
 * or another External passed as a binding).
 */
import { type HeadScanBinding, loadHeadScan, type NativeHeadScan } from '@loch/native';
import { describe, expect, it } from 'vitest';
import { decode } from './decode-all.js';

type Scanner = NativeHeadScan & {
  scanner(io: Int32Array, slab: Uint8Array): ((src: Uint8Array) => number) & HeadScanBinding;
};
const loaded = loadHeadScan();
const native = 'headScan' in loaded ? (loaded.headScan as Scanner) : undefined;
// Decoding once makes the decoder set the known names (init) before the scans below.
decode('request', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');

const HEAD = Buffer.from('GET /x HTTP/1.1\r\nHost: h\r\nX-A: v\r\nContent-Length: 3\r\n\r\nabc', 'latin1');

function record(): Int32Array {
  const io = new Int32Array(28 + 5 * 8);
  io.set([0, HEAD.length, 0, 0, 16384, 100, 8192, -1]);
  return io;
}

describe.runIf(native !== undefined)('headScan.scanner', () => {
  it('scans as scan(bind(io, slab), src) does: the same outcome and record', () => {
    const s = native!;
    expect(typeof s.scanner).toBe('function');
    const a = record();
    const b = record();
    const slabA = new Uint8Array(256);
    const slabB = new Uint8Array(256);
    a[7] = 8;
    b[7] = 8;
    const fn = s.scanner(a, slabA);
    expect(fn(HEAD)).toBe(3);
    expect(s.scan(s.bind(b, slabB), HEAD)).toBe(3);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(slabA)).toEqual(Array.from(slabB));
    // A second scan through the same function, and one through scan() with it as the binding.
    a[7] = -1;
    a[1] = 10;
    expect(fn(HEAD.subarray(0, 10))).toBe(0); // not whole: the decoder's line scan goes on
    a[1] = HEAD.length;
    expect(s.scan(fn, HEAD)).toBe(1);
  });

  it('moves to a new slab with setSlab, and refuses other arrays and foreign bindings', () => {
    const s = native!;
    const io = record();
    const old = new Uint8Array(256);
    const fn = s.scanner(io, old);
    const next = new Uint8Array(256);
    s.setSlab(fn, next);
    io[7] = 0;
    expect(fn(HEAD)).toBe(3);
    expect(old.every((x) => x === 0)).toBe(true);
    const len = io[8]!;
    expect(Buffer.from(next.subarray(0, len)).toString('latin1')).toBe(HEAD.toString('latin1', 0, len));
    expect(() => fn(new Uint16Array(8) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => (fn as unknown as () => number)()).toThrow(TypeError);
    const plain = (() => 0) as unknown as HeadScanBinding;
    expect(() => s.setSlab(plain, next)).toThrow(TypeError);
    expect(() => s.scan(plain, HEAD)).toThrow(TypeError);
    expect(() => s.scanner(new Int32Array(8), next)).toThrow(TypeError);
  });
});
