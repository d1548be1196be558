/**
 * Connectors: `Connector<Key, Conn>` turns a key into a connection, and connectors stack by
 * composition (monoio-transports' design): TcpConnector and UnixConnector at the bottom,
 * UnifiedL4Connector choosing between them by the key's address, and protocol connectors
 * (HttpConnector, later TLS) wrapping any L4 connector. Failures are typed ConnectErrors.
 * Not for pooling (pool.ts) or HTTP (http-connector.ts).
 */
import { type ByteStream, type Runtime, RuntimeError, TcpStream, UnixStream } from '@loch/uring-runtime';
import { AbortedError, ConnectError, InvalidAddressError, type TransportError } from './errors.js';
import { endpoint, formatL4Address, type L4Address, parseL4Address } from './key.js';

/** Per-connect options. */
export interface ConnectOptions {
  /** Cancels the attempt (AbortedError). */
  readonly signal?: AbortSignal | undefined;
  /** Connect deadline in ms (ConnectError ERR_TRANSPORT_CONNECT_TIMEOUT); overrides the connector's default. */
  readonly timeout?: number | undefined;
}

/**
 * Makes connections of type `Conn` for keys of type `Key`. Implementations reject with a
 * TransportError (ConnectError, AbortedError...), never with a bare runtime error.
 */
export interface Connector<Key, Conn> {
  connect(key: Key, options?: ConnectOptions): Promise<Conn>;
}

/** Keys with an `address` (an Endpoint is one); every L4 connector accepts them. */
export interface L4Target {
  readonly address: L4Address;
}

/** What a TcpConnector accepts: `{ host, port }`, or a key whose `address` is TCP. */
export type TcpTarget = { readonly host: string; readonly port: number } | L4Target;

/** What a UnixConnector accepts: `{ path }`, or a key whose `address` is Unix. */
export type UnixTarget = { readonly path: string } | L4Target;

function tcpOf(key: TcpTarget): { readonly host: string; readonly port: number } {
  if (!('address' in key)) return key;
  if (key.address.kind !== 'tcp')
    throw new InvalidAddressError(`TcpConnector cannot connect to ${formatL4Address(key.address)}`);
  return key.address;
}

function unixOf(key: UnixTarget): { readonly path: string } {
  if (!('address' in key)) return key;
  if (key.address.kind !== 'unix')
    throw new InvalidAddressError(`UnixConnector cannot connect to ${formatL4Address(key.address)}`);
  return key.address;
}

/** Options shared by the L4 connectors. */
export interface L4ConnectorOptions {
  /** Default connect deadline in ms; 0 = none. Default 10 s. */
  readonly timeout?: number;
  /** The runtime (driver) to connect with; default the thread's current runtime. */
  readonly runtime?: Runtime;
}

/** Options of TcpConnector. */
export interface TcpConnectorOptions extends L4ConnectorOptions {
  /** TCP_NODELAY on new streams. Default true. */
  readonly noDelay?: boolean;
}

/** Maps a connect failure to a TransportError (refused 502, timeout 504, other errno 502, abort). */
export function connectError(
  error: unknown,
  address: string,
  signal: AbortSignal | undefined,
): TransportError {
  if (signal?.aborted)
    return new AbortedError('ERR_TRANSPORT_ABORTED', 'connect', 'connect aborted', {
      cause: signal.reason,
      address,
    });
  const code = error instanceof RuntimeError ? error.code : (error as { code?: unknown })?.code;
  if (code === 'ECONNREFUSED')
    return new ConnectError('ERR_TRANSPORT_CONNECT_REFUSED', 'connect', 'connection refused', {
      cause: error,
      address,
    });
  if (code === 'ETIMEDOUT')
    return new ConnectError('ERR_TRANSPORT_CONNECT_TIMEOUT', 'connect', 'connect timed out', {
      cause: error,
      address,
    });
  const what = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
  return new ConnectError('ERR_TRANSPORT_CONNECT_FAILED', 'connect', `connect failed: ${what}`, {
    cause: error,
    address,
  });
}

