/**
 * The native head scanner (@loch/native head_scan.cc) against the decoder's JavaScript parser,
 * its reference, and against Node's llhttp: generated heads full of hostile bytes (controls,
 * DEL, obs-text, stray CR/LF, colons, commas, quotes, framing fields with odd values), each
 * decoded whole and split at random points, as requests, responses and chunked trailers. The two
 * parsers must agree on every message (head, fields, framing, body) and on every error (code,
 * offset, message); where llhttp rejects a request head, the native path rejects it too.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadHeadScan } from '@loch/native';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestDecoder, ResponseDecoder, useNativeHeadScan } from '../src/h1/decoder.js';
import { KNOWN_NAMES, lookupKnownId } from '../src/internal/known-names.js';
import { type DecodeResult, decode, split } from './decode-all.js';
import { llparse } from './llhttp.js';

// A full collection on demand (what --expose-gc gives), for the memory check below.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: object) => void;

afterEach(() => {
  useNativeHeadScan(true);
});

type Kind = 'request' | 'response';

interface Run {
  kind: Kind;
  pieces: Uint8Array[];
  method?: string;
  limits?: { maxHeaderCount?: number; maxLineLength?: number; maxHeadSize?: number };
}

/** What a decode produced, in comparable form (errors by code, offset and message). */
function outcome(r: DecodeResult): unknown {
  return {
    messages: r.messages,
    error: r.error === null ? null : { code: r.error.code, offset: r.error.offset, message: r.error.message },
    partial: r.partial,
  };
}

function run(parser: 'native' | 'js', r: Run): unknown {
  expect(useNativeHeadScan(parser === 'native')).toBe(parser === 'native');
  return outcome(
    decode(r.kind, r.pieces, {
      eof: true,
      ...(r.method !== undefined ? { method: r.method } : {}),
      ...(r.limits !== undefined ? { limits: r.limits } : {}),
    }),
  );
}

function agree(r: Run, ctx: string): unknown {
  const native = run('native', r);
  const js = run('js', r);
  expect(native, ctx).toEqual(js);
  return native;
}

// Hostile alphabet: what parsers disagree about. CR and LF come in rarely (see `stray`), or
// nearly every input would end at the line scan's framing checks before fields are read.
const HOSTILE = [
  0x00, 0x01, 0x08, 0x09, 0x0b, 0x0c, 0x1f, 0x20, 0x22, 0x2c, 0x2f, 0x3a, 0x3b, 0x3d, 0x40, 0x5c, 0x7f, 0x80,
  0xa0, 0xff,
];
const byteChar = (c: number) => String.fromCharCode(c);
const hostileChar = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map(byteChar) },
  { weight: 3, arbitrary: fc.constantFrom(' ', '\t') },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE).map(byteChar) },
);
const hostileText = (max: number) => fc.array(hostileChar, { maxLength: max }).map((cs) => cs.join(''));
/** Mostly one of `usual`, sometimes one of `odd`: each part of a line breaks now and then, not all at once. */
const mostly = (usual: readonly string[], odd: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...usual) }, { weight: 1, arbitrary: odd });

