import { describe, expect, it } from 'vitest';
import { lookupMethod } from './known-names.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];

/** `text` as latin1 bytes at offset `at` of a larger array (junk around it). */
function at(text: string, offset: number): Uint8Array {
  const b = new Uint8Array(offset + text.length + 8).fill(0x41);
  for (let i = 0; i < text.length; i++) b[offset + i] = text.charCodeAt(i);
  return b;
}

describe('lookupMethod', () => {
  it('returns the interned string of every standard method, at any offset', () => {
    for (const m of METHODS) {
      for (const offset of [0, 1, 3, 5]) {
        expect(lookupMethod(at(m, offset), offset, offset + m.length)).toBe(m);
      }
    }
  });

  it('returns undefined for every other run: one byte changed anywhere, lower case, a prefix, a longer run', () => {
    let checked = 0;
    for (const m of METHODS) {
      for (let i = 0; i < m.length; i++) {
        for (const c of [m.charCodeAt(i) ^ 0x20, m.charCodeAt(i) + 1, 0, 0x80, 0xff]) {
          const b = at(m, 2);
          b[2 + i] = c & 0xff;
          expect(lookupMethod(b, 2, 2 + m.length)).toBeUndefined();
          checked++;
        }
        if (i > 0)
          expect(lookupMethod(at(m, 0), 0, i)).toBe(
            METHODS.includes(m.slice(0, i)) ? m.slice(0, i) : undefined,
          );
      }
      expect(lookupMethod(at(`${m}X`, 0), 0, m.length + 1)).toBeUndefined();
      expect(lookupMethod(at(m.toLowerCase(), 0), 0, m.length)).toBeUndefined();
    }
    for (const other of ['', 'G', 'GE', 'GETS', 'PURGE', 'OPTIONSX', 'PROPFIND', 'M-SEARCH']) {
      expect(lookupMethod(at(other, 1), 1, 1 + other.length)).toBeUndefined();
    }
    expect(checked).toBeGreaterThan(200);
  });

  it('agrees with a string compare on random short runs of method letters', () => {
    const letters = 'ACDEGHILNOPRSTU';
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    let hits = 0;
    for (let n = 0; n < 20000; n++) {
      const len = next() % 9;
      let s = '';
      // Start from a method now and then, so that near misses are common.
      if (next() % 2 === 0) s = METHODS[next() % METHODS.length]!.slice(0, len);
      while (s.length < len) s += letters[next() % letters.length];
      const want = METHODS.includes(s) ? s : undefined;
      if (want !== undefined) hits++;
      expect(lookupMethod(at(s, 3), 3, 3 + s.length)).toBe(want);
    }
    expect(hits).toBeGreaterThan(100);
  });
});
