/**
 * Header hygiene for forwarding, per RFC 9110 §7.6: hop-by-hop fields (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate,
 * Proxy-Authorization) and every field the Connection header names are removed, in both
 * directions; X-Forwarded-For/-Proto/-Host and Via are added to requests, Via to responses.
 * On a decoded head the removal compares the known-name ids the decoder assigned and reads
 * Connection values as bytes, so a message without any hop-by-hop field costs one scan of small
 * integers, no string and no allocation; what is left is forwarded as byte ranges. The one
 * exception is a protocol upgrade the server allows (WebSocket): its request keeps Upgrade and
 * `Connection: upgrade` (upgradeToForward, keepUpgrade), the upstream's 101 keeps Upgrade.
 * Not for routing decisions or the Host policy (route.ts, upstream.ts).
 */
import { HeaderName, HeaderNameSet, type HttpHeaders, type HttpRequest, type HttpVersion } from '@loch/http';
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
  clientCert: string | undefined = undefined,
): void {
  const client = forwardedFor(peer);
  // Which of the four the client sent, in one pass over its fields. Most requests carry none:
  // each is then appended, without a delete pass (and no array).
  const found = headers.presence(FORWARDING);
  // The verified client certificate is this hop's to state: a client's own copy never passes.
  if ((found & HAS_CLIENT_CERT) !== 0) headers.delete(CLIENT_CERT);
  if (clientCert !== undefined) headers.append(CLIENT_CERT, clientCert);
  if ((found & HAS_FOR) === 0) headers.append(X_FORWARDED_FOR, client);
  else headers.set(X_FORWARDED_FOR, `${headers.getAll(X_FORWARDED_FOR).join(', ')}, ${client}`);
  if ((found & HAS_PROTO) !== 0) headers.set(X_FORWARDED_PROTO, scheme);
  else headers.append(X_FORWARDED_PROTO, scheme);
  if (clientHost !== undefined) {
    if ((found & HAS_HOST) !== 0) headers.set(X_FORWARDED_HOST, clientHost);
    else headers.append(X_FORWARDED_HOST, clientHost);
  }
  headers.append(VIA, viaValue(version));
}

/**
 * The header carrying the verified client certificate upstream (Envoy's XFCC name and value
 * shape: `Hash=<sha256 of the DER>;Subject="<subject>"`), for listeners that verify client
 * certificates and say `forward_client_certificate = true`. Inbound copies are always removed.
 */
export const CLIENT_CERT_HEADER = 'x-forwarded-client-cert';

// The names this module reads or adds on every request and response, resolved once.
const CLIENT_CERT = new HeaderName(CLIENT_CERT_HEADER);
const X_FORWARDED_FOR = new HeaderName('x-forwarded-for');
const X_FORWARDED_PROTO = new HeaderName('x-forwarded-proto');
const X_FORWARDED_HOST = new HeaderName('x-forwarded-host');
const VIA = new HeaderName('via');
/** The fields addForwardingHeaders replaces or extends, and their bits in `presence()`'s answer. */
const FORWARDING = new HeaderNameSet([
  CLIENT_CERT_HEADER,
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);
const HAS_CLIENT_CERT = 1;
const HAS_FOR = 2;
const HAS_PROTO = 4;
const HAS_HOST = 8;

const VIA_1_0 = `1.0 ${VIA_NAME}`;
const VIA_1_1 = `1.1 ${VIA_NAME}`;
const VIA_2 = `2 ${VIA_NAME}`;

/** This hop's Via entry for a message of `version` (constant strings, no allocation). */
function viaValue(version: HttpVersion): string {
  return version === '1.0' ? VIA_1_0 : version === '2' ? VIA_2 : VIA_1_1;
}

/**
 * Cleans a response coming back from upstream: hop-by-hop fields out, this hop into Via. A 101
 * keeps its Upgrade (the protocol switched to; the server writes `connection: upgrade` itself):
 * it only ever answers an upgrade this proxy let through.
 */
export function cleanResponseHeaders(headers: HttpHeaders, version: HttpVersion, status = 200): void {
  const upgrade = status === 101 ? headers.get('upgrade') : undefined;
  removeHopByHop(headers);
  if (upgrade !== undefined) headers.append('upgrade', upgrade);
  headers.append(VIA, viaValue(version));
}

/**
 * The protocol names an Upgrade value lists, lowercase, without versions
 * (`WebSocket, foo/2` -> `websocket`, `foo`); empty elements are skipped.
 */
export function upgradeProtocols(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const slash = p.indexOf('/');
    out.push((slash < 0 ? p : p.slice(0, slash)).toLowerCase());
  }
  return out;
}

/** Whether a Connection value has the `upgrade` token (case-insensitive). */
const CONNECTION_UPGRADE = /(?:^|,)[ \t]*upgrade[ \t]*(?:,|$)/i;

/**
 * The Upgrade value to forward with `request`, or null when its upgrade is not let through (the
 * fields are then removed like any hop-by-hop field and the request goes on as plain HTTP).
 * Let through: an HTTP/1.1 request without a body (the server switches only those) and not
 * CONNECT, with `upgrade` in Connection and one Upgrade field whose protocols are all in
 * `allowed` (lowercase names). h2c never is (loch speaks HTTP/2 to upstreams itself, and a
 * tunnelled h2c would hide every request on it from the proxy).
 */
export function upgradeToForward(request: HttpRequest, allowed: ReadonlySet<string>): string | null {
  const headers = request.headers;
  if (allowed.size === 0 || request.version !== '1.1' || request.method === 'CONNECT') return null;
  if (request.body.kind !== 'empty') return null;
  const values = headers.getAll('upgrade');
  if (values.length !== 1) return null;
  if (!headers.getAll('connection').some((c) => CONNECTION_UPGRADE.test(c))) return null;
  const value = values[0]!.trim();
  const protocols = upgradeProtocols(value);
  if (protocols.length === 0) return null;
  for (const p of protocols) if (p === 'h2c' || !allowed.has(p)) return null;
  return value;
}

/** Puts an allowed upgrade back after the hop-by-hop removal: `Connection: upgrade` and Upgrade. */
export function keepUpgrade(headers: HttpHeaders, value: string): void {
  headers.append('connection', 'upgrade');
  headers.append('upgrade', value);
}
