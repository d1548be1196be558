import { describe, expect, it } from 'vitest';
import { authorityOf, createRequest, pathOf } from './message.js';

describe('authorityOf / pathOf', () => {
  it('reads origin-form requests from Host', () => {
    const r = createRequest('GET', '/a?b=1', { headers: { host: 'h.test:8080' } });
    expect(authorityOf(r)).toBe('h.test:8080');
    expect(pathOf(r)).toBe('/a?b=1');
    expect(authorityOf(createRequest('GET', '/'))).toBeUndefined();
  });

  it('prefers the absolute-form authority over Host and drops userinfo', () => {
    const r = createRequest('GET', 'http://user:pw@a.test:81/x/y?z#f', { headers: { host: 'ignored' } });
    expect(authorityOf(r)).toBe('a.test:81');
    expect(pathOf(r)).toBe('/x/y?z#f');
    expect(pathOf(createRequest('GET', 'http://a.test'))).toBe('/');
    expect(pathOf(createRequest('GET', 'http://a.test?q'))).toBe('/?q');
  });

  it('handles authority-form and asterisk-form', () => {
    const c = createRequest('CONNECT', 'a.test:443');
    expect(authorityOf(c)).toBe('a.test:443');
    expect(pathOf(c)).toBe('');
    expect(pathOf(createRequest('OPTIONS', '*'))).toBe('*');
  });
});
