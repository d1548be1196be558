import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, ConnectError } from './errors.js';
import { PoolError, SharedConnectionPool, type SharedPoolOptions } from './shared-pool.js';

/** A multiplexed connection whose state the test sets, as an HTTP/2 session would report it. */
class FakeMux {
  closed = 0;
  alive = true;
  accepting = true;
  constructor(
    readonly name: string,
    public maxConcurrentStreams = 100,
  ) {}
  close() {
    this.closed++;
  }
}

type Key = { id: string };
const a: Key = { id: 'a' };
const b: Key = { id: 'b' };

/** A connect function whose attempts the test settles by hand. */
class Connects {
  readonly calls: {
    key: string;
    resolve: (conn: FakeMux) => FakeMux;
    reject: (error: unknown) => void;
  }[] = [];
  readonly connect = (key: Key): Promise<FakeMux> =>
    new Promise<FakeMux>((resolve, reject) => {
      this.calls.push({
        key: key.id,
        resolve: (conn) => {
          resolve(conn);
          return conn;
        },
        reject,
      });
    });
  /** Settles attempt `i` with a new connection allowing `max` streams. */
  open(i: number, max = 100, name = `c${i}`): FakeMux {
    return this.calls[i]!.resolve(new FakeMux(name, max));
  }
}

function setup(opts: Partial<SharedPoolOptions<Key, FakeMux>> = {}) {
  let now = 0;
  const connects = new Connects();
  const p = new SharedConnectionPool<Key, FakeMux>({
    connect: connects.connect,
    now: () => now,
    ...opts,
  });
  return { p, connects, tick: (ms: number) => (now += ms) };
}