const specialField = fc.oneof(
  fc.tuple(
    fc.constantFrom('Content-Length', 'content-length', 'CONTENT-LENGTH'),
    fc.oneof(
      fc.constantFrom('0', '5', ' 5 ', '\t5\t', '05', '5, 5', '-1', '+5', '0x5', '', '1234567890123456'),
      fc.nat().map(String),
      hostileText(6),
    ),
  ),
  fc.tuple(
    fc.constantFrom('Transfer-Encoding', 'transfer-encoding'),
    fc.oneof(
      fc.constantFrom(
        'chunked',
        'gzip, chunked',
        'chunked, gzip',
        'chunked, chunked',
        'chunked;q=1',
        ',chunked',
        'chunked ,',
        ' chunked\t',
        'identity',
        '"chunked"',
        'chunked\x00',
      ),
      hostileText(10),
    ),
  ),
  fc.tuple(
    fc.constantFrom('Connection', 'connection'),
    fc.oneof(
      fc.constantFrom('close', 'keep-alive', 'Upgrade', 'close, upgrade', 'keep-alive;x', 'x, ,close'),
      hostileText(10),
    ),
  ),
  fc.tuple(
    fc.constantFrom('Host', 'host'),
    fc.oneof(fc.constantFrom('example.test', 'a:80', '[::1]:8', 'a b', 'a/b', 'a@b', ''), hostileText(10)),
  ),
  fc.tuple(fc.constantFrom('Expect'), fc.constantFrom('100-continue', '100-Continue', 'x', '')),
  fc.tuple(fc.constantFrom('Upgrade'), fc.constantFrom('websocket', 'h2c')),
);
const plainName = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'Accept',
      'User-Agent',
      'X-Request-Id',
      'Cookie',
      'te',
      'Trailer',
      'Via',
      'Date',
    ),
  },
  {
    // Known names in odd case and near-misses, and names past 16 bytes: the scanner matches
    // names a word at a time and scans them 16 bytes at a time.
    weight: 2,
    arbitrary: fc.constantFrom(
      'CONTENT-TYPE',
      'x-Forwarded-For',
      'Access-Control-Allow-Credentials',
      'Access-Control-Allow-Credentialz',
      'Proxy-Authorization',
      'Content-Lengt',
      'ETAG',
      'X-A-Name-Longer-Than-16_1^x',
      'X-Name-With:Colon-After-16',
    ),
  },
  {
    weight: 4,
    arbitrary: fc.string({
      unit: fc.constantFrom(...'!#$%&*+-.^_`|~09azAZ'.split('')),
      minLength: 1,
      maxLength: 8,
    }),
  },
  { weight: 1, arbitrary: hostileText(6) },
);
const fieldLine = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(
      plainName,
      mostly([': ', ':', ':\t'], fc.constantFrom(' : ', ' :', '\t:')),
      hostileText(16),
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(specialField, fc.constantFrom(': ', ':', ':\t'))
      .map(([[n, v], sep]) => [n, sep, v] as const),
  },
  { weight: 1, arbitrary: hostileText(20).map((t) => [t, '', ''] as const) },
);
const fieldBlock = fc
  .array(fieldLine, { maxLength: 6 })
  .map((ls) => ls.map(([n, s, v]) => `${n}${s}${v}\r\n`).join(''));

const requestLine = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        mostly(
          ['GET', 'POST', 'HEAD', 'OPTIONS', 'PURGE'],
          fc.constantFrom('CONNECT', 'get', 'G\x00T', '', 'BREW'),
        ),
        mostly([' '], fc.constantFrom('  ', '\t', '')),
        mostly(
          ['/', '/a?b=c', '/x/y.z'],
          fc.oneof(
            fc.constantFrom('*', 'http://h/x', 'h:80', 'a:b', 'http:/x', 'x', '/\x80', '/a b'),
            hostileText(12).map((t) => `/${t}`),
          ),
        ),
        mostly([' '], fc.constantFrom('  ', '\t')),
        mostly(
          ['HTTP/1.1', 'HTTP/1.0'],
          fc.constantFrom('HTTP/1.9', 'HTTP/2.0', 'HTTP/1.', 'http/1.1', 'HTTP/11'),
        ),
      )
      .map((parts) => parts.join('')),
  },
  { weight: 1, arbitrary: hostileText(24) },
);
const statusLine = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        mostly(['HTTP/1.1', 'HTTP/1.0'], fc.constantFrom('HTTP/1.2', 'HTTP/2.0', 'HTTP/1.1 ', 'HTTP/1.1\t')),
        mostly(
          [' 200', ' 204', ' 304', ' 101', ' 100'],
          fc.constantFrom(' 600', ' 099', ' 2000', '200', ' 20', ' 2x0'),
        ),
        fc.oneof(
          fc.constantFrom('', ' ', ' OK', ' Not Found', ' \x80\xff'),
          hostileText(8).map((t) => ` ${t}`),
        ),
      )
      .map((parts) => parts.join('')),
  },
  { weight: 1, arbitrary: hostileText(20) },
);

