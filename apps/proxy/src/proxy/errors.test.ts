import { HttpConnectionError, HttpParseError, HttpTimeoutError } from '@loch/http';
import { ConnectError, ReadError } from '@loch/transports';
import { RuntimeError } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import { classifyUpstreamError, ProxyError } from './errors.js';

const code = (e: unknown, phase: 'connect' | 'exchange' = 'exchange') => {
  const p = classifyUpstreamError(e, phase, 'up');
  return [p.code, p.status];
};

describe('classifyUpstreamError', () => {
  it('maps transport errors: refused 502, connect timeout 504, read timeout 504, reset 502', () => {
    expect(code(new ConnectError('ERR_TRANSPORT_CONNECT_REFUSED', 'connect', 'x'))).toEqual([
      'ERR_LOCH_UPSTREAM_REFUSED',
      502,
    ]);
    expect(code(new ConnectError('ERR_TRANSPORT_CONNECT_TIMEOUT', 'connect', 'x'))).toEqual([
      'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT',
      504,
    ]);
    expect(code(new ReadError('ERR_TRANSPORT_READ_TIMEOUT', 'response', 'x'))).toEqual([
      'ERR_LOCH_UPSTREAM_TIMEOUT',
      504,
    ]);
    expect(code(new ReadError('ERR_TRANSPORT_READ_FAILED', 'response', 'x'))).toEqual([
      'ERR_LOCH_UPSTREAM_RESET',
      502,
    ]);
    expect(code(new ConnectError('ERR_TRANSPORT_CONNECT_FAILED', 'connect', 'ENOENT'))).toEqual([
      'ERR_LOCH_UPSTREAM_FAILED',
      502,
    ]);
  });

  it('maps runtime and codec errors the same way', () => {
    expect(code(new RuntimeError('ECONNREFUSED', 'connect'), 'connect')).toEqual([
      'ERR_LOCH_UPSTREAM_REFUSED',
      502,
    ]);
    expect(code(new RuntimeError('ETIMEDOUT', 'connect'), 'connect')).toEqual([
      'ERR_LOCH_UPSTREAM_CONNECT_TIMEOUT',
      504,
    ]);
    expect(code(new RuntimeError('ECONNRESET', 'read'))).toEqual(['ERR_LOCH_UPSTREAM_RESET', 502]);
    expect(code(new HttpTimeoutError('response', 5))).toEqual(['ERR_LOCH_UPSTREAM_TIMEOUT', 504]);
    expect(code(new HttpConnectionError('ERR_HTTP_CONNECTION_CLOSED', 'x'))).toEqual([
      'ERR_LOCH_UPSTREAM_RESET',
      502,
    ]);
    expect(code(new HttpParseError('ERR_HTTP_BARE_LF', 'x'))).toEqual(['ERR_LOCH_UPSTREAM_PROTOCOL', 502]);
    expect(code(new Error('?'))).toEqual(['ERR_LOCH_UPSTREAM_FAILED', 502]);
  });

  it('passes ProxyErrors through and keeps the cause', () => {
    const p = new ProxyError('ERR_LOCH_NO_ROUTE', 'none');
    expect(classifyUpstreamError(p, 'exchange', 'x')).toBe(p);
    const cause = new RuntimeError('ECONNRESET', 'read');
    expect(classifyUpstreamError(cause, 'exchange', 'x').cause).toBe(cause);
  });
});
