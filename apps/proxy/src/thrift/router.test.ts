import { decodeFrame, encodeFrame, TTHeaderIntKey } from '@loch/thrift';
import { describe, expect, it } from 'vitest';
import type { ThriftRouteConfig } from '../config/schema.js';
import { callTarget, ThriftRouter } from './router.js';

/** Route configs, each known by a name the router compiles it to. */
const names = new Map<ThriftRouteConfig, string>();

function route(
  name: string,
  methods?: string[],
  service?: string,
  matchHeaders?: Record<string, string>,
): ThriftRouteConfig {
  const config: ThriftRouteConfig = {
    methods,
    service,
    loadBalancer: 'first',
    upstreams: [],
    ...(matchHeaders === undefined ? {} : { matchHeaders: new Map(Object.entries(matchHeaders)) }),
  };
  names.set(config, name);
  return config;
}

const router = (routes: ThriftRouteConfig[]) => new ThriftRouter(routes, (r) => names.get(r)!);

/** A TTHeader (or framed) frame whose message is CALL `name`, decoded as the proxy sees it. */
function frame(
  name: string,
  options: {
    intHeaders?: Map<number, string>;
    headers?: Map<string, string>;
    framing?: 'ttheader' | 'framed';
  } = {},
) {
  const nameBytes = new TextEncoder().encode(name);
  const payload = new Uint8Array(12 + nameBytes.length + 1);
  const view = new DataView(payload.buffer);
  view.setUint32(0, 0x80010001);
  view.setUint32(4, nameBytes.length);
  payload.set(nameBytes, 8);
  view.setInt32(8 + nameBytes.length, 5);
  payload[12 + nameBytes.length] = 0; // empty args struct
  const framing = options.framing ?? 'ttheader';
  const bytes = encodeFrame(
    {
      framing,
      protocol: 'binary',
      seqId: 5,
      intHeaders: options.intHeaders ?? new Map(),
      headers: options.headers ?? new Map(),
    },
    payload,
  );
  return decodeFrame(framing, bytes);
}

describe('thrift call targets', () => {
  it('takes the service from a TMultiplexed name, TTHeader TO_SERVICE, or the isn header', () => {
    expect(callTarget(frame('Calc:add'), 'Calc:add')).toMatchObject({ method: 'add', service: 'Calc' });
    expect(
      callTarget(frame('add', { intHeaders: new Map([[TTHeaderIntKey.TO_SERVICE, 'Calc']]) }), 'add'),
    ).toMatchObject({ method: 'add', service: 'Calc' });
    expect(callTarget(frame('add', { headers: new Map([['isn', 'Calc']]) }), 'add')).toMatchObject({
      method: 'add',
      service: 'Calc',
    });
    expect(callTarget(frame('add', { framing: 'framed' }), 'add')).toMatchObject({
      method: 'add',
      service: undefined,
    });
  });
});

describe('thrift router', () => {
  const r = router([
    route('svc', undefined, 'Calc'),
    route('method', ['add', 'sub']),
    route('both', ['add'], 'Calc'),
    route('multiplexed', ['Calc:mul']),
    route('shadowed', ['add']),
    route('default'),
    route('second default'),
  ]);

  it('prefers service and method, then method, then service, then the default route', () => {
    expect(r.match({ method: 'add', service: 'Calc' })).toBe('both');
    expect(r.match({ method: 'add', service: undefined })).toBe('method');
    expect(r.match({ method: 'add', service: 'Other' })).toBe('method');
    expect(r.match({ method: 'div', service: 'Calc' })).toBe('svc');
    expect(r.match({ method: 'mul', service: 'Calc' })).toBe('multiplexed');
    expect(r.match({ method: 'mul', service: undefined })).toBe('default');
    expect(r.match({ method: 'other', service: undefined })).toBe('default');
  });

  it('answers undefined when no route matches and there is no default', () => {
    const strict = router([route('only', ['only'])]);
    expect(strict.match({ method: 'only', service: undefined })).toBe('only');
    expect(strict.match({ method: 'other', service: 'Any' })).toBeUndefined();
  });

  it('names the one route every call takes (only) when the routes match on nothing but a default', () => {
    expect(router([route('default'), route('second default')]).only).toBe('default');
    expect(r.only).toBeUndefined();
    expect(router([route('only', ['only'])]).only).toBeUndefined();
    expect(router([route('svc', undefined, 'Calc'), route('default')]).only).toBeUndefined();
    expect(router([route('hdr', undefined, undefined, { k: 'v' }), route('default')]).only).toBeUndefined();
    expect(router([]).only).toBeUndefined();
  });
});