/** Lets promise callbacks run (no timers involved, so it works under fake timers too). */
async function flush() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Observes a promise without awaiting it. */
function track<T>(promise: Promise<T>) {
  const t: { done: boolean; value: T | undefined; error: unknown } = {
    done: false,
    value: undefined,
    error: undefined,
  };
  promise.then(
    (v) => {
      t.done = true;
      t.value = v;
    },
    (e: unknown) => {
      t.done = true;
      t.error = e;
    },
  );
  return t;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SharedConnectionPool: hand-out', () => {
  it('hands one connection to many callers at once and counts', async () => {
    const { p, connects } = setup();
    const first = track(p.acquire(a));
    expect(connects.calls).toHaveLength(1);
    const c = connects.open(0);
    await flush();
    expect(first.value).toBe(c);
    // Later acquirers get the same connection synchronously.
    expect(p.tryAcquire(a)).toBe(c);
    expect(await p.acquire(a)).toBe(c);
    expect(connects.calls).toHaveLength(1);
    expect(p.streamsOn(c)).toBe(3);
    expect(p.stats()).toMatchObject({
      connections: 1,
      idle: 0,
      streams: 3,
      waiting: 0,
      created: 1,
      reused: 2,
    });
    expect(p.release(c)).toBe(true);
    expect(p.release(c)).toBe(true);
    expect(p.release(c)).toBe(true);
    expect(p.release(c)).toBe(false); // over-release changes nothing
    expect(p.stats()).toMatchObject({ connections: 1, idle: 1, streams: 0 });
    expect(c.closed).toBe(0);
  });

  it('tryAcquire neither connects nor queues', () => {
    const { p, connects } = setup();
    expect(p.tryAcquire(a)).toBeUndefined();
    expect(connects.calls).toHaveLength(0);
    expect(p.stats().waiting).toBe(0);
  });

  it('keeps keys apart', async () => {
    const { p, connects } = setup();
    const ta = track(p.acquire(a));
    const tb = track(p.acquire(b));
    expect(connects.calls.map((c) => c.key)).toEqual(['a', 'b']);
    const ca = connects.open(0);
    const cb = connects.open(1);
    await flush();
    expect(ta.value).toBe(ca);
    expect(tb.value).toBe(cb);
    expect(p.connectionCount(a)).toBe(1);
    expect(p.tryAcquire(b)).toBe(cb);
  });

  it('concurrent acquirers share one connect, and get what its stream limit allows', async () => {
    const { p, connects } = setup();
    const waits = [0, 1, 2].map(() => track(p.acquire(a)));
    expect(connects.calls).toHaveLength(1);
    expect(p.stats()).toMatchObject({ connecting: 1, waiting: 3 });
    const c = connects.open(0, 2);
    await flush();
    expect(waits.map((w) => w.value)).toEqual([c, c, undefined]);
    expect(p.stats()).toMatchObject({ streams: 2, waiting: 1, connecting: 0 });
    // maxConnectionsPerKey is 1: the third waits for a slot, not for another connection.
    expect(connects.calls).toHaveLength(1);
    p.release(c);
    await flush();
    expect(waits[2]!.value).toBe(c);
    expect(p.stats()).toMatchObject({ streams: 2, waiting: 0, created: 1 });
  });

  it('opens another connection when the others are full, up to maxConnectionsPerKey, least-loaded first', async () => {
    const { p, connects } = setup({ maxConnectionsPerKey: 2 });
    const w1 = track(p.acquire(a));
    const c1 = connects.open(0, 2);
    await flush();
    expect(w1.value).toBe(c1);
    expect(p.tryAcquire(a)).toBe(c1); // c1 full now (2 of 2)
    const w3 = track(p.acquire(a));
    const w4 = track(p.acquire(a));
    expect(connects.calls).toHaveLength(2); // one connect for both waiters
    const c2 = connects.open(1, 3);
    await flush();
    expect(w3.value).toBe(c2);
    expect(w4.value).toBe(c2);
    // c1: 2 streams, c2: 2 streams. Free one on c1: c1 is the least loaded.
    p.release(c1);
    expect(p.tryAcquire(a)).toBe(c1);
    p.release(c1);
    p.release(c1);
    // c1: 0, c2: 2 -> c1; then c1: 1, c2: 2 -> c1 again; then full c1 (2) vs c2 (2) -> c2.
    expect(p.tryAcquire(a)).toBe(c1);
    expect(p.tryAcquire(a)).toBe(c1);
    expect(p.tryAcquire(a)).toBe(c2);
    // The cap is reached: the next caller waits instead of connecting.
    const w = track(p.acquire(a));
    await flush();
    expect(w.done).toBe(false);
    expect(connects.calls).toHaveLength(2);
    expect(p.stats()).toMatchObject({ connections: 2, streams: 5, waiting: 1 });
  });

  it('picks the connection with the fewest streams, not the first with a free slot', async () => {
    const { p, connects } = setup({ maxConnectionsPerKey: 2 });
    track(p.acquire(a));
    const c1 = connects.open(0, 1);
    await flush();
    track(p.acquire(a)); // c1 full: a second connection
    const c2 = connects.open(1, 10);
    await flush();
    c1.maxConcurrentStreams = 10;
    p.tryAcquire(a); // c1 1, c2 1: the older on a tie
    expect(p.streamsOn(c1)).toBe(2);
    expect(p.tryAcquire(a)).toBe(c2); // c1 2, c2 1
    expect(p.tryAcquire(a)).toBe(c1); // 2 vs 2: the older
    expect(p.tryAcquire(a)).toBe(c2); // 3 vs 2
    p.release(c1);
    p.release(c1); // c1 1, c2 3
    expect(p.tryAcquire(a)).toBe(c1);
  });

  it('serves waiters first come, first served, and tryAcquire does not jump the queue', async () => {
    const { p, connects } = setup();
    const first = track(p.acquire(a));
    const c = connects.open(0, 1);
    await flush();
    expect(first.value).toBe(c);
    const order: string[] = [];
    const w2 = p.acquire(a).then(() => order.push('w2'));
    const w3 = p.acquire(a).then(() => order.push('w3'));
    p.release(c); // goes to w2 at once, not to the tryAcquire below
    expect(p.tryAcquire(a)).toBeUndefined();
    await w2;
    p.release(c);
    await w3;
    expect(order).toEqual(['w2', 'w3']);
  });

  it('a slot that opens without a release (higher stream limit, no changed()) still goes to the queue first', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0, 1);
    await flush();
    const waiter = track(p.acquire(a));
    c.maxConcurrentStreams = 2; // the peer raised its limit; nobody told the pool
    expect(p.tryAcquire(a)).toBeUndefined();
    await flush();
    expect(waiter.value).toBe(c);
  });
});

