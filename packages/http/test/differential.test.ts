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
 * - INVALID_CHUNK_SIZE: a size above 2^53 - 1 (llhttp: 2^64 - 1). Leading zeros are fine in both.
 * - limits (TOO_MANY_HEADERS, HEADER_LINE_TOO_LONG, REQUEST_LINE_TOO_LONG, CHUNK_LINE_TOO_LONG).
 * - BARE_LF / INVALID_METHOD / BARE_CR: llhttp skips a bare LF or CR before the request line; we
 *   require CRLF (RFC 9112 §2.2: a bare CR is invalid). BARE_CR only counts as such when it is
 *   the first byte of a head (offset 0); anywhere else llhttp rejects it too (HPE_LF_EXPECTED).
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

/**
 * Where llhttp departs from the RFCs and we follow them, llhttp is given the equivalent form it
 * accepts (same length, so offsets and bodies line up) and its verdict on that is the reference:
 * - `HTTP/1.2`..`HTTP/1.9` in a start line reads as `HTTP/1.1`: RFC 9112 §2.3 (a recipient
 *   treats a higher minor version as the highest it supports); llhttp: HPE_INVALID_VERSION.
 * - HTAB in the OWS after a Content-Length or Transfer-Encoding value reads as SP: RFC 9110
 *   §5.5 and §5.6.3 (OWS = SP / HTAB, not part of the value); llhttp rejects `5\t`
 *   (HPE_INVALID_CONTENT_LENGTH) and does not see `chunked\t` as chunked (a request is then
 *   HPE_INVALID_TRANSFER_ENCODING, a response close-delimited). haproxy 2.6 trims HTAB
 *   here; nginx 1.22 answers such requests 400 and 501 (it accepts them from an upstream).
 * The generated field values hold neither form (short random values would have to end in
 * ` HTTP/1.2` exactly); a body may, when it holds the next message, so when the input was
 * rewritten both sides' bodies are compared through the same rewrite.
 */
function forLlhttp(input: Buffer): Buffer {
  const text = input.toString('latin1');
  const fixed = rewriteForLlhttp(text);
  return fixed === text ? input : Buffer.from(fixed, 'latin1');
}

/** The rewrite of forLlhttp on text. */
function rewriteForLlhttp(text: string): string {
  return text
    .replace(/ HTTP\/1\.[2-9]\r\n/g, ' HTTP/1.1\r\n')
    .replace(/HTTP\/1\.[2-9] ([0-9]{3})/g, 'HTTP/1.1 $1')
    .replace(
      /((?:^|\r\n)(?:content-length|transfer-encoding):[^\r\n]*?)([ \t]+)(?=\r\n)/gi,
      (_, line: string, ows: string) => line + ' '.repeat(ows.length),
    );
}

