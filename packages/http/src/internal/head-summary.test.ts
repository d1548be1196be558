/**
 * The summary of a decoded head's lines (head-summary.ts) and what removeHopByHop does with it:
 * the native scanner's summary against the JavaScript parser's and against one computed here
 * from the generated lines, on heads with hop-by-hop names in any case, look-alike names,
 * Connection values naming other fields, non-canonical lines (no space after the colon, tabs,
 * trailing whitespace), obs-text, 0 lines up to the limit, split and whole; then removeHopByHop
 * on each with several `also` sets against a plain reading of RFC 9110 §7.6.1 and against a
 * built list of the same fields (no summary: the full pass). A line that must be dropped and
 * survives because the summary said nothing was there fails here.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DecodeEvent, RequestDecoder, ResponseDecoder, useNativeHeadScan } from '../h1/decoder.js';
import { measureFieldBlock } from '../h1/field-block.js';
import { HeaderNameSet, HttpHeaders } from '../headers.js';
import { S_FLAGS, S_LENGTH, S_LINES, SUMMARY, summarize } from './head-summary.js';
import { knownIdOf } from './known-names.js';

afterEach(() => {
  useNativeHeadScan(true);
});

/** The flagged names, written out here (not head-summary.ts's table). */
const FLAGGED = [
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'trailer',
  'upgrade',
  'content-length',
];
const HOP = FLAGGED.filter((n) => n !== 'content-length');

type Kind = 'request' | 'response' | 'trailers';
/** name, whitespace after the colon, value (no surrounding whitespace), trailing whitespace */
type Line = [string, string, string, string];

function wireOf(kind: Kind, lines: Line[]): string {
  const fields = lines.map(([n, sep, v, trail]) => `${n}:${sep}${v}${trail}\r\n`).join('');
  if (kind === 'request') return `GET / HTTP/1.1\r\n${fields}\r\n`;
  if (kind === 'response') return `HTTP/1.1 200 OK\r\n${fields}\r\n`;
  return `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${fields}\r\n`;
}

/** The headers (or trailers) of the head decoded whole or in two pieces; null on a parse error. */
function decodeList(kind: Kind, wire: string, cut: number, maxHeaderCount: number): HttpHeaders | null {
  const bytes = Buffer.from(wire, 'latin1');
  const d =
    kind === 'request' ? new RequestDecoder({ maxHeaderCount }) : new ResponseDecoder({ maxHeaderCount });
  if (d instanceof ResponseDecoder) d.expectResponseTo('GET');
  const pieces = cut > 0 && cut < bytes.length ? [bytes.subarray(0, cut), bytes.subarray(cut)] : [bytes];
  try {
    for (const piece of pieces) {
      d.feed(piece);
      for (let ev = d.poll(); ev !== DecodeEvent.NeedMore; ev = d.poll()) {
        if (ev === DecodeEvent.Head && kind !== 'trailers') return d.message!.headers;
        if (ev === DecodeEvent.End && kind === 'trailers') return d.trailers;
      }
    }
  } catch (e) {
    if ((e as { name?: string }).name === 'HttpParseError') return null;
    throw e;
  }
  throw new Error('no head');
}

function summaryOf(h: HttpHeaders): number[] {
  expect(h.summaryAt).toBe(h.wbase + 5 * h.wcount);
  return Array.from(h.slab!.words.subarray(h.summaryAt, h.summaryAt + SUMMARY));
}

/** The summary of the generated lines, from their text. */
function expectedSummary(kind: Kind, lines: Line[]): number[] {
  let length = 0;
  let flagged = 0;
  let lo = 0;
  let hi = 0;
  let flags = 0;
  let hopOnly = kind !== 'trailers';
  lines.forEach(([name, , value], i) => {
    const lname = name.toLowerCase();
    const id = knownIdOf(lname);
    if (FLAGGED.includes(lname)) {
      if (i < 32) flagged |= 1 << i;
      else flags |= 2;
    } else {
      // `name: value\r\n`: a canonical line's length too.
      length += name.length + value.length + 4;
      if (lname === 'date') flags |= 1;
    }
    if (id & 32) hi |= 1 << (id & 31);
    else lo |= 1 << (id & 31);
    if (lname === 'connection')
      for (const t of value.split(','))
        if (!['', 'keep-alive', 'upgrade'].includes(t.trim().toLowerCase())) hopOnly = false;
  });
  return [length, flagged, lo, hi, flags | (hopOnly ? 4 : 0)];
}

/** What RFC 9110 §7.6.1 leaves of `list`, read plainly. */
function rfcKept(list: [string, string][], also: HeaderNameSet | undefined): [string, string][] {
  const listed = new Set<string>();
  for (const [n, v] of list)
    if (n === 'connection') for (const t of v.split(/[, \t]+/)) if (t !== '') listed.add(t.toLowerCase());
  return list.filter(([n]) => !HOP.includes(n) && !listed.has(n) && also?.has(n) !== true);
}

