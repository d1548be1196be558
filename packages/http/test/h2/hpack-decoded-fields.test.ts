/**
 * A decoded HTTP/1.1 head going out over HTTP/2 (what a proxy does with an upstream's answer):
 * its fields still in the HeadSlab are HPACK-encoded from their bytes (HpackEncoder.addFieldBytes,
 * through the response writer's addHeaderFields), not decoded to strings first. Differential
 * against the string path: random HTTP/1.1 response heads (names in any case, odd whitespace,
 * obs-text, hop-by-hop and connection-specific fields, Connection naming others, repeated values
 * that the dynamic table matches, tables small enough to evict), decoded by both head parsers,
 * give the same HPACK block byte for byte as the same fields copied into strings, and that block
 * decodes to the head's fields: lowercase names, trimmed values, connection-specific and
 * Connection-named fields gone. Then the path makes no value string, and nghttp2 (node:http2)
 * reads such answers through the server on both drivers.
 */
import * as http2 from 'node:http2';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedBody } from '../../src/body.js';
import { DecodeEvent, ResponseDecoder, useNativeHeadScan } from '../../src/h1/decoder.js';
import { HpackDecoder } from '../../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../../src/h2/hpack-encoder.js';
import { addHeaderFields } from '../../src/h2/server-response-writer.js';
import { HttpHeaders } from '../../src/headers.js';
import { createResponse } from '../../src/message.js';
import { headerValue } from '../arbitraries.js';
import { availableDrivers, startServer } from '../server-harness.js';

afterEach(() => {
  useNativeHeadScan(true);
});

/** Never sent over HTTP/2 (RFC 9113 §8.2.2), as the writer's list. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'content-length',
]);

/** Decodes one HTTP/1.1 response head (the wire text, latin1) into its header list. */
function decodeHead(wire: string): HttpHeaders {
  const d = new ResponseDecoder({ maxHeaderCount: 200, maxHeadSize: 64 * 1024 });
  d.expectResponseTo('GET');
  d.feed(Uint8Array.from(Buffer.from(wire, 'latin1')));
  const ev = d.poll();
  if (ev !== DecodeEvent.Head) throw new Error(`no head: event ${ev}`);
  return d.message!.headers;
}

/** A name in a random case: what an HTTP/1.1 peer may send. */
const anyCase = (name: string) =>
  fc
    .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((up) => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));

const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const uncommonName = fc.string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 10 });

/** Names: common ones (interned by id), static-table ones that are not, uncommon ones. */
const fieldName = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(
        'server',
        'date',
        'content-type',
        'etag',
        'last-modified',
        'accept-ranges',
        'cache-control',
        'set-cookie',
        'cookie',
        'authorization',
        'vary',
        'via',
        'location',
        'age',
        'accept-encoding',
        'content-encoding',
        'x-request-id',
        'refresh',
        'strict-transport-security',
      )
      .chain(anyCase),
  },
  { weight: 2, arbitrary: fc.constantFrom('keep-alive', 'proxy-connection', 'upgrade', 'te').chain(anyCase) },
  { weight: 3, arbitrary: uncommonName },
);

/** Values: a few that repeat (so the dynamic table matches them), random ones, long ones. */
const fieldValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('nginx', 'text/plain', 'gzip, deflate', 'bytes', '', 'a', '0') },
  { weight: 6, arbitrary: headerValue },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom('x', 'y', '~'), minLength: 100, maxLength: 3200 }),
  },
);

/** How a line separates and ends its value: odd whitespace is legal (RFC 9112 §5). */
const separator = fc.constantFrom(': ', ':', ':  ', ':\t');
const trailing = fc.constantFrom('', '', ' ', '\t ');

interface Line {
  name: string;
  value: string;
  sep: string;
  trail: string;
}
const line = fc.record({ name: fieldName, value: fieldValue, sep: separator, trail: trailing });