/** Both parsers see the input and then end of stream, so a partial message is a rejection for both. */
function compare(input: Buffer): void {
  const ours = decode('request', [input], { eof: true });
  const reference = forLlhttp(input);
  const theirs = llparse('request', reference, { eof: true });
  const text = input.toString('latin1');
  const ctx = JSON.stringify(text);
  const connOws = CONNECTION_OWS.test(text);
  const body = reference === input ? (b: string) => b : rewriteForLlhttp;
  const mine = ours.messages.map((m) => ({
    method: m.head.method,
    target: m.head.target,
    version: m.head.version,
    headers: m.head.headers,
    body: body(m.body),
    trailers: m.trailers,
    keepAlive: connOws || m.keepAlive,
  }));
  const ref = theirs.messages.map((m) => ({
    method: m.method,
    target: m.target,
    version: m.version,
    headers: m.headers,
    body: body(m.body),
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
    const stricter =
      STRICTER.has(ours.error.code) || (ours.error.code === 'ERR_HTTP_BARE_CR' && ours.error.offset === 0);
    expect(stricter, `we rejected ${ours.error.code}, llhttp accepted ${ctx}`).toBe(true);
    expect(mine, ctx).toEqual(ref.slice(0, mine.length));
    return;
  }
  expect(mine, ctx).toEqual(ref);
}

const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/1.9');
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
    // OWS is SP or HTAB, around framing values too (RFC 9110 §5.6.3).
    [['Content-Length', '\t5\t']],
    [['Content-Length', '5 \t ']],
    [['Transfer-Encoding', '\tchunked\t']],
  ),
);
const body = fc.constantFrom(
  '',
  'hello',
  '5\r\nhello\r\n0\r\n\r\n',
  '3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n',
  'abc',
  // Leading zeros in chunk sizes (RFC 9112 §7.1: chunk-size = 1*HEXDIG).
  '00000000000005\r\nhello\r\n0000\r\n\r\n',
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
      // found by the mutated-requests property: llhttp refuses an empty list element in TE
      'OPTIONS /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \tchunked,\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length:  1 \r\n\r\nx',
      '\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n',
      // issue 11
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\t2\t\r\n\r\nab',
      'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n1\r\na\r\n0\r\n\r\n',
      `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${'0'.repeat(900)}5\r\nhello\r\n0\r\n\r\n`,
      'GET / HTTP/1.2\r\nHost: h\r\n\r\nGET /2 HTTP/1.7\r\nHost: h\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n',
      '\rGET / HTTP/1.1\r\nHost: h\r\n\r\n',
    ]) {
      compare(Buffer.from(s, 'latin1'));
    }
  });
});

/**
 * Responses: same rules; llhttp needs end of stream to finish close-delimited bodies. `methods`
 * name the requests the final responses answer (HEAD: no body whatever the fields say).
 * Keep-alive verdicts are compared too, except where we deliberately close: Transfer-Encoding in
 * an HTTP/1.0 response (RFC 9112 §6.1: faulty framing, close after it; llhttp keeps it when
 * Connection says keep-alive), and Connection values with trailing OWS (see above); and not for
 * answers to HEAD: node computes llhttp's verdict before it tells llhttp to skip the body, so a
 * HEAD answer without Content-Length looks close-delimited there (RFC 9112 §6.3 (1): it is not).
 */
function compareResponse(input: Buffer, methods: readonly string[] = []): void {
  const ours = decode('response', [input], { eof: true, methods });
  const reference = forLlhttp(input);
  const theirs = llparse('response', reference, { eof: true, methods });
  const text = input.toString('latin1');
  const ctx = `${JSON.stringify(text)} answering ${methods.join(',') || 'GET'}`;
  const skipKeepAlive = CONNECTION_OWS.test(text) || HTTP10_TE.test(text) || methods.includes('HEAD');
  const body = reference === input ? (b: string) => b : rewriteForLlhttp;
  const mine = ours.messages.map((m) => ({
    status: m.head.status,
    version: m.head.version,
    headers: m.head.headers,
    body: body(m.body),
    trailers: m.trailers,
    keepAlive: skipKeepAlive || m.head.status! < 200 || m.keepAlive,
  }));
  const ref = theirs.messages.map((m) => ({
    status: m.status,
    version: m.version,
    headers: m.headers,
    body: body(m.body),
    trailers: m.trailers,
    keepAlive: skipKeepAlive || m.status! < 200 || m.keepAlive,
  }));
  // llhttp ends the connection at a 1xx that says close (or is HTTP/1.0); we read on to the
  // final response and close after it (RFC 9110 §15.2, §7.6.1). Up to that 1xx, we must agree.
  const lastRef = theirs.messages.at(-1);
  const closedAt1xx =
    theirs.error === 'HPE_CLOSED_CONNECTION' && lastRef !== undefined && lastRef.status! < 200;
  if (theirs.error !== null && !closedAt1xx) {
    expect(ours.error, `llhttp rejected (${theirs.error}) but we accepted ${ctx}`).not.toBeNull();
    expect(mine, ctx).toEqual(ref.slice(0, mine.length));
    return;
  }
  if (ours.error !== null) {
    // Past llhttp's last message (after a closing 1xx) it has no verdict to compare with.
    const beyond = closedAt1xx && mine.length >= ref.length;
    expect(
      beyond || STRICTER_RESPONSE.has(ours.error.code),
      `we rejected ${ours.error.code}, llhttp accepted ${ctx}`,
    ).toBe(true);
    const n = Math.min(mine.length, ref.length);
    expect(mine.slice(0, n), ctx).toEqual(ref.slice(0, n));
    return;
  }
  if (closedAt1xx) {
    expect(mine.slice(0, ref.length), ctx).toEqual(ref);
    return;
  }
  expect(mine, ctx).toEqual(ref);
}

