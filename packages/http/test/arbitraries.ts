/**
 * Test support: fast-check arbitraries for HTTP/1.1 messages (valid by construction), shared by
 * the round-trip property tests and the llhttp differential tests.
 */
import fc from 'fast-check';

const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const reserved = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'expect',
  'upgrade',
  'te',
  'trailer',
]);

export const token = fc.string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 12 });

export const headerName = fc
  .oneof(
    token,
    fc.constantFrom('Accept', 'User-Agent', 'Content-Type', 'X-Request-Id', 'Cookie', 'accept-encoding'),
  )
  .filter((n) => !reserved.has(n.toLowerCase()));

const vchar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));
const obsText = fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c));

/** A field value: no leading/trailing whitespace, inner SP/HTAB allowed. */
export const headerValue = fc
  .array(
    fc.oneof(
      { weight: 8, arbitrary: vchar },
      { weight: 1, arbitrary: fc.constantFrom(' ', '\t') },
      { weight: 1, arbitrary: obsText },
    ),
    {
      maxLength: 24,
    },
  )
  .map((cs) => cs.join('').replace(/^[ \t]+|[ \t]+$/g, ''));

export const headerList = fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 });

const pathChar = fc.constantFrom(..."abcxyz0123456789-._~!$&'()*+,;=:@/?%".split(''));
export const originTarget = fc.array(pathChar, { maxLength: 20 }).map((cs) => `/${cs.join('')}`);

export const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PURGE');

export const bytes = fc.uint8Array({ maxLength: 64 });

/** A body: none, fixed, or a list of chunks with optional trailers. */
export const bodySpec = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('fixed' as const), data: bytes }),
  fc.record({
    kind: fc.constant('chunked' as const),
    chunks: fc.array(fc.uint8Array({ minLength: 1, maxLength: 32 }), { maxLength: 4 }),
    trailers: headerList,
  }),
);
export type BodySpec = typeof bodySpec extends fc.Arbitrary<infer T> ? T : never;

export const requestSpec = fc.record({ method, target: originTarget, headers: headerList, body: bodySpec });
export type RequestSpec = typeof requestSpec extends fc.Arbitrary<infer T> ? T : never;

/** Cut points for splitting an input of length n. */
export const cuts = fc.array(fc.nat({ max: 4096 }), { maxLength: 6 });