describe('SharedConnectionPool: stream limits that change', () => {
  it('a lowered limit stops hand-outs until enough streams end; a raised one with changed() serves waiters', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0, 3);
    await flush();
    p.tryAcquire(a);
    p.tryAcquire(a);
    expect(p.streamsOn(c)).toBe(3);
    c.maxConcurrentStreams = 1; // SETTINGS lowered the limit below the streams in flight
    p.changed(c);
    p.release(c);
    expect(p.tryAcquire(a)).toBeUndefined(); // 2 active >= 1
    p.release(c);
    expect(p.tryAcquire(a)).toBeUndefined(); // 1 active >= 1
    const waiters = [track(p.acquire(a)), track(p.acquire(a))];
    await flush();
    expect(waiters.some((w) => w.done)).toBe(false);
    c.maxConcurrentStreams = 10;
    p.changed(c);
    await flush();
    expect(waiters.map((w) => w.value)).toEqual([c, c]);
    expect(p.streamsOn(c)).toBe(3);
    expect(connects.calls).toHaveLength(1);
  });

  it('a connection that comes up with a limit of 0 waits for its SETTINGS', async () => {
    const { p, connects } = setup();
    const w = track(p.acquire(a));
    const c = connects.open(0, 0);
    await flush();
    expect(w.done).toBe(false);
    expect(connects.calls).toHaveLength(1); // it counts toward the cap
    c.maxConcurrentStreams = 100;
    p.changed(c);
    await flush();
    expect(w.value).toBe(c);
  });
});

describe('SharedConnectionPool: draining and dead connections', () => {
  it('a draining connection takes no new streams, waiters get a new one, and it closes after its last stream', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const old = connects.open(0);
    await flush();
    expect(p.tryAcquire(a)).toBe(old);
    old.accepting = false; // GOAWAY
    p.changed(old);
    expect(p.tryAcquire(a)).toBeUndefined();
    expect(p.stats()).toMatchObject({ connections: 1, draining: 1, streams: 2 });
    // Draining connections do not count toward maxConnectionsPerKey (1): a new one opens.
    const w = track(p.acquire(a));
    expect(connects.calls).toHaveLength(2);
    const fresh = connects.open(1);
    await flush();
    expect(w.value).toBe(fresh);
    p.release(old);
    expect(old.closed).toBe(0);
    p.release(old);
    expect(old.closed).toBe(1);
    expect(p.release(old)).toBe(false);
    expect(p.stats()).toMatchObject({ connections: 1, draining: 0, streams: 1, closed: 1 });
  });

  it('a draining connection without streams closes at once', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    p.release(c);
    c.accepting = false;
    p.changed(c);
    expect(c.closed).toBe(1);
    expect(p.stats()).toMatchObject({ connections: 0, closed: 1 });
  });

  it('notices draining on its own when asked for a stream', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    c.accepting = false; // no changed() call
    expect(p.tryAcquire(a)).toBeUndefined();
    expect(p.stats().draining).toBe(1);
    expect(c.closed).toBe(0);
    p.release(c);
    expect(c.closed).toBe(1);
  });

  it('a dead connection is removed at once, its slots are gone, and waiters move to a new one', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0, 1);
    await flush();
    const waiter = track(p.acquire(a));
    expect(p.stats()).toMatchObject({ streams: 1, waiting: 1 });
    c.alive = false; // the peer reset the connection
    p.changed(c);
    expect(c.closed).toBe(1);
    expect(p.stats()).toMatchObject({ connections: 0, streams: 0, connecting: 1, waiting: 1 });
    expect(connects.calls).toHaveLength(2);
    const fresh = connects.open(1);
    await flush();
    expect(waiter.value).toBe(fresh);
    expect(p.release(c)).toBe(false); // the dead connection's stream ends later: nothing changes
    expect(p.stats()).toMatchObject({ connections: 1, streams: 1 });
  });

  it('a dead connection found on acquire is dropped and another is opened', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    p.release(c);
    c.alive = false;
    const w = track(p.acquire(a));
    expect(c.closed).toBe(1);
    expect(connects.calls).toHaveLength(2);
    const fresh = connects.open(1);
    await flush();
    expect(w.value).toBe(fresh);
  });

  it('a stream that ends on a connection that died meanwhile drops it', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    p.tryAcquire(a);
    c.alive = false;
    expect(p.release(c)).toBe(true);
    expect(c.closed).toBe(1);
    expect(p.stats()).toMatchObject({ connections: 0, streams: 0 });
    expect(p.release(c)).toBe(false);
  });
});