/** Sometimes a CR, LF or CRLF somewhere in the text (a bare one, a split line, an early end). */
const stray = (text: fc.Arbitrary<string>) =>
  fc
    .tuple(
      text,
      fc.oneof(
        { weight: 5, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.constantFrom('\r', '\n', '\r\n')) },
      ),
    )
    .map(([t, s]) => {
      if (s === null) return t;
      const at = s[0] % (t.length + 1);
      return t.slice(0, at) + s[1] + t.slice(at);
    });
const BODY = 'hello world, this is a body\r\n5\r\nhello\r\n0\r\n\r\n';
const requestInput = stray(
  fc
    .tuple(requestLine, fc.boolean(), fieldBlock, fc.constantFrom('', BODY))
    .map(([line, host, fields, body]) => `${line}\r\n${host ? 'Host: h.test\r\n' : ''}${fields}\r\n${body}`),
);
const responseInput = stray(
  fc
    .tuple(statusLine, fieldBlock, fc.constantFrom('', BODY))
    .map(([line, fields, body]) => `${line}\r\n${fields}\r\n${body}`),
);
const trailerInput = stray(
  fc
    .tuple(fc.constantFrom('request', 'response'), fieldBlock)
    .map(([kind, trailers]) =>
      kind === 'request'
        ? `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n${trailers}\r\n`
        : `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n${trailers}\r\n`,
    ),
);
const cutsOf = fc
  .array(fc.nat({ max: 600 }), { maxLength: 5 })
  .map((cs) => [...new Set(cs)].sort((a, b) => a - b));
const latin1 = (text: string) => Buffer.from(text, 'latin1');

