/**
 * Differential tests against Node's llhttp on generated and mutated messages. For every input:
 * if llhttp rejects, we reject (never later than it: our complete messages are a prefix of its);
 * if both accept, the messages parse the same; if only we reject, the code must be one of the
 * deliberate divergences below, where we are stricter than llhttp.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headerList, method, originTarget, token } from './arbitraries.js';
import { decode } from './decode-all.js';
import { llparse } from './llhttp.js';

/**
 * Where we are deliberately stricter than llhttp (strict mode, Node 20):
 * - MISSING_HOST / DUPLICATE_HOST: RFC 9112 §3.2 requires exactly one Host in HTTP/1.1 requests.
 * - INVALID_HOST: a Host value that is not an authority (RFC 9110 §7.2, RFC 3986 §3.2).
 * - INVALID_TARGET: target form must fit the method (CONNECT authority-form, `*` for OPTIONS).
 * - UNSUPPORTED_VERSION: HTTP/2.0 and other majors in an HTTP/1 request line (llhttp accepts 2.0).
 * - INVALID_TRANSFER_ENCODING: Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing).
 * - UNSUPPORTED_TRANSFER_CODING: codings other than chunked (RFC 9112 §6.1 allows 501).
 * - INVALID_CHUNK_EXTENSION: empty extension values (`1;a=`).
 * - INVALID_CONTENT_LENGTH: more than 15 digits.
 * - INVALID_CHUNK_SIZE: more than 13 hex digits.
 * - limits (TOO_MANY_HEADERS, HEADER_LINE_TOO_LONG, REQUEST_LINE_TOO_LONG, CHUNK_LINE_TOO_LONG).
 * - BARE_LF / INVALID_METHOD: llhttp skips a bare LF or CR before the request line; we require CRLF.
 * - FORBIDDEN_TRAILER: Host in trailers (llhttp rejects only framing fields there).
 * - DATA_AFTER_CLOSE: llhttp ignores stray CR/LF after a message that closes the connection.
 * - INVALID_TARGET / INVALID_VERSION: llhttp tolerates repeated SP between request-line parts.
 *
 * One semantic divergence, excluded from comparison: a Connection value with trailing OWS
 * (`keep-alive\t`). RFC 9110 strips OWS, so we see the token; llhttp does not. Inputs with such
 * a line only get the "llhttp rejects => we reject" check for errors other than its
 * closed-connection verdicts, and their keep-alive flags are not compared.
 */
const STRICTER = new Set([
  'ERR_HTTP_MISSING_HOST',
  'ERR_HTTP_DUPLICATE_HOST',
  'ERR_HTTP_INVALID_HOST',
  'ERR_HTTP_INVALID_TARGET',
  'ERR_HTTP_UNSUPPORTED_VERSION',
  'ERR_HTTP_INVALID_TRANSFER_ENCODING',
  'ERR_HTTP_UNSUPPORTED_TRANSFER_CODING',
  'ERR_HTTP_INVALID_CHUNK_EXTENSION',
  'ERR_HTTP_INVALID_CONTENT_LENGTH',
  'ERR_HTTP_INVALID_CHUNK_SIZE',
  'ERR_HTTP_TOO_MANY_HEADERS',
  'ERR_HTTP_HEADER_LINE_TOO_LONG',
  'ERR_HTTP_REQUEST_LINE_TOO_LONG',
  'ERR_HTTP_CHUNK_LINE_TOO_LONG',
  'ERR_HTTP_BARE_LF',
  'ERR_HTTP_INVALID_METHOD',
  'ERR_HTTP_DATA_AFTER_CLOSE',
  'ERR_HTTP_FORBIDDEN_TRAILER',
  'ERR_HTTP_INVALID_VERSION',
]);

const CONNECTION_OWS = /connection:[^\r\n]*[ \t]\r\n/i;