describe('SharedConnectionPool: connect failures', () => {
  it('a failed connect fails every caller that shared it with its error; the next acquire connects again', async () => {
    const { p, connects } = setup();
    const waits = [track(p.acquire(a)), track(p.acquire(a))];
    const error = new ConnectError('ERR_TRANSPORT_CONNECT_REFUSED', 'connect', 'connection refused');
    connects.calls[0]!.reject(error);
    await flush();
    expect(waits.map((w) => w.error)).toEqual([error, error]);
    expect(p.stats()).toMatchObject({ waiting: 0, connecting: 0, failed: 1, connections: 0 });
    const again = track(p.acquire(a));
    expect(connects.calls).toHaveLength(2);
    const c = connects.open(1);
    await flush();
    expect(again.value).toBe(c);
  });

  it('a connect function that throws synchronously fails the caller, not the pool', async () => {
    const boom = new Error('bad key');
    const p = new SharedConnectionPool<Key, FakeMux>({
      connect: () => {
        throw boom;
      },
    });
    await expect(p.acquire(a)).rejects.toBe(boom);
    expect(p.stats()).toMatchObject({ failed: 1, waiting: 0, connecting: 0 });
  });

  it('a connection dead or draining on arrival counts as a failed connect (no connect loop)', async () => {
    const { p, connects } = setup();
    const w = track(p.acquire(a));
    const dead = new FakeMux('dead');
    dead.alive = false;
    connects.calls[0]!.resolve(dead);
    await flush();
    expect(w.error).toBeInstanceOf(ConnectError);
    expect((w.error as ConnectError).code).toBe('ERR_TRANSPORT_CONNECT_FAILED');
    expect(dead.closed).toBe(1);
    expect(connects.calls).toHaveLength(1);
    const w2 = track(p.acquire(a));
    const draining = new FakeMux('draining');
    draining.accepting = false;
    connects.calls[1]!.resolve(draining);
    await flush();
    expect(w2.error).toBeInstanceOf(ConnectError);
    expect(draining.closed).toBe(1);
    expect(connects.calls).toHaveLength(2);
    expect(p.stats()).toMatchObject({ failed: 2, created: 0, connections: 0 });
  });

  it('waiters stay queued when another connect for the key is still under way', async () => {
    const { p, connects } = setup({ maxConnectionsPerKey: 2 });
    track(p.acquire(a));
    const c1 = connects.open(0, 1);
    await flush();
    const w = track(p.acquire(a)); // c1 full: connect #2
    expect(connects.calls).toHaveLength(2);
    c1.alive = false;
    p.changed(c1); // c1 gone: but connect #2 is already under way, no third one
    expect(connects.calls).toHaveLength(2);
    connects.calls[1]!.reject(new Error('refused'));
    await flush();
    expect((w.error as Error).message).toBe('refused');
  });
});