function deadline(options: ConnectOptions | undefined, fallback: number): number | undefined {
  const ms = options?.timeout ?? fallback;
  return ms > 0 ? ms : undefined;
}

/** Connects TCP streams to `{ host, port }` (or a key's TCP `address`). */
export class TcpConnector implements Connector<TcpTarget, TcpStream> {
  readonly #timeout: number;
  readonly #noDelay: boolean;
  readonly #runtime: Runtime | undefined;

  constructor(options: TcpConnectorOptions = {}) {
    this.#timeout = options.timeout ?? 10_000;
    this.#noDelay = options.noDelay ?? true;
    this.#runtime = options.runtime;
  }

  async connect(target: TcpTarget, options?: ConnectOptions): Promise<TcpStream> {
    const key = tcpOf(target);
    const signal = options?.signal;
    if (signal?.aborted) throw connectError(undefined, `${key.host}:${key.port}`, signal);
    try {
      return await TcpStream.connect({
        host: key.host,
        port: key.port,
        timeout: deadline(options, this.#timeout),
        noDelay: this.#noDelay,
        signal,
        runtime: this.#runtime,
      });
    } catch (error) {
      throw connectError(error, formatL4Address({ kind: 'tcp', host: key.host, port: key.port }), signal);
    }
  }
}

/** Connects Unix domain streams to `{ path }` (or a key's Unix `address`). */
export class UnixConnector implements Connector<UnixTarget, UnixStream> {
  readonly #timeout: number;
  readonly #runtime: Runtime | undefined;

  constructor(options: L4ConnectorOptions = {}) {
    this.#timeout = options.timeout ?? 10_000;
    this.#runtime = options.runtime;
  }

  async connect(target: UnixTarget, options?: ConnectOptions): Promise<UnixStream> {
    const key = unixOf(target);
    const signal = options?.signal;
    if (signal?.aborted) throw connectError(undefined, `unix:${key.path}`, signal);
    try {
      return await UnixStream.connect({
        path: key.path,
        timeout: deadline(options, this.#timeout),
        signal,
        runtime: this.#runtime,
      });
    } catch (error) {
      throw connectError(error, `unix:${key.path}`, signal);
    }
  }
}

/**
 * What a UnifiedL4Connector accepts: a key with an `address` (an Endpoint), an L4Address, or a
 * string: a URL (`http://h:p`, `https://h`, `unix:/path`, `http://unix:/path:`) or an address
 * (`host:port`, `[v6]:port`, `tcp://h:p`, `/path`).
 */
export type UnifiedTarget = L4Target | L4Address | string;

/** The L4 address a UnifiedTarget names. Throws InvalidAddressError for a string it cannot parse. */
export function l4AddressOf(target: UnifiedTarget): L4Address {
  if (typeof target === 'string')
    return /^[a-z][a-z0-9+.-]*:\/\//i.test(target) && !target.startsWith('tcp://')
      ? endpoint(target).address
      : parseL4Address(target);
  return 'address' in target ? target.address : target;
}

/** Connects TCP or Unix by the target's address, through the two connectors it is built from. */
export class UnifiedL4Connector implements Connector<UnifiedTarget, ByteStream> {
  readonly tcp: Connector<{ readonly host: string; readonly port: number }, ByteStream>;
  readonly unix: Connector<{ readonly path: string }, ByteStream>;

  /** Builds default Tcp/Unix connectors from `options`, or uses the given ones. */
  constructor(
    options: TcpConnectorOptions & {
      readonly tcpConnector?: Connector<{ readonly host: string; readonly port: number }, ByteStream>;
      readonly unixConnector?: Connector<{ readonly path: string }, ByteStream>;
    } = {},
  ) {
    this.tcp = options.tcpConnector ?? new TcpConnector(options);
    this.unix = options.unixConnector ?? new UnixConnector(options);
  }

  async connect(target: UnifiedTarget, options?: ConnectOptions): Promise<ByteStream> {
    const address = l4AddressOf(target);
    return address.kind === 'unix' ? this.unix.connect(address, options) : this.tcp.connect(address, options);
  }
}