/** Both parsers see the input and then end of stream, so a partial message is a rejection for both. */
function compare(input: Buffer): void {
  const ours = decode('request', [input], { eof: true });
  const theirs = llparse('request', input, { eof: true });
  const text = input.toString('latin1');
  const ctx = JSON.stringify(text);
  const connOws = CONNECTION_OWS.test(text);
  const mine = ours.messages.map((m) => ({
    method: m.head.method,
    target: m.head.target,
    version: m.head.version,
    headers: m.head.headers,
    body: m.body,
    trailers: m.trailers,
    keepAlive: connOws || m.keepAlive,
  }));
  const ref = theirs.messages.map((m) => ({
    method: m.method,
    target: m.target,
    version: m.version,
    headers: m.headers,
    body: m.body,
    trailers: m.trailers,
    keepAlive: connOws || m.keepAlive,
  }));
  if (
    connOws &&
    (theirs.error === 'HPE_CLOSED_CONNECTION' || ours.error?.code === 'ERR_HTTP_DATA_AFTER_CLOSE')
  ) {
    const n = Math.min(mine.length, ref.length);
    expect(mine.slice(0, n), ctx).toEqual(ref.slice(0, n));
    return;
  }
  if (theirs.error !== null) {
    expect(ours.error, `llhttp rejected (${theirs.error}) but we accepted ${ctx}`).not.toBeNull();
    expect(mine, ctx).toEqual(ref.slice(0, mine.length));
    return;
  }
  if (ours.error !== null) {
    expect(STRICTER.has(ours.error.code), `we rejected ${ours.error.code}, llhttp accepted ${ctx}`).toBe(
      true,
    );
    expect(mine, ctx).toEqual(ref.slice(0, mine.length));
    return;
  }
  expect(mine, ctx).toEqual(ref);
}

const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0');
const framingHeaders = fc.oneof(
  fc.constant([] as [string, string][]),
  fc.constantFrom<[string, string][]>(
    [['Content-Length', '5']],
    [['Transfer-Encoding', 'chunked']],
    [['Connection', 'close']],
    [['Connection', 'keep-alive']],
    [['Content-Length', '0']],
    [
      ['Content-Length', '3'],
      ['Content-Length', '3'],
    ],
    [
      ['Transfer-Encoding', 'chunked'],
      ['Content-Length', '3'],
    ],
    [['Transfer-Encoding', 'gzip, chunked']],
    [['Transfer-Encoding', 'chunked, identity']],
  ),
);
const body = fc.constantFrom(
  '',
  'hello',
  '5\r\nhello\r\n0\r\n\r\n',
  '3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n',
  'abc',
);

