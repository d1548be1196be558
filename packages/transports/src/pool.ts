/**
 * ConnectionPool: idle connections kept per key for reuse, as monoio-transports' pool, with its
 * known faults fixed: a per-key idle cap, an idle timeout whose purge timer never keeps the
 * process alive, a liveness check before a connection is handed out again, LRU or FIFO reuse,
 * counters, and transfer of idle connections into the pool of a rebuilt service (hot reload).
 * Not for connecting: connectors (connector.ts) create connections and put them back here.
 * Not for connections that multiplex streams (HTTP/2, THeader Thrift): SharedConnectionPool
 * (shared-pool.ts) hands those to many callers at once.
 */

/** How a pool identifies a key. Keys with equal ids share idle connections. */
export interface PoolKey {
  /** Stable identity of the destination and everything that makes connections to it differ (TLS, ALPN...). */
  readonly id: string;
}

/** What the pool needs from a connection. */
export interface Poolable {
  /** Closes the connection; called when it is evicted. Must not throw. */
  close(): unknown;
}

/** Pool settings. */
export interface PoolOptions<C> {
  /** Most idle connections kept per key; more are closed when released. Default 32. */
  readonly maxIdlePerKey?: number;
  /** Idle connections older than this (ms) are closed. 0 keeps them until evicted. Default 60 s. */
  readonly idleTimeout?: number;
  /**
   * Which idle connection to reuse: 'lru' takes the most recently released (warm, and lets the
   * others age out), 'fifo' the oldest (spreads use across connections). Default 'lru'.
   */
  readonly reuse?: 'lru' | 'fifo';
  /** Cheap check that an idle connection is still usable (peer did not close it). Default: always. */
  readonly isAlive?: (conn: C) => boolean;
  /**
   * Clock, for tests: read on every hand-out and release. By default the pool reads Date.now()
   * once per purge tick (and when it starts ticking) instead, so idle ages are exact to one
   * tick (at most 1 s, or the idle timeout when shorter) and a request reads no clock here.
   */
  readonly now?: () => number;
}

/** Pool counters. `idle` and `active` are gauges; the rest only grow. */
export interface PoolStats {
  /** Connections waiting in the pool. */
  idle: number;
  /** Connections handed out and not yet released or discarded. */
  active: number;
  /** Connections registered as newly created. */
  created: number;
  /** Times an idle connection was handed out again. */
  reused: number;
  /** Idle connections closed by the pool: timeout, cap, failed liveness check, close(). */
  evicted: number;
}

/**
 * Idle connections of one key, oldest first, with the time each was released: two parallel
 * arrays, so releasing a connection allocates nothing (no entry object per release).
 */
class IdleList<C> {
  readonly conns: C[] = [];
  readonly since: number[] = [];

  get length(): number {
    return this.conns.length;
  }
  /**
   * Appends by index rather than with push(): TurboFan left the two push() calls as calls of
   * the builtin here (~115 instructions each, every release of a connection: the Thrift relay's
   * callgrind rows, bench/thrift/readings-2026-12-07b.md); a store one past the end grows the
   * array the same way, inline.
   */
  push(conn: C, since: number): void {
    const conns = this.conns;
    conns[conns.length] = conn;
    const times = this.since;
    times[times.length] = since;
  }
  /** Removes and returns the newest (LRU reuse). */
  pop(): C {
    this.since.pop();
    return this.conns.pop()!;
  }
  /** Removes and returns the oldest. */
  shift(): C {
    this.since.shift();
    return this.conns.shift()!;
  }
  removeAt(i: number): void {
    this.conns.splice(i, 1);
    this.since.splice(i, 1);
  }
}

