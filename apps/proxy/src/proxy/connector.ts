/**
 * Upstream connections for the proxy: a narrow UpstreamConnector contract (acquire an HTTP/1.1
 * client for an upstream address, release it as reusable or not) and PooledHttpConnector, which
 * implements it with @loch/uring-runtime TCP/Unix streams, @loch/http's HttpClient and
 * @loch/transports' ConnectionPool. The proxy depends on the contract only, so the connector
 * of @loch/transports can replace this one without touching the service chain.
 * Not for choosing an upstream (route.ts, routing/balancer.ts) or classifying errors (errors.ts).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { HttpClient } from '@loch/http';
import { ConnectionPool, type PoolKey, type PoolStats } from '@loch/transports';
import { type ByteStream, TcpStream, UnixStream } from '@loch/uring-runtime';
import type { UpstreamAddress } from '../config/schema.js';

/** Deadlines of one upstream exchange, in ms (0 disables one). */
export interface UpstreamTimeouts {
  /** To establish a connection. */
  readonly connect: number;
  /** From the request head sent to the response head, and between response body reads. */
  readonly read: number;
}

/** A connection to an upstream, checked out of a connector. */
export interface UpstreamConnection {
  /** The HTTP/1.1 client over the connection: one exchange at a time. */
  readonly client: HttpClient;
  /** True when it came out of the idle pool (it may have been closed by the peer meanwhile). */
  readonly reused: boolean;
}

/** What the upstream layer needs from a connector. */
export interface UpstreamConnector {
  /**
   * An idle connection to `address`, or a new one. Rejects with the runtime's error (ECONNREFUSED,
   * ETIMEDOUT past `timeouts.connect`, ENOENT for a missing Unix socket...). With `fresh`, the
   * idle pool is skipped.
   */
  acquire(address: UpstreamAddress, timeouts: UpstreamTimeouts, fresh?: boolean): Promise<UpstreamConnection>;
  /** Hands a connection back: kept for reuse when `reusable` (and the client agrees), else closed. */
  release(connection: UpstreamConnection, reusable: boolean): void;
  /** Closes idle connections; active ones close when released. */
  close(): void;
  /** Pool counters. */
  stats(): PoolStats;
}

/** The pool key of an upstream address. */
export function upstreamKey(address: UpstreamAddress): string {
  return address.kind === 'unix' ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
}

class PooledConnection implements UpstreamConnection {
  reused = false;
  constructor(
    readonly client: HttpClient,
    readonly key: PoolKey,
  ) {}
  close(): Promise<void> {
    return this.client.close().catch(() => {});
  }
}

/** Options of PooledHttpConnector. */
export interface PooledHttpConnectorOptions {
  /** Idle connections kept per upstream. Default 64. */
  readonly maxIdlePerUpstream?: number;
  /** Idle connections older than this (ms) are closed. Default 30 s (below nginx's 75 s keep-alive). */
  readonly idleTimeout?: number;
}

/** UpstreamConnector over runtime streams with a per-upstream idle pool. */
export class PooledHttpConnector implements UpstreamConnector {
  readonly #pool: ConnectionPool<PoolKey, PooledConnection>;
  readonly #keys = new Map<string, PoolKey>();

  constructor(options: PooledHttpConnectorOptions = {}) {
    this.#pool = new ConnectionPool<PoolKey, PooledConnection>({
      maxIdlePerKey: options.maxIdlePerUpstream ?? 64,
      idleTimeout: options.idleTimeout ?? 30_000,
      isAlive: (c) => c.client.reusable,
    });
  }

  async acquire(
    address: UpstreamAddress,
    timeouts: UpstreamTimeouts,
    fresh = false,
  ): Promise<UpstreamConnection> {
    const id = upstreamKey(address);
    let key = this.#keys.get(id);
    if (key === undefined) this.#keys.set(id, (key = { id }));
    const idle = fresh ? undefined : this.#pool.acquire(key);
    if (idle !== undefined) {
      idle.reused = true;
      return idle;
    }
    const stream = await connect(address, timeouts.connect);
    const client = new HttpClient(stream, {
      authority: address.authority,
      responseTimeout: timeouts.read,
      bodyTimeout: timeouts.read,
      writeTimeout: timeouts.read,
    });
    const conn = new PooledConnection(client, key);
    this.#pool.created(key, conn);
    return conn;
  }

  release(connection: UpstreamConnection, reusable: boolean): void {
    const conn = connection as PooledConnection;
    this.#pool.release(conn.key, conn, reusable && conn.client.reusable);
  }

  close(): void {
    this.#pool.close();
  }

  stats(): PoolStats {
    return this.#pool.stats();
  }
}

async function connect(address: UpstreamAddress, timeout: number): Promise<ByteStream> {
  const t = timeout > 0 ? timeout : undefined;
  if (address.kind === 'unix') return UnixStream.connect({ path: address.path, timeout: t });
  let host = address.host;
  if (isIP(host) === 0) host = (await lookup(host)).address;
  return TcpStream.connect({ host, port: address.port, timeout: t });
}
