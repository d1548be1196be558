/**
 * Destinations: the L4 address (TCP host:port or a Unix socket path) and the `Endpoint` key that
 * connectors and the pool share. An Endpoint carries everything that makes two connections
 * differ (scheme, address, Host authority, TLS server name and ALPN) and a stable `id` built
 * from exactly that, so a TlsConnector and HTTP/2 fit later without changing callers.
 * Not for routing or load balancing: a key names one upstream.
 */
import { InvalidAddressError } from './errors.js';
import type { PoolKey } from './pool.js';

/** A TCP destination. `host` may be a name (resolved by the runtime) or an IP literal. */
export interface TcpAddress {
  readonly kind: 'tcp';
  readonly host: string;
  readonly port: number;
}

/** A Unix domain socket destination. */
export interface UnixAddress {
  readonly kind: 'unix';
  readonly path: string;
}

/** Where an L4 connector connects: TCP or Unix. */
export type L4Address = TcpAddress | UnixAddress;

/** TLS parameters of an endpoint (used by a TlsConnector; plain connectors ignore them). */
export interface TlsParams {
  /** Server name sent in SNI and checked against the certificate. */
  readonly serverName: string;
  /** ALPN protocols offered, most preferred first. */
  readonly alpn: readonly string[];
  /** Verify the server's certificate and name (default true; false only by explicit choice). */
  readonly verify: boolean;
  /** The CA bundle the certificate must chain to: a PEM file path, or 'system'. */
  readonly ca: string;
}

/** The scheme spoken over the connection. */
export type EndpointScheme = 'http' | 'https';

/** A destination key: what to connect to and how. Endpoints with equal `id`s share pooled connections. */
export interface Endpoint extends PoolKey {
  /** `scheme://address|authority|tls` — stable, built from the fields below. */
  readonly id: string;
  readonly scheme: EndpointScheme;
  readonly address: L4Address;
  /** Host header sent when a request has none (`host[:port]`). */
  readonly authority: string;
  /** TLS parameters for `https`, undefined for cleartext. */
  readonly tls: TlsParams | undefined;
}

/** Fields to build an Endpoint from (see {@link endpoint}). */
export interface EndpointInit {
  readonly scheme?: EndpointScheme;
  /** TCP host (name or IP). Either this or `unixPath`. */
  readonly host?: string;
  /** TCP port; default 80 for http, 443 for https. */
  readonly port?: number;
  /** Unix socket path. */
  readonly unixPath?: string;
  /** Host header; default `host[:port]` (port omitted when default), `localhost` for Unix. */
  readonly authority?: string;
  /** TLS server name; default the host (https only). */
  readonly serverName?: string;
  /** ALPN protocols; default ['http/1.1'] (https only). */
  readonly alpn?: readonly string[];
  /** Verify the server (https only); default true. */
  readonly verify?: boolean;
  /** CA bundle: a PEM file path or 'system' (the default) (https only). */
  readonly ca?: string;
}

const DEFAULT_PORT: Record<EndpointScheme, number> = { http: 80, https: 443 };

/** Formats an L4 address: `host:port`, `[v6]:port`, `unix:/path`. */
export function formatL4Address(address: L4Address): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function checkPort(port: number, input: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new InvalidAddressError(`invalid port in ${JSON.stringify(input)}`);
  return port;
}

/**
 * Parses an L4 address: `host:port`, `[::1]:port`, `tcp://host:port`, `unix:/path`,
 * `unix:///path` or an absolute path (Unix).
 */