/** Keeps idle connections per key and hands them out again. */
export class ConnectionPool<K extends PoolKey, C extends Poolable> {
  readonly #maxIdle: number;
  readonly #idleTimeout: number;
  readonly #lru: boolean;
  readonly #isAlive: (conn: C) => boolean;
  /** The injected clock, or null for the coarse one. */
  readonly #exactNow: (() => number) | null;
  /** Date.now() as of the last purge tick or arming: the coarse clock. */
  #coarseNow = Date.now();
  readonly #idle = new Map<string, IdleList<C>>();
  readonly #stats: PoolStats = { idle: 0, active: 0, created: 0, reused: 0, evicted: 0 };
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: PoolOptions<C> = {}) {
    this.#maxIdle = options.maxIdlePerKey ?? 32;
    this.#idleTimeout = options.idleTimeout ?? 60_000;
    this.#lru = (options.reuse ?? 'lru') === 'lru';
    this.#isAlive = options.isAlive ?? (() => true);
    this.#exactNow = options.now ?? null;
    if (!(this.#maxIdle >= 0)) throw new RangeError('maxIdlePerKey must be >= 0');
    if (!(this.#idleTimeout >= 0)) throw new RangeError('idleTimeout must be >= 0');
  }

  /**
   * Takes an idle connection for `key` that is alive and not timed out, or undefined. Dead or
   * expired ones met on the way are closed. The connection counts as active until `release`d
   * or `discard`ed.
   */
  acquire(key: K): C | undefined {
    const list = this.#idle.get(key.id);
    if (!list) return undefined;
    const now = this.#idleTimeout ? this.#now() : 0;
    while (list.length) {
      const since = this.#lru ? list.since[list.length - 1]! : list.since[0]!;
      const conn = this.#lru ? list.pop() : list.shift();
      this.#stats.idle--;
      if ((this.#idleTimeout && now - since >= this.#idleTimeout) || !this.#isAlive(conn)) {
        this.#evict(conn);
        continue;
      }
      // An emptied list stays (a busy key would otherwise drop and rebuild it on every
      // request); the purge removes lists that stay empty.
      this.#stats.active++;
      this.#stats.reused++;
      return conn;
    }
    return undefined;
  }

  /** Registers a connection the caller just created for `key`; it counts as active. */
  created(_key: K, _conn: C): void {
    this.#stats.created++;
    this.#stats.active++;
  }

  /**
   * Returns an active connection. `reusable` says whether the protocol left it clean (whole
   * response read, no Connection: close, no error); only then it is kept, within the cap.
   */
  release(key: K, conn: C, reusable: boolean): void {
    this.#stats.active--;
    if (!reusable || this.#closed || this.#maxIdle === 0) {
      this.#close(conn);
      return;
    }
    // No purge tick running means the coarse clock may be old: read the time once now.
    if (this.#timer === undefined && this.#idleTimeout && this.#exactNow === null)
      this.#coarseNow = Date.now();
    this.#putIdle(key.id, conn, this.#now());
  }

  /** The pool's time in ms: the injected clock, else the coarse one (no clock read). */
  #now(): number {
    return this.#exactNow === null ? this.#coarseNow : this.#exactNow();
  }

  /** Drops an active connection that must not be reused (closes it). Same as release(..., false). */
  discard(key: K, conn: C): void {
    this.release(key, conn, false);
  }

  #putIdle(id: string, conn: C, since: number): void {
    let list = this.#idle.get(id);
    if (!list) this.#idle.set(id, (list = new IdleList<C>()));
    list.push(conn, since);
    this.#stats.idle++;
    while (list.length > this.#maxIdle) {
      // Over the cap: the oldest goes.
      this.#stats.idle--;
      this.#evict(list.shift());
    }
    this.#armPurge();
  }

  /** A copy of the counters. */
  stats(): PoolStats {
    return { ...this.#stats };
  }

  /** Idle connections for one key (for tests and metrics). */
  idleCount(key: K): number {
    return this.#idle.get(key.id)?.length ?? 0;
  }

  /**
   * Removes one idle connection that was found dead while waiting (the peer closed it) and
   * closes it, counting an eviction. Returns false when it is not idle in this pool.
   */
  removeIdle(key: K, conn: C): boolean {
    const list = this.#idle.get(key.id);
    if (!list) return false;
    const i = list.conns.indexOf(conn);
    if (i < 0) return false;
    list.removeAt(i);
    if (!list.length) this.#idle.delete(key.id);
    this.#stats.idle--;
    this.#evict(conn);
    this.#disarmIfEmpty();
    return true;
  }

  /** Closes idle connections that have waited longer than the idle timeout. Returns how many. */
  purge(): number {
    if (!this.#idleTimeout) return 0;
    if (this.#exactNow === null) this.#coarseNow = Date.now();
    const now = this.#now();
    let n = 0;
    for (const [id, list] of this.#idle) {
      // Entries are in release order, so expired ones are at the front.
      while (list.length && now - list.since[0]! >= this.#idleTimeout) {
        this.#stats.idle--;
        this.#evict(list.shift());
        n++;
      }
      if (!list.length) this.#idle.delete(id);
    }
    return n;
  }

  /**
   * Moves every idle connection of `old` into this pool (oldest first, keeping their idle
   * age), for a service rebuilt from its predecessor on reload. `old` keeps its active
   * connections; when they are released there, they go idle in `old` and `old.close()` (once
   * the old service has drained) closes them. Connections over this pool's cap are closed.
   * `onAdopt` sees each connection kept (a connector re-points it at its new owner). Returns
   * how many were kept.
   */
  adoptIdleFrom(old: ConnectionPool<K, C>, onAdopt?: (conn: C) => void): number {
    if (old === this) return 0;
    let kept = 0;
    for (const [id, list] of old.#idle) {
      for (let i = 0; i < list.length; i++) {
        const conn = list.conns[i]!;
        old.#stats.idle--;
        if (this.#closed) this.#close(conn);
        else {
          onAdopt?.(conn);
          this.#putIdle(id, conn, list.since[i]!);
          kept++;
        }
      }
    }
    old.#idle.clear();
    old.#disarmIfEmpty();
    return kept;
  }

  /** Closes every idle connection and refuses to keep more; active ones close on release. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const conn of list.conns) this.#evict(conn);
    this.#stats.idle = 0;
    this.#idle.clear();
    this.#disarmIfEmpty();
  }

  #evict(conn: C): void {
    this.#stats.evicted++;
    this.#close(conn);
  }

  #close(conn: C): void {
    try {
      const r = conn.close();
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // closing a connection we no longer want must not fail the caller
    }
  }

  #armPurge(): void {
    if (this.#timer || !this.#idleTimeout) return;
    if (this.#exactNow === null) this.#coarseNow = Date.now();
    // One timer per pool, only while something is idle, and unref'd: an idle pool never keeps
    // the process alive.
    const every = Math.max(50, Math.min(this.#idleTimeout, 1000));
    this.#timer = setInterval(() => {
      this.purge();
      this.#disarmIfEmpty();
    }, every);
    this.#timer.unref();
  }

  #disarmIfEmpty(): void {
    if (this.#timer && this.#stats.idle === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
