import type { SocketAddress } from '@loch/uring-runtime';
import { describe, expect, it } from 'vitest';
import { TrustedPeers } from '../config/trusted-peers.js';
import { forwardedAddress, forwardedClient } from './forwarded-client.js';

const ip = (address: string, port = 1): SocketAddress => ({
  family: address.includes(':') ? 'ipv6' : 'ipv4',
  address,
  port,
});

describe('forwardedClient (trusted_proxies, nginx real_ip_recursive)', () => {
  const trusted = new TrustedPeers(['10.0.0.0/8', '2001:db8:ffff::/48']);
  const client = (peer: SocketAddress, ...xff: string[]) => forwardedClient(peer, xff, trusted);

  it('an untrusted peer is the client, whatever X-Forwarded-For says', () => {
    expect(client(ip('198.51.100.7', 4000), '1.2.3.4')).toEqual(ip('198.51.100.7', 4000));
  });

  it('behind trusted peers: the first untrusted address from the right', () => {
    expect(client(ip('10.0.0.1'), '203.0.113.9')).toEqual(ip('203.0.113.9', 0));
    // A client that forges the left part gains nothing: the walk stops at the first untrusted.
    expect(client(ip('10.0.0.1'), '6.6.6.6, 203.0.113.9, 10.1.1.1')).toEqual(ip('203.0.113.9', 0));
    // Several fields count as one list, in order.
    expect(client(ip('10.0.0.1'), '6.6.6.6, 203.0.113.9', '10.2.2.2')).toEqual(ip('203.0.113.9', 0));
  });

  it('every hop trusted: the leftmost; an empty header: the peer', () => {
    expect(client(ip('10.0.0.1'), '10.9.9.9, 10.1.1.1')).toEqual(ip('10.9.9.9', 0));
    expect(client(ip('10.0.0.1', 7), '')).toEqual(ip('10.0.0.1', 7));
    expect(client(ip('10.0.0.1', 7))).toEqual(ip('10.0.0.1', 7));
  });

  it('stops at an entry that is not an address, keeping the last address read', () => {
    expect(client(ip('10.0.0.1'), '203.0.113.9, unknown, 10.1.1.1')).toEqual(ip('10.1.1.1', 0));
    expect(client(ip('10.0.0.1', 9), 'garbage')).toEqual(ip('10.0.0.1', 9));
  });

  it('reads IPv6 (bare and bracketed) and IPv4 with a port', () => {
    expect(client(ip('2001:db8:ffff::1'), '[2001:db8::5]:443')).toEqual(ip('2001:db8::5', 0));
    expect(client(ip('10.0.0.1'), '2001:db8::5')).toEqual(ip('2001:db8::5', 0));
    expect(client(ip('10.0.0.1'), '203.0.113.9:5555')).toEqual(ip('203.0.113.9', 0));
    expect(forwardedAddress('[::1')).toBeUndefined();
    expect(forwardedAddress('1.2.3.4.5')).toBeUndefined();
  });

  it('the chain as forwarded (this hop appended) gives the same client as the chain received', () => {
    const received = '6.6.6.6, 203.0.113.9';
    expect(client(ip('10.0.0.1'), `${received}, 10.0.0.1`)).toEqual(client(ip('10.0.0.1'), received));
  });

  it('reads at most 64 hops of trusted addresses', () => {
    const long = Array.from({ length: 100 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(', ');
    expect(client(ip('10.0.0.1'), `203.0.113.9, ${long}`)).toEqual(ip('10.0.0.36', 0));
  });
});
