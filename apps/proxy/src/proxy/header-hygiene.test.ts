import { HttpHeaders } from '@loch/http';
import {
  encodeRequestHeadBytes,
  encodeResponseHeadBytes,
  RequestDecoder,
  ResponseDecoder,
} from '@loch/http/h1';
import { describe, expect, it } from 'vitest';
import { addForwardingHeaders, cleanResponseHeaders, removeHopByHop } from './header-hygiene.js';

const PEER = { family: 'ipv4', address: '192.0.2.7', port: 40000 } as const;

/** The headers of `GET /` with `Host: shop.example` and `fields`, decoded as the proxy gets them. */
function decodedRequest(fields: string): HttpHeaders {
  const d = new RequestDecoder();
  d.feed(Buffer.from(`GET / HTTP/1.1\r\nHost: shop.example\r\n${fields}\r\n`, 'latin1'));
  d.poll();
  return d.message!.headers;
}

/** The request head the proxy would write upstream for `headers` (kept lines copied as they came). */
function forwardedHead(headers: HttpHeaders): string {
  return encodeRequestHeadBytes('GET', '/', headers, 'none', 0).toString('latin1');
}

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

  it("replaces or extends a decoded request's forwarding fields whatever their case, duplicates in one line", () => {
    const h = decodedRequest(
      'X-FORWARDED-FOR: 10.0.0.1\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.2, 10.0.0.3\r\n' +
        'X-Forwarded-Proto: https\r\nX-FORWARDED-PROTO: ftp\r\nx-Forwarded-Host: forged\r\n' +
        'X-FORWARDED-CLIENT-CERT: Hash=forged\r\nx-forwarded-client-cert: Hash=forged2\r\n' +
        'X-Forwarded-Client-Certs: kept\r\nX-Forwarded-Fo: kept\r\nVIA: 1.1 edge\r\n',
    );
    addForwardingHeaders(h, PEER, 'http', 'shop.example', '1.1', 'Hash=verified');
    expect(forwardedHead(h)).toBe(
      'GET / HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\nX-Forwarded-Client-Certs: kept\r\n' +
        'X-Forwarded-Fo: kept\r\nVIA: 1.1 edge\r\nx-forwarded-client-cert: Hash=verified\r\n' +
        'x-forwarded-for: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\nx-forwarded-proto: http\r\n' +
        'x-forwarded-host: shop.example\r\nvia: 1.1 loch\r\n\r\n',
    );
    // Without a verified certificate of this hop's, the client's copies are gone all the same;
    // each forwarding field on its own is replaced (or extended) and the others added.
    const plain = decodedRequest('X-Forwarded-Client-Cert: Hash=forged\r\n');
    addForwardingHeaders(plain, PEER, 'https', 'shop.example', '1.1');
    const added =
      'x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: https\r\nx-forwarded-host: shop.example\r\n';
    expect(forwardedHead(plain)).toBe(
      `GET / HTTP/1.1\r\nHost: shop.example\r\n${added}via: 1.1 loch\r\n\r\n`,
    );
    for (const [field, expected] of [
      ['X-Forwarded-For: 10.0.0.1', added.replace('192.0.2.7', '10.0.0.1, 192.0.2.7')],
      ['x-forwarded-proto: ftp', added],
      ['X-FORWARDED-HOST: forged', added],
    ] as const) {
      const one = decodedRequest(`${field}\r\n`);
      addForwardingHeaders(one, PEER, 'https', 'shop.example', '1.1');
      expect(forwardedHead(one)).toBe(
        `GET / HTTP/1.1\r\nHost: shop.example\r\n${expected}via: 1.1 loch\r\n\r\n`,
      );
    }
  });

  it("drops forwarding fields a Connection field names before adding this hop's own", () => {
    const h = decodedRequest(
      'Connection: X-Forwarded-For, x-forwarded-client-cert\r\nX-Forwarded-For: 6.6.6.6\r\n' +
        'X-Forwarded-Client-Cert: Hash=forged\r\nconnection: VIA ,X-FORWARDED-PROTO\r\nVia: 1.1 evil\r\n' +
        'X-Forwarded-Proto: https\r\nX-Forwarded-Host: kept-then-replaced\r\n',
    );
    removeHopByHop(h);
    addForwardingHeaders(h, PEER, 'http', 'shop.example', '1.1');
    expect(forwardedHead(h)).toBe(
      'GET / HTTP/1.1\r\nHost: shop.example\r\nx-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\n' +
        'x-forwarded-host: shop.example\r\nvia: 1.1 loch\r\n\r\n',
    );
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