/** An HTTP/1.0 status line with a Transfer-Encoding field after it (somewhere: a coarse filter). */
const HTTP10_TE = /HTTP\/1\.0 [\s\S]*\r\ntransfer-encoding:/i;

/**
 * Stricter on responses: status codes outside 100-599 (INVALID_STATUS), versions other than
 * 1.x, framing fields in trailers, bare CR after a status line (llhttp tolerates it in
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
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2'),
    status: fc.constantFrom(200, 201, 204, 301, 304, 404, 500, 100, 103),
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
const requestMethod = fc.constantFrom('GET', 'GET', 'HEAD', 'POST');

describe('differential against llhttp (responses)', () => {
  it('agrees on generated responses', () => {
    fc.assert(
      fc.property(responseMessage, requestMethod, (m, rm) => compareResponse(m, [rm])),
      { numRuns: 1500 },
    );
  });

  it('agrees on mutated responses (or is stricter in documented ways)', () => {
    fc.assert(
      fc.property(
        responseMessage,
        requestMethod,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (m, rm, muts) => compareResponse(mutate(m, muts), [rm]),
      ),
      { numRuns: 3000 },
    );
  });

  it('agrees on two responses in one buffer', () => {
    fc.assert(
      fc.property(responseMessage, responseMessage, requestMethod, requestMethod, (a, b, ma, mb) =>
        compareResponse(Buffer.concat([a, b]), [ma, mb]),
      ),
      { numRuns: 800 },
    );
  });

  it('regressions', () => {
    const cases: [string, string[]][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length:\t1\t\r\n\r\nx', []],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n1\r\nx\r\n0\r\n\r\n', []],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: \tchunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n', []],
      ['HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\nx', []],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000005\r\nhello\r\n00\r\n\r\n', []],
      [
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx',
        ['HEAD', 'GET'],
      ],
      [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
        ['HEAD', 'GET'],
      ],
      [
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
        [],
      ],
      [
        'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
        [],
      ],
      [
        'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
        [],
      ],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', []],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', []],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc', []],
      ['HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n', []],
      ['HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', []],
    ];
    for (const [s, methods] of cases) compareResponse(Buffer.from(s, 'latin1'), methods);
  });
});

/**
 * Exact boundaries: sequences of self-delimited messages in one buffer, built with known
 * bodies. Both parsers must return every message with exactly its body, no more and no less:
 * this catches a wrong boundary that both might otherwise agree on by accident.
 */
