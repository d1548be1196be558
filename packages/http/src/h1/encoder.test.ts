import { describe, expect, it } from 'vitest';
import { EMPTY_BODY, fixedBody, streamBody } from '../body.js';
import { HttpHeaders } from '../headers.js';
import {
  chunkHeader,
  encodeRequestHead,
  encodeResponseHead,
  lastChunk,
  ResponseHeadCache,
  requestFraming,
  responseFraming,
} from './encoder.js';

const base = { keepAlive: true, requestMinor: 1, requestMethod: 'GET', date: false } as const;

describe('response framing', () => {
  it('derives framing from status, method, body and version', () => {
    expect(responseFraming(200, fixedBody('x'), 'GET', 1)).toBe('length');
    expect(responseFraming(200, EMPTY_BODY, 'GET', 1)).toBe('length');
    expect(responseFraming(200, streamBody([]), 'GET', 1)).toBe('chunked');
    expect(responseFraming(200, streamBody([]), 'GET', 0)).toBe('eof');
    expect(responseFraming(200, fixedBody('x'), 'HEAD', 1)).toBe('none');
    expect(responseFraming(204, fixedBody('x'), 'GET', 1)).toBe('none');
    expect(responseFraming(304, streamBody([]), 'GET', 1)).toBe('none');
  });
});

