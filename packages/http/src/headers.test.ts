import { describe, expect, it } from 'vitest';
import { RequestDecoder, useNativeHeadScan } from './h1/decoder.js';
import { HeaderName, HeaderNameSet, HttpHeaders } from './headers.js';
import { S_IDS_HI, S_IDS_LO } from './internal/head-summary.js';

function wire(fields: string): HttpHeaders {
  const d = new RequestDecoder();
  d.feed(Buffer.from(`GET / HTTP/1.1\r\nHost: h\r\n${fields}\r\n`, 'latin1'));
  d.poll();
  return d.message!.headers;
}

describe('HttpHeaders', () => {
  it('looks up names case-insensitively on wire headers without decoding them first', () => {
    const h = wire('X-Custom-Thing: one\r\nX-CUSTOM-thing: two\r\nAccept: */*\r\n');
    expect(h.get('x-custom-thing')).toBe('one');
    expect(h.getAll('X-Custom-Thing')).toEqual(['one', 'two']);
    expect(h.has('ACCEPT')).toBe(true);
    expect(h.has('missing')).toBe(false);
    expect([...h]).toEqual([
      ['host', 'h'],
      ['x-custom-thing', 'one'],
      ['x-custom-thing', 'two'],
      ['accept', '*/*'],
    ]);
  });

  it('takes a HeaderName wherever it takes a name: known and other names, wire and added fields', () => {
    const host = new HeaderName('Host');
    const custom = new HeaderName('X-Custom-Thing');
    const via = new HeaderName('via');
    expect(host.name).toBe('host');
    expect(custom.name).toBe('x-custom-thing');
    const h = wire('X-Custom-Thing: one\r\nX-CUSTOM-thing: two\r\nVia: 1.1 a\r\n');
    expect(h.get(host)).toBe('h');
    expect(h.getAll(custom)).toEqual(['one', 'two']);
    expect(h.has(via)).toBe(true);
    expect(h.has(new HeaderName('x-missing'))).toBe(false);
    h.append(via, ' 1.1 loch ');
    h.append(custom, 'three');
    expect(h.getAll(via)).toEqual(['1.1 a', '1.1 loch']);
    expect(h.getAll('x-custom-thing')).toEqual(['one', 'two', 'three']);
    h.set(host, 'other');
    expect(h.getAll('host')).toEqual(['other']);
    expect(h.delete(custom)).toBe(3);
    expect([...h]).toEqual([
      ['via', '1.1 a'],
      ['via', '1.1 loch'],
      ['host', 'other'],
    ]);
    expect(() => h.append(via, 'bad\r\nvalue')).toThrow(/invalid header value for "via"/);
    expect(() => new HeaderName('bad name')).toThrow(/invalid header name/);
  });

  it('keeps the one string read from a decoded list without an array; removals do not confuse it', () => {
    const cacheOf = (h: HttpHeaders) => (h as unknown as { cache: (string | undefined)[] | null }).cache;
    // Lines: host 0, x-drop 1, x-a 2, x-b 3, x-c 4.
    const fields = 'X-Drop: 1\r\nX-A: a\r\nX-B: b\r\nX-C: c\r\n';
    const h = wire(fields);
    expect(h.get('x-b')).toBe('b');
    expect(cacheOf(h)).toBe(null);
    expect(h.get('x-b')).toBe('b');
    // x-b moves to line 2 and x-c to line 3, where x-b's string was: each reads its own.
    expect(h.delete('x-drop')).toBe(1);
    expect(h.get('x-c')).toBe('c');
    expect(h.get('x-b')).toBe('b');
    expect(cacheOf(h)).not.toBe(null);
    // A removed line's string goes with it: x-a moves to x-drop's line.
    const g = wire(fields);
    expect(g.get('x-drop')).toBe('1');
    expect(g.delete('x-drop')).toBe(1);
    expect(g.get('x-a')).toBe('a');
    // Names (of uncommon fields) and values share the memo and the array.
    const k = wire('X-Drop: 1\r\nX-Odd: v\r\n');
    expect(k.nameAt(2)).toBe('x-odd');
    expect(k.valueAt(2)).toBe('v');
    expect([...k]).toEqual([
      ['host', 'h'],
      ['x-drop', '1'],
      ['x-odd', 'v'],
    ]);
  });

  it('mutates wire headers after materializing them', () => {
    const h = wire('A: 1\r\nB: 2\r\nA: 3\r\n');
    expect(h.delete('a')).toBe(2);
    h.append('C', ' 4 ');
    h.set('b', '5');
    expect([...h]).toEqual([
      ['host', 'h'],
      ['c', '4'],
      ['b', '5'],
    ]);
  });

  it('deletes a set of names in one pass, on wire and built lists', () => {
    const names = new Set(['connection', 'keep-alive', 'te']);
    const h = wire('Connection: keep-alive\r\nA: 1\r\nKeep-Alive: timeout=5\r\nB: 2\r\nTE: x\r\n');
    expect(h.deleteNames(names)).toBe(3);
    expect([...h]).toEqual([
      ['host', 'h'],
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(h.deleteNames(names)).toBe(0);
    const built = new HttpHeaders([
      ['te', 'trailers'],
      ['x', 'y'],
    ]);
    expect(built.deleteNames(names)).toBe(1);
    built.append('z', '1');
    expect([...built]).toEqual([
      ['x', 'y'],
      ['z', '1'],
    ]);
  });

  it('presence: the names of a set a list has, in one pass, as has() finds them (both head parsers)', () => {
    // Known names, uncommon ones, and near misses of both (a prefix, a longer name, one letter off).
    const names = [
      'x-forwarded-client-cert',
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-forwarded-host',
      'via',
      'x-custom',
    ];
    const set = new HeaderNameSet(['X-Forwarded-Client-Cert', ...names.slice(1), 'VIA']);
    const lines = [
      'X-FORWARDED-CLIENT-CERT: a\r\n',
      'x-forwarded-client-cer: a\r\n',
      'X-Forwarded-Client-Certs: a\r\n',
      'x-Forwarded-For: 1.2.3.4\r\n',
      'X-Forwarded-Fo: a\r\n',
      'X-FORWARDED-PROTO: https\r\n',
      'X-Forwarded-Hosts: a\r\n',
      'vIa: 1.1 a\r\n',
      'X-Custom: 1\r\n',
      'X-Custon: 1\r\n',
    ];
    const expected = (h: HttpHeaders) =>
      names.reduce((bits, name, k) => (h.has(name) ? bits | (1 << k) : bits), 0);
    let checked = 0;
    let seen = 0;
    try {
      for (const native of [true, false]) {
        useNativeHeadScan(native);
        // Every subset of the lines, decoded; then with an added field on top.
        for (let mask = 0; mask < 1 << lines.length; mask += 7) {
          const h = wire(lines.filter((_, i) => (mask & (1 << i)) !== 0).join(''));
          expect(h.presence(set)).toBe(expected(h));
          h.append(names[mask % names.length]!, 'added');
          expect(h.presence(set)).toBe(expected(h));
          seen |= expected(h);
          checked++;
        }
      }
    } finally {
      useNativeHeadScan(true);
    }
    expect(checked).toBeGreaterThan(200);
    expect(seen).toBe((1 << names.length) - 1);
    const built = new HttpHeaders([
      ['x-custom', '1'],
      ['via', 'a'],
    ]);
    expect(built.presence(set)).toBe((1 << 5) | (1 << 4));
    expect(new HttpHeaders().presence(set)).toBe(0);
    // Bits follow the set's order, duplicates skipped; past the 30th name, none.
    const many = new HeaderNameSet([
      'accept',
      'ACCEPT',
      ...Array.from({ length: 30 }, (_, i) => `x-n${i}`),
      'host',
    ]);
    // accept is bit 0, x-n0 bit 1, x-n28 bit 29; x-n29 and host (a known name) have none.
    expect(wire('Accept: a\r\nX-N0: 1\r\nX-N28: 1\r\nX-N29: 1\r\n').presence(many)).toBe(1 | 2 | (1 << 29));
  });

  it("presence trusts the head summary's id filter: a head it shows none of the set's names in is not read (both parsers)", () => {
    const set = new HeaderNameSet(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-client-cert']);
    const forFor = 1;
    const forCert = 4;
    try {
      for (const native of [true, false]) {
        useNativeHeadScan(native);
        // The filter as decoded: the names are found, known (by id) and uncommon (by bytes).
        expect(wire('Accept: */*\r\n').presence(set)).toBe(0);
        expect(wire('X-Forwarded-For: a\r\n').presence(set)).toBe(forFor);
        expect(wire('X-Custom: 1\r\nX-Forwarded-Client-Cert: a\r\n').presence(set)).toBe(forCert);
        // A filter that says a head has no such id and no uncommon name: its lines are not
        // visited (without the summary's test, presence() would find both).
        const forged = wire('X-Forwarded-For: a\r\nX-Forwarded-Client-Cert: a\r\n');
        const words = forged.slab!.words;
        expect(forged.presence(set)).toBe(forFor | forCert);
        words[forged.summaryAt + S_IDS_LO] = 0;
        words[forged.summaryAt + S_IDS_HI] = 0;
        expect(forged.presence(set)).toBe(0);
        // Id 0's bit alone (an uncommon name): a set with one reads the lines.
        words[forged.summaryAt + S_IDS_LO] = 1;
        expect(forged.presence(set)).toBe(forFor | forCert);
        // A set without uncommon names does not look at id 0's bit.
        expect(forged.presence(new HeaderNameSet(['x-forwarded-for']))).toBe(0);
        // A decoded line removed: no summary, every line read again.
        forged.delete('host');
        expect(forged.summaryAt).toBe(-1);
        expect(forged.presence(set)).toBe(forFor | forCert);
      }
    } finally {
      useNativeHeadScan(true);
    }
  });

  it('removeHopByHop reads every decoded Connection line but those listing only keep-alive and upgrade (both parsers)', () => {
    // [fields, the names left besides host]: each Connection line that lists anything else
    // (another name, `close`, parameters, a name after a space) has its names removed.
    const cases: [string, string[]][] = [
      ['Connection: keep-alive\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: UPGRADE, Keep-Alive\r\nUpgrade: w\r\nX-A: 1\r\n', ['x-a']],
      ['Connection:\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: ,\t,\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: keep-alive, x-a\r\nX-A: 1\r\nX-B: 1\r\n', ['x-b']],
      ['Connection: keep-alive x-a\r\nX-A: 1\r\nX-B: 1\r\n', ['x-b']],
      ['Connection: keep-alive\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 1\r\n', ['x-b']],
      ['Connection: X-A\r\nConnection: keep-alive\r\nX-A: 1\r\nX-B: 1\r\n', ['x-b']],
      ['Connection: close\r\nClose: 1\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: keep-alive, close\r\nClose: 1\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: keep-alive, accept\r\nAccept: */*\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: keep-alive;x=1\r\nX-A: 1\r\n', ['x-a']],
      ['Connection: upgrade;x, via\r\nVia: 1.1 a\r\nX-A: 1\r\n', ['x-a']],
    ];
    try {
      for (const native of [true, false]) {
        useNativeHeadScan(native);
        for (const [fields, left] of cases) {
          const h = wire(fields);
          h.removeHopByHop();
          expect(
            [...h].map(([n]) => n),
            fields,
          ).toEqual(['host', ...left]);
        }
      }
    } finally {
      useNativeHeadScan(true);
    }
  });

  it('removeHopByHop removes what a plain reading of RFC 9110 §7.6.1 removes (random heads, both parsers)', () => {
    const HOP = [
      'connection',
      'proxy-connection',
      'keep-alive',
      'te',
      'transfer-encoding',
      'trailer',
      'upgrade',
    ];
    // Transfer-Encoding is only added (a request's would frame its body, or be refused).
    const names = [
      ...HOP.filter((n) => n !== 'transfer-encoding'),
      'X-A',
      'x-b',
      'Accept',
      'via',
      'X-Forwarded-For',
      'proxy-authorization',
      'close',
    ];
    const tokens = [
      'keep-alive',
      'close',
      'x-a',
      'X-B',
      'VIA',
      'accept',
      'upgrade',
      'x-forwarded-for',
      'TE',
      'x-c',
    ];
    const alsos = [
      undefined,
      new HeaderNameSet(['proxy-authorization', 'proxy-authenticate']),
      new HeaderNameSet(['X-B', 'via']),
    ];
    let seed = 18;
    const pick = <T>(a: readonly T[]): T => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return a[(seed >>> 8) % a.length]!;
    };
    const reference = (list: [string, string][], also: HeaderNameSet | undefined) => {
      const listed = new Set<string>();
      for (const [n, v] of list)
        if (n === 'connection') for (const t of v.split(',')) listed.add(t.trim().toLowerCase());
      return list.filter(([n]) => !HOP.includes(n) && !listed.has(n) && also?.has(n) !== true);
    };
    let removedSome = 0;
    try {
      for (const native of [true, false]) {
        useNativeHeadScan(native);
        for (let round = 0; round < 300; round++) {
          let fields = '';
          const count = 1 + (round % 7);
          for (let k = 0; k < count; k++) {
            const name = pick(names);
            const value =
              name.toLowerCase() === 'connection'
                ? `${pick(tokens)}${pick([', ', ',', ' ,\t'])}${pick(tokens)}`
                : pick(['1', 'v']);
            fields += `${name}: ${value}\r\n`;
          }
          const h = wire(fields);
          if (round % 3 === 0) h.append(pick([...names, 'transfer-encoding']), 'added');
          if (round % 5 === 0) h.append('Connection', `${pick(tokens)}, ${pick(tokens)}`);
          const also = pick(alsos);
          const before: [string, string][] = [...h];
          const expected = reference(before, also);
          expect(h.removeHopByHop(also)).toBe(before.length - expected.length);
          expect([...h]).toEqual(expected);
          if (expected.length < before.length) removedSome++;
        }
      }
    } finally {
      useNativeHeadScan(true);
    }
    expect(removedSome).toBeGreaterThan(300);
  });

  it('builds from pairs, records and other lists; joins for toObject', () => {
    const h = new HttpHeaders({ 'Set-Cookie': ['a=1', 'b=2'], Vary: 'accept', Skip: undefined });
    expect(h.toObject()).toEqual({ 'set-cookie': ['a=1', 'b=2'], vary: 'accept' });
    const copy = new HttpHeaders(h);
    copy.append('vary', 'origin');
    expect(copy.toObject().vary).toBe('accept, origin');
    expect(h.getAll('vary')).toEqual(['accept']);
  });

  it('refuses names and values that cannot go on the wire', () => {
    for (const name of ['', 'a b', 'a:b', 'é', 'a\r\n'])
      expect(() => new HttpHeaders([[name, 'v']])).toThrow(/invalid header name/);
    for (const value of ['a\rb', 'a\nb', 'a\0b', 'a\x7fb', 'ā']) {
      expect(() => new HttpHeaders([['x', value]])).toThrow(/invalid header value/);
    }
  });

  it('checks every value appended under a HeaderName: one it was last given (kept checked) is the only one let through unchecked', () => {
    const name = new HeaderName('x-forwarded-host');
    const h = new HttpHeaders();
    h.append(name, ' a.example:8080\t');
    // Kept as stored: trimmed, so a value equal to it is the same chars with nothing to trim.
    h.append(name, 'a.example:8080');
    h.append(name, `${'a.example'}:${8080}`);
    // Values of the same length (and near misses) are still checked, one after the other.
    for (const bad of ['a.example:808\r', 'a.example:808\n', '\0.example:8080', 'a.example:8080\u0100', 'ā'])
      expect(() => h.append(name, bad), JSON.stringify(bad)).toThrow(/invalid header value/);
    expect(() => h.append(name, 'a.example:8080\r\nx-evil: 1')).toThrow(/invalid header value/);
    h.append(name, 'b.example');
    expect(() => h.append(name, 'b.exampl\x7f')).toThrow(/invalid header value/);
    expect(h.getAll('x-forwarded-host')).toEqual([
      'a.example:8080',
      'a.example:8080',
      'a.example:8080',
      'b.example',
    ]);
    // A value one name kept is no pass for another name.
    expect(() => new HttpHeaders().append(new HeaderName('via'), 'a.example:8080\x00')).toThrow(
      /invalid header value/,
    );
    // Credentials are never kept beyond their message; long values neither.
    for (const secret of ['authorization', 'cookie', 'proxy-authorization', 'set-cookie']) {
      const n = new HeaderName(secret);
      new HttpHeaders().append(n, 'Basic c2VjcmV0');
      expect(n.keptValue, secret).toBe('');
    }
    const long = new HeaderName('x-long');
    new HttpHeaders().append(long, 'v'.repeat(65));
    // x-forwarded-client-cert (the mTLS client's identity): its values are always longer.
    const xfcc = new HeaderName('x-forwarded-client-cert');
    new HttpHeaders().append(xfcc, `Hash=${'a'.repeat(64)};Subject=""`);
    expect(xfcc.keptValue).toBe('');
    expect(long.keptValue).toBe('');
    expect(name.keptValue).toBe('b.example');
  });

  it('keeps added fields in order across appends, deletes and sets (the second append copies the first)', () => {
    for (const start of [wire('Accept: */*\r\n'), new HttpHeaders()]) {
      let expected: [string, string][] = [...start];
      for (let i = 0; i < 12; i++) {
        start.append(`x-${i}`, `v${i}`);
        expected.push([`x-${i}`, `v${i}`]);
        expect([...start]).toEqual(expected);
        if (i === 1 || i === 6) {
          // Fewer added fields than the room made for them, then more again.
          const gone = `x-${i - 1}`;
          start.delete(gone);
          start.set('x-1', `again ${i}`);
          expected = expected.filter(([n]) => n !== gone && n !== 'x-1');
          expected.push(['x-1', `again ${i}`]);
          expect([...start]).toEqual(expected);
        }
      }
      expect(start.size).toBe(expected.length);
    }
  });
});