describe('message boundaries in one buffer', () => {
  const payload = fc.constantFrom('', 'x', 'hello world', 'HTTP/1.1 200 OK\r\n\r\n', '0\r\n\r\n');
  const finalResponse = fc.record({
    status: fc.constantFrom(200, 404, 204, 304),
    method: fc.constantFrom('GET', 'HEAD'),
    framing: fc.constantFrom('length' as const, 'chunked' as const),
    payload,
    headers: headerList,
    interim: fc.subarray([100, 103]),
  });

  /** Wire bytes and what a parser must report: 1xx first, then the final answer. */
  function wire(r: typeof finalResponse extends fc.Arbitrary<infer T> ? T : never) {
    let out = '';
    const expected: { status: number; body: string }[] = [];
    for (const s of r.interim) {
      out += `HTTP/1.1 ${s} Interim\r\n${s === 103 ? 'Link: </style.css>; rel=preload\r\n' : ''}\r\n`;
      expected.push({ status: s, body: '' });
    }
    const bodiless = r.status === 204 || r.status === 304 || r.method === 'HEAD';
    out += `HTTP/1.1 ${r.status} X\r\n`;
    for (const [n, v] of r.headers) out += `${n}: ${v}\r\n`;
    // 204 and 304 carry framing fields here on purpose: they must not read a body.
    if (r.framing === 'length') out += `Content-Length: ${r.payload.length}\r\n\r\n`;
    else out += 'Transfer-Encoding: chunked\r\n\r\n';
    if (!bodiless) {
      if (r.framing === 'length') out += r.payload;
      else if (r.payload.length > 0) out += `${r.payload.length.toString(16)}\r\n${r.payload}\r\n0\r\n\r\n`;
      else out += '0\r\n\r\n';
    }
    expected.push({ status: r.status, body: bodiless ? '' : r.payload });
    return { out, expected };
  }

  it('decodes every response of a sequence (HEAD, 1xx, 204, 304 included)', () => {
    fc.assert(
      fc.property(fc.array(finalResponse, { minLength: 2, maxLength: 3 }), (rs) => {
        const parts = rs.map(wire);
        const input = Buffer.from(parts.map((p) => p.out).join(''), 'latin1');
        const methods = rs.map((r) => r.method);
        // 204 and 304 may carry Content-Length or Transfer-Encoding (a sender must not, but a
        // recipient reads no body whatever they say: RFC 9112 §6.3 (1)); so may HEAD answers.
        const expected = parts.flatMap((p) => p.expected);
        const ours = decode('response', [input], { methods });
        expect(ours.error).toBeNull();
        expect(ours.partial).toBe(false);
        expect(ours.messages.map((m) => ({ status: m.head.status, body: m.body }))).toEqual(expected);
        const theirs = llparse('response', input, { methods });
        expect(theirs.error).toBeNull();
        expect(theirs.messages.map((m) => ({ status: m.status, body: m.body }))).toEqual(expected);
        compareResponse(input, methods);
      }),
      { numRuns: 600 },
    );
  });

  const framedRequest = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT'),
    target: originTarget,
    framing: fc.constantFrom('none' as const, 'length' as const, 'chunked' as const),
    payload,
    headers: headerList,
  });

  it('decodes every pipelined request of a sequence', () => {
    fc.assert(
      fc.property(fc.array(framedRequest, { minLength: 2, maxLength: 3 }), (rs) => {
        let text = '';
        const expected: { target: string; body: string }[] = [];
        for (const r of rs) {
          text += `${r.method} ${r.target} HTTP/1.1\r\nHost: h\r\n`;
          for (const [n, v] of r.headers) text += `${n}: ${v}\r\n`;
          let b = '';
          if (r.framing === 'length') {
            text += `Content-Length: ${r.payload.length}\r\n\r\n${r.payload}`;
            b = r.payload;
          } else if (r.framing === 'chunked') {
            text += 'Transfer-Encoding: chunked\r\n\r\n';
            if (r.payload.length > 0) text += `${r.payload.length.toString(16)}\r\n${r.payload}\r\n`;
            text += '0\r\n\r\n';
            b = r.payload;
          } else text += '\r\n';
          expected.push({ target: r.target, body: b });
        }
        const input = Buffer.from(text, 'latin1');
        const ours = decode('request', [input]);
        expect(ours.error).toBeNull();
        expect(ours.partial).toBe(false);
        expect(ours.messages.map((m) => ({ target: m.head.target, body: m.body }))).toEqual(expected);
        const theirs = llparse('request', input);
        expect(theirs.messages.map((m) => ({ target: m.target, body: m.body }))).toEqual(expected);
        compare(input);
      }),
      { numRuns: 600 },
    );
  });
});
