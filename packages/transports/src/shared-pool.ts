/**
 * SharedConnectionPool: the pool's shared hand-out mode, for connections that multiplex streams
 * (an HTTP/2 session, a THeader/TTHeader Thrift connection with seq-id remapping), as undici's
 * Pool over h2 clients and Envoy's HTTP/2 conn pool with max_concurrent_streams do it. Per key
 * a few live connections, each handed to many callers at once while it has a free stream slot;
 * acquirers share one connect; when every connection is full and the per-key cap is reached
 * they wait in a bounded FIFO queue (AbortSignal cancels). A draining connection (GOAWAY) takes
 * no new streams and closes after its last one; a dead one leaves at once; idle ones close
 * after the idle timeout (an unref'd timer, as pool.ts). Reload moves the live connections,
 * streams in flight included, into the rebuilt pool.
 * Not for exclusive connections (HTTP/1.1, framed Thrift): ConnectionPool (pool.ts) is, and
 * not for protocol work: the connection counts nothing and speaks for itself through
 * `alive`, `accepting` and `maxConcurrentStreams`.
 */
import { AbortedError, ConnectError } from './errors.js';
import type { Poolable, PoolKey } from './pool.js';

/**
 * What the shared pool needs from a multiplexing connection. The pool reads these on every
 * hand-out and release; when one changes on its own (SETTINGS, GOAWAY, the peer closed), call
 * `pool.changed(conn)` so waiting callers move on at once.
 */
export interface Multiplexed extends Poolable {
  /** False once the connection is dead (closed by the peer, reset, protocol error). */
  readonly alive: boolean;
  /**
   * False once it takes no new streams: draining after a GOAWAY (received or sent), out of
   * stream ids, closing. It is closed by the pool when its last stream ends.
   */
  readonly accepting: boolean;
  /**
   * How many streams it may carry at once now: the peer's SETTINGS_MAX_CONCURRENT_STREAMS
   * (HTTP/2), the in-flight limit of a Thrift connection, Infinity for none. The pool counts the
   * streams it handed out itself and hands out only while fewer are active (so two acquires in
   * one tick cannot both take the last slot, as they could if the connection reported what is
   * left). A connection that also carries streams it did not get from the pool (a pushed stream)
   * subtracts them here.
   */
  readonly maxConcurrentStreams: number;
}

/** SharedConnectionPool settings. */
export interface SharedPoolOptions<K extends PoolKey, C extends Multiplexed> {
  /**
   * Opens a connection for `key` (a Connector's `connect`, bound). Called once for any number of
   * acquirers waiting at the time. Rejects with the error every waiter then gets (a ConnectError).
   */
  readonly connect: (key: K) => Promise<C>;
  /**
   * Most connections per key that take new streams (draining ones do not count, so a GOAWAY
   * never stalls callers until the old streams end). Default 1: one connection per origin, as
   * RFC 9113 §9.1 asks of HTTP/2 clients; raise it for Thrift or for peers with a low stream
   * limit.
   */
  readonly maxConnectionsPerKey?: number;
  /** Most callers waiting per key for a stream slot; one more is refused with PoolError ERR_POOL_QUEUE_FULL. Default 1024. */
  readonly maxWaiting?: number;
  /** Connections without streams for this long (ms) are closed. 0 keeps them. Default 60 s. */
  readonly idleTimeout?: number;
  /**
   * Clock, for tests: read whenever a connection goes idle. By default the pool reads Date.now()
   * once per purge tick instead (idle ages exact to one tick, at most 1 s), as ConnectionPool.
   */
  readonly now?: () => number;
}

/** Shared pool counters. The first six are gauges; the rest only grow. */
export interface SharedPoolStats {
  /** Open connections in the pool, draining ones included. */
  connections: number;
  /** Connections without streams. */
  idle: number;
  /** Connections that take no new streams and close after their last one. */
  draining: number;
  /** Connects in flight. */
  connecting: number;
  /** Streams handed out and not yet released, over all connections. */
  streams: number;
  /** Callers waiting for a stream slot. */
  waiting: number;
  /** Connections established by the pool's connect function. */
  created: number;
  /** Streams handed out on a connection that had carried one before. */
  reused: number;
  /** Connects that failed (rejected, or gave a connection dead or draining on arrival). */
  failed: number;
  /** Acquires refused because the key's queue was full. */
  rejected: number;
  /** Connections closed by the pool: idle timeout, drained, found dead, over the cap, close(). */
  closed: number;
}

