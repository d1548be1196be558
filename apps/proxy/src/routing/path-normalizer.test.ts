import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath, PathRejection } from './path-normalizer.js';

/** Decodes every escape as a byte (latin1), the way an origin server that decodes would. */
function decodeAll(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

const RESERVED = ":/?#[]@!$&'()*+,;=";

/** Path segments made of the pieces that matter: dots (plain and encoded), escapes of every kind. */
const piece = fc.constantFrom(
  'a',
  'B',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2e%2E',
  '.%2e',
  '%41',
  '%7e',
  '%7E',
  '%5f',
  '%2d',
  '%3a',
  '%3A',
  '%3f',
  '%40',
  '%25',
  '%c3%a9',
  '%C3%A9',
  '%20',
  '~',
  ':',
  '@',
  '!',
  '',
);
const segment = fc.array(piece, { maxLength: 3 }).map((p) => p.join(''));
const path = fc.array(segment, { maxLength: 8 }).map((s) => `/${s.join('/')}`);
const pathWithSlashes = fc
  .array(fc.oneof(segment, fc.constantFrom('%2f', '%2F', 'x%2F..')), { maxLength: 8 })
  .map((s) => `/${s.join('/')}`);

describe('normalizePath', () => {
  it('returns the common path itself (no copy)', () => {
    const p = `/api/v1/${'users'}`;
    expect(normalizePath(p)).toBe(p);
    expect(normalizePath('/')).toBe('/');
    expect(normalizePath('/caf%C3%A9')).toBe('/caf%C3%A9');
  });

  it('removes dot segments and refuses to climb above the root', () => {
    expect(normalizePath('/a/./b/../c')).toBe('/a/c');
    expect(normalizePath('/public/../admin')).toBe('/admin');
    expect(normalizePath('/a/b/..')).toBe('/a/');
    expect(normalizePath('/a/.')).toBe('/a/');
    expect(normalizePath('/.well-known/x')).toBe('/.well-known/x');
    expect(normalizePath('/..')).toBe(PathRejection.AboveRoot);
    expect(normalizePath('/a/../../etc')).toBe(PathRejection.AboveRoot);
  });

  it('decodes unreserved escapes (encoded dot segments included) and uppercases the others', () => {
    expect(normalizePath('/api/%2e%2e/admin')).toBe('/admin');
    expect(normalizePath('/api/%2E%2E/admin')).toBe('/admin');
    expect(normalizePath('/api/.%2e/admin')).toBe('/admin');
    expect(normalizePath('/api/%2e/x')).toBe('/api/x');
    expect(normalizePath('/%2e%2e/etc')).toBe(PathRejection.AboveRoot);
    expect(normalizePath('/%41%62c/%7e%5F%2D%2e%30')).toBe('/Abc/~_-.0');
    expect(normalizePath('/caf%c3%a9?')).toBe('/caf%C3%A9?');
    expect(normalizePath('/a%3fb%3Dc%25%20')).toBe('/a%3Fb%3Dc%25%20');
    expect(normalizePath('/%252e%252e/x')).toBe('/%252e%252e/x');
  });

  it('refuses malformed escapes, an encoded NUL and (by default) an encoded slash', () => {
    expect(normalizePath('/a%zz')).toBe(PathRejection.BadEscape);
    expect(normalizePath('/a%4')).toBe(PathRejection.BadEscape);
    expect(normalizePath('/a%')).toBe(PathRejection.BadEscape);
    expect(normalizePath('/a%00b')).toBe(PathRejection.EncodedNul);
    expect(normalizePath('/a%2fb')).toBe(PathRejection.EncodedSlash);
    expect(normalizePath('/a%2Fb')).toBe(PathRejection.EncodedSlash);
    expect(normalizePath('/a%2fb', true)).toBe('/a%2Fb');
    expect(normalizePath('/a%2Fb', true)).toBe('/a%2Fb');
    // kept encoded, an encoded slash is not a separator: "..%2F.." is no dot segment
    expect(normalizePath('/a/..%2f../b', true)).toBe('/a/..%2F../b');
    expect(normalizePath('/a%00b', true)).toBe(PathRejection.EncodedNul);
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(pathWithSlashes, fc.boolean(), (p, slashes) => {
        const once = normalizePath(p, slashes);
        if (typeof once === 'string') expect(normalizePath(once, slashes)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  it('never yields a dot segment, plain or encoded, and always starts with "/"', () => {
    fc.assert(
      fc.property(pathWithSlashes, fc.boolean(), (p, slashes) => {
        const out = normalizePath(p, slashes);
        if (typeof out !== 'string') return;
        expect(out.startsWith('/')).toBe(true);
        expect(out.split('/').some((s) => s === '.' || s === '..')).toBe(false);
        // no escape of an unreserved character and no lowercase hex is left
        expect(out).not.toMatch(/%(2[DdEe]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])/);
        expect(out).not.toMatch(/%([0-9A-F][a-f]|[a-f][0-9A-Fa-f])/);
      }),
      { numRuns: 2000 },
    );
  });

  it('never decodes a reserved character', () => {
    fc.assert(
      fc.property(pathWithSlashes, fc.boolean(), (p, slashes) => {
        const out = normalizePath(p, slashes);
        if (typeof out !== 'string') return;
        for (const c of RESERVED) {
          // each reserved character appears literally no more often than it did
          expect(out.split(c).length).toBeLessThanOrEqual(p.split(c).length);
        }
      }),
      { numRuns: 2000 },
    );
    for (const c of RESERVED) {
      if (c === '/') continue;
      const hex = c.charCodeAt(0).toString(16).toUpperCase();
      expect(normalizePath(`/x%${hex.toLowerCase()}y`)).toBe(`/x%${hex}y`);
    }
  });

  it('keeps the meaning of a path without dot segments (decoding both gives the same bytes)', () => {
    fc.assert(
      fc.property(path, (p) => {
        const out = normalizePath(p);
        if (typeof out !== 'string') return;
        if (
          decodeAll(p)
            .split('/')
            .some((s) => s === '.' || s === '..')
        )
          return;
        expect(decodeAll(out)).toBe(decodeAll(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with plain dot-segment removal on paths without escapes', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '.', '..', ''), { maxLength: 8 }), (segs) => {
        const p = `/${segs.join('/')}`;
        const out = normalizePath(p);
        const url = new URL(`http://h${p}`).pathname;
        if (typeof out === 'string') expect(out).toBe(url);
        else expect(out).toBe(PathRejection.AboveRoot);
      }),
    );
  });
});