/** A Connection field naming hop-by-hop tokens and other fields of the head (any case). */
const connectionLine = fc
  .array(fc.oneof(fc.constantFrom('close', 'keep-alive', 'Server', 'X-Request-Id', 'ETAG'), uncommonName), {
    minLength: 1,
    maxLength: 3,
  })
  .chain((tokens) =>
    fc.record({
      name: anyCase('connection'),
      value: fc.constant(tokens.join(', ')),
      sep: separator,
      trail: trailing,
    }),
  );

/** Edits a proxy may make after decoding: the list then mixes decoded and added fields. */
const edit = fc.oneof(
  fc.record({
    op: fc.constant('append' as const),
    name: fc.constantFrom('via', 'x-added', 'date'),
    value: fieldValue,
  }),
  fc.record({ op: fc.constant('delete' as const), name: fc.constantFrom('server', 'etag', 'x-request-id') }),
);

interface Head {
  lines: Line[];
  framing: 'length' | 'chunked';
  edits: { op: 'append' | 'delete'; name: string; value?: string }[];
}
const head: fc.Arbitrary<Head> = fc.record({
  lines: fc
    .tuple(fc.array(line, { maxLength: 12 }), fc.option(connectionLine), fc.nat())
    .map(([lines, conn, at]) => {
      if (conn === null) return lines;
      const out = lines.slice();
      out.splice(at % (lines.length + 1), 0, conn);
      return out;
    }),
  framing: fc.constantFrom('length' as const, 'chunked' as const),
  edits: fc.array(edit, { maxLength: 2 }),
});

function wireOf(h: Head): string {
  const framing = h.framing === 'length' ? 'Content-Length: 0\r\n' : 'Transfer-Encoding: chunked\r\n';
  return `HTTP/1.1 200 OK\r\n${h.lines.map((l) => `${l.name}${l.sep}${l.value}${l.trail}\r\n`).join('')}${framing}\r\n`;
}

/** What the head says over HTTP/2, worked out from the generated lines alone. */
function expectedFields(h: Head): [string, string][] {
  let fields: [string, string][] = h.lines.map((l) => [l.name.toLowerCase(), l.value]);
  for (const e of h.edits) {
    if (e.op === 'append') fields.push([e.name, e.value!]);
    else fields = fields.filter(([n]) => n !== e.name);
  }
  const named = new Set<string>();
  for (const [n, v] of fields) {
    if (n !== 'connection') continue;
    for (const t of v.split(',')) if (t.trim() !== '') named.add(t.trim().toLowerCase());
  }
  return fields.filter(([n]) => !CONNECTION_SPECIFIC.has(n) && !named.has(n));
}

function applyEdits(headers: HttpHeaders, h: Head): void {
  for (const e of h.edits) {
    if (e.op === 'append') headers.append(e.name, e.value!);
    else headers.delete(e.name);
  }
}

const parsers = ['native', 'js'] as const;