const message = fc
  .record({
    method,
    target: originTarget,
    version,
    headers: headerList,
    framing: framingHeaders,
    host: fc.boolean(),
    body,
  })
  .map(({ method: m, target, version: v, headers, framing, host, body: b }) => {
    const lines = [`${m} ${target} ${v}`];
    if (host) lines.push('Host: example.test');
    for (const [n, val] of [...headers, ...framing]) lines.push(`${n}: ${val}`);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${b}`, 'latin1');
  });

const interesting = [
  0x20, 0x09, 0x0d, 0x0a, 0x00, 0x3a, 0x2c, 0x3b, 0x22, 0x7f, 0xff, 0x30, 0x41, 0x2f, 0x48,
];
const mutation = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), byte: fc.constantFrom(...interesting) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.constantFrom(...interesting) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), byte: fc.constant(0) }),
  fc.record({
    op: fc.constant('splice' as const),
    at: fc.nat(),
    text: fc.constantFrom(
      ' ',
      'Content-Length: 0\r\n',
      'Host: a\r\n',
      '\r\n',
      '\n',
      '\r',
      '\r\n ',
      ' :',
      'Content-Length: 1\r\n',
      'Transfer-Encoding: chunked\r\n',
      '\r\n\r\n',
      'chunked',
    ),
  }),
);

function mutate(input: Buffer, muts: { op: string; at: number; byte?: number; text?: string }[]): Buffer {
  let b = input;
  for (const m of muts) {
    const at = m.at % (b.length + 1);
    if (m.op === 'replace' && at < b.length) {
      b = Buffer.from(b);
      b[at] = m.byte!;
    } else if (m.op === 'insert')
      b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte!]), b.subarray(at)]);
    else if (m.op === 'delete' && at < b.length) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else if (m.op === 'splice')
      b = Buffer.concat([b.subarray(0, at), Buffer.from(m.text!, 'latin1'), b.subarray(at)]);
  }
  return b;
}

describe('differential against llhttp', () => {
  it('agrees on generated requests', () => {
    fc.assert(
      fc.property(message, (m) => compare(m)),
      { numRuns: 1500 },
    );
  });

  it('agrees on mutated requests (or is stricter in documented ways)', () => {
    fc.assert(
      fc.property(message, fc.array(mutation, { minLength: 1, maxLength: 3 }), (m, muts) =>
        compare(mutate(m, muts)),
      ),
      {
        numRuns: 4000,
      },
    );
  });

  it('agrees on pipelined pairs', () => {
    fc.assert(
      fc.property(message, message, (a, b) => compare(Buffer.concat([a, b]))),
      { numRuns: 500 },
    );
  });

  it('agrees on odd methods and tokens in names', () => {
    fc.assert(
      fc.property(token, token, (m, n) =>
        compare(Buffer.from(`${m} / HTTP/1.1\r\nHost: h\r\n${n}: v\r\n\r\n`, 'latin1')),
      ),
      { numRuns: 500 },
    );
  });

  it('regressions', () => {
    for (const s of [
      'GET / HTTP/1.1\r\nHost: h\r\nX:\tv\t\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length:  1 \r\n\r\nx',
      '\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n',
    ]) {
      compare(Buffer.from(s, 'latin1'));
    }
  });
});

/** Responses: same rules; llhttp needs end of stream to finish close-delimited bodies. */
function compareResponse(input: Buffer): void {
  const ours = decode('response', [input], { eof: true });
  const theirs = llparse('response', input, { eof: true });
  const ctx = JSON.stringify(input.toString('latin1'));
  const mine = ours.messages.map((m) => ({
    status: m.head.status,
    headers: m.head.headers,
    body: m.body,
    trailers: m.trailers,
  }));
  const ref = theirs.messages.map((m) => ({
    status: m.status,
    headers: m.headers,
    body: m.body,
    trailers: m.trailers,
  }));
  if (theirs.error !== null) {
    expect(ours.error, `llhttp rejected (${theirs.error}) but we accepted ${ctx}`).not.toBeNull();
    expect(mine, ctx).toEqual(ref.slice(0, mine.length));
    return;
  }
  if (ours.error !== null) {
    expect(
      STRICTER_RESPONSE.has(ours.error.code),
      `we rejected ${ours.error.code}, llhttp accepted ${ctx}`,
    ).toBe(true);
    expect(mine, ctx).toEqual(ref.slice(0, mine.length));
    return;
  }
  expect(mine, ctx).toEqual(ref);
}

/**
 * Stricter on responses: status codes outside 100-599 (INVALID_STATUS), versions other than
 * 1.0/1.1, framing fields in trailers, bare CR after a status line (llhttp tolerates it in
 * responses), and the request-side divergences that apply to heads.
 */
const STRICTER_RESPONSE = new Set([
  ...STRICTER,
  'ERR_HTTP_INVALID_STATUS',
  'ERR_HTTP_INCOMPLETE_MESSAGE',
  'ERR_HTTP_BARE_CR',
]);

const responseMessage = fc
  .record({
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
    status: fc.constantFrom(200, 201, 204, 301, 304, 404, 500, 103),
    reason: fc.constantFrom('OK', '', 'Some Reason'),
    headers: headerList,
    framing: framingHeaders,
    body,
  })
  .map(({ version: v, status, reason, headers, framing, body: b }) => {
    const lines = [`${v} ${status}${reason ? ` ${reason}` : ''}`];
    for (const [n, val] of [...headers, ...framing]) lines.push(`${n}: ${val}`);
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${b}`, 'latin1');
  });

describe('differential against llhttp (responses)', () => {
  it('agrees on generated responses', () => {
    fc.assert(
      fc.property(responseMessage, (m) => compareResponse(m)),
      { numRuns: 1000 },
    );
  });

  it('agrees on mutated responses (or is stricter in documented ways)', () => {
    fc.assert(
      fc.property(responseMessage, fc.array(mutation, { minLength: 1, maxLength: 3 }), (m, muts) =>
        compareResponse(mutate(m, muts)),
      ),
      { numRuns: 3000 },
    );
  });
});
