import { describe, expect, it } from 'vitest';
import { createBalancer } from './balancer.js';
import { RoutePatternError, Router } from './router.js';

const r = (path: string, host?: string) => ({ path, host, id: `${host ?? '*'} ${path}` });

describe('Router', () => {
  const router = new Router([
    r('/'),
    r('/status'),
    r('/static/'),
    r('/users/{id}'),
    r('/users/{id}/posts/{post}'),
    r('/users/me'),
    r('/api/{*rest}'),
    r('/api/v2/{*rest}'),
    r('/', 'admin.example.com'),
    r('/only-wild', '*.example.org'),
  ]);
  const id = (host: string | undefined, path: string) => router.match(host, path)?.route.id;

  it('prefers exact, then parameters, then the longest prefix', () => {
    expect(id(undefined, '/status')).toBe('* /status');
    expect(id(undefined, '/status/x')).toBe('* /');
    expect(id(undefined, '/users/me')).toBe('* /users/me');
    expect(id(undefined, '/users/42')).toBe('* /users/{id}');
    expect(router.match(undefined, '/users/42/posts/7')?.params).toEqual({ id: '42', post: '7' });
    expect(id(undefined, '/users/')).toBe('* /');
    expect(id(undefined, '/static/a/b.css')).toBe('* /static/');
    expect(id(undefined, '/api/v2/x/y')).toBe('* /api/v2/{*rest}');
    expect(router.match(undefined, '/api/v1/x')).toMatchObject({ params: { rest: 'v1/x' }, prefix: '/api/' });
    expect(router.match(undefined, '/api')).toMatchObject({ params: { rest: '' } });
  });

  it('routes by host first, ignoring port and case, with wildcards', () => {
    expect(id('Admin.Example.com:8443', '/anything')).toBe('admin.example.com /');
    expect(id('other.example.com', '/anything')).toBe('* /');
    expect(id('a.example.org', '/only-wild')).toBe('*.example.org /only-wild');
    expect(id('example.org', '/only-wild')).toBe('* /');
    expect(id('a.example.org', '/status')).toBe('* /status');
  });

  it('hands out one shared match per route without parameters, a fresh one when it captures', () => {
    const exact = router.match(undefined, '/status');
    expect(router.match(undefined, '/status')).toBe(exact);
    expect(exact).toEqual({
      route: expect.objectContaining({ id: '* /status' }),
      params: undefined,
      prefix: undefined,
    });
    const prefix = router.match(undefined, '/static/a.css');
    expect(router.match(undefined, '/static/b.css')).toBe(prefix);
    expect(prefix?.prefix).toBe('/static/');
    const rest = router.match(undefined, '/api/x');
    expect(rest?.params).toEqual({ rest: 'x' });
    expect(router.match(undefined, '/api/y')?.params).toEqual({ rest: 'y' });
    expect(router.match(undefined, '/api/y')).not.toBe(router.match(undefined, '/api/y'));
  });

  it('returns nothing when no route matches', () => {
    const narrow = new Router([r('/a'), r('/b/')]);
    expect(narrow.match(undefined, '/c')).toBeUndefined();
    expect(narrow.match(undefined, '/b')).toBeUndefined();
  });

  it('rejects patterns it cannot honour', () => {
    expect(() => new Router([r('/a/{*x}/b')])).toThrow(RoutePatternError);
    expect(() => new Router([r('/a/x{id}')])).toThrow(RoutePatternError);
    expect(() => new Router([r('/a/{id}/{id}')])).toThrow(RoutePatternError);
    expect(() => new Router([r('/a'), r('/a')])).toThrow(RoutePatternError);
  });
});

describe('balancers', () => {
  it('first always picks the first', () => {
    const b = createBalancer('first', [1, 1, 1]);
    expect([b.pick(), b.pick()]).toEqual([0, 0]);
  });
  it('round_robin cycles', () => {
    const b = createBalancer('round_robin', [1, 1, 1]);
    expect(Array.from({ length: 7 }, () => b.pick())).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });
  it('random spreads over all upstreams', () => {
    const seq = [0, 0.34, 0.67, 0.999999];
    let i = 0;
    const b = createBalancer('random', [1, 1, 1], () => seq[i++]!);
    expect(seq.map(() => b.pick())).toEqual([0, 1, 2, 2]);
  });
  it('weighted_random follows the weights and skips weight 0', () => {
    const b = createBalancer('weighted_random', [3, 0, 1], () => 0);
    expect(b.pick()).toBe(0);
    const counts = [0, 0, 0];
    let x = 0;
    const w = createBalancer('weighted_random', [3, 0, 1], () => (x = (x + 0.001) % 1));
    for (let k = 0; k < 4000; k++) counts[w.pick()]!++;
    expect(counts[1]).toBe(0);
    expect(counts[0]).toBe(3000);
    expect(counts[2]).toBe(1000);
  });
});
