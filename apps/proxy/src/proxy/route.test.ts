import { createRequest, createResponse, type HttpResponse } from '@loch/http';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RouteConfig } from '../config/schema.js';
import { normalizePath } from '../routing/path-normalizer.js';
import { ProxyContext, type RoutedCx } from './context.js';
import { ProxyError } from './errors.js';
import { cleanPathEnd, compileRoutes, parseAbsoluteTarget, RouteService, stripPrefix } from './route.js';

const route = (path: string, host?: string): RouteConfig => ({
  path,
  host,
  loadBalancer: 'first',
  stripPrefix: undefined,
  hostHeader: 'preserve',
  upstreams: [
    {
      address: { kind: 'tcp', host: '127.0.0.1', port: 81, scheme: 'http', authority: '127.0.0.1:81' },
      weight: 1,
      label: path,
    },
  ],
});

/** Runs one request through a RouteService over `/`, `/public/` and host `b.example`'s `/`. */
async function routed(
  method: string,
  target: string,
  headers: [string, string][],
  options: { version?: '1.0' | '1.1'; encodedSlashes?: boolean } = {},
): Promise<{ cx: RoutedCx; host: string | undefined } | ProxyError> {
  let seen: RoutedCx | undefined;
  const svc = new RouteService(
    {
      call: (cx: RoutedCx): Promise<HttpResponse> => {
        seen = cx;
        return Promise.resolve(createResponse(200));
      },
    },
    compileRoutes([route('/'), route('/public/'), route('/', 'b.example')]),
    options.encodedSlashes ?? false,
  );
  const req = createRequest(method, target, { headers, version: options.version ?? '1.1' });
  const cx = ProxyContext.empty()
    .set('peerAddr', { family: 'ipv4', address: '10.0.0.1', port: 5000 })
    .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 80 } })
    .set('driver', 'legacy')
    .set('server', { key: 'web', scheme: 'http' })
    .set('request', req)
    .set('clientTarget', target)
    .set('startedAt', 0);
  try {
    await svc.call(cx);
  } catch (error) {
    return error as ProxyError;
  }
  return { cx: seen!, host: req.headers.get('host') };
}

describe('parseAbsoluteTarget', () => {
  it('takes authority, path and query apart', () => {
    expect(parseAbsoluteTarget('http://h:8/p/q?z')).toEqual({ authority: 'h:8', path: '/p/q', query: '?z' });
    expect(parseAbsoluteTarget('http://h:8')).toEqual({ authority: 'h:8', path: '/', query: '' });
    expect(parseAbsoluteTarget('http://h?x=1')).toEqual({ authority: 'h', path: '/', query: '?x=1' });
    expect(parseAbsoluteTarget('HTTPS://[::1]:443/a')).toEqual({
      authority: '[::1]:443',
      path: '/a',
      query: '',
    });
  });

  it('refuses other schemes, userinfo and bad or empty authorities', () => {
    expect(parseAbsoluteTarget('ftp://h/x')).toBe('scheme');
    expect(parseAbsoluteTarget('ws://h/x')).toBe('scheme');
    expect(parseAbsoluteTarget('http://a:b@h/x')).toBe('userinfo');
    expect(parseAbsoluteTarget('http://@h/x')).toBe('userinfo');
    expect(parseAbsoluteTarget('http://?x')).toBe('authority');
    expect(parseAbsoluteTarget('http://:80/x')).toBe('authority');
    expect(parseAbsoluteTarget('http://h:8x/x')).toBe('authority');
    expect(parseAbsoluteTarget('http://h"/x')).toBe('authority');
  });
});