describe('thrift routes by header values', () => {
  const r = router([
    route('both', ['add'], 'Calc'),
    route('gold', undefined, undefined, { tenant: 'gold' }),
    route('gold calc mul', ['Calc:mul'], undefined, { tenant: 'gold', zone: 'a' }),
    route('canary calc', undefined, 'Calc', { canary: '1' }),
    route('default'),
  ]);
  const headers = (h: Record<string, string>) => new Map(Object.entries(h));

  it('takes a header route first, in config order, when all its conditions hold', () => {
    expect(r.match({ method: 'add', service: 'Calc', headers: headers({ tenant: 'gold' }) })).toBe('gold');
    expect(r.match({ method: 'add', service: 'Calc', headers: headers({ canary: '1' }) })).toBe(
      'canary calc',
    );
    expect(r.match({ method: 'add', service: 'Other', headers: headers({ canary: '1' }) })).toBe('default');
    expect(r.match({ method: 'add', service: 'Calc', headers: headers({ tenant: 'silver' }) })).toBe('both');
    expect(r.match({ method: 'add', service: 'Calc' })).toBe('both');
  });

  it('needs every named header with its value, and the route method and service', () => {
    const only = router([
      route('mul', ['Calc:mul'], undefined, { tenant: 'gold', zone: 'a' }),
      route('default'),
    ]);
    expect(
      only.match({ method: 'mul', service: 'Calc', headers: headers({ tenant: 'gold', zone: 'a' }) }),
    ).toBe('mul');
    expect(only.match({ method: 'mul', service: 'Calc', headers: headers({ tenant: 'gold' }) })).toBe(
      'default',
    );
    expect(
      only.match({ method: 'mul', service: 'Calc', headers: headers({ tenant: 'gold', zone: 'b' }) }),
    ).toBe('default');
    expect(
      only.match({ method: 'add', service: 'Calc', headers: headers({ tenant: 'gold', zone: 'a' }) }),
    ).toBe('default');
  });

  it('sees the headers of a decoded frame through callTarget', () => {
    const target = callTarget(frame('add', { headers: headers({ tenant: 'gold' }) }), 'add');
    expect(r.match(target)).toBe('gold');
  });
});

describe('thrift routes by TTHeader integer header values', () => {
  const intRoute = (name: string, match: [number, string][], methods?: string[]) => {
    const config: ThriftRouteConfig = {
      methods,
      service: undefined,
      loadBalancer: 'first',
      upstreams: [],
      matchIntHeaders: new Map(match),
    };
    names.set(config, name);
    return config;
  };
  const r = router([
    route('by method', ['Charge']),
    intRoute('to payments', [[TTHeaderIntKey.TO_SERVICE, 'payments']]),
    intRoute('stress charge', [[TTHeaderIntKey.STRESS_TAG, '1']], ['Charge']),
    intRoute('mixed', [[TTHeaderIntKey.TO_CLUSTER, 'canary']]),
    route('default'),
  ]);
  const ints = (entries: [number, string][]) => new Map(entries);

  it('takes an integer-header route when every key it names has its value', () => {
    const call = (intHeaders: Map<number, string>, method = 'Charge') =>
      r.match({ method, service: undefined, intHeaders });
    expect(call(ints([[TTHeaderIntKey.TO_SERVICE, 'payments']]))).toBe('to payments');
    expect(call(ints([[TTHeaderIntKey.TO_SERVICE, 'orders']]))).toBe('by method');
    expect(call(ints([[TTHeaderIntKey.STRESS_TAG, '1']]))).toBe('stress charge');
    expect(call(ints([[TTHeaderIntKey.STRESS_TAG, '1']]), 'Refund')).toBe('default');
    expect(call(ints([[TTHeaderIntKey.TO_CLUSTER, 'canary']]), 'Refund')).toBe('mixed');
    expect(r.match({ method: 'Refund', service: undefined })).toBe('default');
  });

  it('never takes a string header for an integer one', () => {
    const call = r.match({
      method: 'Refund',
      service: undefined,
      headers: new Map([[String(TTHeaderIntKey.TO_CLUSTER), 'canary']]),
      intHeaders: new Map(),
    });
    expect(call).toBe('default');
  });

  it('needs both kinds when a route names both', () => {
    const both: ThriftRouteConfig = {
      methods: undefined,
      service: undefined,
      loadBalancer: 'first',
      upstreams: [],
      matchHeaders: new Map([['tenant', 'gold']]),
      matchIntHeaders: new Map([[TTHeaderIntKey.TO_METHOD, 'Charge']]),
    };
    names.set(both, 'both kinds');
    const only = router([both, route('default')]);
    const tenant = new Map([['tenant', 'gold']]);
    const method = new Map([[TTHeaderIntKey.TO_METHOD, 'Charge']]);
    expect(only.match({ method: 'x', service: undefined, headers: tenant, intHeaders: method })).toBe(
      'both kinds',
    );
    expect(only.match({ method: 'x', service: undefined, headers: tenant, intHeaders: new Map() })).toBe(
      'default',
    );
    expect(only.match({ method: 'x', service: undefined, headers: new Map(), intHeaders: method })).toBe(
      'default',
    );
  });

  it('sees the integer headers of a decoded TTHeader frame through callTarget', () => {
    const target = callTarget(
      frame('Charge', { intHeaders: ints([[TTHeaderIntKey.TO_SERVICE, 'payments']]) }),
      'Charge',
    );
    expect(r.match(target)).toBe('to payments');
  });
});
