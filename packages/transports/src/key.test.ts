import { describe, expect, it } from 'vitest';
import { InvalidAddressError } from './errors.js';
import { endpoint, formatL4Address, parseL4Address } from './key.js';

describe('endpoint', () => {
  it('parses http and https URLs with default and explicit ports', () => {
    const a = endpoint('http://example.com');
    expect(a).toMatchObject({ scheme: 'http', address: { kind: 'tcp', host: 'example.com', port: 80 } });
    expect(a.authority).toBe('example.com');
    expect(a.tls).toBeUndefined();
    const b = endpoint('https://example.com:8443/path?q');
    expect(b.address).toEqual({ kind: 'tcp', host: 'example.com', port: 8443 });
    expect(b.authority).toBe('example.com:8443');
    expect(b.tls).toEqual({ serverName: 'example.com', alpn: ['http/1.1'], verify: true, ca: 'system' });
    const v6 = endpoint('http://[::1]:8080');
    expect(v6.address).toEqual({ kind: 'tcp', host: '::1', port: 8080 });
    expect(v6.authority).toBe('[::1]:8080');
  });

  it('parses Unix forms: unix:/path, absolute paths, nginx-style http://unix:/path:', () => {
    for (const input of [
      'unix:/run/up.sock',
      '/run/up.sock',
      'http://unix:/run/up.sock:/',
      'unix:///run/up.sock',
    ]) {
      const e = endpoint(input);
      expect(e.address).toEqual({ kind: 'unix', path: '/run/up.sock' });
      expect(e.authority).toBe('localhost');
      expect(e.scheme).toBe('http');
    }
  });

  it('builds stable ids from everything that makes connections differ', () => {
    expect(endpoint('http://h:1').id).toBe(endpoint({ host: 'h', port: 1 }).id);
    expect(endpoint('http://h:1/a').id).toBe(endpoint('http://h:1/b').id);
    const ids = new Set(
      [
        endpoint('http://h:1'),
        endpoint('https://h:1'),
        endpoint('http://h:2'),
        endpoint({ host: 'h', port: 1, authority: 'other' }),
        endpoint({ scheme: 'https', host: 'h', port: 1, serverName: 'sni.example' }),
        endpoint({ scheme: 'https', host: 'h', port: 1, alpn: ['h2', 'http/1.1'] }),
        endpoint('unix:/a.sock'),
      ].map((e) => e.id),
    );
    expect(ids.size).toBe(7);
  });

  it('is frozen', () => {
    const e = endpoint('http://h:1');
    expect(Object.isFrozen(e)).toBe(true);
    expect(Object.isFrozen(e.address)).toBe(true);
  });

  it('rejects what it cannot connect to with InvalidAddressError', () => {
    for (const bad of ['ftp://h', 'not a url', 'http://h:0', 'http://h:70000']) {
      expect(() => endpoint(bad), bad).toThrow(InvalidAddressError);
    }
    expect(() => endpoint({})).toThrow(InvalidAddressError);
    expect(() => endpoint({ host: 'h', unixPath: '/x' })).toThrow(InvalidAddressError);
  });
});

describe('parseL4Address', () => {
  it('parses host:port, [v6]:port, tcp:// and unix paths', () => {
    expect(parseL4Address('127.0.0.1:80')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 80 });
    expect(parseL4Address('[::1]:443')).toEqual({ kind: 'tcp', host: '::1', port: 443 });
    expect(parseL4Address('tcp://localhost:9')).toEqual({ kind: 'tcp', host: 'localhost', port: 9 });
    expect(parseL4Address('unix:/tmp/s')).toEqual({ kind: 'unix', path: '/tmp/s' });
    expect(parseL4Address('/tmp/s')).toEqual({ kind: 'unix', path: '/tmp/s' });
    expect(() => parseL4Address('nohost')).toThrow(InvalidAddressError);
    expect(() => parseL4Address('h:99999')).toThrow(InvalidAddressError);
    expect(() => parseL4Address('unix:')).toThrow(InvalidAddressError);
  });

  it('round-trips through formatL4Address', () => {
    for (const s of ['127.0.0.1:80', '[::1]:443', 'unix:/tmp/s'])
      expect(formatL4Address(parseL4Address(s))).toBe(s);
  });
});
