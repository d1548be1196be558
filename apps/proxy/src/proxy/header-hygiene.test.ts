import { HttpHeaders } from '@loch/http';
import { encodeResponseHeadBytes, ResponseDecoder } from '@loch/http/h1';
import { describe, expect, it } from 'vitest';
import { addForwardingHeaders, cleanResponseHeaders, removeHopByHop } from './header-hygiene.js';

describe('header hygiene', () => {
  it('removes every hop-by-hop field and the fields Connection names, keeping the rest in order', () => {
    const h = new HttpHeaders([
      ['host', 'example.com'],
      ['connection', 'keep-alive, X-Session , close'],
      ['x-session', 'abc'],
      ['keep-alive', 'timeout=5'],
      ['proxy-connection', 'keep-alive'],
      ['te', 'trailers'],
      ['trailer', 'x-checksum'],
      ['transfer-encoding', 'chunked'],
      ['upgrade', 'websocket'],
      ['proxy-authenticate', 'Basic'],
      ['proxy-authorization', 'Basic eA=='],
      ['accept', '*/*'],
      ['connection', 'x-other'],
      ['x-other', '1'],
    ]);
    removeHopByHop(h);
    expect([...h]).toEqual([
      ['host', 'example.com'],
      ['accept', '*/*'],
    ]);
  });

  it('leaves a message without hop-by-hop fields untouched', () => {
    const h = new HttpHeaders([
      ['host', 'a'],
      ['x-a', '1'],
    ]);
    removeHopByHop(h);
    expect([...h]).toEqual([
      ['host', 'a'],
      ['x-a', '1'],
    ]);
  });

  it('appends to X-Forwarded-For (several fields joined), sets -Proto and -Host, appends Via', () => {
    const h = new HttpHeaders([
      ['x-forwarded-for', '10.0.0.1'],
      ['x-forwarded-for', '10.0.0.2'],
      ['x-forwarded-proto', 'https'],
      ['via', '1.1 edge'],
    ]);
    addForwardingHeaders(h, { family: 'ipv6', address: '::1', port: 5 }, 'http', 'shop.example:8080', '1.0');
    expect(h.get('x-forwarded-for')).toBe('10.0.0.1, 10.0.0.2, ::1');
    expect(h.getAll('x-forwarded-proto')).toEqual(['http']);
    expect(h.get('x-forwarded-host')).toBe('shop.example:8080');
    expect(h.getAll('via')).toEqual(['1.1 edge', '1.0 loch']);
  });

  it('names unix peers "unix" and leaves X-Forwarded-Host alone without a Host', () => {
    const h = new HttpHeaders();
    addForwardingHeaders(h, { family: 'unix', path: '/s' }, 'http', undefined, '1.1');
    expect(h.get('x-forwarded-for')).toBe('unix');
    expect(h.has('x-forwarded-host')).toBe(false);
  });

  it('cleans responses and adds Via with the upstream version', () => {
    const h = new HttpHeaders([
      ['connection', 'x-internal'],
      ['x-internal', 'secret'],
      ['content-type', 'text/plain'],
    ]);
    cleanResponseHeaders(h, '1.0');
    expect([...h]).toEqual([
      ['content-type', 'text/plain'],
      ['via', '1.0 loch'],
    ]);
  });

  it('cleans a decoded upstream head by id and forwards the rest as it came', () => {
    const d = new ResponseDecoder();
    d.feed(
      Buffer.from(
        'HTTP/1.1 200 OK\r\nServer: up\r\nConnection: keep-alive, X-Trace\r\nX-Trace: 1\r\n' +
          'Proxy-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nok',
        'latin1',
      ),
    );
    d.poll();
    const res = d.message!;
    cleanResponseHeaders(res.headers, res.version);
    const o = {
      framing: 'length',
      length: 2,
      keepAlive: true,
      requestMinor: 1,
      requestMethod: 'GET',
      date: false,
    } as const;
    expect(
      Buffer.from(encodeResponseHeadBytes(res.status, res.reason, res.headers, o)).toString('latin1'),
    ).toBe('HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nvia: 1.1 loch\r\n\r\n');
  });
});
