import { describe, expect, it } from 'vitest';
import { compileRoutes, splitTarget, stripPrefix } from './route.js';

describe('route helpers', () => {
  it('splits origin-form and absolute-form targets into path and query', () => {
    expect(splitTarget('/a/b?x=1&y')).toEqual({ path: '/a/b', query: '?x=1&y' });
    expect(splitTarget('/a')).toEqual({ path: '/a', query: '' });
    expect(splitTarget('http://h:8/p/q?z')).toEqual({ path: '/p/q', query: '?z' });
    expect(splitTarget('http://h:8')).toEqual({ path: '/', query: '' });
    expect(splitTarget('*')).toBeUndefined();
  });

  it('strips a literal prefix and always leaves a path that starts with "/"', () => {
    expect(stripPrefix('/api/users', '/api')).toBe('/users');
    expect(stripPrefix('/api/users', '/api/')).toBe('/users');
    expect(stripPrefix('/api', '/api')).toBe('/');
    expect(stripPrefix('/api', '/api/')).toBe('/');
    expect(stripPrefix('/apix', '/api')).toBe('/x');
    expect(stripPrefix('/other', '/api')).toBe('/other');
  });

  it('compiles routes with one balancer and one endpoint per upstream', () => {
    const router = compileRoutes([
      {
        path: '/',
        host: undefined,
        loadBalancer: 'round_robin',
        stripPrefix: undefined,
        hostHeader: 'preserve',
        upstreams: [
          {
            address: { kind: 'tcp', host: '127.0.0.1', port: 81, scheme: 'http', authority: '127.0.0.1:81' },
            weight: 1,
            label: 'a',
          },
          { address: { kind: 'unix', path: '/run/b.sock', authority: 'localhost' }, weight: 1, label: 'b' },
        ],
      },
    ]);
    const m = router.match('x', '/anything')!;
    expect(m.route.endpoints.map((e) => e.address)).toEqual([
      { kind: 'tcp', host: '127.0.0.1', port: 81 },
      { kind: 'unix', path: '/run/b.sock' },
    ]);
    expect(m.route.endpoints[0]!.authority).toBe('127.0.0.1:81');
    expect([m.route.balancer.pick(), m.route.balancer.pick(), m.route.balancer.pick()]).toEqual([0, 1, 0]);
  });
});
