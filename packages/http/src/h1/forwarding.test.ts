import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeaderNameSet, type HttpHeaders } from '../headers.js';
import { DecodeEvent, RequestDecoder, ResponseDecoder } from './decoder.js';
import { encodeRequestHeadBytes, encodeResponseHeadBytes, type ResponseHeadOptions } from './encoder.js';
import { measureFieldBlock } from './field-block.js';

// The raw-range path: decoded heads re-encoded from their bytes (forwarding), with edits.

const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');

function decodeRequest(wire: string, chunkSize = 0) {
  const d = new RequestDecoder();
  const bytes = Buffer.from(wire, 'latin1');
  if (chunkSize === 0) d.feed(bytes);
  let ev: number = DecodeEvent.NeedMore;
  for (let off = 0; ; ) {
    ev = d.poll();
    if (ev !== DecodeEvent.NeedMore || chunkSize === 0 || off >= bytes.length) break;
    // A copy per feed: the decoder must not keep a view of a fed chunk.
    d.feed(Buffer.from(bytes.subarray(off, off + chunkSize)));
    off += chunkSize;
  }
  expect(ev).toBe(DecodeEvent.Head);
  return d.message!;
}

function decodeResponse(wire: string) {
  const d = new ResponseDecoder();
  d.feed(Buffer.from(wire, 'latin1'));
  expect(d.poll()).toBe(DecodeEvent.Head);
  return d.message!;
}

const fixed = (length: number, o: Partial<ResponseHeadOptions> = {}): ResponseHeadOptions => ({
  framing: 'length',
  length,
  keepAlive: true,
  requestMinor: 1,
  requestMethod: 'GET',
  date: true,
  ...o,
});

const NGINX =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 08:23:21 GMT\r\n' +
  'Content-Type: application/octet-stream\r\nContent-Length: 128\r\n' +
  'Connection: keep-alive\r\nETag: "6926b8d8-80"\r\nAccept-Ranges: bytes\r\n\r\n';