describe('HPACK from a decoded HTTP/1.1 head: bytes path against the string path', () => {
  for (const parser of parsers) {
    it(`gives the same blocks as the fields copied into strings (${parser} head parser)`, () => {
      if (useNativeHeadScan(parser === 'native') !== (parser === 'native')) return;
      fc.assert(
        fc.property(
          fc.array(head, { minLength: 1, maxLength: 5 }),
          fc.constantFrom(0, 64, 256, 4096),
          fc.constantFrom('auto' as const, 'always' as const, 'never' as const),
          (heads, maxTableSize, huffman) => {
            // One connection each: the byte path's encoder and the string path's, in step.
            const bytesPath = new HpackEncoder({ maxTableSize, huffman });
            const stringPath = new HpackEncoder({ maxTableSize, huffman });
            const peer = new HpackDecoder();
            for (const h of heads) {
              const decoded = decodeHead(wireOf(h));
              applyEdits(decoded, h);
              bytesPath.begin();
              const dateA = addHeaderFields(bytesPath, decoded, true);
              const blockA = bytesPath.finish().slice();
              // The same fields as strings (a built list: no slab, every field added).
              const copied = new HttpHeaders(decoded);
              expect(decoded.wcount).toBeGreaterThan(0);
              expect(copied.wcount).toBe(0);
              stringPath.begin();
              const dateB = addHeaderFields(stringPath, copied, true);
              const blockB = stringPath.finish().slice();
              expect(Buffer.from(blockA).toString('hex')).toBe(Buffer.from(blockB).toString('hex'));
              expect(dateA).toBe(dateB);
              const expected = expectedFields(h);
              expect(peer.decodeToList(blockA)).toEqual(expected);
              expect(dateA).toBe(expected.some(([n]) => n === 'date'));
            }
          },
        ),
        { numRuns: 400 },
      );
    });
  }

  it('makes no value string of a decoded head (as a proxy forwards it: Connection already removed)', () => {
    const wire =
      'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 15:26:53 GMT\r\n' +
      'Content-Type: text/plain\r\nContent-Length: 128\r\nETag: "6b118a07-80"\r\nX-Odd:  spaced \r\n\r\n';
    const enc = new HpackEncoder();
    const peer = new HpackDecoder();
    // Twice: new literals (the table fills) then indexed matches, compared as bytes.
    for (let round = 0; round < 2; round++) {
      const headers = decodeHead(wire);
      enc.begin();
      addHeaderFields(enc, headers, true);
      const list = peer.decodeToList(enc.finish().slice());
      expect(list).toEqual([
        ['server', 'nginx/1.22.1'],
        ['date', 'Thu, 03 Dec 2026 15:26:53 GMT'],
        ['content-type', 'text/plain'],
        ['etag', '"6b118a07-80"'],
        ['x-odd', 'spaced'],
      ]);
      // The list's string cache: made by the first nameAt/valueAt of a decoded field. Only the
      // uncommon name was read (x-odd: lowercased from its bytes); no value.
      const cache = (headers as unknown as { cache: (string | undefined)[] | null }).cache;
      expect(cache?.filter((s, i) => i % 2 === 1 && s !== undefined) ?? []).toEqual([]);
    }
  });
});

const drivers = await availableDrivers();

describe.each(drivers)('a decoded HTTP/1.1 head answered over h2c, read by nghttp2 (%s)', (driver) => {
  it('arrives with lowercase names, its values, without connection-specific fields', async () => {
    const wire =
      'HTTP/1.1 200 OK\r\nSERVER: nginx/1.22.1\r\ncontent-TYPE:text/plain\r\nX-Trace-ID: \tabc def \r\n' +
      'Connection: keep-alive, X-Hop\r\nX-Hop: gone\r\nKeep-Alive: timeout=5\r\nCache-Control: no-cache\r\n' +
      'Content-Length: 5\r\n\r\n';
    const running = await startServer(
      driver,
      {},
      {
        call: () => {
          const headers = decodeHead(wire);
          return createResponse(200, { headers, body: fixedBody('hello') });
        },
      },
    );
    const client = http2.connect(`http://127.0.0.1:${running.port}`);
    try {
      // Three answers on one connection: the later ones come from the dynamic table.
      for (let i = 0; i < 3; i++) {
        const got = await new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>(
          (resolve, reject) => {
            const req = client.request({ ':path': '/' });
            let body = '';
            let headers: http2.IncomingHttpHeaders = {};
            req.setEncoding('latin1');
            req.on('response', (h) => {
              headers = h;
            });
            req.on('data', (d: string) => {
              body += d;
            });
            req.on('end', () => resolve({ headers, body }));
            req.on('error', reject);
            req.end();
          },
        );
        expect(got.body).toBe('hello');
        const { date, ...rest } = got.headers;
        expect(typeof date).toBe('string');
        // String keys only (node adds a symbol for its sensitive headers).
        expect(Object.fromEntries(Object.entries(rest))).toEqual({
          ':status': 200,
          server: 'nginx/1.22.1',
          'content-type': 'text/plain',
          'x-trace-id': 'abc def',
          'cache-control': 'no-cache',
          'content-length': '5',
        });
      }
    } finally {
      client.close();
      await running.stop();
    }
    expect(running.errors).toEqual([]);
  });
});