/** Stable codes of PoolError. */
export type PoolErrorCode = 'ERR_POOL_QUEUE_FULL' | 'ERR_POOL_CLOSED';

/**
 * The pool refused an acquire: its queue for the key is full (overload; Envoy's pending
 * overflow) or it is closed. `status` is what a proxy answers: 503.
 */
export class PoolError extends Error {
  override readonly name = 'PoolError';
  /** Stable machine-readable code. */
  readonly code: PoolErrorCode;
  /** 503: the upstream is not at fault, the proxy is out of capacity for it. */
  readonly status = 503;
  /** The key's id. */
  readonly key: string;

  constructor(code: PoolErrorCode, key: string, message: string) {
    super(`${message} (${key})`);
    this.code = code;
    this.key = key;
  }
}

/** Per-acquire options. */
export interface SharedAcquireOptions {
  /** Cancels the wait (AbortedError ERR_TRANSPORT_ABORTED); a slot already handed out stays the caller's. */
  readonly signal?: AbortSignal | undefined;
}

/** One connection in the pool and the streams handed out on it. */
class Entry<K extends PoolKey, C extends Multiplexed> {
  /** Streams handed out and not yet released. */
  leases = 0;
  /** When its last stream ended (pool clock); meaningful while `leases` is 0. */
  idleSince = 0;
  /** Takes no new streams (the connection drains, or the pool retired it); closed at `leases` 0. */
  retired = false;
  /** Has carried a stream (for `reused`). */
  used = false;
  constructor(
    readonly conn: C,
    public state: KeyState<K, C>,
  ) {}
}

/** A caller waiting for a stream slot. Its own abort listener (handleEvent), so no closure. */
class Waiter<K extends PoolKey, C extends Multiplexed> {
  readonly promise: Promise<C>;
  #resolve!: (conn: C) => void;
  #reject!: (error: unknown) => void;

  constructor(
    public state: KeyState<K, C>,
    readonly signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<C>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    signal?.addEventListener('abort', this, { once: true });
  }

  /** The abort listener: leaves the queue and rejects. */
  handleEvent(): void {
    const queue = this.state.waiters;
    const i = queue.indexOf(this);
    if (i < 0) return;
    queue.splice(i, 1);
    this.fail(abortedWhileWaiting(this.signal!));
  }

  serve(conn: C): void {
    this.signal?.removeEventListener('abort', this);
    this.#resolve(conn);
  }

  fail(error: unknown): void {
    this.signal?.removeEventListener('abort', this);
    this.#reject(error);
  }
}

/** A connect in flight; `state` moves with it when a rebuilt pool adopts it. */
interface PendingConnect<K extends PoolKey, C extends Multiplexed> {
  state: KeyState<K, C>;
}

/** Everything the pool holds for one key id. `owner` is the pool whose methods serve it. */
class KeyState<K extends PoolKey, C extends Multiplexed> {
  readonly entries: Entry<K, C>[] = [];
  readonly waiters: Waiter<K, C>[] = [];
  readonly pending: PendingConnect<K, C>[] = [];
  constructor(
    readonly key: K,
    readonly owner: SharedConnectionPool<K, C>,
  ) {}

  /** Connections that take new streams (what the per-key cap counts, with connects in flight). */
  accepting(): number {
    let n = 0;
    for (const e of this.entries) if (!e.retired) n++;
    return n;
  }

  get empty(): boolean {
    return this.entries.length === 0 && this.waiters.length === 0 && this.pending.length === 0;
  }
}

function abortedWhileWaiting(signal: AbortSignal): AbortedError {
  return new AbortedError('ERR_TRANSPORT_ABORTED', 'connect', 'aborted while waiting for a stream slot', {
    cause: signal.reason,
  });
}

/**
 * Hands multiplexing connections to many callers at once: `acquire(key)` gives a connection
 * with a free stream slot (least-loaded first), connecting or queueing as needed; `release(conn)`
 * when the stream ends gives the slot back.
 */