describe('SharedConnectionPool: the wait queue', () => {
  it('refuses a caller over maxWaiting with a typed error', async () => {
    const { p, connects } = setup({ maxWaiting: 2 });
    const w1 = track(p.acquire(a));
    const w2 = track(p.acquire(a));
    const err = await p.acquire(a).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolError);
    expect(err).toMatchObject({ code: 'ERR_POOL_QUEUE_FULL', status: 503, key: 'a' });
    expect(p.stats()).toMatchObject({ waiting: 2, rejected: 1 });
    // Other keys have their own queue.
    track(p.acquire(b));
    expect(p.stats().waiting).toBe(3);
    const c = connects.open(0);
    await flush();
    expect([w1.value, w2.value]).toEqual([c, c]);
  });

  it('maxWaiting 0 never queues: only a free slot is handed out', async () => {
    const { p, connects } = setup({ maxWaiting: 0 });
    await expect(p.acquire(a)).rejects.toMatchObject({ code: 'ERR_POOL_QUEUE_FULL' });
    expect(connects.calls).toHaveLength(0);
  });

  it('an abort takes the caller out of the queue; the slot goes to the next one', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0, 1);
    await flush();
    const ac = new AbortController();
    const aborted = track(p.acquire(a, { signal: ac.signal }));
    const next = track(p.acquire(a));
    const reason = new Error('client went away');
    ac.abort(reason);
    await flush();
    expect(aborted.error).toBeInstanceOf(AbortedError);
    expect(aborted.error).toMatchObject({ code: 'ERR_TRANSPORT_ABORTED', status: 499, cause: reason });
    expect(p.stats().waiting).toBe(1);
    p.release(c);
    await flush();
    expect(next.value).toBe(c);
    expect(p.streamsOn(c)).toBe(1);
  });

  it('an already aborted signal fails at once without connecting', async () => {
    const { p, connects } = setup();
    const ac = new AbortController();
    ac.abort();
    await expect(p.acquire(a, { signal: ac.signal })).rejects.toBeInstanceOf(AbortedError);
    expect(connects.calls).toHaveLength(0);
  });

  it('an abort after the slot was handed out changes nothing', async () => {
    const { p, connects } = setup();
    const ac = new AbortController();
    const w = track(p.acquire(a, { signal: ac.signal }));
    const c = connects.open(0);
    await flush();
    ac.abort();
    await flush();
    expect(w.value).toBe(c);
    expect(p.streamsOn(c)).toBe(1);
  });

  it('a caller that aborts while the shared connect runs leaves the connection to the others', async () => {
    const { p, connects } = setup();
    const ac = new AbortController();
    const gone = track(p.acquire(a, { signal: ac.signal }));
    const stays = track(p.acquire(a));
    ac.abort();
    await flush();
    expect(gone.error).toBeInstanceOf(AbortedError);
    const c = connects.open(0);
    await flush();
    expect(stays.value).toBe(c);
    expect(p.stats()).toMatchObject({ streams: 1, waiting: 0 });
  });
});

describe('SharedConnectionPool: idle timeout', () => {
  it('closes connections without streams after the idle timeout, never busy ones', async () => {
    const { p, connects, tick } = setup({ idleTimeout: 1000, maxConnectionsPerKey: 2 });
    track(p.acquire(a));
    const busy = connects.open(0, 1);
    await flush();
    track(p.acquire(a));
    const idle = connects.open(1, 1);
    await flush();
    p.release(idle); // idle from t=0
    tick(999);
    expect(p.purge()).toBe(0);
    tick(1);
    expect(p.purge()).toBe(1);
    expect(idle.closed).toBe(1);
    expect(busy.closed).toBe(0);
    tick(5000);
    expect(p.purge()).toBe(0);
    expect(p.stats()).toMatchObject({ connections: 1, streams: 1, closed: 1 });
  });

  it('a stream restarts the idle age', async () => {
    const { p, connects, tick } = setup({ idleTimeout: 1000 });
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    p.release(c);
    tick(900);
    expect(p.tryAcquire(a)).toBe(c);
    p.release(c); // idle again from t=900
    tick(900);
    expect(p.purge()).toBe(0);
    tick(100);
    expect(p.purge()).toBe(1);
  });

  it('purges on its own with a timer that stops when nothing is idle', async () => {
    vi.useFakeTimers();
    const connects = new Connects();
    const p = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect, idleTimeout: 200 });
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    expect(vi.getTimerCount()).toBe(0); // busy: no timer
    p.release(c);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(450);
    expect(c.closed).toBe(1);
    expect(p.stats()).toMatchObject({ connections: 0, idle: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without an injected clock, stamps idle connections with its purge tick (no clock read per release)', async () => {
    vi.useFakeTimers();
    const connects = new Connects();
    const p = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect, idleTimeout: 2000 });
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    p.release(c); // arms the tick
    vi.advanceTimersByTime(1000);
    const spy = vi.spyOn(Date, 'now');
    expect(p.tryAcquire(a)).toBe(c);
    p.release(c); // stamped 1000, the tick's time
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    vi.advanceTimersByTime(1999); // tick at 2000 (age 1000): kept
    expect(c.closed).toBe(0);
    vi.advanceTimersByTime(1001); // tick at 3000 (age 2000): closed
    expect(c.closed).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('idleTimeout 0 keeps idle connections', async () => {
    const { p, connects, tick } = setup({ idleTimeout: 0 });
    track(p.acquire(a));
    const c = connects.open(0);
    await flush();
    p.release(c);
    tick(1e9);
    expect(p.purge()).toBe(0);
    expect(c.closed).toBe(0);
  });
});

