/**
 * Header hygiene for forwarding, per RFC 9110 §7.6: hop-by-hop fields (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate,
 * Proxy-Authorization) and every field the Connection header names are removed, in both
 * directions; X-Forwarded-For/-Proto/-Host and Via are added to requests, Via to responses.
 * On a decoded head the removal compares the known-name ids the decoder assigned and reads
 * Connection values as bytes, so a message without any hop-by-hop field costs one scan of small
 * integers, no string and no allocation; what is left is forwarded as byte ranges.
 * Not for routing decisions or the Host policy (route.ts, upstream.ts).
 */
import { HeaderNameSet, type HttpHeaders, type HttpVersion } from '@loch/http';
import type { SocketAddress } from '@loch/uring-runtime';

/** The fixed hop-by-hop field names this proxy removes (lowercase). */
export const HOP_BY_HOP: HeaderNameSet = new HeaderNameSet([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** The `received-by` pseudonym this proxy writes into Via. */
export const VIA_NAME = 'loch';

/** Fields this proxy removes beyond RFC 9110's hop-by-hop list: the proxy credentials. */
const PROXY_CREDENTIALS = new HeaderNameSet(['proxy-authenticate', 'proxy-authorization']);

/**
 * Removes hop-by-hop fields and every field named by a Connection field: HttpHeaders'
 * removeHopByHop (RFC 9110 §7.6.1, by known-name id) plus the proxy credentials.
 */
export function removeHopByHop(headers: HttpHeaders): void {
  headers.removeHopByHop(PROXY_CREDENTIALS);
}

/** The client address as X-Forwarded-For writes it (IPv6 without brackets; unix peers as "unix"). */
export function forwardedFor(peer: SocketAddress): string {
  return peer.family === 'unix' ? 'unix' : peer.address;
}

/**
 * Adds the forwarding fields to a request going upstream: appends the client to
 * X-Forwarded-For, sets X-Forwarded-Proto and X-Forwarded-Host (the Host the client asked
 * for), and appends this hop to Via.
 */
export function addForwardingHeaders(
  headers: HttpHeaders,
  peer: SocketAddress,
  scheme: string,
  clientHost: string | undefined,
  version: HttpVersion,
): void {
  const client = forwardedFor(peer);
  // Most requests carry none of these: append without a delete pass (and no array).
  if (!headers.has('x-forwarded-for')) headers.append('x-forwarded-for', client);
  else headers.set('x-forwarded-for', `${headers.getAll('x-forwarded-for').join(', ')}, ${client}`);
  if (headers.has('x-forwarded-proto')) headers.set('x-forwarded-proto', scheme);
  else headers.append('x-forwarded-proto', scheme);
  if (clientHost !== undefined) {
    if (headers.has('x-forwarded-host')) headers.set('x-forwarded-host', clientHost);
    else headers.append('x-forwarded-host', clientHost);
  }
  headers.append('via', viaValue(version));
}

const VIA_1_0 = `1.0 ${VIA_NAME}`;
const VIA_1_1 = `1.1 ${VIA_NAME}`;
const VIA_2 = `2 ${VIA_NAME}`;

/** This hop's Via entry for a message of `version` (constant strings, no allocation). */
function viaValue(version: HttpVersion): string {
  return version === '1.0' ? VIA_1_0 : version === '2' ? VIA_2 : VIA_1_1;
}

/** Cleans a response coming back from upstream: hop-by-hop fields out, this hop into Via. */
export function cleanResponseHeaders(headers: HttpHeaders, version: HttpVersion): void {
  removeHopByHop(headers);
  headers.append('via', viaValue(version));
}
