import { describe, expect, it } from 'vitest';
import { TrustedPeers, trustedPeerProblem } from './trusted-peers.js';

describe('TrustedPeers', () => {
  const peers = new TrustedPeers(['10.0.0.0/8', '192.168.1.10', '2001:db8::/32', '::1']);
  const ip = (address: string) =>
    ({ family: address.includes(':') ? 'ipv6' : 'ipv4', address, port: 1 }) as const;

  it('matches addresses and ranges of both families, IPv4-mapped peers by their IPv4 range', () => {
    expect(peers.has(ip('10.200.0.1'))).toBe(true);
    expect(peers.has(ip('192.168.1.10'))).toBe(true);
    expect(peers.has(ip('192.168.1.11'))).toBe(false);
    expect(peers.has(ip('11.0.0.1'))).toBe(false);
    expect(peers.has(ip('2001:db8:ffff::1'))).toBe(true);
    expect(peers.has(ip('2001:db9::1'))).toBe(false);
    expect(peers.has(ip('::1'))).toBe(true);
    expect(peers.has(ip('::ffff:10.1.2.3'))).toBe(true);
    expect(peers.has(ip('::ffff:11.1.2.3'))).toBe(false);
  });

  it('trusts a Unix-socket peer (only local processes reach it)', () => {
    expect(new TrustedPeers([]).has({ family: 'unix', path: '' })).toBe(true);
  });

  it('names entries that are not addresses or ranges', () => {
    expect(trustedPeerProblem('10.0.0.0/8')).toBeUndefined();
    expect(trustedPeerProblem('::/0')).toBeUndefined();
    expect(trustedPeerProblem('10.0.0.0/33')).toMatch(/0 to 32/);
    expect(trustedPeerProblem('::/129')).toMatch(/0 to 128/);
    expect(trustedPeerProblem('10.0.0.0/x')).toMatch(/prefix/);
    expect(trustedPeerProblem('lb.internal')).toMatch(/not an IP address/);
  });
});
