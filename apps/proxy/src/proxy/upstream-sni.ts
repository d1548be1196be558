/**
 * Upstream SNI from the request's Host (`tls = { server_name_from = "host" }` on an https
 * upstream, like Envoy's auto_sni with auto_san_validation, or nginx's `proxy_ssl_name $host`):
 * the name sent in SNI and verified against the upstream's certificate is the Host the client
 * asked for, and the connector key carries it, so a connection verified for a.com never carries
 * a request for b.com (@loch/transports pools by Endpoint.id, which includes the SNI name). Not
 * for the default policy (the endpoint's own name, compiled once per route: route.ts).
 *
 * A Host that is an IP literal, empty or not a DNS name keeps the endpoint's name (SNI carries
 * DNS names only, RFC 6066 §3). The derived keys are cached per upstream, at most
 * MAX_NAMES_PER_UPSTREAM names (the oldest goes first), so Host values a client invents cost a
 * handshake (that fails verification) but no unbounded memory.
 */
import { endpoint as makeEndpoint } from '@loch/transports';
import type { UpstreamEndpoint } from './route.js';

/** Distinct Host names remembered per upstream before the oldest is forgotten. */
export const MAX_NAMES_PER_UPSTREAM = 256;

/** A DNS name as SNI carries it: LDH labels, no trailing dot, at most 253 characters. */
const DNS_NAME =
  /^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

const derived = new WeakMap<UpstreamEndpoint, Map<string, UpstreamEndpoint>>();

/** The host name of a Host value (`name[:port]`), lowercased; null when it is no DNS name. */
export function sniNameOf(host: string | undefined): string | null {
  if (host === undefined || host === '' || host.startsWith('[')) return null;
  const colon = host.indexOf(':');
  let name = (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (IPV4.test(name) || !DNS_NAME.test(name)) return null;
  return name;
}

/**
 * The connector key for a request with Host `host` to upstream `routed`: `routed` itself unless
 * its policy is server_name_from = "host" and the Host is a DNS name; then the same upstream with
 * that SNI name (and pool key).
 */
export function endpointForHost(routed: UpstreamEndpoint, host: string | undefined): UpstreamEndpoint {
  const address = routed.upstream.address;
  if (address.kind !== 'tcp' || address.tls?.serverNameFrom !== 'host' || routed.tls === undefined)
    return routed;
  const name = sniNameOf(host);
  if (name === null || name === routed.tls.serverName) return routed;
  let names = derived.get(routed);
  if (names === undefined) {
    names = new Map();
    derived.set(routed, names);
  }
  const known = names.get(name);
  if (known !== undefined) return known;
  const tls = routed.tls;
  const base = makeEndpoint({
    scheme: 'https',
    host: address.host,
    port: address.port,
    authority: routed.authority,
    serverName: name,
    alpn: tls.alpn,
    verify: tls.verify,
    ca: tls.ca,
  });
  // Everything else (the upstream, its health group and index) stays the routed upstream's.
  const next: UpstreamEndpoint = Object.freeze({ ...routed, id: base.id, tls: base.tls });
  if (names.size >= MAX_NAMES_PER_UPSTREAM) names.delete(names.keys().next().value!);
  names.set(name, next);
  return next;
}
