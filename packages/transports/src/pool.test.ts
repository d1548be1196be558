import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionPool } from './pool.js';

class FakeConn {
  closed = 0;
  alive = true;
  constructor(readonly name: string) {}
  close() {
    this.closed++;
  }
}
const key = (id: string) => ({ id });
const a = key('a');
const b = key('b');

function pool(opts: ConstructorParameters<typeof ConnectionPool<{ id: string }, FakeConn>>[0] = {}) {
  let now = 0;
  const p = new ConnectionPool<{ id: string }, FakeConn>({
    now: () => now,
    isAlive: (c) => c.alive,
    ...opts,
  });
  return { p, tick: (ms: number) => (now += ms) };
}

/** Creates `name` for key `k` as a connector would, then releases it. */
function seed(p: ConnectionPool<{ id: string }, FakeConn>, k: { id: string }, name: string, reusable = true) {
  const c = new FakeConn(name);
  p.created(k, c);
  p.release(k, c, reusable);
  return c;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ConnectionPool', () => {
  it('reuses per key and counts', () => {
    const { p } = pool();
    const c1 = seed(p, a, 'a1');
    expect(p.acquire(b)).toBeUndefined();
    expect(p.acquire(a)).toBe(c1);
    expect(p.acquire(a)).toBeUndefined();
    expect(p.stats()).toEqual({ idle: 0, active: 1, created: 1, reused: 1, evicted: 0 });
  });

  it('closes connections released as not reusable', () => {
    const { p } = pool();
    const c = seed(p, a, 'x', false);
    expect(c.closed).toBe(1);
    expect(p.acquire(a)).toBeUndefined();
    expect(p.stats()).toMatchObject({ idle: 0, active: 0 });
  });

  it('lru hands out the most recent, fifo the oldest', () => {
    const lru = pool().p;
    const l1 = seed(lru, a, '1');
    const l2 = seed(lru, a, '2');
    expect(lru.acquire(a)).toBe(l2);
    expect(lru.acquire(a)).toBe(l1);
    const fifo = pool({ reuse: 'fifo' }).p;
    const f1 = seed(fifo, a, '1');
    seed(fifo, a, '2');
    expect(fifo.acquire(a)).toBe(f1);
  });

  it('keeps at most maxIdlePerKey, closing the oldest', () => {
    const { p } = pool({ maxIdlePerKey: 2 });
    const c1 = seed(p, a, '1');
    seed(p, a, '2');
    seed(p, a, '3');
    expect(c1.closed).toBe(1);
    expect(p.idleCount(a)).toBe(2);
    expect(p.stats().evicted).toBe(1);
  });

  it('skips and closes dead connections on acquire', () => {
    const { p } = pool();
    const good = seed(p, a, 'good');
    const dead = seed(p, a, 'dead');
    dead.alive = false;
    expect(p.acquire(a)).toBe(good);
    expect(dead.closed).toBe(1);
    expect(p.stats()).toMatchObject({ idle: 0, evicted: 1, reused: 1 });
  });

  it('expires idle connections on acquire and on purge', () => {
    const { p, tick } = pool({ idleTimeout: 1000 });
    const old = seed(p, a, 'old');
    tick(600);
    const young = seed(p, b, 'young');
    tick(500);
    expect(p.purge()).toBe(1);
    expect(old.closed).toBe(1);
    expect(young.closed).toBe(0);
    tick(600);
    expect(p.acquire(b)).toBeUndefined();
    expect(young.closed).toBe(1);
  });

  it('purges on its own with a timer that does not keep the process alive', () => {
    vi.useFakeTimers();
    const p = new ConnectionPool<{ id: string }, FakeConn>({ idleTimeout: 200 });
    const c = seed(p, a, 'c');
    vi.advanceTimersByTime(450);
    expect(c.closed).toBe(1);
    expect(p.stats().idle).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without an injected clock, ages idle connections by its purge tick (no clock read per hand-out)', () => {
    vi.useFakeTimers();
    const p = new ConnectionPool<{ id: string }, FakeConn>({ idleTimeout: 2000 });
    const first = seed(p, a, 'first');
    vi.advanceTimersByTime(1000); // one purge tick: the coarse clock reads 1000
    expect(p.acquire(a)).toBe(first);
    p.release(a, first, true); // stamped 1000 (the tick's time), not read again
    const spy = vi.spyOn(Date, 'now');
    expect(p.acquire(a)).toBe(first);
    p.release(a, first, true);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    vi.advanceTimersByTime(1999); // tick at 2000 (age 1000): kept
    expect(first.closed).toBe(0);
    vi.advanceTimersByTime(1001); // tick at 3000 (age 2000): evicted
    expect(first.closed).toBe(1);
    expect(p.stats()).toMatchObject({ idle: 0, evicted: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('adopts idle connections from the pool of the previous service', () => {
    const { p: old, tick } = pool();
    const o1 = seed(old, a, 'o1');
    const o2 = seed(old, b, 'o2');
    const inflight = new FakeConn('inflight');
    old.created(a, inflight);
    tick(10);
    const { p: next } = pool();
    next.adoptIdleFrom(old);
    expect(old.stats().idle).toBe(0);
    expect(next.acquire(a)).toBe(o1);
    expect(next.acquire(b)).toBe(o2);
    // The in-flight connection finishes on the old pool, which then closes for good.
    old.release(a, inflight, true);
    old.close();
    expect(inflight.closed).toBe(1);
    expect(o1.closed + o2.closed).toBe(0);
  });

  it('close() closes idle ones and every later release', () => {
    const { p } = pool();
    const idle = seed(p, a, 'idle');
    const active = new FakeConn('active');
    p.created(a, active);
    p.close();
    expect(idle.closed).toBe(1);
    p.release(a, active, true);
    expect(active.closed).toBe(1);
    expect(p.stats()).toMatchObject({ idle: 0, active: 0 });
  });

  it('a close() that throws or rejects does not escape', () => {
    const { p } = pool({ maxIdlePerKey: 0 });
    const bad = { close: () => Promise.reject(new Error('boom')) };
    const q = new ConnectionPool<{ id: string }, typeof bad>({ maxIdlePerKey: 0 });
    q.created(a, bad);
    expect(() => q.release(a, bad, true)).not.toThrow();
    const throwing = {
      closed: 0,
      alive: true,
      name: 't',
      close: () => {
        throw new Error('boom');
      },
    } as unknown as FakeConn;
    p.created(a, throwing);
    expect(() => p.release(a, throwing, true)).not.toThrow();
  });
});

describe('ConnectionPool.removeIdle and adoption callbacks', () => {
  it('removes one idle connection found dead and counts an eviction', () => {
    const { p } = pool();
    const c1 = seed(p, a, '1');
    const c2 = seed(p, a, '2');
    expect(p.removeIdle(a, c1)).toBe(true);
    expect(c1.closed).toBe(1);
    expect(p.removeIdle(a, c1)).toBe(false);
    expect(p.removeIdle(b, c2)).toBe(false);
    expect(p.stats()).toMatchObject({ idle: 1, evicted: 1 });
    expect(p.acquire(a)).toBe(c2);
  });

  it('adoptIdleFrom reports each adopted connection and returns the count', () => {
    const { p: old } = pool();
    seed(old, a, 'x');
    seed(old, b, 'y');
    const { p: next } = pool();
    const seen: string[] = [];
    expect(next.adoptIdleFrom(old, (c) => seen.push(c.name))).toBe(2);
    expect(seen.sort()).toEqual(['x', 'y']);
  });
});

describe('ConnectionPool purge timer in a real process', () => {
  it('an idle connection with a long idle timeout does not keep the process alive', () => {
    // A child process holds an idle (fake) connection with idleTimeout 10 min and then has nothing
    // else to do: it must exit on its own (the purge timer is unref'd). spawnSync's timeout only
    // guards against a hang; a kept-alive child would be killed and fail the status check.
    const poolUrl = new URL('./pool.ts', import.meta.url).href;
    const script = `
      const { ConnectionPool } = await import(${JSON.stringify(poolUrl)});
      const p = new ConnectionPool({ idleTimeout: 600000 });
      const key = { id: 'k' };
      const conn = { close() {} };
      p.created(key, conn);
      p.release(key, conn, true);
      if (p.stats().idle !== 1) process.exit(3);
      console.log('idle');`;
    const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
    const r = spawnSync(tsx, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
    expect(r.stdout.trim()).toBe('idle');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });
});