export function parseL4Address(input: string): L4Address {
  if (input.startsWith('/')) return { kind: 'unix', path: input };
  if (input.startsWith('unix:')) {
    const path = input.slice(5).replace(/^\/\/(?=\/)/, '');
    if (!path.startsWith('/') && !path.startsWith('.'))
      throw new InvalidAddressError(`unix address needs a path: ${JSON.stringify(input)}`);
    return { kind: 'unix', path };
  }
  const rest = input.startsWith('tcp://') ? input.slice(6).replace(/\/$/, '') : input;
  const m = /^(?:\[([^\]]+)\]|([^:/[\]]+)):(\d+)$/.exec(rest);
  if (m === null)
    throw new InvalidAddressError(`expected host:port or unix:/path, got ${JSON.stringify(input)}`);
  return { kind: 'tcp', host: m[1] ?? m[2]!, port: checkPort(Number(m[3]), input) };
}

/**
 * Builds an Endpoint from a URL (`http://host:port`, `https://host`, `http://unix:/path.sock`,
 * `unix:/path.sock`), or from fields. Throws InvalidAddressError for anything else.
 */
export function endpoint(input: string | URL | EndpointInit): Endpoint {
  if (typeof input !== 'string' && !(input instanceof URL)) return fromInit(input);
  const text = String(input);
  if (text.startsWith('unix:') || text.startsWith('/')) {
    const address = parseL4Address(text);
    return fromInit({ scheme: 'http', unixPath: (address as UnixAddress).path });
  }
  // nginx's form for Unix upstreams: http://unix:/path/to.sock (path up to an optional ':').
  const unix = /^(https?):\/\/unix:(\/[^:]*)(?::.*)?$/.exec(text);
  if (unix !== null) return fromInit({ scheme: unix[1] as EndpointScheme, unixPath: unix[2]! });
  let url: URL;
  try {
    url = input instanceof URL ? input : new URL(text);
  } catch {
    throw new InvalidAddressError(`not a URL: ${JSON.stringify(text)}`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https')
    throw new InvalidAddressError(
      `unsupported scheme ${JSON.stringify(url.protocol)} in ${JSON.stringify(text)}`,
    );
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new InvalidAddressError(`URL has no host: ${JSON.stringify(text)}`);
  return fromInit({ scheme, host, port: url.port === '' ? DEFAULT_PORT[scheme] : Number(url.port) });
}

function fromInit(init: EndpointInit): Endpoint {
  const scheme = init.scheme ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') throw new InvalidAddressError(`unsupported scheme ${scheme}`);
  let address: L4Address;
  let authority: string;
  if (init.unixPath !== undefined) {
    if (init.host !== undefined) throw new InvalidAddressError('give host or unixPath, not both');
    if (init.unixPath === '') throw new InvalidAddressError('empty unixPath');
    address = { kind: 'unix', path: init.unixPath };
    authority = init.authority ?? 'localhost';
  } else {
    if (init.host === undefined || init.host === '')
      throw new InvalidAddressError('endpoint needs host or unixPath');
    const port = checkPort(init.port ?? DEFAULT_PORT[scheme], String(init.port));
    address = { kind: 'tcp', host: init.host, port };
    const h = init.host.includes(':') ? `[${init.host}]` : init.host;
    authority = init.authority ?? (port === DEFAULT_PORT[scheme] ? h : `${h}:${port}`);
  }
  const tls: TlsParams | undefined =
    scheme === 'https'
      ? {
          serverName: init.serverName ?? (address.kind === 'tcp' ? address.host : authority),
          alpn: Object.freeze([...(init.alpn ?? ['http/1.1'])]),
          verify: init.verify ?? true,
          ca: init.ca ?? 'system',
        }
      : undefined;
  // Everything that makes a TLS connection what it is: a connection verified for one name, CA
  // or ALPN offer never carries another's requests.
  const tlsId =
    tls === undefined
      ? ''
      : `|sni=${tls.serverName}|alpn=${tls.alpn.join(',')}|verify=${tls.verify ? 1 : 0}|ca=${tls.ca}`;
  return Object.freeze({
    id: `${scheme}://${formatL4Address(address)}|${authority}${tlsId}`,
    scheme,
    address: Object.freeze(address),
    authority,
    tls: tls === undefined ? undefined : Object.freeze(tls),
  });
}