describe('native head scanner', () => {
  it('is the parser in use where @loch/native loads, with the same known names', () => {
    const loaded = loadHeadScan();
    expect('error' in loaded ? loaded.error : '').toBe('');
    expect(useNativeHeadScan(true)).toBe(true);
    // Another list would give fields other ids: the scanner refuses to change it.
    if ('headScan' in loaded) {
      expect(loaded.headScan.init(KNOWN_NAMES.slice(1))).toBe(true);
      expect(loaded.headScan.init(['x-other', ...KNOWN_NAMES.slice(1)])).toBe(false);
    }
  });

  it("gives every field name the JavaScript parser's known-name id (known names in any case, near misses, others)", () => {
    const loaded = loadHeadScan();
    if (!('headScan' in loaded)) throw new Error('no native head scanner');
    const s = loaded.headScan;
    expect(s.init(KNOWN_NAMES.slice(1))).toBe(true);
    const io = new Int32Array(28 + 5 * 8);
    const binding = s.bind(io, new Uint8Array(0));
    /** The id the scanner gives `name` (one field of a request head), or null when it refused the head. */
    const nativeId = (name: string): number | null => {
      const lower = name.toLowerCase();
      const value = lower === 'content-length' ? '1' : lower === 'transfer-encoding' ? 'chunked' : 'v';
      const head = latin1(`GET / HTTP/1.1\r\n${name}: ${value}\r\n\r\n`);
      // Find mode, a request, the decoder's limits, no slab: the entry stays in the record.
      io.set([0, head.length, 0, 0, 16384, 100, 8192, -1]);
      return s.scan(binding, head) === 1 && io[13] === 1 ? io[28 + 4]! & 0xff : null;
    };
    const jsId = (name: string) => lookupKnownId(latin1(name), 0, name.length);
    const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const known = KNOWN_NAMES.slice(1);
    // Each byte with its case bit (0x20), 0x01 or 0x40 flipped, where that is still a token byte.
    const near = (name: string) =>
      name.split('').flatMap((_, i) =>
        [0x20, 0x01, 0x40].map((bit) => {
          const c = String.fromCharCode(name.charCodeAt(i) ^ bit);
          return tchar.includes(c) ? name.slice(0, i) + c + name.slice(i + 1) : name;
        }),
      );
    const names = [
      ...known,
      ...known.map((n) => n.toUpperCase()),
      ...known.flatMap(near),
      ...known.flatMap((n) => [n.slice(1), n.slice(0, -1), `${n}s`, `x${n}`]),
      'a',
      'A',
      'x',
      'tE',
      'te-',
      'x'.repeat(32),
      'x'.repeat(33),
    ];
    const mixedCase = fc
      .tuple(fc.constantFrom(...known), fc.array(fc.boolean(), { minLength: 32, maxLength: 32 }))
      .map(([name, upper]) => name.replace(/./g, (c, i: number) => (upper[i] ? c.toUpperCase() : c)));
    const tokens = fc
      .array(fc.constantFrom(...tchar.split('')), { minLength: 1, maxLength: 40 })
      .map((cs) => cs.join(''));
    names.push(...fc.sample(mixedCase, 400), ...fc.sample(tokens, 2000));
    let found = 0;
    for (const name of names) {
      const id = nativeId(name);
      if (id === null) continue;
      expect(id, name).toBe(jsId(name));
      if (id !== 0) found++;
    }
    // Each known name in 3 cases at least, and the mixed-case ones: the check above saw ids.
    expect(found).toBeGreaterThan(3 * known.length);
  });

  it('reads the Connection and Transfer-Encoding tokens it names in any case, and their near misses, as the JavaScript parser does', () => {
    const tchar = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
    const values: string[] = [];
    for (const word of ['chunked', 'close', 'keep-alive', 'upgrade']) {
      values.push(
        word,
        word.toUpperCase(),
        word.slice(1),
        `${word}s`,
        `x${word.slice(1)}`,
        `${word}, x`,
        `x, ${word}`,
      );
      for (let i = 0; i < word.length; i++) {
        const at = (ch: string) => word.slice(0, i) + ch + word.slice(i + 1);
        values.push(at(word[i]!.toUpperCase()));
        // One byte off by one bit: another token byte that the case-blind compare must not take.
        for (const bit of [0x01, 0x02, 0x10, 0x20, 0x40]) {
          const ch = String.fromCharCode(word.charCodeAt(i) ^ bit);
          if (tchar.test(ch) && ch.toLowerCase() !== word[i]) values.push(at(ch));
        }
      }
    }
    let compared = 0;
    for (const value of values) {
      for (const version of ['1.0', '1.1']) {
        const conn = `POST / HTTP/${version}\r\nHost: h\r\nUpgrade: websocket\r\nConnection: ${value}\r\nContent-Length: 0\r\n\r\n`;
        const te = `POST / HTTP/${version}\r\nHost: h\r\nTransfer-Encoding: ${value}\r\n\r\n0\r\n\r\n`;
        for (const text of [conn, te]) {
          agree({ kind: 'request', pieces: [latin1(text)] }, JSON.stringify(text));
          compared++;
        }
        const res = `HTTP/${version} 200 OK\r\nConnection: ${value}\r\nTransfer-Encoding: ${value}\r\n\r\n0\r\n\r\n`;
        agree({ kind: 'response', pieces: [latin1(res)] }, JSON.stringify(res));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(400);
  });

  it('agrees with the JavaScript parser on hostile request heads, whole and split', () => {
    fc.assert(
      fc.property(requestInput, cutsOf, (text, cuts) => {
        const input = latin1(text);
        agree({ kind: 'request', pieces: [input] }, JSON.stringify(text));
        agree({ kind: 'request', pieces: split(input, cuts) }, JSON.stringify(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with the JavaScript parser on hostile response heads, whole and split', () => {
    fc.assert(
      fc.property(responseInput, fc.constantFrom('GET', 'HEAD', 'CONNECT'), cutsOf, (text, method, cuts) => {
        const input = latin1(text);
        agree({ kind: 'response', pieces: [input], method }, JSON.stringify(text));
        agree({ kind: 'response', pieces: split(input, cuts), method }, JSON.stringify(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with the JavaScript parser on hostile trailers', () => {
    fc.assert(
      fc.property(trailerInput, cutsOf, (text, cuts) => {
        const input = latin1(text);
        const kind: Kind = text.startsWith('HTTP/') ? 'response' : 'request';
        agree({ kind, pieces: [input] }, JSON.stringify(text));
        agree({ kind, pieces: split(input, cuts) }, JSON.stringify(text));
      }),
      { numRuns: 1500 },
    );
  });

  it('agrees with the JavaScript parser at the limits (fields, line length, head size)', () => {
    fc.assert(
      fc.property(
        requestInput,
        fc.record({
          maxHeaderCount: fc.integer({ min: 0, max: 4 }),
          maxLineLength: fc.integer({ min: 8, max: 40 }),
          maxHeadSize: fc.integer({ min: 16, max: 200 }),
        }),
        (text, limits) => {
          agree({ kind: 'request', pieces: [latin1(text)], limits }, JSON.stringify(text));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('rejects every request head llhttp rejects', () => {
    // Where the decoder follows RFC 9112 and llhttp does not (test/differential.test.ts lists
    // them: HTTP/1.2-1.9, OWS after framing values, Connection OWS), llhttp is no reference.
    const divergent = /HTTP\/1\.[2-9]|(content-length|transfer-encoding|connection):[^\r\n]*[ \t]\r\n/i;
    fc.assert(
      fc.property(requestInput, (text) => {
        const input = latin1(text);
        const head = input.subarray(0, input.indexOf('\r\n\r\n') + 4 || input.length);
        if (divergent.test(head.toString('latin1'))) return;
        const theirs = llparse('request', Buffer.from(head), { eof: false });
        if (theirs.error === null) return;
        useNativeHeadScan(true);
        const ours = decode('request', [Buffer.from(head)], { eof: true });
        expect(
          ours.error,
          `llhttp rejected (${theirs.error}), native accepted ${JSON.stringify(text)}`,
        ).not.toBeNull();
      }),
      { numRuns: 3000 },
    );
  });

  it('reads heads the same where the slab rolls over and where a head needs a slab of its own', () => {
    // Heads are copied into 32 KiB slabs (a head above 8 KiB gets its own): the scanner writes
    // into the current slab's free space, the decoder copies when the reservation lands elsewhere.
    const heads: string[] = [];
    for (let i = 0; i < 120; i++) {
      heads.push(
        `GET /${i} HTTP/1.1\r\nHost: h.test\r\nX-Pad: ${'p'.repeat((i * 37) % 900)}\r\nX-N: ${i}\r\n\r\n`,
      );
    }
    heads.push(`GET /big HTTP/1.1\r\nHost: h.test\r\nX-Big: ${'b'.repeat(12_000)}\r\nX-After: 1\r\n\r\n`);
    heads.push('GET /last HTTP/1.1\r\nHost: h.test\r\n\r\n');
    const input = latin1(heads.join(''));
    const limits = { maxHeadSize: 16 * 1024, maxLineLength: 16 * 1024 };
    const whole = agree({ kind: 'request', pieces: [input], limits }, 'pipelined heads') as {
      messages: { head: { target: string; headers: [string, string][] } }[];
    };
    expect(whole.messages.length).toBe(122);
    expect(whole.messages[120]!.head.headers.at(-1)).toEqual(['x-after', '1']);
    expect(whole.messages[119]!.head.headers.at(-1)).toEqual(['x-n', '119']);
    // One feed per head: each is found whole by the scanner.
    const each = heads.map((h) => latin1(h));
    expect(agree({ kind: 'request', pieces: each, limits }, 'one head per feed')).toEqual(whole);
  });

  it('reads heads with more fields than the scanner record holds (JavaScript parses those)', () => {
    const fields = Array.from({ length: 4500 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    const text = `GET / HTTP/1.1\r\nHost: h.test\r\n${fields}\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n`;
    const limits = { maxHeaderCount: 5000, maxHeadSize: 1 << 20 };
    const input = latin1(text);
    const whole = agree({ kind: 'request', pieces: [input], limits }, 'many fields') as {
      messages: { head: { headers: [string, string][] } }[];
    };
    expect(whole.messages.map((m) => m.head.headers.length)).toEqual([4501, 1]);
    expect(whole.messages[0]!.head.headers[4500]).toEqual(['x-4499', '4499']);
    agree({ kind: 'request', pieces: split(input, [10, 50_000]), limits }, 'many fields, split');
  });

  it('keeps no slab alive that the decoder moved past, within one synchronous run', () => {
    // ~50 MB of slabs pass through in this loop; the scanner must let go of each as the
    // decoder moves to the next, not when a finalizer runs after the event loop turns.
    expect(useNativeHeadScan(true)).toBe(true);
    const head = latin1(
      'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 08:23:21 GMT\r\n' +
        'Content-Type: application/octet-stream\r\nContent-Length: 0\r\nETag: "6926b8d8-80"\r\n\r\n',
    );
    const d = new ResponseDecoder();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 200_000; i++) {
      d.expectResponseTo('GET');
      d.feed(head);
      d.poll();
      d.poll();
      d.poll();
    }
    // Two synchronous collections: V8 sweeps array buffers on a background thread and counts
    // what the first freed only when the next one starts (on a busy machine the first reading
    // alone was 17 MB); finalizers still never run here, so slabs kept until one would stay.
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    // Holding every slab would be ~50 MB; what the test process itself allocates meanwhile (its
    // reporting) and buffers not yet swept stay within a few MB.
    const held = process.memoryUsage().arrayBuffers - before;
    expect(held).toBeLessThan(16 * 1024 * 1024);
  });

  it('reads a head that arrives byte by byte the same as whole', () => {
    const text =
      'POST /up HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5\r\nX-A:  v \t\r\nConnection: keep-alive\r\n\r\nhello';
    const input = latin1(text);
    const bytes = split(
      input,
      Array.from({ length: input.length }, (_, i) => i + 1),
    );
    const whole = agree({ kind: 'request', pieces: [input] }, text);
    expect(agree({ kind: 'request', pieces: bytes }, text)).toEqual(whole);
  });

  it('reports the offending byte of a field rule broken in a head found whole', () => {
    // One case per rule the scanner checks itself (not the framing ones it falls back on).
    const cases: [string, string, number][] = [
      ['GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n', 'ERR_HTTP_OBS_FOLD', 25],
      ['GET / HTTP/1.1\r\nHost : h\r\n\r\n', 'ERR_HTTP_WHITESPACE_BEFORE_COLON', 20],
      ['GET / HTTP/1.1\r\nHost: h\r\n\tfolded\r\n\r\n', 'ERR_HTTP_OBS_FOLD', 25],
      ['GET / HTTP/1.1\r\nHost\t: h\r\n\r\n', 'ERR_HTTP_WHITESPACE_BEFORE_COLON', 20],
      ['GET / HTTP/1.1\r\nHo"st: h\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_NAME', 18],
      [
        'GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n',
        'ERR_HTTP_DUPLICATE_CONTENT_LENGTH',
        60,
      ],
      ['GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n', 'ERR_HTTP_INVALID_CONTENT_LENGTH', 42],
      ['GET / HTTP/1.1\r\nHost: h h\r\n\r\n', 'ERR_HTTP_INVALID_HOST', 23],
      ['GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n', 'ERR_HTTP_INVALID_TRANSFER_ENCODING', 44],
      ['GET / HTTP/2.0\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION', 6],
      ['GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_TARGET', 4],
      ['BREW / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNKNOWN_METHOD', 0],
      // The method policy is checked before a later error, as the line is read.
      ['BREW / HTTP/2.0\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNKNOWN_METHOD', 0],
    ];
    for (const [text, code, offset] of cases) {
      for (const parser of ['native', 'js'] as const) {
        useNativeHeadScan(parser === 'native');
        const d = new RequestDecoder();
        d.feed(latin1(text));
        expect(() => d.poll(), `${parser} ${JSON.stringify(text)}`).toThrow(
          expect.objectContaining({ code, offset }),
        );
      }
    }
  });
});
