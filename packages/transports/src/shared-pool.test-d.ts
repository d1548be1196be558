import { describe, expectTypeOf, it } from 'vitest';
import type { Poolable } from './pool.js';
import { type Multiplexed, SharedConnectionPool } from './shared-pool.js';

type Key = { readonly id: string };

describe('SharedConnectionPool types', () => {
  it('takes connections that report their state, and hands them back as they are', () => {
    class H2Session implements Multiplexed {
      alive = true;
      accepting = true;
      maxConcurrentStreams = 100;
      close() {}
      request() {}
    }
    const pool = new SharedConnectionPool<Key, H2Session>({ connect: async () => new H2Session() });
    expectTypeOf(pool.acquire({ id: 'k' })).resolves.toEqualTypeOf<H2Session>();
    expectTypeOf(pool.tryAcquire({ id: 'k' })).toEqualTypeOf<H2Session | undefined>();
    expectTypeOf<Multiplexed>().toExtend<Poolable>();
  });

  it('refuses exclusive-only connections and connect functions of another type', () => {
    type Http1 = { close(): void; alive: boolean };
    // @ts-expect-error a connection that cannot say whether it accepts streams, or how many, cannot be shared
    new SharedConnectionPool<Key, Http1>({ connect: async () => ({ close() {}, alive: true }) });
    class Mux implements Multiplexed {
      alive = true;
      accepting = true;
      maxConcurrentStreams = 1;
      close() {}
    }
    // @ts-expect-error connect must resolve to the pool's connection type
    new SharedConnectionPool<Key, Mux>({ connect: async () => ({ close() {} }) });
  });
});
