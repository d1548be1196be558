// RFC 9113 §8.2-§8.3: each rule that makes a field block malformed, as a stream error.
import { describe, expect, it } from 'vitest';
import { Http2ErrorCode } from '../../src/h2/errors.js';
import { type FieldBlockKind, FieldBlockValidator } from '../../src/h2/field-validator.js';

const GET: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/'],
];

function check(kind: FieldBlockKind, fields: [string, string][]): string | null {
  const v = new FieldBlockValidator();
  v.begin(kind, 7);
  for (const [n, value] of fields) v.field(n, value);
  const e = v.end();
  if (e === null) return null;
  expect(e.errorCode).toBe(Http2ErrorCode.PROTOCOL_ERROR);
  expect(e.streamId).toBe(7);
  return e.code;
}

describe('FieldBlockValidator', () => {
  it('accepts well-formed requests, responses and trailers', () => {
    expect(check('request', [...GET, ['accept', '*/*'], ['te', 'trailers'], ['x-empty', '']])).toBeNull();
    expect(
      check('request', [
        [':method', 'CONNECT'],
        [':authority', 'example.com:443'],
      ]),
    ).toBeNull();
    expect(
      check('request', [
        [':method', 'CONNECT'],
        [':protocol', 'websocket'],
        [':scheme', 'https'],
        [':path', '/chat'],
        [':authority', 'example.com'],
      ]),
    ).toBeNull();
    expect(
      check('response', [
        [':status', '200'],
        ['content-type', 'text/plain'],
        ['x-obs', 'caf\u00e9 ok'],
      ]),
    ).toBeNull();
    expect(check('trailers', [['grpc-status', '0']])).toBeNull();
  });

  it('field names: uppercase, empty, separators, a colon inside, non-ASCII', () => {
    for (const name of ['Accept', '', 'x y', 'x:y', 'x\u00e9', 'a"b', '::path']) {
      expect(check('request', [...GET, [name, 'v']]), JSON.stringify(name)).toBe(
        'ERR_HTTP2_INVALID_FIELD_NAME',
      );
    }
  });

  it('field values: NUL, CR, LF anywhere; whitespace at either end', () => {
    for (const value of ['a\0b', 'a\rb', 'a\nb', ' a', 'a ', '\ta', 'a\t']) {
      expect(check('request', [...GET, ['x', value]]), JSON.stringify(value)).toBe(
        'ERR_HTTP2_INVALID_FIELD_VALUE',
      );
    }
    expect(check('request', [...GET, ['x', 'a \t b']])).toBeNull();
  });

  it('connection-specific fields, and te other than trailers', () => {
    for (const name of ['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']) {
      expect(check('request', [...GET, [name, 'x']])).toBe('ERR_HTTP2_CONNECTION_SPECIFIC_FIELD');
    }
    expect(check('request', [...GET, ['te', 'gzip']])).toBe('ERR_HTTP2_INVALID_TE');
  });

  it('pseudo-headers: after a regular field, unknown, duplicate, in trailers, of the wrong kind', () => {
    expect(
      check('request', [
        [':method', 'GET'],
        ['accept', '*/*'],
        [':path', '/'],
        [':scheme', 'http'],
      ]),
    ).toBe('ERR_HTTP2_PSEUDO_HEADER_AFTER_REGULAR');
    expect(check('request', [...GET, [':foo', 'x']])).toBe('ERR_HTTP2_UNKNOWN_PSEUDO_HEADER');
    expect(check('request', [...GET, [':status', '200']])).toBe('ERR_HTTP2_UNKNOWN_PSEUDO_HEADER');
    expect(
      check('response', [
        [':status', '200'],
        [':method', 'GET'],
      ]),
    ).toBe('ERR_HTTP2_UNKNOWN_PSEUDO_HEADER');
    expect(check('request', [...GET, [':path', '/again']])).toBe('ERR_HTTP2_DUPLICATE_PSEUDO_HEADER');
    expect(check('trailers', [[':status', '200']])).toBe('ERR_HTTP2_PSEUDO_HEADER_IN_TRAILERS');
  });

  it('required pseudo-headers', () => {
    expect(check('response', [['content-type', 'x']])).toBe('ERR_HTTP2_MISSING_PSEUDO_HEADER');
    expect(check('request', GET.slice(1))).toBe('ERR_HTTP2_MISSING_PSEUDO_HEADER');
    expect(
      check('request', [
        [':method', 'GET'],
        [':path', '/'],
      ]),
    ).toBe('ERR_HTTP2_MISSING_PSEUDO_HEADER');
    expect(
      check('request', [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', ''],
      ]),
    ).toBe('ERR_HTTP2_MISSING_PSEUDO_HEADER');
    expect(check('request', [[':method', 'CONNECT']])).toBe('ERR_HTTP2_MISSING_PSEUDO_HEADER');
    expect(
      check('request', [
        [':method', 'CONNECT'],
        [':authority', 'a:1'],
        [':path', '/'],
      ]),
    ).toBe('ERR_HTTP2_MISSING_PSEUDO_HEADER');
  });

  it('keeps the first error and is reusable after begin()', () => {
    const v = new FieldBlockValidator();
    v.begin('request', 1);
    expect(v.field('Bad', 'x')?.code).toBe('ERR_HTTP2_INVALID_FIELD_NAME');
    expect(v.field('connection', 'x')?.code).toBe('ERR_HTTP2_INVALID_FIELD_NAME');
    expect(v.end()?.code).toBe('ERR_HTTP2_INVALID_FIELD_NAME');
    v.begin('response', 3);
    expect(v.field(':status', '204')).toBeNull();
    expect(v.end()).toBeNull();
  });
});