describe('RouteService', () => {
  it('routes on the absolute-form authority and forwards it as Host, the path in origin form', async () => {
    const r = await routed('GET', 'http://b.example:8080/x?y=1', [['host', 'other.example']]);
    expect(r).not.toBeInstanceOf(ProxyError);
    const { cx, host } = r as Exclude<typeof r, ProxyError>;
    expect(cx.get('route').route.host).toBe('b.example');
    expect(cx.get('upstreamTarget')).toBe('/x?y=1');
    expect(host).toBe('b.example:8080');
    expect(cx.get('request').headers.get('x-forwarded-host')).toBe('b.example:8080');
    // HTTP/1.0 without Host: the authority is added
    const old = await routed('GET', 'http://b.example/x', [], { version: '1.0' });
    expect((old as Exclude<typeof r, ProxyError>).host).toBe('b.example');
  });

  it('routes and forwards the normalized path, the query untouched', async () => {
    const r = (await routed('GET', '/public/%2e%2e/admin/%7euser?a=%2e%2e/%2F', [['host', 'h']])) as {
      cx: RoutedCx;
    };
    expect(r.cx.get('route').route.path).toBe('/');
    expect(r.cx.get('upstreamTarget')).toBe('/admin/~user?a=%2e%2e/%2F');
  });

  it('answers 400 for an empty Host, userinfo, another scheme, a fragment, the asterisk form and refused paths', async () => {
    const code = async (method: string, target: string, headers: [string, string][] = [['host', 'h']]) =>
      ((await routed(method, target, headers)) as ProxyError).code;
    expect(await code('GET', '/x', [['host', '']])).toBe('ERR_LOCH_BAD_HOST');
    expect(await code('GET', 'http://h/x', [['host', '']])).toBe('ERR_LOCH_BAD_HOST');
    expect(await code('GET', 'http://a:b@h/x')).toBe('ERR_LOCH_BAD_HOST');
    expect(await code('GET', 'ftp://h/x')).toBe('ERR_LOCH_BAD_TARGET');
    expect(await code('GET', '/x#y')).toBe('ERR_LOCH_BAD_TARGET');
    expect(await code('OPTIONS', '*')).toBe('ERR_LOCH_BAD_TARGET');
    expect(await code('GET', '/a%2fb')).toBe('ERR_LOCH_ENCODED_SLASH');
    expect(await code('GET', '/a%00b')).toBe('ERR_LOCH_BAD_PATH');
    expect(await code('GET', '/a%zzb')).toBe('ERR_LOCH_BAD_PATH');
    expect(await code('GET', '/%2e%2e/x')).toBe('ERR_LOCH_BAD_PATH');
    const ok = (await routed('GET', '/a%2fb', [['host', 'h']], { encodedSlashes: true })) as { cx: RoutedCx };
    expect(ok.cx.get('upstreamTarget')).toBe('/a%2Fb');
  });

  it('routes a repeated target as the first time, between others', async () => {
    const upstreamTarget = async (target: string) => {
      const r = await routed('GET', target, [['host', 'h']]);
      return r instanceof ProxyError ? r.code : r.cx.get('upstreamTarget');
    };
    // The same strings, equal strings made apart, and targets the kept one must not answer for.
    const long = `/${'a'.repeat(70)}`;
    const targets = [
      '/x/y',
      '/x/y',
      `/x${'/y'}`,
      '/x/y?q=1',
      '/x/./y',
      '/x/y',
      long,
      long,
      '/x%2fy',
      '/x/y',
      '/',
    ];
    const want = [
      '/x/y',
      '/x/y',
      '/x/y',
      '/x/y?q=1',
      '/x/y',
      '/x/y',
      long,
      long,
      'ERR_LOCH_ENCODED_SLASH',
      '/x/y',
      '/',
    ];
    const got: string[] = [];
    for (const t of targets) got.push(await upstreamTarget(t));
    expect(got).toEqual(want);
  });

  it('answers CONNECT with 405 and an Allow field', async () => {
    const e = (await routed('CONNECT', 'h:443', [['host', 'h:443']])) as ProxyError;
    expect(e.status).toBe(405);
    expect(e.code).toBe('ERR_LOCH_METHOD_NOT_ALLOWED');
    expect(e.headers).toEqual([['allow', 'GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH']]);
  });
});