describe('SharedConnectionPool: close', () => {
  it('fails waiters, closes idle connections now and busy ones after their last stream', async () => {
    const { p, connects } = setup({ maxConnectionsPerKey: 2 });
    track(p.acquire(a));
    const busy = connects.open(0, 1);
    await flush();
    track(p.acquire(a));
    const idle = connects.open(1, 1);
    await flush();
    p.release(idle);
    const queued = track(p.acquire(b));
    p.close();
    await flush();
    expect(queued.error).toMatchObject({ code: 'ERR_POOL_CLOSED', status: 503 });
    expect(idle.closed).toBe(1);
    expect(busy.closed).toBe(0);
    await expect(p.acquire(a)).rejects.toMatchObject({ code: 'ERR_POOL_CLOSED' });
    expect(p.tryAcquire(a)).toBeUndefined();
    p.release(busy);
    expect(busy.closed).toBe(1);
    // The connect for b was in flight: its connection is closed on arrival.
    const late = connects.open(2);
    await flush();
    expect(late.closed).toBe(1);
    expect(p.stats()).toMatchObject({ connections: 0, streams: 0, waiting: 0, connecting: 0 });
  });

  it('a close() that throws or rejects does not escape', async () => {
    const { p, connects } = setup();
    track(p.acquire(a));
    const c = connects.open(0);
    c.close = () => {
      throw new Error('boom');
    };
    await flush();
    expect(() => p.close()).not.toThrow();
    track(p.acquire(b));
    const { p: q, connects: qc } = setup();
    track(q.acquire(a));
    const r = qc.open(0);
    r.close = () => Promise.reject(new Error('boom')) as never;
    await flush();
    q.release(r);
    expect(() => q.close()).not.toThrow();
  });
});

