/**
 * The client behind trusted proxies (`trusted_proxies`), nginx's real_ip_recursive: when the
 * connection's peer is trusted, X-Forwarded-For is read from the right and the client is the
 * first address that is not trusted (every one trusted: the leftmost). An entry that is not an
 * address ends the walk at the last address read, so a forged or garbled left part never
 * becomes the client. Computed when a line is logged, and for the PROXY header sent to a
 * `send_proxy_protocol` upstream (upstream.ts), never otherwise on the forwarding path. Not for
 * building X-Forwarded-For (header-hygiene.ts): the chain forwarded upstream is the one
 * received plus this hop's peer, unchanged by this.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { SocketAddress } from '@loch/uring-runtime';
import type { TrustedPeers } from '../config/trusted-peers.js';

/** X-Forwarded-For entries read at most (a header of trusted hops longer than this is cut). */
const MAX_HOPS = 64;

/** An X-Forwarded-For entry as an address (port 0: XFF carries none), or undefined. */
export function forwardedAddress(entry: string): SocketAddress | undefined {
  let text = entry.trim();
  if (text.startsWith('[')) {
    // "[2001:db8::1]" or "[2001:db8::1]:443"
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    text = text.slice(1, close);
  } else if (text.indexOf(':') > 0 && text.indexOf(':') === text.lastIndexOf(':')) {
    // "192.0.2.1:443" (one colon: an IPv4 address with a port; IPv6 has several)
    text = text.slice(0, text.indexOf(':'));
  }
  if (isIPv4(text)) return { family: 'ipv4', address: text, port: 0 };
  if (isIPv6(text)) return { family: 'ipv6', address: text, port: 0 };
  return undefined;
}

/**
 * The client of a request that came from `peer` with these X-Forwarded-For field values (in
 * order received), given the trusted proxies: `peer` itself unless it is trusted.
 */
export function forwardedClient(
  peer: SocketAddress,
  forwardedFor: readonly string[],
  trusted: TrustedPeers,
): SocketAddress {
  if (!trusted.has(peer)) return peer;
  let client = peer;
  let hops = 0;
  for (let f = forwardedFor.length - 1; f >= 0; f--) {
    const entries = forwardedFor[f]!.split(',');
    for (let e = entries.length - 1; e >= 0; e--) {
      if (++hops > MAX_HOPS) return client;
      const entry = entries[e]!;
      if (entry.trim() === '') continue;
      const address = forwardedAddress(entry);
      if (address === undefined) return client;
      client = address;
      if (!trusted.has(address)) return address;
    }
  }
  return client;
}
