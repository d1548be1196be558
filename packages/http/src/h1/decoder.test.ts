import { describe, expect, it } from 'vitest';
import { decode, split } from '../../test/decode-all.js';

const req = (s: string) => s.replace(/\n/g, '\r\n');

/** Decodes in one piece, byte by byte and in 3-byte pieces; all must agree. */
function all(kind: 'request' | 'response', input: string, opts: Parameters<typeof decode>[2] = {}) {
  const bytes = Buffer.from(input, 'latin1');
  const whole = decode(kind, [bytes], opts);
  const bytewise = decode(kind, split(bytes, [...Array(bytes.length).keys()]), opts);
  const threes = decode(
    kind,
    split(
      bytes,
      [...Array(Math.ceil(bytes.length / 3)).keys()].map((i) => i * 3),
    ),
    opts,
  );
  expect(bytewise.messages).toEqual(whole.messages);
  expect(bytewise.error?.code).toEqual(whole.error?.code);
  expect(threes.messages).toEqual(whole.messages);
  expect(threes.error?.code).toEqual(whole.error?.code);
  return whole;
}

function rejects(input: string, code: string, kind: 'request' | 'response' = 'request', opts = {}) {
  const r = all(kind, input, opts);
  expect(r.error?.code, JSON.stringify(input)).toBe(code);
  return r;
}