describe('forwarding decoded heads', () => {
  it('re-encodes an untouched response head byte for byte, without the framing fields it derives', () => {
    const res = decodeResponse(NGINX);
    const out = text(encodeResponseHeadBytes(res.status, res.reason, res.headers, fixed(128)));
    expect(out).toBe(NGINX.replace('Connection: keep-alive\r\n', ''));
  });

  it('keeps removals, additions and replacements in order, added fields last', () => {
    const res = decodeResponse(NGINX);
    const h = res.headers;
    h.removeHopByHop();
    expect(h.delete('etag')).toBe(1);
    h.append('Via', '1.1 loch');
    h.set('server', 'loch');
    const out = text(encodeResponseHeadBytes(res.status, res.reason, h, fixed(128)));
    expect(out).toBe(
      'HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 08:23:21 GMT\r\n' +
        'Content-Type: application/octet-stream\r\nContent-Length: 128\r\nAccept-Ranges: bytes\r\n' +
        'via: 1.1 loch\r\nserver: loch\r\n\r\n',
    );
    // Reads after the edits see the same list.
    expect([...h].map(([n]) => n)).toEqual([
      'date',
      'content-type',
      'content-length',
      'accept-ranges',
      'via',
      'server',
    ]);
    expect(h.get('accept-ranges')).toBe('bytes');
  });

  it('writes its own status line, Content-Length and Connection when they differ from the decoded ones', () => {
    const res = decodeResponse(NGINX.replace('HTTP/1.1', 'HTTP/1.0'));
    const out = text(
      encodeResponseHeadBytes(res.status, res.reason, res.headers, fixed(7, { keepAlive: false })),
    );
    expect(out.startsWith('HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n')).toBe(true);
    expect(out).not.toContain('Content-Length: 128');
    expect(out).toContain('content-length: 7\r\nconnection: close\r\n\r\n');
    const again = decodeResponse(NGINX);
    const other = text(encodeResponseHeadBytes(404, '', again.headers, fixed(128)));
    expect(other.startsWith('HTTP/1.1 404 Not Found\r\n')).toBe(true);
  });

  it('forwards a request line as is only while method and target stay the same', () => {
    const wire = 'GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n';
    const req = decodeRequest(wire);
    expect(text(encodeRequestHeadBytes(req.method, req.target, req.headers, 'none', 0))).toBe(wire);
    req.headers.append('X-Forwarded-For', '10.0.0.1');
    req.target = '/rewritten';
    expect(text(encodeRequestHeadBytes(req.method, req.target, req.headers, 'none', 0))).toBe(
      'GET /rewritten HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.1\r\n\r\n',
    );
    const old = decodeRequest('GET / HTTP/1.0\r\nHost: h\r\n\r\n');
    expect(text(encodeRequestHeadBytes(old.method, old.target, old.headers, 'none', 0))).toBe(
      'GET / HTTP/1.1\r\nHost: h\r\n\r\n',
    );
  });

  it('puts a Host from the authority after a forwarded request line', () => {
    const req = decodeRequest('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    req.headers.delete('host');
    expect(
      text(encodeRequestHeadBytes(req.method, req.target, req.headers, 'none', 0, { authority: 'b:81' })),
    ).toBe('GET / HTTP/1.1\r\nhost: b:81\r\n\r\n');
  });

  it('keeps a request body length line that matches, replaces one that does not', () => {
    const req = decodeRequest('POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: y\r\n\r\n');
    expect(text(encodeRequestHeadBytes(req.method, req.target, req.headers, 'length', 3))).toBe(
      'POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: y\r\n\r\n',
    );
    expect(text(encodeRequestHeadBytes(req.method, req.target, req.headers, 'chunked', -1))).toBe(
      'POST /u HTTP/1.1\r\nHost: h\r\nX: y\r\ntransfer-encoding: chunked\r\n\r\n',
    );
  });

  it('normalizes lines with odd whitespace and copies the others as they came', () => {
    const req = decodeRequest(
      'GET / HTTP/1.1\r\nHost: h\r\nX-A:1\r\nX-B:  2 \t \r\nX-C: \t3\r\nX-Empty:\r\nX-D: four  five\r\n\r\n',
    );
    expect(req.headers.get('x-b')).toBe('2');
    expect(text(encodeRequestHeadBytes(req.method, req.target, req.headers, 'none', 0))).toBe(
      'GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-Empty: \r\nX-D: four  five\r\n\r\n',
    );
  });

  it('still rejects obs-fold and bare LF before any of this', () => {
    expect(() => decodeRequest('GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n')).toThrow(/folding/);
    expect(() => decodeRequest('GET / HTTP/1.1\r\nHost: h\r\nX: a\nY: b\r\n\r\n')).toThrow(/LF without CR/);
  });

  it('encodes a head that arrived byte by byte like one that arrived whole', () => {
    const wire = 'GET /x HTTP/1.1\r\nHost: h\r\nConnection: x-a, Keep-Alive\r\nX-A: 1\r\nX-Other: 2\r\n\r\n';
    for (const size of [1, 2, 7]) {
      const whole = decodeRequest(wire);
      const split = decodeRequest(wire, size);
      whole.headers.removeHopByHop();
      split.headers.removeHopByHop();
      const a = text(encodeRequestHeadBytes(whole.method, whole.target, whole.headers, 'none', 0));
      const b = text(encodeRequestHeadBytes(split.method, split.target, split.headers, 'none', 0));
      expect(b).toBe(a);
      expect(a).toBe('GET /x HTTP/1.1\r\nHost: h\r\nX-Other: 2\r\n\r\n');
    }
  });

  it('keeps every decoded head intact across many slabs', () => {
    const heads: HttpHeaders[] = [];
    for (let i = 0; i < 3000; i++) {
      heads.push(
        decodeRequest(`GET /${i} HTTP/1.1\r\nHost: h${i}\r\nX-N: ${'v'.repeat(i % 50)}${i}\r\n\r\n`).headers,
      );
    }
    // A head larger than a quarter slab gets its own.
    const big = decodeRequest(
      `GET / HTTP/1.1\r\nHost: big\r\nX-Big: ${'b'.repeat(6000)}\r\nX-Big: ${'c'.repeat(6000)}\r\n\r\n`,
    ).headers;
    heads.forEach((h, i) => {
      expect(h.get('host')).toBe(`h${i}`);
      expect(h.get('x-n')).toBe(`${'v'.repeat(i % 50)}${i}`);
    });
    expect(big.getAll('x-big').map((v) => v.length)).toEqual([6000, 6000]);
  });
});

describe('removeHopByHop and HeaderNameSet', () => {
  it('removes the RFC 9110 hop-by-hop fields and what Connection names, common or not, any case', () => {
    const req = decodeRequest(
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: Close, DATE,x-Session\r\nTE: trailers\r\nDate: d\r\n' +
        'X-SESSION: s\r\nUpgrade: w\r\nKeep-Alive: 5\r\nProxy-Connection: k\r\nAccept: a\r\n\r\n',
    );
    const h = req.headers;
    h.append('connection', 'x-added');
    h.append('x-added', '1');
    h.append('trailer', 'x');
    expect(h.removeHopByHop()).toBe(10);
    expect([...h]).toEqual([
      ['host', 'h'],
      ['accept', 'a'],
    ]);
  });

  it('removes extra names given as a HeaderNameSet, and leaves a clean list untouched', () => {
    const req = decodeRequest(
      'GET / HTTP/1.1\r\nHost: h\r\nProxy-Authorization: x\r\nX-Secret: y\r\nA: b\r\n\r\n',
    );
    const rev = req.headers.revision;
    expect(req.headers.removeHopByHop()).toBe(0);
    expect(req.headers.revision).toBe(rev);
    expect(req.headers.removeHopByHop(new HeaderNameSet(['proxy-authorization', 'X-Secret']))).toBe(2);
    expect([...req.headers]).toEqual([
      ['host', 'h'],
      ['a', 'b'],
    ]);
  });

  it('deleteNames matches decoded and added fields by id and by name', () => {
    const set = new HeaderNameSet(['Accept', 'x-custom']);
    expect(set.has('ACCEPT')).toBe(true);
    expect(set.size).toBe(2);
    const req = decodeRequest('GET / HTTP/1.1\r\nHost: h\r\nACCEPT: a\r\nX-Custom: c\r\nX-Keep: k\r\n\r\n');
    req.headers.append('x-custom', 'd');
    req.headers.append('accept', 'e');
    expect(req.headers.deleteNames(set)).toBe(4);
    expect([...req.headers]).toEqual([
      ['host', 'h'],
      ['x-keep', 'k'],
    ]);
    expect(() => new HeaderNameSet(['bad name'])).toThrow();
  });
});

// Property: decode, edit, encode, decode again: the second decode sees the edited list.
const NAMES = ['Accept', 'X-Custom', 'x-other', 'Cache-Control', 'Via', 'X-Forwarded-For', 'Cookie', 'A'];
const nameArb = fc
  .constantFrom(...NAMES)
  .chain((n) => fc.boolean().map((upper) => (upper ? n.toUpperCase() : n)));
const valueArb = fc.stringMatching(/^[!-~]([ !-~]{0,10}[!-~])?$/);
const owsArb = fc.constantFrom('', ' ', '  ', '\t', ' \t');
const fieldArb = fc.tuple(nameArb, valueArb, owsArb, owsArb);
const opArb = fc.oneof(
  fc.tuple(fc.constant('delete' as const), nameArb, valueArb),
  fc.tuple(fc.constant('append' as const), nameArb, valueArb),
  fc.tuple(fc.constant('set' as const), nameArb, valueArb),
);

describe('decode, edit, encode, decode (property)', () => {
  it('round-trips every edited list', () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 8 }), fc.array(opArb, { maxLength: 6 }), (fields, ops) => {
        const wire =
          'GET /p HTTP/1.1\r\nHost: h\r\n' +
          fields.map(([n, v, a, b]) => `${n}:${a}${v}${b}\r\n`).join('') +
          '\r\n';
        const req = decodeRequest(wire);
        const model: [string, string][] = [
          ['host', 'h'],
          ...fields.map(([n, v]): [string, string] => [n.toLowerCase(), v]),
        ];
        for (const [op, n, v] of ops) {
          const ln = n.toLowerCase();
          if (op === 'delete') {
            const before = model.length;
            const kept = model.filter(([m]) => m !== ln);
            expect(req.headers.delete(n)).toBe(before - kept.length);
            model.splice(0, model.length, ...kept);
          } else if (op === 'append') {
            req.headers.append(n, v);
            model.push([ln, v]);
          } else {
            req.headers.set(n, v);
            model.splice(0, model.length, ...model.filter(([m]) => m !== ln), [ln, v]);
          }
        }
        expect([...req.headers]).toEqual(model);
        const out = encodeRequestHeadBytes(req.method, req.target, req.headers, 'none', 0, {
          authority: 'h',
        });
        const again = decodeRequest(text(out));
        const expected = model.some(([m]) => m === 'host') ? model : [['host', 'h'], ...model];
        expect([...again.headers]).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

// The fast path (a whole head in one input) must agree with the line-by-line path (the same
// head with its first byte fed alone) on every input: same fields, or the same error code.
function outcome(wire: Buffer, split: boolean, limits: { maxHeaderCount?: number; maxLineLength?: number }) {
  const d = new RequestDecoder(limits);
  try {
    if (!split) {
      d.feed(wire);
      const ev = d.poll();
      return ev === DecodeEvent.Head
        ? [...d.message!.headers].concat([[d.message!.method, d.message!.target]])
        : ev;
    }
    // The first byte alone: the head is not whole in one input, so it goes line by line.
    for (const part of [wire.subarray(0, 1), wire.subarray(1)]) {
      d.feed(part);
      const ev = d.poll();
      if (ev === DecodeEvent.Head)
        return [...d.message!.headers].concat([[d.message!.method, d.message!.target]]);
    }
    return DecodeEvent.NeedMore;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('fast head path against the line-by-line path (property)', () => {
  it('agrees on mutated heads and limits', () => {
    const base = 'GET /a HTTP/1.1\r\nHost: h\r\nX-A: one\r\nAccept:  */* \r\nConnection: keep-alive\r\n\r\n';
    const bytes = fc.constantFrom(0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff, 0x41, 0x2c);
    const edit = fc.tuple(fc.nat(base.length - 1), bytes, fc.constantFrom('replace', 'insert', 'delete'));
    fc.assert(
      fc.property(
        fc.array(edit, { maxLength: 3 }),
        fc.constantFrom(2, 3, 100),
        fc.constantFrom(6, 20, 8192),
        (edits, maxHeaderCount, maxLineLength) => {
          const b = [...Buffer.from(base, 'latin1')];
          for (const [at, byte, op] of edits) {
            const i = Math.min(at, b.length - 1);
            if (op === 'replace') b[i] = byte;
            else if (op === 'insert') b.splice(i, 0, byte);
            else b.splice(i, 1);
          }
          const wire = Buffer.from(b);
          const limits = { maxHeaderCount, maxLineLength };
          expect(outcome(wire, false, limits)).toEqual(outcome(wire, true, limits));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

// Property: the measure removeHopByHop and append keep on a forwarded list (issue 18: the encoder
// does not walk its lines again) is the one a full measureFieldBlock pass finds, and the head
// encoded from it is exactly as long as measured (the encoders throw otherwise).
const HYGIENE_NAMES = [
  'Connection',
  'Keep-Alive',
  'TE',
  'Trailer',
  'Upgrade',
  'Proxy-Connection',
  'Proxy-Authorization',
  'Date',
  'Accept',
  'X-Custom',
  'Via',
  'Cookie',
];
const hygieneField = fc.oneof(
  fc.tuple(fc.constantFrom(...HYGIENE_NAMES), valueArb, owsArb, owsArb),
  fc.tuple(
    fc.constant('Connection'),
    fc.constantFrom('close', 'keep-alive', 'Close, x-custom', 'upgrade, keep-alive', 'te, date', 'x-nope'),
    owsArb,
    owsArb,
  ),
);
const ADDED_NAMES = [
  'date',
  'connection',
  'content-length',
  'x-forwarded-for',
  'via',
  'keep-alive',
  'x-other',
];
const addedArb = fc.tuple(
  fc.constantFrom(...ADDED_NAMES),
  fc.constantFrom('close', '12', 'a, close', '1.1 loch'),
);

function measureOf(h: HttpHeaders) {
  return [h.fieldsLength, h.fieldsDate, h.fieldsClose, h.fieldsContentLength, h.fieldsContentLengthLine];
}

describe('the measure kept by removeHopByHop and append (property)', () => {
  it('equals a full measure of the edited list, and the head encodes to it', () => {
    fc.assert(
      fc.property(
        fc.array(hygieneField, { maxLength: 8 }),
        fc.constantFrom('', 'Content-Length: 5\r\n', 'Content-Length:5 \r\n'),
        fc.boolean(),
        fc.array(addedArb, { maxLength: 5 }),
        (fields, length, also, added) => {
          const wire =
            'POST /p HTTP/1.1\r\nHost: h\r\n' +
            fields.map(([n, v, a, b]) => `${n}:${a}${v}${b}\r\n`).join('') +
            length +
            '\r\n';
          const h = decodeRequest(wire).headers;
          h.removeHopByHop(also ? new HeaderNameSet(['proxy-authorization']) : undefined);
          for (const [n, v] of added) h.append(n, v);
          const kept = h.measured === h.revision;
          const cached = measureOf(h);
          h.measured = -1;
          measureFieldBlock(h);
          if (kept) expect(cached).toEqual(measureOf(h));
          // Kept unless Connection named something the first pass did not remove (`close`
          // included: not a known name, so the second pass looks for a field of that name).
          const hopOnly = fields.every(
            ([n, v]) => n !== 'Connection' || /^(keep-alive|upgrade)(, *(keep-alive|upgrade))*$/.test(v),
          );
          if (hopOnly) expect(kept).toBe(true);
          h.measured = kept ? h.revision : -1;
          const out = encodeRequestHeadBytes('POST', '/p', h, 'length', 5);
          expect(out.length).toBe(out.indexOf('\r\n\r\n') + 4);
        },
      ),
      { numRuns: 500 },
    );
  });
});
