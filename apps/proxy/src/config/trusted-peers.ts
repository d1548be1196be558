/**
 * The peers a listener takes PROXY protocol headers from (`proxy_protocol_from`): IP addresses
 * and CIDR ranges, IPv4 and IPv6 (an IPv4-mapped IPv6 peer matches its IPv4 range). Built once
 * per server config in each worker (the config crosses to workers as plain data). Not for
 * X-Forwarded-For hops.
 */
import { BlockList, isIP } from 'node:net';
import type { SocketAddress } from '@loch/uring-runtime';

/** Why an entry of `proxy_protocol_from` is not an address or range, or undefined when it is. */
export function trustedPeerProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `"${entry}" is not an IP address or a range like "10.0.0.0/8"`;
  if (slash < 0) return undefined;
  const prefix = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max)
    return `"${entry}": the prefix length is 0 to ${max}`;
  return undefined;
}

/** A set of trusted peers; `has` answers for a connection's remote address. */
export class TrustedPeers {
  readonly #list = new BlockList();

  /** `entries` were checked with trustedPeerProblem (at config load). */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const address = slash < 0 ? entry : entry.slice(0, slash);
      const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) this.#list.addAddress(address, type);
      else this.#list.addSubnet(address, Number(entry.slice(slash + 1)), type);
    }
  }

  /** True for a listed peer; a Unix-socket peer is always trusted (only local processes reach it). */
  has(peer: SocketAddress): boolean {
    if (peer.family === 'unix') return true;
    return this.#list.check(peer.address, peer.family);
  }
}

const built = new WeakMap<readonly string[], TrustedPeers>();

/** The TrustedPeers of a config's list, built once per list object. */
export function trustedPeersOf(entries: readonly string[]): TrustedPeers {
  let peers = built.get(entries);
  if (peers === undefined) built.set(entries, (peers = new TrustedPeers(entries)));
  return peers;
}