export class SharedConnectionPool<K extends PoolKey, C extends Multiplexed> {
  readonly #connect: (key: K) => Promise<C>;
  readonly #maxConns: number;
  readonly #maxWaiting: number;
  readonly #idleTimeout: number;
  /** The injected clock, or null for the coarse one. */
  readonly #exactNow: (() => number) | null;
  /** Date.now() as of the last purge tick or arming: the coarse clock. */
  #coarseNow = Date.now();
  readonly #states = new Map<string, KeyState<K, C>>();
  readonly #entries = new Map<C, Entry<K, C>>();
  #created = 0;
  #reused = 0;
  #failed = 0;
  #rejected = 0;
  #closedCount = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The pool that adopted this one's connections (reload): acquires and releases go there. */
  #successor: SharedConnectionPool<K, C> | undefined;

  constructor(options: SharedPoolOptions<K, C>) {
    this.#connect = options.connect;
    this.#maxConns = options.maxConnectionsPerKey ?? 1;
    this.#maxWaiting = options.maxWaiting ?? 1024;
    this.#idleTimeout = options.idleTimeout ?? 60_000;
    this.#exactNow = options.now ?? null;
    if (typeof this.#connect !== 'function') throw new TypeError('connect must be a function');
    if (!Number.isInteger(this.#maxConns) || this.#maxConns < 1)
      throw new RangeError('maxConnectionsPerKey must be an integer >= 1');
    if (!Number.isInteger(this.#maxWaiting) || this.#maxWaiting < 0)
      throw new RangeError('maxWaiting must be an integer >= 0');
    if (!(this.#idleTimeout >= 0)) throw new RangeError('idleTimeout must be >= 0');
  }

  /**
   * A connection to `key` with a stream slot taken for the caller, at once when one has a free
   * slot, else after a connect (shared with every caller waiting then) or a released slot, in
   * the order callers came. Release the slot with `release(conn)` when the stream ends. Rejects
   * with the connect function's error (a ConnectError), PoolError (queue full, pool closed) or
   * AbortedError (the signal).
   */
  acquire(key: K, options?: SharedAcquireOptions): Promise<C> {
    if (this.#closed)
      return Promise.reject(new PoolError('ERR_POOL_CLOSED', key.id, 'the connection pool is closed'));
    if (this.#successor !== undefined) return this.#successor.acquire(key, options);
    const conn = this.tryAcquire(key);
    if (conn !== undefined) return Promise.resolve(conn);
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(abortedWhileWaiting(signal));
    const state = this.#stateOf(key);
    if (state.waiters.length >= this.#maxWaiting) {
      this.#rejected++;
      return Promise.reject(
        new PoolError(
          'ERR_POOL_QUEUE_FULL',
          key.id,
          `${this.#maxWaiting} callers already wait for a stream slot`,
        ),
      );
    }
    const waiter = new Waiter<K, C>(state, signal);
    state.waiters.push(waiter);
    this.#dispatch(state);
    return waiter.promise;
  }

  /**
   * A connection with a free stream slot taken for the caller, or undefined: no promise, no
   * connect, no queueing (the fast path; fall back to `acquire`). Never jumps the queue: while
   * callers wait for `key`, it gives them any free slot first.
   */
  tryAcquire(key: K): C | undefined {
    if (this.#closed) return undefined;
    if (this.#successor !== undefined) return this.#successor.tryAcquire(key);
    const state = this.#states.get(key.id);
    if (state === undefined) return undefined;
    if (state.waiters.length !== 0) {
      this.#dispatch(state);
      if (state.waiters.length !== 0) return undefined;
    }
    const entry = this.#pick(state);
    if (entry === undefined) return undefined;
    this.#lease(entry);
    return entry.conn;
  }

  /**
   * Gives back one stream slot of `conn` (its stream ended, whatever the outcome: a stream
   * error does not taint a multiplexed connection; a connection error makes it report
   * `alive` false). The next waiter gets the slot; a draining connection closes with its last
   * stream; an idle one starts its idle timeout. Returns false, changing nothing, for a
   * connection the pool no longer holds (it died, or every slot was already given back).
   */
  release(conn: C): boolean {
    const entry = this.#entries.get(conn);
    if (entry === undefined) return this.#successor?.release(conn) ?? false;
    if (entry.leases === 0) return false;
    entry.leases--;
    const state = entry.state;
    if (!conn.alive) this.#drop(entry);
    else if (entry.retired || !conn.accepting) {
      entry.retired = true;
      if (entry.leases === 0) this.#drop(entry);
    }
    if (state.waiters.length !== 0) this.#dispatch(state);
    if (entry.leases === 0 && !entry.retired && this.#entries.get(conn) === entry) this.#wentIdle(entry);
    return true;
  }

  /**
   * Tells the pool that `conn`'s `alive`, `accepting` or `maxConcurrentStreams` changed: a
   * dead connection is removed and closed at once (its slots are gone; later `release`s of it
   * return false), a draining one takes no new streams and is closed when its last ends, and
   * waiting callers move on: to a slot that opened, or to a new connection.
   */
  changed(conn: C): void {
    const entry = this.#entries.get(conn);
    if (entry === undefined) {
      this.#successor?.changed(conn);
      return;
    }
    const state = entry.state;
    if (!conn.alive) this.#drop(entry);
    else if (entry.retired || !conn.accepting) {
      entry.retired = true;
      if (entry.leases === 0) this.#drop(entry);
    }
    this.#dispatch(state);
  }

  /** Streams handed out on `conn` and not yet released (0 when the pool does not hold it). */
  streamsOn(conn: C): number {
    const entry = this.#entries.get(conn);
    if (entry === undefined) return this.#successor?.streamsOn(conn) ?? 0;
    return entry.leases;
  }

  /** Open connections for `key`, draining ones included (for tests and metrics). */
  connectionCount(key: K): number {
    return this.#states.get(key.id)?.entries.length ?? 0;
  }

  /** Counters; gauges are counted now. */
  stats(): SharedPoolStats {
    let connections = 0;
    let idle = 0;
    let draining = 0;
    let connecting = 0;
    let streams = 0;
    let waiting = 0;
    for (const state of this.#states.values()) {
      connecting += state.pending.length;
      waiting += state.waiters.length;
      for (const e of state.entries) {
        connections++;
        streams += e.leases;
        if (e.retired) draining++;
        else if (e.leases === 0) idle++;
      }
    }
    return {
      connections,
      idle,
      draining,
      connecting,
      streams,
      waiting,
      created: this.#created,
      reused: this.#reused,
      failed: this.#failed,
      rejected: this.#rejected,
      closed: this.#closedCount,
    };
  }

  /**
   * Closes connections that have had no stream for the idle timeout (and idle ones found dead
   * or draining). Returns how many.
   */
  purge(): number {
    if (!this.#idleTimeout) return 0;
    if (this.#exactNow === null) this.#coarseNow = Date.now();
    const now = this.#now();
    let n = 0;
    for (const [id, state] of this.#states) {
      const entries = state.entries;
      for (let i = 0; i < entries.length; ) {
        const e = entries[i]!;
        if (
          e.leases === 0 &&
          (now - e.idleSince >= this.#idleTimeout || !e.conn.alive || !e.conn.accepting)
        ) {
          this.#drop(e);
          n++;
          continue;
        }
        i++;
      }
      if (state.empty) this.#states.delete(id);
    }
    return n;
  }

  /**
   * Moves the live connections of `old` into this pool, for a service rebuilt from its
   * predecessor on reload: every connection that still takes streams moves with the streams in
   * flight on it and its idle age (multiplexed connections are rarely idle, so moving only idle
   * ones, as ConnectionPool does, would reconnect nearly everything). `old` then forwards: its
   * `acquire`/`tryAcquire` go to this pool, and `release`/`changed` of moved connections reach
   * them here. Callers waiting in `old` move to the back of this pool's queues, and connects in
   * flight in `old` deliver here. Draining connections stay in `old` and close after their last
   * stream. Connections over this pool's cap take no new streams (idle ones close now).
   * `onAdopt` sees each connection moved (a connector re-points it at its new owner). Returns how
   * many moved; 0, moving nothing, when this pool is closed or `old` was adopted already.
   */
  adoptFrom(old: SharedConnectionPool<K, C>, onAdopt?: (conn: C) => void): number {
    if (old === this || this.#closed || old.#successor !== undefined) return 0;
    for (let p: SharedConnectionPool<K, C> | undefined = this; p !== undefined; p = p.#successor)
      if (p === old) return 0; // adopting from our own successor would forward in a circle
    old.#successor = this;
    let moved = 0;
    for (const [id, from] of old.#states) {
      const to = this.#stateOf(from.key);
      for (let i = 0; i < from.entries.length; ) {
        const e = from.entries[i]!;
        if (!e.conn.alive || e.retired || !e.conn.accepting) {
          // Stays with old: dead ones go now, draining ones after their last stream.
          if (!e.conn.alive || e.leases === 0) old.#drop(e);
          else {
            e.retired = true;
            i++;
          }
          continue;
        }
        from.entries.splice(i, 1);
        old.#entries.delete(e.conn);
        e.state = to;
        to.entries.push(e);
        this.#entries.set(e.conn, e);
        moved++;
        onAdopt?.(e.conn);
      }
      // Over the cap: the newest arrivals take no new streams; idle ones close now.
      let over = to.accepting() + to.pending.length - this.#maxConns;
      for (let i = to.entries.length - 1; over > 0 && i >= 0; i--) {
        const e = to.entries[i]!;
        if (e.retired) continue;
        e.retired = true;
        over--;
        if (e.leases === 0) this.#drop(e);
      }
      for (const p of from.pending) {
        p.state = to;
        to.pending.push(p);
      }
      from.pending.length = 0;
      for (const w of from.waiters) {
        w.state = to;
        to.waiters.push(w);
      }
      from.waiters.length = 0;
      if (from.empty) old.#states.delete(id);
      this.#dispatch(to);
      for (const e of to.entries) if (e.leases === 0 && !e.retired) this.#armPurge();
    }
    old.#disarmIfNoIdle();
    return moved;
  }

  /**
   * Refuses new acquires and fails every waiting caller (PoolError ERR_POOL_CLOSED); closes
   * connections without streams now and the others after their last stream ends; a connect
   * still in flight closes its connection on arrival.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#states.values()) {
      for (const w of state.waiters.splice(0))
        w.fail(new PoolError('ERR_POOL_CLOSED', state.key.id, 'the connection pool was closed'));
      for (let i = 0; i < state.entries.length; ) {
        const e = state.entries[i]!;
        e.retired = true;
        if (e.leases === 0) this.#drop(e);
        else i++;
      }
    }
    this.#disarm();
  }

  #stateOf(key: K): KeyState<K, C> {
    let state = this.#states.get(key.id);
    if (state === undefined) this.#states.set(key.id, (state = new KeyState<K, C>(key, this)));
    return state;
  }

  /**
   * The least-loaded connection with a free slot (fewest streams; the older on a tie), or
   * undefined. Dead connections met on the way are dropped, draining ones retired.
   */
  #pick(state: KeyState<K, C>): Entry<K, C> | undefined {
    const entries = state.entries;
    let best: Entry<K, C> | undefined;
    for (let i = 0; i < entries.length; ) {
      const e = entries[i]!;
      const conn = e.conn;
      if (!conn.alive) {
        this.#drop(e);
        continue;
      }
      if (!e.retired && !conn.accepting) {
        e.retired = true;
        if (e.leases === 0) {
          this.#drop(e);
          continue;
        }
      }
      if (
        !e.retired &&
        conn.maxConcurrentStreams - e.leases > 0 &&
        (best === undefined || e.leases < best.leases)
      )
        best = e;
      i++;
    }
    return best;
  }

  #lease(entry: Entry<K, C>): void {
    entry.leases++;
    if (entry.used) this.#reused++;
    else entry.used = true;
  }

  /** Hands free slots to waiters in order; connects when they remain and the cap allows. */
  #dispatch(state: KeyState<K, C>): void {
    while (state.waiters.length !== 0) {
      const entry = this.#pick(state);
      if (entry === undefined) break;
      this.#lease(entry);
      state.waiters.shift()!.serve(entry.conn);
    }
    // One connect at a time per key: every caller waiting then shares it; those it cannot take
    // (its stream limit) get the next one.
    if (
      state.waiters.length !== 0 &&
      state.pending.length === 0 &&
      !this.#closed &&
      state.accepting() < this.#maxConns
    )
      this.#startConnect(state);
  }

  #startConnect(state: KeyState<K, C>): void {
    const pending: PendingConnect<K, C> = { state };
    state.pending.push(pending);
    let connecting: Promise<C>;
    try {
      connecting = Promise.resolve(this.#connect(state.key));
    } catch (error) {
      connecting = Promise.reject(error);
    }
    // The pending record's state (and its owner) may change before this settles: a rebuilt
    // pool adopts connects in flight.
    connecting.then(
      (conn) => pending.state.owner.#connected(pending, conn),
      (error: unknown) => pending.state.owner.#connectFailed(pending, error),
    );
  }

  #settlePending(pending: PendingConnect<K, C>): KeyState<K, C> {
    const state = pending.state;
    const i = state.pending.indexOf(pending);
    if (i >= 0) state.pending.splice(i, 1);
    return state;
  }

  #connected(pending: PendingConnect<K, C>, conn: C): void {
    const state = this.#settlePending(pending);
    if (this.#closed) {
      this.#closeQuietly(conn);
      return;
    }
    if (!conn.alive || !conn.accepting) {
      // A failure, not a reason to connect again at once: that could spin for as long as the
      // peer keeps doing this.
      this.#closeQuietly(conn);
      this.#connectFailed(
        pending,
        new ConnectError(
          'ERR_TRANSPORT_CONNECT_FAILED',
          'connect',
          `the connection for ${state.key.id} was ${conn.alive ? 'draining' : 'closed'} as soon as it was established`,
        ),
      );
      return;
    }
    this.#created++;
    const entry = new Entry<K, C>(conn, state);
    this.#entries.set(conn, entry);
    state.entries.push(entry);
    this.#dispatch(state);
    if (entry.leases === 0 && !entry.retired && this.#entries.get(conn) === entry) this.#wentIdle(entry);
  }

  /** Stamps an entry that has no stream left and makes sure the purge tick runs. */
  #wentIdle(entry: Entry<K, C>): void {
    entry.idleSince = this.#idleNow();
    this.#armPurge();
  }

  #connectFailed(pending: PendingConnect<K, C>, error: unknown): void {
    const state = this.#settlePending(pending);
    this.#failed++;
    // The callers waiting shared this connect: they fail with its error, unless another connect
    // for the key is still under way (they wait for that one).
    if (state.pending.length === 0) for (const w of state.waiters.splice(0)) w.fail(error);
  }

  /** Removes `entry` from the pool and closes its connection (removed first: close may call back). */
  #drop(entry: Entry<K, C>): void {
    const entries = entry.state.entries;
    const i = entries.indexOf(entry);
    if (i >= 0) entries.splice(i, 1);
    this.#entries.delete(entry.conn);
    this.#closedCount++;
    this.#closeQuietly(entry.conn);
  }

  #closeQuietly(conn: C): void {
    try {
      const r = conn.close();
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // closing a connection we no longer want must not fail the caller
    }
  }

  /** The pool's time in ms: the injected clock, else the coarse one. */
  #now(): number {
    return this.#exactNow === null ? this.#coarseNow : this.#exactNow();
  }

  /** The time a connection goes idle: no clock read while the purge tick keeps the coarse one fresh. */
  #idleNow(): number {
    if (this.#exactNow === null && this.#timer === undefined && this.#idleTimeout)
      this.#coarseNow = Date.now();
    return this.#now();
  }

  #armPurge(): void {
    if (this.#timer !== undefined || !this.#idleTimeout || this.#closed) return;
    if (this.#exactNow === null) this.#coarseNow = Date.now();
    // One timer per pool, only while a connection is idle, and unref'd: an idle pool never
    // keeps the process alive.
    const every = Math.max(50, Math.min(this.#idleTimeout, 1000));
    this.#timer = setInterval(() => {
      this.purge();
      this.#disarmIfNoIdle();
    }, every);
    this.#timer.unref();
  }

  #disarmIfNoIdle(): void {
    if (this.#timer === undefined) return;
    for (const state of this.#states.values())
      for (const e of state.entries) if (e.leases === 0 && !e.retired) return;
    this.#disarm();
  }

  #disarm(): void {
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