function measureOf(h: HttpHeaders): unknown[] {
  return [h.fieldsLength, h.fieldsDate, h.fieldsClose, h.fieldsContentLength, h.fieldsContentLengthLine];
}

const NAMES = [
  'Connection',
  'connection',
  'CONNECTION',
  'Keep-Alive',
  'keep-alive',
  'TE',
  'te',
  'Trailer',
  'Proxy-Connection',
  'proxy-CONNECTION',
  'Upgrade',
  'upgrade',
  'Transfer-Encoding',
  'Content-Length',
  'Date',
  'date',
  'Host',
  'Accept',
  'Proxy-Authorization',
  'Proxy-Authenticate',
  'Cookie',
  'Server',
  'X-Custom',
  'x-custom',
  'Via',
  'Foo',
  'Close',
  // Look-alikes of flagged names, and ids the filter folds together (x-request-id, accept).
  'Keep-Alives',
  'T',
  'Tee',
  'Connectio',
  'Proxy-Connectionx',
  'Upgrade-Insecure-Requests',
  'X-Request-Id',
  'X-Real-IP',
];
const CONNECTION_VALUES = [
  'close',
  'keep-alive',
  'Keep-Alive, Upgrade',
  'foo, keep-alive',
  'Foo',
  'x-custom',
  'date, te',
  'upgrade',
  'accept ,\tvia',
  'keep-alive;x',
  'keep-alive x-custom',
  'TE, Trailer',
  'x-request-id',
  ', ,',
];
const VALUES = ['1', 'v', '', 'a b', '"q"', 'caf\xe9', '\x80\xff', 'text/html; charset=utf-8', 'chunked'];
const SEPARATORS = [' ', ' ', '', '  ', '\t', ' \t'];
const TRAILING = ['', '', '', ' ', '\t', ' \t '];

const lineArb: fc.Arbitrary<Line> = fc
  .tuple(
    fc.constantFrom(...NAMES),
    fc.constantFrom(...SEPARATORS),
    fc.constantFrom(...CONNECTION_VALUES),
    fc.constantFrom(...VALUES),
    fc.constantFrom(...TRAILING),
  )
  .map(([name, sep, conn, value, trail]): Line => {
    const lname = name.toLowerCase();
    const v =
      lname === 'connection' ? conn : lname === 'content-length' ? '5' : lname === 'host' ? 'h.test' : value;
    return [name, sep, v, trail];
  });

const ALSOS = [
  undefined,
  new HeaderNameSet(['proxy-authenticate', 'proxy-authorization']),
  new HeaderNameSet(['date', 'x-custom']),
  new HeaderNameSet(['accept']),
  new HeaderNameSet(['x-request-id', 'server']),
  new HeaderNameSet(['foo']),
  new HeaderNameSet(['content-length']),
];

/**
 * Checks one head: the two parsers' summaries equal each other and the one from the lines; then
 * removeHopByHop with every `also` leaves what RFC 9110 leaves, what a built list of the same
 * fields (full pass, no summary) leaves, and the measure of a full pass. Returns whether it parsed.
 */
function check(kind: Kind, lines: Line[], cut: number, maxHeaderCount: number): boolean {
  const wire = wireOf(kind, lines);
  const native = useNativeHeadScan(true);
  expect(native).toBe(true);
  const a = decodeList(kind, wire, cut, maxHeaderCount);
  useNativeHeadScan(false);
  const b = decodeList(kind, wire, cut, maxHeaderCount);
  useNativeHeadScan(true);
  expect(a === null).toBe(b === null);
  if (a === null || b === null) return false;
  const summary = summaryOf(a);
  expect(summaryOf(b), wire).toEqual(summary);
  expect(summary, wire).toEqual(expectedSummary(kind, lines));
  // The JavaScript summary of the native scanner's entries.
  const copy = a.slab!.words.slice(a.wbase, a.summaryAt + SUMMARY);
  summarize(copy, 0, a.wcount, (summary[4]! & 4) !== 0);
  expect(Array.from(copy.subarray(5 * a.wcount)), wire).toEqual(summary);
  const before: [string, string][] = [...a];
  // A built list reads an added Connection value's elements between commas only, where the
  // decoded lines' pass also splits at whitespace (`keep-alive x-custom`): compared without those.
  const spaced = before.some(([n, v]) => n === 'connection' && /[^, \t][ \t]+[^, \t]/.test(v));
  for (const also of ALSOS) {
    const expected = rfcKept(before, also);
    const built = new HttpHeaders(before);
    if (!spaced) {
      expect(built.removeHopByHop(also)).toBe(before.length - expected.length);
      expect([...built]).toEqual(expected);
    }
    for (const parser of [true, false]) {
      useNativeHeadScan(parser);
      const h = decodeList(kind, wire, cut, maxHeaderCount)!;
      useNativeHeadScan(true);
      expect(h.removeHopByHop(also), wire).toBe(before.length - expected.length);
      expect([...h], wire).toEqual(expected);
      const kept = h.measured === h.revision;
      if (kept) {
        const cached = measureOf(h);
        h.measured = -1;
        measureFieldBlock(h);
        expect(cached, wire).toEqual(measureOf(h));
      }
      if (!spaced && built.measured === built.revision) expect(kept).toBe(true);
    }
  }
  return true;
}

