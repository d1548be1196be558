import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkHeader, encodeRequestHead, encodeResponseHead, lastChunk } from '../src/h1/encoder.js';
import { HttpHeaders } from '../src/headers.js';
import { type BodySpec, bodySpec, cuts, headerList, requestSpec } from './arbitraries.js';
import { decode, split } from './decode-all.js';

const latin1 = (s: string) => Buffer.from(s, 'latin1');

function encodeBody(body: BodySpec): {
  framing: 'none' | 'length' | 'chunked';
  length: number;
  bytes: Buffer;
} {
  if (body.kind === 'none') return { framing: 'none', length: 0, bytes: Buffer.alloc(0) };
  if (body.kind === 'fixed') {
    return body.data.length === 0
      ? { framing: 'none', length: 0, bytes: Buffer.alloc(0) }
      : { framing: 'length', length: body.data.length, bytes: Buffer.from(body.data) };
  }
  const parts: Uint8Array[] = [];
  for (const c of body.chunks) parts.push(chunkHeader(c.length), c, latin1('\r\n'));
  parts.push(lastChunk(new HttpHeaders(body.trailers)));
  return { framing: 'chunked', length: -1, bytes: Buffer.concat(parts) };
}

function expectedBody(body: BodySpec): string {
  if (body.kind === 'none') return '';
  if (body.kind === 'fixed') return Buffer.from(body.data).toString('latin1');
  return Buffer.concat(body.chunks).toString('latin1');
}

const lower = (h: [string, string][]) => h.map(([n, v]) => [n.toLowerCase(), v]);

describe('encode/decode round trip', () => {
  it('requests survive encode -> split -> decode (pipelined pairs)', () => {
    fc.assert(
      fc.property(requestSpec, requestSpec, cuts, (a, b, cutPoints) => {
        const wire: Buffer[] = [];
        for (const r of [a, b]) {
          const body = encodeBody(r.body);
          const head = encodeRequestHead(
            r.method,
            r.target,
            new HttpHeaders(r.headers),
            body.framing,
            body.length,
            {
              authority: 'example.test:8080',
            },
          );
          wire.push(latin1(head), body.bytes);
        }
        const input = Buffer.concat(wire);
        const res = decode(
          'request',
          split(
            input,
            [...new Set(cutPoints.map((c) => c % (input.length + 1)))].sort((x, y) => x - y),
          ),
        );
        expect(res.error).toBeNull();
        expect(res.messages).toHaveLength(2);
        for (const [i, r] of [a, b].entries()) {
          const m = res.messages[i]!;
          expect(m.head.method).toBe(r.method);
          expect(m.head.target).toBe(r.target);
          const names = m.head.headers.filter(([n]) => n !== 'content-length' && n !== 'transfer-encoding');
          expect(names).toEqual([['host', 'example.test:8080'], ...lower(r.headers)]);
          expect(m.body).toBe(expectedBody(r.body));
          if (r.body.kind === 'chunked') {
            expect(m.trailers ?? []).toEqual(lower(r.body.trailers));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('responses survive encode -> split -> decode, including close-delimited bodies', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
        headerList,
        bodySpec,
        fc.boolean(),
        cuts,
        (status, headers, body, closeDelimited, cutPoints) => {
          const enc = encodeBody(body);
          const eof = closeDelimited && body.kind === 'chunked';
          const payload = eof ? Buffer.concat(body.kind === 'chunked' ? body.chunks : []) : enc.bytes;
          const head = encodeResponseHead(status, '', new HttpHeaders(headers), {
            framing: eof ? 'eof' : enc.framing,
            length: enc.length,
            keepAlive: !eof,
            requestMinor: eof ? 0 : 1,
            requestMethod: 'GET',
            date: false,
          });
          const input = Buffer.concat([latin1(head), payload]);
          const res = decode(
            'response',
            split(
              input,
              [...new Set(cutPoints.map((c) => c % (input.length + 1)))].sort((x, y) => x - y),
            ),
            {
              eof: true,
            },
          );
          expect(res.error).toBeNull();
          expect(res.messages).toHaveLength(1);
          const m = res.messages[0]!;
          expect(m.head.status).toBe(status);
          expect(m.body).toBe(expectedBody(body));
          expect(m.keepAlive).toBe(!eof);
          const plain = m.head.headers.filter(
            ([n]) => !['content-length', 'transfer-encoding', 'connection'].includes(n),
          );
          expect(plain).toEqual(lower(headers));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the encoder refuses values that would inject CR/LF', () => {
    expect(() => new HttpHeaders([['x', 'a\r\nInjected: 1']])).toThrow(/invalid header value/);
    expect(() => new HttpHeaders([['x y', 'a']])).toThrow(/invalid header name/);
    expect(() => encodeRequestHead('GET', '/a b', new HttpHeaders(), 'none', 0)).toThrow(
      /invalid request target/,
    );
    expect(() => encodeRequestHead('G T', '/', new HttpHeaders(), 'none', 0)).toThrow(/invalid method/);
  });
});