describe('request heads', () => {
  it('parses a simple GET with lowercase names and trimmed values', () => {
    const r = all('request', req('GET /a?b=1 HTTP/1.1\nHost: x.test\nX-Custom:  v 1 \t\nAccept: */*\n\n'));
    expect(r.error).toBeNull();
    expect(r.messages).toHaveLength(1);
    const m = r.messages[0]!;
    expect(m.head.method).toBe('GET');
    expect(m.head.target).toBe('/a?b=1');
    expect(m.head.version).toBe('1.1');
    expect(m.head.headers).toEqual([
      ['host', 'x.test'],
      ['x-custom', 'v 1'],
      ['accept', '*/*'],
    ]);
    expect(m.framing).toBe('none');
    expect(m.keepAlive).toBe(true);
  });

  it('keeps empty values and obs-text', () => {
    const r = all('request', req('GET / HTTP/1.1\nHost: h\nX-Empty:\nX-Latin: caf\xe9\n\n'));
    expect(r.messages[0]!.head.headers).toEqual([
      ['host', 'h'],
      ['x-empty', ''],
      ['x-latin', 'caf\xe9'],
    ]);
  });

  it('accepts extension methods and ignores leading empty lines', () => {
    const r = all('request', req('\n\nPURGE /x HTTP/1.1\nHost: h\n\n'));
    expect(r.messages[0]!.head.method).toBe('PURGE');
  });

  it('answers unknown methods with 501 unless any token is allowed', () => {
    const r = rejects('BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNKNOWN_METHOD');
    expect(r.error!.status).toBe(501);
    const any = all('request', 'BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n', { limits: { methods: 'any' } });
    expect(any.messages[0]!.head.method).toBe('BREW');
  });

  it('rejects data after a message that closes the connection', () => {
    rejects(req('GET / HTTP/1.0\n\nGET / HTTP/1.0\n\n'), 'ERR_HTTP_DATA_AFTER_CLOSE');
    rejects(req('GET / HTTP/1.1\nHost: h\nConnection: close\n\nx'), 'ERR_HTTP_DATA_AFTER_CLOSE');
  });

  it('parses pipelined requests in order', () => {
    const r = all(
      'request',
      req(
        'GET /1 HTTP/1.1\nHost: h\n\nPOST /2 HTTP/1.1\nHost: h\nContent-Length: 3\n\nabcGET /3 HTTP/1.1\nHost: h\n\n',
      ),
    );
    expect(r.messages.map((m) => [m.head.target, m.body])).toEqual([
      ['/1', ''],
      ['/2', 'abc'],
      ['/3', ''],
    ]);
  });

  it('classifies target forms', () => {
    const form = (line: string) =>
      all('request', req(`${line}\nHost: h\n\n`)).messages[0]?.head.target ??
      all('request', req(`${line}\nHost: h\n\n`)).error?.code;
    expect(form('GET http://a.test/x HTTP/1.1')).toBe('http://a.test/x');
    expect(form('CONNECT a.test:443 HTTP/1.1')).toBe('a.test:443');
    expect(form('OPTIONS * HTTP/1.1')).toBe('*');
    expect(form('GET * HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
    expect(form('CONNECT /x HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
    expect(form('CONNECT a.test HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
    expect(form('CONNECT u@a.test:443 HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
    expect(form('GET a.test/x HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
    expect(form('GET Haaa:aaaaa HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
    expect(form('GET http:/// HTTP/1.1')).toBe('ERR_HTTP_INVALID_TARGET');
  });

  it('applies keep-alive rules for 1.0 and 1.1 with Connection tokens', () => {
    const ka = (s: string) => all('request', req(s)).messages[0]!.keepAlive;
    expect(ka('GET / HTTP/1.1\nHost: h\n\n')).toBe(true);
    expect(ka('GET / HTTP/1.1\nHost: h\nConnection: close\n\n')).toBe(false);
    expect(ka('GET / HTTP/1.1\nHost: h\nConnection: foo, CLOSE\n\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\n\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\nConnection: Keep-Alive\n\n')).toBe(true);
    expect(ka('GET / HTTP/1.0\nConnection: keep-alive, close\n\n')).toBe(false);
  });

  it('reports Expect: 100-continue', async () => {
    const { RequestDecoder } = await import('./decoder.js');
    const d = new RequestDecoder();
    d.feed(Buffer.from(req('PUT /u HTTP/1.1\nHost: h\nExpect: 100-Continue\nContent-Length: 2\n\n')));
    expect(d.poll()).toBe(1);
    expect(d.expectContinue).toBe(true);
    expect(d.expectUnsupported).toBe(false);
    const d2 = new RequestDecoder();
    d2.feed(Buffer.from(req('PUT /u HTTP/1.1\nHost: h\nExpect: something\n\n')));
    d2.poll();
    expect(d2.expectUnsupported).toBe(true);
    const d3 = new RequestDecoder();
    d3.feed(Buffer.from(req('PUT /u HTTP/1.0\nExpect: something\n\n')));
    d3.poll();
    expect(d3.expectUnsupported).toBe(false);
  });
});

describe('request bodies', () => {
  it('reads Content-Length bodies', () => {
    const r = all('request', `${req('POST / HTTP/1.1\nHost: h\nContent-Length: 11\n\n')}hello world`);
    expect(r.messages[0]!.body).toBe('hello world');
    expect(r.messages[0]!.framing).toBe('length');
  });

  it('reads chunked bodies with extensions and trailers', () => {
    const r = all(
      'request',
      req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n') +
        '5;a=b;c="q \\" x"\r\nhello\r\n6;ext\r\n world\r\n0\r\nX-Sum: 42\r\nX-Other: y\r\n\r\n',
    );
    expect(r.error).toBeNull();
    expect(r.messages[0]!.body).toBe('hello world');
    expect(r.messages[0]!.trailers).toEqual([
      ['x-sum', '42'],
      ['x-other', 'y'],
    ]);
  });

  it('accepts hex sizes in either case and a chunked request followed by another', () => {
    const r = all(
      'request',
      req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: Chunked\n\n') +
        `A\r\n${'x'.repeat(10)}\r\na\r\n${'y'.repeat(10)}\r\n0\r\n\r\n${req('GET /n HTTP/1.1\nHost: h\n\n')}`,
    );
    expect(r.messages.map((m) => m.body.length)).toEqual([20, 0]);
    expect(r.messages[0]!.trailers).toBeNull();
  });

  it('rejects broken chunked framing', () => {
    const head = req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n');
    rejects(`${head}g\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${head}\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${head}-1\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${head}1 \r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${head}${'f'.repeat(14)}\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${head}1\nx\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${head}1\rx`, 'ERR_HTTP_BARE_CR');
    rejects(`${head}1\r\nxy`, 'ERR_HTTP_INVALID_CHUNK_END');
    rejects(`${head}1\r\nx\n`, 'ERR_HTTP_INVALID_CHUNK_END');
    rejects(`${head}1;\r\n`, 'ERR_HTTP_INVALID_CHUNK_EXTENSION');
    rejects(`${head}1;a=\r\n`, 'ERR_HTTP_INVALID_CHUNK_EXTENSION');
    rejects(`${head}1; a\r\n`, 'ERR_HTTP_INVALID_CHUNK_EXTENSION');
    rejects(`${head}1;a="x\r\n`, 'ERR_HTTP_INVALID_CHUNK_EXTENSION');
    rejects(`${head}1;a="x"y\r\n`, 'ERR_HTTP_INVALID_CHUNK_EXTENSION');
    rejects(`${head}1;${'a'.repeat(2000)}\r\n`, 'ERR_HTTP_CHUNK_LINE_TOO_LONG');
    rejects(`${head}0\r\nBad Trailer: x\r\n\r\n`, 'ERR_HTTP_WHITESPACE_BEFORE_COLON');
    rejects(`${head}0\r\nX: 1\n\r\n`, 'ERR_HTTP_BARE_LF');
    rejects(`${head}0\r\nContent-Length: 1\r\n\r\n`, 'ERR_HTTP_FORBIDDEN_TRAILER');
    rejects(`${head}0\r\nTransfer-Encoding: chunked\r\n\r\n`, 'ERR_HTTP_FORBIDDEN_TRAILER');
  });

  it('reports an incomplete body at end of stream', () => {
    const r = decode('request', req('POST / HTTP/1.1\nHost: h\nContent-Length: 5\n\nab'), { eof: true });
    expect(r.error?.code).toBe('ERR_HTTP_INCOMPLETE_MESSAGE');
    const clean = decode('request', req('GET / HTTP/1.1\nHost: h\n\n'), { eof: true });
    expect(clean.error).toBeNull();
    const mid = decode('request', 'GET / HT', { eof: true });
    expect(mid.error?.code).toBe('ERR_HTTP_INCOMPLETE_MESSAGE');
  });
});

describe('smuggling defences', () => {
  it('rejects Content-Length with Transfer-Encoding (either order)', () => {
    rejects(
      req('POST / HTTP/1.1\nHost: h\nContent-Length: 3\nTransfer-Encoding: chunked\n\n'),
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    );
    rejects(
      req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nContent-Length: 3\n\n'),
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    );
  });

  it('rejects duplicate and malformed Content-Length', () => {
    const cl = (v: string) => req(`POST / HTTP/1.1\nHost: h\nContent-Length: ${v}\n\n`);
    rejects(
      req('POST / HTTP/1.1\nHost: h\nContent-Length: 1\nContent-Length: 1\n\n'),
      'ERR_HTTP_DUPLICATE_CONTENT_LENGTH',
    );
    for (const v of ['1, 1', '+1', '-1', '0x10', '1 2', '1.0', '', '9999999999999999']) {
      rejects(cl(v), 'ERR_HTTP_INVALID_CONTENT_LENGTH');
    }
    expect(all('request', `${cl('007')}abcdefg`).messages[0]!.body).toBe('abcdefg');
  });

  it('accepts only a single final chunked in requests', () => {
    const te = (v: string) => req(`POST / HTTP/1.1\nHost: h\nTransfer-Encoding: ${v}\n\n`);
    rejects(te('gzip'), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    rejects(te('chunked, gzip'), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    rejects(te('chunked, chunked'), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    rejects(te('chunked;q=1'), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    rejects(te('xchunked'), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    rejects(te(''), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    // Empty list elements: peers disagree on whether `chunked,` is chunked (llhttp refuses it).
    for (const v of ['chunked,', ',chunked', 'chunked ,\t', 'gzip,,chunked', ',']) {
      rejects(te(v), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
    }
    rejects(te('gzip, chunked'), 'ERR_HTTP_UNSUPPORTED_TRANSFER_CODING');
    rejects(
      req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n'),
      'ERR_HTTP_INVALID_TRANSFER_ENCODING',
    );
    rejects(
      req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nTransfer-Encoding: gzip\n\n'),
      'ERR_HTTP_INVALID_TRANSFER_ENCODING',
    );
    rejects(req('POST / HTTP/1.0\nTransfer-Encoding: chunked\n\n'), 'ERR_HTTP_INVALID_TRANSFER_ENCODING');
  });

  it('rejects obs-fold, whitespace before colon, bare CR/LF, NUL and bad tokens', () => {
    rejects(req('GET / HTTP/1.1\nHost: h\nX: a\n b\n\n'), 'ERR_HTTP_OBS_FOLD');
    rejects(req('GET / HTTP/1.1\nHost: h\nX: a\n\tb\n\n'), 'ERR_HTTP_OBS_FOLD');
    rejects(req('GET / HTTP/1.1\nHost: h\nX : a\n\n'), 'ERR_HTTP_WHITESPACE_BEFORE_COLON');
    rejects(req('GET / HTTP/1.1\nHost: h\nX\t: a\n\n'), 'ERR_HTTP_WHITESPACE_BEFORE_COLON');
    rejects('GET / HTTP/1.1\r\nHost: h\nX: a\r\n\r\n', 'ERR_HTTP_BARE_LF');
    rejects('GET / HTTP/1.1\nHost: h\r\n\r\n', 'ERR_HTTP_BARE_LF');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n', 'ERR_HTTP_BARE_CR');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX\r: a\r\n\r\n', 'ERR_HTTP_BARE_CR');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_VALUE');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_VALUE');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX\x00: a\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_NAME');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX(y): a\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_NAME');
    rejects('GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_NAME');
    rejects('GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n', 'ERR_HTTP_INVALID_HEADER_NAME');
    rejects('G(T / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_METHOD');
    rejects(' GET / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_METHOD');
    rejects('GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_TARGET');
    rejects('GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_TARGET');
    rejects('GET /caf\xe9 HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_TARGET');
    rejects('GET  / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_TARGET');
    rejects('GET / HTTP/1.1 \r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_VERSION');
    rejects('GET / http/1.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_VERSION');
    rejects('GET /\r\n\r\n', 'ERR_HTTP_INVALID_TARGET');
    rejects('\n', 'ERR_HTTP_BARE_LF');
    // found by the differential test: a bare CR right after the version
    rejects('POST /a HTTP/1.0\r Content-Type: x\r\n\r\n', 'ERR_HTTP_BARE_CR');
  });

  it('answers other major versions with 505', () => {
    const r = rejects('GET / HTTP/2.0\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION');
    expect(r.error!.status).toBe(505);
    rejects('GET / HTTP/0.9\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION');
    rejects('GET / HTTP/3.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION');
    // HTTP-version is one digit each side of the dot (RFC 9112 §2.3).
    rejects('GET / HTTP/1.10\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_VERSION');
    rejects('GET / HTTP/11.1\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_VERSION');
    rejects('GET / HTTP/1.\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_VERSION');
    rejects('GET /\r\nHost: h\r\n\r\n', 'ERR_HTTP_INVALID_TARGET');
  });

  it('requires exactly one Host in HTTP/1.1', () => {
    rejects('GET / HTTP/1.1\r\n\r\n', 'ERR_HTTP_MISSING_HOST');
    rejects('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'ERR_HTTP_DUPLICATE_HOST');
    for (const bad of ['a b', 'a/b', 'a@b', 'a"b', 'caf\xe9'])
      rejects(`GET / HTTP/1.1\r\nHost: ${bad}\r\n\r\n`, 'ERR_HTTP_INVALID_HOST');
    for (const good of ['', 'a.test', 'a.test:8080', '[::1]:80', '127.0.0.1', 'xn--caf-dma.test']) {
      expect(all('request', `GET / HTTP/1.1\r\nHost: ${good}\r\n\r\n`).error).toBeNull();
    }
    expect(all('request', 'GET / HTTP/1.0\r\n\r\n').error).toBeNull();
  });
});

describe('limits', () => {
  it('limits the head size (431)', () => {
    const r = rejects(
      req(`GET / HTTP/1.1\nHost: h\nX: ${'a'.repeat(300)}\nY: ${'b'.repeat(300)}\n\n`),
      'ERR_HTTP_HEAD_TOO_LARGE',
      'request',
      {
        limits: { maxHeadSize: 512 },
      },
    );
    expect(r.error!.status).toBe(431);
    // The limit triggers while the head is still incomplete, too.
    const partial = decode('request', [Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(600)}`)], {
      limits: { maxHeadSize: 512 },
    });
    expect(partial.error?.code).toBe('ERR_HTTP_HEAD_TOO_LARGE');
  });

  it('limits the header count (431)', () => {
    const many = Array.from({ length: 5 }, (_, i) => `X-${i}: v`).join('\n');
    rejects(req(`GET / HTTP/1.1\nHost: h\n${many}\n\n`), 'ERR_HTTP_TOO_MANY_HEADERS', 'request', {
      limits: { maxHeaderCount: 5 },
    });
    expect(
      all('request', req(`GET / HTTP/1.1\n${many}\n\n`), { limits: { maxHeaderCount: 5 } }).error?.code,
    ).toBe('ERR_HTTP_MISSING_HOST');
  });

  it('limits line length: 414 for the request line, 431 for a field line', () => {
    const long = rejects(
      `GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: h\r\n\r\n`,
      'ERR_HTTP_REQUEST_LINE_TOO_LONG',
      'request',
      {
        limits: { maxLineLength: 64 },
      },
    );
    expect(long.error!.status).toBe(414);
    rejects(
      `GET / HTTP/1.1\r\nHost: h\r\nX: ${'a'.repeat(100)}\r\n\r\n`,
      'ERR_HTTP_HEADER_LINE_TOO_LONG',
      'request',
      {
        limits: { maxLineLength: 64 },
      },
    );
  });
});

describe('responses', () => {
  it('parses status lines with and without reason', () => {
    const r = all('response', 'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno');
    expect(r.messages[0]!.head).toMatchObject({ status: 404, reason: 'Not Found' });
    expect(r.messages[0]!.body).toBe('no');
    expect(all('response', 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').messages[0]!.head.reason).toBe('');
    rejects('HTTP/1.1 20 OK\r\n\r\n', 'ERR_HTTP_INVALID_STATUS', 'response');
    rejects('HTTP/1.1 600 X\r\n\r\n', 'ERR_HTTP_INVALID_STATUS', 'response');
  });

  it('reads close-delimited bodies to end of stream', () => {
    const r = all('response', 'HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome body', { eof: true });
    expect(r.messages[0]!.body).toBe('some body');
    expect(r.messages[0]!.framing).toBe('eof');
    expect(r.messages[0]!.keepAlive).toBe(false);
  });

  it('has no body for HEAD, 1xx, 204 and 304 whatever the headers say', () => {
    expect(
      all('response', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', { method: 'HEAD' }).messages[0]!
        .framing,
    ).toBe('none');
    expect(all('response', 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n').messages[0]!.framing).toBe(
      'none',
    );
    expect(
      all('response', 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n').messages[0]!.framing,
    ).toBe('none');
    const r = all('response', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx');
    expect(r.messages.map((m) => [m.head.status, m.body])).toEqual([
      [100, ''],
      [200, 'x'],
    ]);
  });

  it('reads chunked responses and leaves other codings to the caller', () => {
    const r = all(
      'response',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    );
    expect(r.messages[0]!.body).toBe('abc');
    const eof = all('response', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc', { eof: true });
    expect(eof.messages[0]!.framing).toBe('eof');
    rejects(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
      'response',
    );
  });

  it('keeps 1.0 responses alive only with Connection: keep-alive', () => {
    expect(all('response', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').messages[0]!.keepAlive).toBe(
      false,
    );
    expect(
      all('response', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n').messages[0]!
        .keepAlive,
    ).toBe(true);
  });
});

/** Feeds the pieces to a fresh decoder without end of stream; returns the events' outcome and the decoder. */
async function feedAll(kind: 'request' | 'response', pieces: string[]) {
  const { RequestDecoder, ResponseDecoder } = await import('./decoder.js');
  const d = kind === 'request' ? new RequestDecoder() : new ResponseDecoder();
  let heads = 0;
  try {
    for (const p of pieces) {
      d.feed(Buffer.from(p, 'latin1'));
      for (let ev = d.poll(); ev !== 0; ev = d.poll()) if (ev === 1) heads++;
    }
  } catch (e) {
    return { d, heads, code: (e as { code?: string }).code };
  }
  return { d, heads, code: undefined };
}

describe('RFC 9112 corrections (issue 11)', () => {
  const chunkedHead = req('POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n');

  it('accepts chunk sizes with leading zeros and bounds the value, not the digits', () => {
    const r = all('request', `${chunkedHead}00000000000005\r\nhello\r\n0000000000000000\r\n\r\n`);
    expect(r.error).toBeNull();
    expect(r.messages[0]!.body).toBe('hello');
    expect(
      all('request', `${chunkedHead}${'0'.repeat(900)}3;x=y\r\nabc\r\n0\r\n\r\n`).messages[0]!.body,
    ).toBe('abc');
    // 2^53 - 1 is the largest size (the message is then incomplete, not wrong); 2^53 is refused.
    const max = decode('request', `${chunkedHead}1fffffffffffff\r\nab`);
    expect(max.error).toBeNull();
    expect(max.partial).toBe(true);
    rejects(`${chunkedHead}20000000000000\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${chunkedHead}00000020000000000000\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${chunkedHead}${'f'.repeat(17)}\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    rejects(`${chunkedHead}${'f'.repeat(400)}\r\n`, 'ERR_HTTP_INVALID_CHUNK_SIZE');
    // Digits count towards the chunk line limit (so endless zeros end too), extensions after them.
    rejects(`${chunkedHead}${'0'.repeat(1025)}1\r\n`, 'ERR_HTTP_CHUNK_LINE_TOO_LONG');
    rejects(`${chunkedHead}${'0'.repeat(1000)}1;${'a'.repeat(30)}\r\n`, 'ERR_HTTP_CHUNK_LINE_TOO_LONG');
    rejects(`${chunkedHead}${'0'.repeat(20)}1\r\n`, 'ERR_HTTP_CHUNK_LINE_TOO_LONG', 'request', {
      limits: { maxChunkLineLength: 16 },
    });
    // In responses too.
    const res = all(
      'response',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0002\r\nok\r\n00\r\n\r\n',
    );
    expect(res.messages[0]!.body).toBe('ok');
  });

  it('treats HTAB as optional whitespace around every field value (fast and slow paths)', () => {
    const clReq = all('request', `${req('POST / HTTP/1.1\nHost: h\nContent-Length:\t2\t\n\n')}ab`);
    expect(clReq.error).toBeNull();
    expect(clReq.messages[0]!.body).toBe('ab');
    expect(clReq.messages[0]!.head.headers).toContainEqual(['content-length', '2']);
    const mixed = all('request', `${req('POST / HTTP/1.1\nHost: h\nContent-Length: \t 2 \t \n\n')}ab`);
    expect(mixed.messages[0]!.body).toBe('ab');
    const clRes = all('response', 'HTTP/1.1 200 OK\r\nContent-Length:\t2\t\r\n\r\nab');
    expect(clRes.error).toBeNull();
    expect(clRes.messages[0]!.body).toBe('ab');
    expect(clRes.messages[0]!.keepAlive).toBe(true);
    // Tabs inside the digits are not OWS.
    rejects(req('POST / HTTP/1.1\nHost: h\nContent-Length: 1\t2\n\n'), 'ERR_HTTP_INVALID_CONTENT_LENGTH');
    const te = all(
      'request',
      `${req('POST / HTTP/1.1\nHost:\th\t\nTransfer-Encoding:\tchunked\t\n\n')}1\r\nx\r\n0\r\nX-T:\tv\t\r\n\r\n`,
    );
    expect(te.error).toBeNull();
    expect(te.messages[0]!).toMatchObject({ framing: 'chunked', body: 'x', trailers: [['x-t', 'v']] });
    expect(te.messages[0]!.head.headers).toContainEqual(['host', 'h']);
    const teRes = all(
      'response',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\t\r\n\r\n1\r\nx\r\n0\r\n\r\n',
    );
    expect(teRes.messages[0]!).toMatchObject({ framing: 'chunked', body: 'x', keepAlive: true });
    expect(
      all('request', req('GET / HTTP/1.1\nHost: h\nConnection:\tclose\t\n\n')).messages[0]!.keepAlive,
    ).toBe(false);
    expect(all('request', req('GET / HTTP/1.0\nConnection:\tkeep-alive\t\n\n')).messages[0]!.keepAlive).toBe(
      true,
    );
    expect(all('request', req('GET / HTTP/1.1\nHost: h\nX-A:\t v \t\n\n')).messages[0]!.head.headers).toEqual(
      [
        ['host', 'h'],
        ['x-a', 'v'],
      ],
    );
  });

  it('reads Expect, Connection: upgrade and Upgrade through tabs', async () => {
    for (const pieces of [
      [req('PUT / HTTP/1.1\nHost:\th\t\nExpect:\t100-continue\t\nContent-Length: 1\n\n')],
      [...req('PUT / HTTP/1.1\nHost:\th\t\nExpect:\t100-continue\t\nContent-Length: 1\n\n')],
    ]) {
      const { d, code } = await feedAll('request', pieces);
      expect(code).toBeUndefined();
      expect((d as { expectContinue: boolean }).expectContinue).toBe(true);
    }
    for (const pieces of [
      [req('GET / HTTP/1.1\nHost: h\nConnection:\tUpgrade\t\nUpgrade:\twebsocket\t\n\n')],
      [...req('GET / HTTP/1.1\nHost: h\nConnection:\tUpgrade\t\nUpgrade:\twebsocket\t\n\n')],
    ]) {
      const { d, code } = await feedAll('request', pieces);
      expect(code).toBeUndefined();
      expect(d.upgrade).toBe(true);
    }
  });

  it('reads HTTP/1.2-1.9 as HTTP/1.1 (RFC 9112 §2.3) in requests and responses', async () => {
    for (const v of ['1.2', '1.5', '1.9']) {
      const r = all(
        'request',
        `${req(`POST /x HTTP/${v}\nHost: h\nTransfer-Encoding: chunked\n\n`)}1\r\na\r\n0\r\n\r\n`,
      );
      expect(r.error).toBeNull();
      expect(r.messages[0]!).toMatchObject({ head: { version: '1.1' }, keepAlive: true, body: 'a' });
      // HTTP/1.1 rules apply: Host is required.
      rejects(`GET / HTTP/${v}\r\n\r\n`, 'ERR_HTTP_MISSING_HOST');
      const res = all('response', `HTTP/${v} 200 OK\r\nContent-Length: 1\r\n\r\nz`);
      expect(res.messages[0]!).toMatchObject({
        head: { version: '1.1', status: 200 },
        keepAlive: true,
        body: 'z',
      });
    }
    rejects('HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION', 'response');
    rejects('HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n', 'ERR_HTTP_UNSUPPORTED_VERSION', 'response');
    // Forwarded, the start line says HTTP/1.1 (it is not copied as received).
    const { RequestDecoder, ResponseDecoder } = await import('./decoder.js');
    const { encodeRequestHeadBytes, encodeResponseHeadBytes } = await import('./encoder.js');
    const d = new RequestDecoder();
    d.feed(Buffer.from('GET /x HTTP/1.2\r\nHost: h\r\n\r\n'));
    expect(d.poll()).toBe(1);
    const m = d.message!;
    expect(encodeRequestHeadBytes(m.method, m.target, m.headers, 'none', 0).toString('latin1')).toMatch(
      /^GET \/x HTTP\/1\.1\r\n/,
    );
    const rd = new ResponseDecoder();
    rd.feed(Buffer.from('HTTP/1.7 200 OK\r\nContent-Length: 0\r\n\r\n'));
    expect(rd.poll()).toBe(1);
    const rm = rd.message!;
    const out = encodeResponseHeadBytes(rm.status, rm.reason, rm.headers, {
      framing: 'none',
      length: 0,
      keepAlive: true,
      requestMinor: 1,
      requestMethod: 'GET',
      date: false,
    });
    expect(out.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  it('rejects a bare CR in a head as soon as the byte after it arrives', async () => {
    // The head never completes: the error must not wait for it.
    for (const pieces of [
      ['GET / HTTP/1.1\r\nHost: a\rX: y'],
      ['GET / HTTP/1.1\r\nHost: a\r', 'X: y'],
      [...'GET / HTTP/1.1\r\nHost: a\rX: y'],
      ['GET / HTTP/1.1\rX'],
      ['GET / HTTP/1.1\r', '\r\n'],
      ['GET / HT\rTP/1.1'],
      ['GET / HTTP/1.1\r\nHost: a\r\nX\r: a'],
    ]) {
      const { code, heads } = await feedAll('request', pieces);
      expect(code, JSON.stringify(pieces)).toBe('ERR_HTTP_BARE_CR');
      expect(heads).toBe(0);
    }
    const trailers = await feedAll('request', [`${chunkedHead}0\r\nX: a\rb`]);
    expect(trailers).toMatchObject({ code: 'ERR_HTTP_BARE_CR', heads: 1 });
    const res = await feedAll('response', ['HTTP/1.1 200 OK\r\nX: a\r\rY']);
    expect(res.code).toBe('ERR_HTTP_BARE_CR');
    // A CR last in the input may still be followed by its LF.
    const pending = await feedAll('request', ['GET / HTTP/1.1\r\nHost: a\r']);
    expect(pending.code).toBeUndefined();
    expect(pending.d.idle).toBe(false);
    const done = await feedAll('request', ['GET / HTTP/1.1\r\nHost: a\r', '\n\r', '\n']);
    expect(done).toMatchObject({ code: undefined, heads: 1 });
    // Bare LF stays an error, as in llhttp's strict mode.
    expect((await feedAll('request', ['GET / HTTP/1.1\r\nHost: a\nX'])).code).toBe('ERR_HTTP_BARE_LF');
  });
});

describe('response framing errors (a connection that carried one is never reused)', () => {
  const bad: [string, string][] = [
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    ],
    [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    ],
    [
      'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n',
      'ERR_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    ],
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
      'ERR_HTTP_DUPLICATE_CONTENT_LENGTH',
    ],
    [
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      'ERR_HTTP_DUPLICATE_CONTENT_LENGTH',
    ],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', 'ERR_HTTP_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'ERR_HTTP_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n', 'ERR_HTTP_INVALID_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'ERR_HTTP_INVALID_TRANSFER_ENCODING'],
    [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
      'ERR_HTTP_INVALID_TRANSFER_ENCODING',
    ],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n', 'ERR_HTTP_INVALID_TRANSFER_ENCODING'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd', 'ERR_HTTP_INVALID_CHUNK_END'],
  ];
  it.each(bad)('rejects %j', (input, code) => {
    rejects(input, code, 'response');
  });

  it('reads a Transfer-Encoding without final chunked to end of stream and never keeps the connection', () => {
    // RFC 9112 §6.3 (4): close-delimited; the message only ends when the connection does.
    for (const te of ['gzip', 'chunked, gzip', 'identity']) {
      const r = all(
        'response',
        `HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\nConnection: keep-alive\r\n\r\nab`,
        {
          eof: true,
        },
      );
      expect(r.messages[0]!).toMatchObject({ framing: 'eof', keepAlive: false, body: 'ab' });
      const open = decode('response', `HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\nab`);
      expect(open.partial).toBe(true);
    }
  });

  it('reads the final response after a 1xx that says close, and closes after that one', () => {
    // RFC 9110 §15.2: 1xx is interim; §7.6.1: close applies once the response is complete.
    // (llhttp stops at the 1xx: HPE_CLOSED_CONNECTION.)
    for (const interim of [
      'HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n',
      'HTTP/1.0 100 Continue\r\n\r\n',
    ]) {
      const r = all('response', `${interim}HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx`);
      expect(r.error).toBeNull();
      expect(r.messages.map((m) => [m.head.status, m.body, m.keepAlive])).toEqual([
        [100, '', true],
        [200, 'x', false],
      ]);
      rejects(
        `${interim}HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n`,
        'ERR_HTTP_DATA_AFTER_CLOSE',
        'response',
      );
    }
    const hints = all(
      'response',
      'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx' +
        'HTTP/1.1 204 No Content\r\n\r\n',
    );
    expect(hints.messages.map((m) => [m.head.status, m.keepAlive])).toEqual([
      [103, true],
      [200, true],
      [204, true],
    ]);
  });

  it('closes after an HTTP/1.0 response with Transfer-Encoding (RFC 9112 §6.1), Connection notwithstanding', () => {
    const r = all(
      'response',
      'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n1\r\nx\r\n0\r\n\r\n',
    );
    expect(r.messages[0]!).toMatchObject({ framing: 'chunked', keepAlive: false, body: 'x' });
    expect(
      all('response', 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx').messages[0]!
        .keepAlive,
    ).toBe(true);
  });
});