describe('the head summary and removeHopByHop (both parsers)', () => {
  it('agrees with the lines and with a plain reading of RFC 9110 §7.6.1 (property)', () => {
    let parsed = 0;
    fc.assert(
      fc.property(
        fc.constantFrom<Kind>('request', 'response', 'response', 'trailers'),
        fc.oneof(fc.array(lineArb, { maxLength: 6 }), fc.array(lineArb, { minLength: 28, maxLength: 48 })),
        fc.nat(),
        fc.boolean(),
        (kind, generated, cutAt, atLimit) => {
          // A request needs its Host (first, as clients send it).
          const lines: Line[] = kind === 'request' ? [['Host', ' ', 'h.test', ''], ...generated] : generated;
          const wire = wireOf(kind, lines);
          const cut = cutAt % 3 === 0 ? 0 : cutAt % wire.length;
          // At the limit: exactly as many fields as the decoder takes.
          const limit = atLimit ? Math.max(lines.length, 1) : 100;
          if (check(kind, lines, cut, limit)) parsed++;
        },
      ),
      { numRuns: 400 },
    );
    // Not a vacuous pass: most generated heads parse (~210 of the 400 on average, sd ~10; a
    // floor of 200 failed about one run in five, REVIEW F182), so 120 is far from the mean and
    // still fails a generator or parser that rejects nearly everything.
    expect(parsed).toBeGreaterThan(120);
  });

  it('drops every hop-by-hop line in any case at any index of a head of 0 to 100 lines', () => {
    const filler: Line = ['X-Custom', ' ', 'v', ''];
    expect(check('response', [], 0, 100)).toBe(true);
    for (const name of ['Connection', 'KEEP-ALIVE', 'te', 'Trailer', 'Proxy-Connection', 'upgrade', 'TE']) {
      for (const at of [0, 5, 30, 31, 32, 33, 63, 99]) {
        const lines: Line[] = Array.from({ length: 100 }, () => filler);
        lines[at] = [name, '', name.toLowerCase() === 'connection' ? 'foo, keep-alive' : 'x', ' '];
        lines[(at + 50) % 100] = ['Foo', ' ', 'named by Connection', ''];
        for (const kind of ['request', 'response', 'trailers'] as const) {
          const head = kind === 'request' ? lines.with((at + 1) % 100, ['Host', ' ', 'h.test', '']) : lines;
          for (const cut of [0, 40])
            expect(check(kind, head, cut, 100), `${kind}: ${name} at ${at}`).toBe(true);
        }
      }
    }
  });

  it('is what removeHopByHop trusts: the lines it does not flag are neither visited nor dropped', () => {
    // A summary that says "nothing hop-by-hop" lets the Connection line through: what the
    // comparisons above guard against. Shown on a copy whose summary is edited here.
    for (const parser of [true, false]) {
      useNativeHeadScan(parser);
      const wire = 'HTTP/1.1 200 OK\r\nServer: s\r\nConnection: close\r\nDate: d\r\n\r\n';
      const h = decodeList('response', wire, 0, 100)!;
      expect(h.removeHopByHop()).toBe(1);
      expect(h.fieldsLength).toBe('Server: s\r\nDate: d\r\n'.length);
      const forged = decodeList('response', wire, 0, 100)!;
      const words = forged.slab!.words;
      words[forged.summaryAt + S_LINES] = 0;
      words[forged.summaryAt + S_LENGTH] = 1234;
      expect(forged.removeHopByHop()).toBe(0);
      expect(forged.fieldsLength).toBe(1234);
      expect(words[forged.summaryAt + S_FLAGS]! & 1).toBe(1);
      // Once a decoded line is removed, the list has no summary: the full pass runs.
      const edited = decodeList('response', wire, 0, 100)!;
      edited.delete('server');
      expect(edited.summaryAt).toBe(-1);
      expect(edited.removeHopByHop()).toBe(1);
      expect([...edited]).toEqual([['date', 'd']]);
    }
  });
});