describe('route helpers', () => {
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

describe('cleanPathEnd', () => {
  it('finds where a clean path ends, and sends anything to normalize or refuse to the slow path', () => {
    expect(cleanPathEnd('/a/b')).toBe(4);
    expect(cleanPathEnd('/a/b?x=%2e/./#')).toBe(-1);
    expect(cleanPathEnd('/a/b?x=%2e/./')).toBe(4);
    expect(cleanPathEnd('/a.b/c.d?')).toBe(8);
    expect(cleanPathEnd('/')).toBe(1);
    expect(cleanPathEnd('/a/./b')).toBe(-1);
    expect(cleanPathEnd('/.well-known')).toBe(-1);
    expect(cleanPathEnd('/a%41')).toBe(-1);
    expect(cleanPathEnd('/a#b')).toBe(-1);
  });

  /** What cleanPathEnd answers, spelled as searches: the reference for the tests below. */
  const expectedEnd = (t: string): number => {
    const q = t.indexOf('?');
    const path = q < 0 ? t : t.slice(0, q);
    if (t.includes('#') || path.includes('%') || path.includes('/.')) return -1;
    return path.length;
  };

  it("agrees with the searches for targets of 0-4,096 chars: '?', '#', %-escapes, '/.', bytes above 0x7f (fast-check)", () => {
    const piece = fc.constantFrom(
      '/',
      '.',
      '%',
      '%2e',
      '#',
      '?',
      'a',
      'users',
      '1079190',
      '\xe9',
      '\xff',
      '\x80',
      '=',
      '&',
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 40 }),
        fc.nat(4096),
        fc.array(piece, { maxLength: 8 }),
        (head, fill, tail) => {
          // A long run of plain chars somewhere: what a 4 KiB target's path or query looks like.
          const t = `/${head.join('')}${'b'.repeat(fill % 7 === 0 ? fill : fill % 64)}${tail.join('')}`;
          expect(cleanPathEnd(t)).toBe(expectedEnd(t));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('finds the end of a 4 KiB path, and what needs the slow path at its last chars', () => {
    const long = `/${'seg/'.repeat(1023)}x`;
    expect(long.length).toBe(4094);
    expect(cleanPathEnd(long)).toBe(4094);
    expect(cleanPathEnd(`${long}?q=%2e#`)).toBe(-1);
    expect(cleanPathEnd(`${long}?q=%2e/./\xe9`)).toBe(4094);
    expect(cleanPathEnd(`${long}%41`)).toBe(-1);
    expect(cleanPathEnd(`${long}/.`)).toBe(-1);
    expect(cleanPathEnd(`${long}#`)).toBe(-1);
    expect(cleanPathEnd(`${long}\xe9/\xff`)).toBe(4097);
    expect(cleanPathEnd(`/api/v2/users/1079190/orders?page=3&limit=50`)).toBe(28);
    expect(cleanPathEnd(`/api/v2/users/1079190/orders/.x?page=3`)).toBe(-1);
  });

  it("sends '/.', '/..', '%2e', '#' at every position of the path to the slow path, and stops at the first '?'", () => {
    // Both forms: the char loop below 24 chars, the searches from there (past 64 chars too).
    for (let n = 1; n <= 80; n++) {
      const plain = `/${'a'.repeat(n - 1)}`;
      for (let at = 1; at <= n; at++) {
        const before = plain.slice(0, at);
        const after = plain.slice(at);
        for (const bad of ['/.', '/..', '%2e', '#']) {
          expect(cleanPathEnd(before + bad + after)).toBe(-1);
          // In the query: only '#' still counts.
          expect(cleanPathEnd(`${before}?${bad}${after}`)).toBe(bad === '#' ? -1 : at);
        }
        // A '.' not after a '/' is a plain char; the first '?' ends the path.
        expect(cleanPathEnd(`${before}a.${after}`)).toBe(n + 2);
        expect(cleanPathEnd(`${before}?${after}?/.`)).toBe(at);
      }
    }
  });

  it('agrees with the normalizer: a clean path is one it leaves as is', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\/[a-z./%#?~0-9]{0,12}$/), (t) => {
        const end = cleanPathEnd(t);
        if (end < 0) return;
        expect(t.slice(end).includes('#')).toBe(false);
        expect(t.slice(0, end).includes('?')).toBe(false);
        expect(normalizePath(t.slice(0, end))).toBe(t.slice(0, end));
      }),
    );
  });
});

describe('gateway routes: the dispatch imported with the table, not at start', () => {
  const gatewayRoute = { ...route('/'), upstreams: [], gateway: [] } as unknown as RouteConfig;
  const forwardNothing = {
    call: (): Promise<HttpResponse> => Promise.reject(new Error('a gateway route is not forwarded')),
  };
  const cxFor = (target: string): RoutedCx =>
    ProxyContext.empty()
      .set('peerAddr', { family: 'ipv4', address: '10.0.0.1', port: 5000 })
      .set('socket', { localAddress: { family: 'ipv4', address: '127.0.0.1', port: 80 } })
      .set('driver', 'legacy')
      .set('server', { key: 'web', scheme: 'http' })
      .set('request', createRequest('GET', target, { headers: [['host', 'a.example']] }))
      .set('clientTarget', target)
      .set('startedAt', 0) as unknown as RoutedCx;

  afterEach(() => {
    vi.doUnmock('../gateway/dispatch.js');
    vi.resetModules();
  });

  it('a call that comes before the import settled waits for it, then the gateway answers it', async () => {
    vi.resetModules();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const paths: string[] = [];
    vi.doMock('../gateway/dispatch.js', async () => {
      await gate;
      return {
        callGateway: (_configs: unknown, _req: unknown, path: string) => {
          paths.push(path);
          return createResponse(200);
        },
      };
    });
    const fresh = await import('./route.js');
    const svc = new fresh.RouteService(forwardNothing, fresh.compileRoutes([gatewayRoute]));
    const answer = svc.call(cxFor('/x'));
    await new Promise((r) => setTimeout(r, 5));
    expect(paths).toEqual([]);
    release();
    expect((await answer).status).toBe(200);
    expect(paths).toEqual(['/x']);
    // Loaded now: the next call is answered without waiting.
    const now = svc.call(cxFor('/y'));
    expect(now).not.toBeInstanceOf(Promise);
    expect(paths).toEqual(['/x', '/y']);
  });

  it('a failed import: one gateway error line at build, each call answered 503 ERR_LOCH_GATEWAY_UNAVAILABLE', async () => {
    vi.resetModules();
    vi.doMock('../gateway/dispatch.js', () => {
      throw new Error('broken install');
    });
    const fresh = await import('./route.js');
    const { ProxyLog } = await import('./log.js');
    // The error class of the module graph the fresh route.js runs in.
    const { ProxyError: FreshProxyError } = await import('./errors.js');
    const errors: string[] = [];
    const log = new ProxyLog(
      'error',
      '',
      () => {},
      (t) => errors.push(t),
      0,
    );
    const make = fresh
      .routeLayer()
      .layer(
        { routes: [gatewayRoute], server: { allowEncodedSlashes: false }, log },
        { make: () => forwardNothing },
      );
    const svc = make.make();
    const failure = await Promise.resolve(svc.call(cxFor('/x'))).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(FreshProxyError);
    expect((failure as ProxyError).code).toBe('ERR_LOCH_GATEWAY_UNAVAILABLE');
    expect((failure as ProxyError).status).toBe(503);
    log.flush();
    // (vitest wraps the factory's throw in an error of its own.)
    expect(errors.join('')).toMatch(/error \[gateway\] the gateway cannot load its dispatch: /);
    expect(errors.join('').match(/cannot load its dispatch/g)).toHaveLength(1);
  });
});