describe('encodeResponseHead', () => {
  it('writes the status line, fields, length and ends with an empty line', () => {
    const h = new HttpHeaders([['Content-Type', 'text/plain']]);
    expect(encodeResponseHead(200, '', h, { ...base, framing: 'length', length: 5 })).toBe(
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n',
    );
  });

  it('owns framing fields: drops the handler’s content-length, transfer-encoding, connection', () => {
    const h = new HttpHeaders([
      ['content-length', '999'],
      ['transfer-encoding', 'gzip'],
      ['connection', 'upgrade'],
      ['keep-alive', 'timeout=5'],
      ['x', 'y'],
    ]);
    expect(encodeResponseHead(200, '', h, { ...base, framing: 'chunked', length: -1 })).toBe(
      'HTTP/1.1 200 OK\r\nx: y\r\ntransfer-encoding: chunked\r\n\r\n',
    );
  });

  it('announces the GET length on HEAD, and keeps a handler length when the body is empty', () => {
    expect(
      encodeResponseHead(200, '', new HttpHeaders(), {
        ...base,
        requestMethod: 'HEAD',
        framing: 'none',
        length: 42,
      }),
    ).toBe('HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n');
    const h = new HttpHeaders([['content-length', '7']]);
    expect(
      encodeResponseHead(200, '', h, { ...base, requestMethod: 'HEAD', framing: 'none', length: -1 }),
    ).toBe('HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n');
  });

  it('keeps a HEAD or 304 answer’s own content-length even when its body is empty (RFC 9110 9.3.2, 8.6)', () => {
    const h = new HttpHeaders([['content-length', '3269']]);
    // HttpClient hands a HEAD response over with an empty body: the upstream length must survive.
    expect(
      encodeResponseHead(200, '', h, { ...base, requestMethod: 'HEAD', framing: 'none', length: 0 }),
    ).toBe('HTTP/1.1 200 OK\r\ncontent-length: 3269\r\n\r\n');
    expect(encodeResponseHead(304, '', h, { ...base, framing: 'none', length: 0 })).toBe(
      'HTTP/1.1 304 Not Modified\r\ncontent-length: 3269\r\n\r\n',
    );
    // 204 never carries one; an invalid value is not repeated.
    expect(encodeResponseHead(204, '', h, { ...base, framing: 'none', length: 0 })).toBe(
      'HTTP/1.1 204 No Content\r\n\r\n',
    );
    const bad = new HttpHeaders([['content-length', '1,1']]);
    expect(
      encodeResponseHead(200, '', bad, { ...base, requestMethod: 'HEAD', framing: 'none', length: 0 }),
    ).toBe('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
  });

  it('sends no length on 204 and 304, and content-length: 0 for empty 200s', () => {
    expect(encodeResponseHead(204, '', new HttpHeaders(), { ...base, framing: 'none', length: 0 })).toBe(
      'HTTP/1.1 204 No Content\r\n\r\n',
    );
    expect(encodeResponseHead(304, '', new HttpHeaders(), { ...base, framing: 'none', length: 0 })).toBe(
      'HTTP/1.1 304 Not Modified\r\n\r\n',
    );
    expect(encodeResponseHead(200, '', new HttpHeaders(), { ...base, framing: 'length', length: 0 })).toBe(
      'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n',
    );
  });

  it('says close when not keeping alive and keep-alive to HTTP/1.0 clients it keeps', () => {
    expect(
      encodeResponseHead(200, 'Fine', new HttpHeaders(), {
        ...base,
        keepAlive: false,
        framing: 'length',
        length: 0,
      }),
    ).toBe('HTTP/1.1 200 Fine\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    expect(
      encodeResponseHead(200, '', new HttpHeaders(), {
        ...base,
        requestMinor: 0,
        framing: 'length',
        length: 0,
      }),
    ).toMatch(/connection: keep-alive\r\n\r\n$/);
  });

  it('adds a date unless the handler set one', () => {
    expect(
      encodeResponseHead(200, '', new HttpHeaders(), { ...base, date: true, framing: 'length', length: 0 }),
    ).toMatch(/\r\ndate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
    const h = new HttpHeaders([['date', 'Mon, 01 Jan 2024 00:00:00 GMT']]);
    const out = encodeResponseHead(200, '', h, { ...base, date: true, framing: 'length', length: 0 });
    expect(out.match(/date:/g)).toHaveLength(1);
  });

  it('re-encodes after the headers change (cached field block)', () => {
    const h = new HttpHeaders([['a', '1']]);
    expect(encodeResponseHead(200, '', h, { ...base, framing: 'length', length: 0 })).toMatch(/a: 1\r\n/);
    h.set('a', '2');
    expect(encodeResponseHead(200, '', h, { ...base, framing: 'length', length: 0 })).toMatch(/a: 2\r\n/);
    h.delete('a');
    expect(encodeResponseHead(200, '', h, { ...base, framing: 'length', length: 0 })).not.toMatch(/a: /);
  });

  it('rejects bad statuses and reasons', () => {
    expect(() =>
      encodeResponseHead(600, '', new HttpHeaders(), { ...base, framing: 'none', length: 0 }),
    ).toThrow(/invalid response status/);
    expect(() =>
      encodeResponseHead(200, 'OK\r\nx: y', new HttpHeaders(), { ...base, framing: 'none', length: 0 }),
    ).toThrow(/reason phrase/);
  });
});

describe('request heads and chunks', () => {
  it('adds host from the authority, frames the body, content-length: 0 for bodiless POST', () => {
    const h = new HttpHeaders([['accept', '*/*']]);
    expect(encodeRequestHead('GET', '/x?y', h, 'none', 0, { authority: 'a.test:8080' })).toBe(
      'GET /x?y HTTP/1.1\r\nhost: a.test:8080\r\naccept: */*\r\n\r\n',
    );
    expect(
      encodeRequestHead('POST', '/', new HttpHeaders([['host', 'h']]), 'none', 0, { authority: 'ignored' }),
    ).toBe('POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n');
    expect(encodeRequestHead('PUT', '/', new HttpHeaders(), 'chunked', -1)).toMatch(
      /transfer-encoding: chunked\r\n\r\n$/,
    );
    expect(requestFraming(fixedBody('abc'))).toBe('length');
    expect(requestFraming(streamBody([]))).toBe('chunked');
    expect(requestFraming(EMPTY_BODY)).toBe('none');
  });

  it('frames chunks in hex and ends with trailers', () => {
    expect(Buffer.from(chunkHeader(255)).toString()).toBe('ff\r\n');
    expect(Buffer.from(lastChunk(null)).toString()).toBe('0\r\n\r\n');
    expect(Buffer.from(lastChunk(new HttpHeaders([['x-sum', '1']]))).toString()).toBe(
      '0\r\nx-sum: 1\r\n\r\n',
    );
  });
});

describe('ResponseHeadCache', () => {
  const opts = (length: number, keepAlive = true, requestMinor = 1) => ({
    framing: 'length' as const,
    length,
    keepAlive,
    requestMinor,
    requestMethod: 'GET',
    date: false,
  });
  const text = (h: Buffer | string) => (typeof h === 'string' ? h : h.toString('latin1'));

  it('returns the same head as encodeResponseHead, copied from the last one on a hit, with trailing room', () => {
    const cache = new ResponseHeadCache();
    const headers = new HttpHeaders([['content-type', 'text/plain']]);
    const want = encodeResponseHead(200, '', headers, opts(5));
    const first = cache.encode(200, '', headers, opts(5));
    const second = cache.encode(200, '', headers, opts(5), 5);
    expect(text(first)).toBe(want);
    expect(second).not.toBe(first);
    expect(second.length).toBe(want.length + 5);
    expect(text(second.subarray(0, want.length))).toBe(want);
    expect(text(cache.encode(200, '', headers, opts(5)))).toBe(want);
  });

  it('misses on any change of status, fields, length, keep-alive or version', () => {
    const cache = new ResponseHeadCache();
    const headers = new HttpHeaders([['content-type', 'text/plain']]);
    cache.encode(200, '', headers, opts(5));
    cache.encode(200, '', headers, opts(5));
    const variants: [number, HttpHeaders, ReturnType<typeof opts>][] = [
      [404, headers, opts(5)],
      [200, headers, opts(6)],
      [200, headers, opts(5, false)],
      [200, headers, opts(5, true, 0)],
    ];
    for (const [status, h, o] of variants) {
      expect(text(cache.encode(status, '', h, o))).toBe(encodeResponseHead(status, '', h, o));
    }
    headers.append('x-more', '1');
    expect(text(cache.encode(200, '', headers, opts(5)))).toBe(encodeResponseHead(200, '', headers, opts(5)));
    expect(text(cache.encode(200, '', headers, opts(5)))).toContain('x-more: 1\r\n');
  });
});

describe('a head written to another length than measured', () => {
  it('is never returned: HttpError ERR_HTTP_HEAD_MISMEASURED (no stale bytes behind a short head)', () => {
    const h = new HttpHeaders([['x-a', 'b']]);
    expect(encodeRequestHead('GET', '/', h, 'none', 0)).toContain('x-a: b\r\n');
    // A cached measure that is off (what a wrong incremental measure would leave).
    h.fieldsLength += 3;
    expect(() => encodeRequestHead('GET', '/', h, 'none', 0)).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_HEAD_MISMEASURED', status: 500 }),
    );
    expect(() => encodeResponseHead(200, '', h, { ...base, framing: 'length', length: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_HTTP_HEAD_MISMEASURED' }),
    );
  });
});
