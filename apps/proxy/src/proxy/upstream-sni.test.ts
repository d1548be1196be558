import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { compileRoutes } from './route.js';
import { endpointForHost, MAX_NAMES_PER_UPSTREAM, sniNameOf } from './upstream-sni.js';

const routesOf = (tls: string) =>
  parseConfig(`
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = "https://10.0.0.1:8443", tls = ${tls} }]
`).servers[0]!.routes;

const routedOf = (tls: string) => compileRoutes(routesOf(tls)).match('x', '/')!.route.endpoints[0]!;

describe('upstream SNI from the Host', () => {
  it('takes DNS names from Host values, lowercased, without port or trailing dot', () => {
    expect(sniNameOf('A.Example.COM:8443')).toBe('a.example.com');
    expect(sniNameOf('a.example.com.')).toBe('a.example.com');
    expect(sniNameOf('localhost')).toBe('localhost');
    for (const bad of [
      undefined,
      '',
      '127.0.0.1',
      '[::1]:443',
      'a..b',
      '-a.com',
      'a b',
      'a/b',
      'x'.repeat(64),
    ])
      expect(sniNameOf(bad)).toBeNull();
  });

  it('keys a connection by the Host name, so names never share one; the endpoint policy ignores the Host', () => {
    const routed = routedOf('{ server_name_from = "host" }');
    const a = endpointForHost(routed, 'a.example.com');
    const b = endpointForHost(routed, 'b.example.com');
    expect(a.tls!.serverName).toBe('a.example.com');
    expect(b.tls!.serverName).toBe('b.example.com');
    expect(a.id).not.toBe(b.id);
    expect(a.id).not.toBe(routed.id);
    // The same name gives the same key (one pool), and the routed upstream's other fields stay.
    expect(endpointForHost(routed, 'A.example.com:8443')).toBe(a);
    expect(a.upstream).toBe(routed.upstream);
    expect(a.address).toEqual(routed.address);
    expect(a.tls!.verify).toBe(true);
    // No DNS name in the Host: the endpoint's own name.
    expect(endpointForHost(routed, '10.0.0.1:8443')).toBe(routed);
    const fixed = routedOf('{ server_name = "api.internal" }');
    expect(endpointForHost(fixed, 'b.example.com')).toBe(fixed);
    expect(fixed.tls!.serverName).toBe('api.internal');
  });

  it('remembers a bounded number of names per upstream', () => {
    const routed = routedOf('{ server_name_from = "host" }');
    const first = endpointForHost(routed, 'n0.example.com');
    for (let i = 1; i <= MAX_NAMES_PER_UPSTREAM; i++) endpointForHost(routed, `n${i}.example.com`);
    // The oldest was forgotten: a new key object (an equal id: the same pool).
    const again = endpointForHost(routed, 'n0.example.com');
    expect(again).not.toBe(first);
    expect(again.id).toBe(first.id);
  });

  it('refuses server_name together with server_name_from = "host"', () => {
    expect(() => routesOf('{ server_name = "a", server_name_from = "host" }')).toThrow(/not both/);
  });
});