describe('SharedConnectionPool: hot reload (adoptFrom)', () => {
  it('moves live connections with their streams; the old pool forwards releases and acquires', async () => {
    const { p: old, connects } = setup();
    track(old.acquire(a));
    const ca = connects.open(0, 2);
    track(old.acquire(b));
    const cb = connects.open(1);
    await flush();
    old.release(cb); // idle
    const next = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect, now: () => 0 });
    const seen: string[] = [];
    expect(next.adoptFrom(old, (c) => seen.push(c.name))).toBe(2);
    expect(seen.sort()).toEqual(['c0', 'c1']);
    expect(old.stats()).toMatchObject({ connections: 0, streams: 0 });
    expect(next.stats()).toMatchObject({ connections: 2, streams: 1, idle: 1 });
    expect(next.streamsOn(ca)).toBe(1);
    expect(old.streamsOn(ca)).toBe(1); // asked through the old pool: forwarded
    // The stream in flight ends through the old pool: the slot comes back in the new one.
    expect(old.tryAcquire(a)).toBe(ca); // the old service's late request: forwarded too
    expect(next.tryAcquire(a)).toBeUndefined(); // 2 of 2
    expect(old.release(ca)).toBe(true);
    expect(next.streamsOn(ca)).toBe(1);
    expect(next.tryAcquire(b)).toBe(cb);
    expect(await old.acquire(b)).toBe(cb);
    expect(connects.calls).toHaveLength(2);
    // changed() through the old pool reaches the new one.
    ca.alive = false;
    old.changed(ca);
    expect(ca.closed).toBe(1);
    expect(next.connectionCount(a)).toBe(0);
    old.close();
    expect(cb.closed).toBe(0);
  });

  it('keeps draining connections in the old pool, moves waiters and connects in flight', async () => {
    const { p: old, connects } = setup();
    track(old.acquire(a));
    const draining = connects.open(0);
    await flush();
    draining.accepting = false;
    old.changed(draining);
    const waiter = track(old.acquire(a)); // connect #1 in flight, in the old pool
    expect(connects.calls).toHaveLength(2);
    const next = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect, now: () => 0 });
    expect(next.adoptFrom(old)).toBe(0);
    expect(old.stats()).toMatchObject({ connections: 1, draining: 1, waiting: 0, connecting: 0 });
    expect(next.stats()).toMatchObject({ waiting: 1, connecting: 1 });
    const fresh = connects.open(1);
    await flush();
    expect(waiter.value).toBe(fresh);
    expect(next.stats()).toMatchObject({ connections: 1, streams: 1, created: 1 });
    expect(connects.calls).toHaveLength(2); // the moved connect served, no second one
    old.release(draining);
    expect(draining.closed).toBe(1);
  });

  it('connections over the new cap take no new streams; idle ones close', async () => {
    const { p: old, connects } = setup({ maxConnectionsPerKey: 3 });
    track(old.acquire(a));
    const c0 = connects.open(0, 1);
    await flush();
    track(old.acquire(a));
    const c1 = connects.open(1, 1);
    await flush();
    track(old.acquire(a));
    const c2 = connects.open(2, 1);
    await flush();
    old.release(c2);
    const next = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect, now: () => 0 });
    expect(next.adoptFrom(old)).toBe(3);
    expect(c2.closed).toBe(1); // idle, over the cap of 1
    expect(next.stats()).toMatchObject({ connections: 2, draining: 1, streams: 2 });
    next.release(c1);
    expect(c1.closed).toBe(1); // retired: closed with its last stream
    expect(c0.closed).toBe(0);
  });

  it('refuses to adopt twice, from itself, or into a closed pool', async () => {
    const { p: old, connects } = setup();
    track(old.acquire(a));
    connects.open(0);
    await flush();
    const next = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect });
    expect(next.adoptFrom(next)).toBe(0);
    expect(next.adoptFrom(old)).toBe(1);
    const third = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect });
    expect(third.adoptFrom(old)).toBe(0);
    expect(old.adoptFrom(next)).toBe(0); // would forward in a circle
    const closed = new SharedConnectionPool<Key, FakeMux>({ connect: connects.connect });
    closed.close();
    expect(closed.adoptFrom(next)).toBe(0);
    expect(next.stats().connections).toBe(1);
  });
});

describe('SharedConnectionPool options', () => {
  it('rejects nonsense settings', () => {
    const connect = async () => new FakeMux('x');
    expect(() => new SharedConnectionPool<Key, FakeMux>({ connect, maxConnectionsPerKey: 0 })).toThrow(
      RangeError,
    );
    expect(() => new SharedConnectionPool<Key, FakeMux>({ connect, maxConnectionsPerKey: 1.5 })).toThrow(
      RangeError,
    );
    expect(() => new SharedConnectionPool<Key, FakeMux>({ connect, maxWaiting: -1 })).toThrow(RangeError);
    expect(() => new SharedConnectionPool<Key, FakeMux>({ connect, idleTimeout: Number.NaN })).toThrow(
      RangeError,
    );
  });
});

describe('SharedConnectionPool purge timer in a real process', () => {
  it('an idle shared connection with a long idle timeout does not keep the process alive', () => {
    // Same check as the exclusive pool's: the child must exit on its own; spawnSync's timeout
    // only guards against a hang (a kept-alive child would be killed and fail the status check).
    const poolUrl = new URL('./shared-pool.ts', import.meta.url).href;
    const script = `
      const { SharedConnectionPool } = await import(${JSON.stringify(poolUrl)});
      const conn = { alive: true, accepting: true, maxConcurrentStreams: 10, close() {} };
      const p = new SharedConnectionPool({ connect: async () => conn, idleTimeout: 600000 });
      const key = { id: 'k' };
      const got = await p.acquire(key);
      p.release(got);
      if (p.stats().idle !== 1) process.exit(3);
      console.log('idle');`;
    const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
    const r = spawnSync(tsx, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
    expect(r.stdout.trim()).toBe('idle');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });
});
