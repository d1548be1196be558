/**
 * ThriftServer.serve() on a listener that fails the way a worker out of descriptors does: the
 * failures are reported and accepting backs off instead of spinning; close() ends it. A scripted
 * listener, because a real one cannot be made to fail with EMFILE on demand.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ThriftServer } from './server.js';
import type { ThriftListener, ThriftStream } from './stream.js';

class FailingListener implements ThriftListener {
  accepts = 0;
  private pending: ((e: unknown) => void) | null = null;

  constructor(private failures: number) {}

  accept(): Promise<ThriftStream> {
    this.accepts++;
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(Object.assign(new Error('accept: too many open files'), { code: 'EMFILE' }));
    }
    return new Promise((_, reject) => {
      this.pending = reject;
    });
  }

  async close(): Promise<void> {
    this.pending?.(Object.assign(new Error('accept cancelled'), { code: 'ECANCELED' }));
  }
}

describe('ThriftServer.serve', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports accept failures and backs off instead of spinning; close() ends the loop', async () => {
    const errors: unknown[] = [];
    const server = new ThriftServer({ call: () => undefined }, { onConnectionError: (e) => errors.push(e) });
    const listener = new FailingListener(1000);
    const serving = server.serve(listener);
    await vi.advanceTimersByTimeAsync(1_000);
    // Back-off 10, 20, 40 ... 640 ms: 7 accepts in the first 1000 ms (a spinning loop makes 1000).
    expect(listener.accepts).toBe(7);
    expect(errors).toHaveLength(7);
    expect((errors[0] as { code: string }).code).toBe('EMFILE');
    await server.close();
    await vi.advanceTimersByTimeAsync(1_000);
    await serving;
    expect(listener.accepts).toBe(7);
  });

  it('a listener closed by close() ends serve() without an error', async () => {
    const errors: unknown[] = [];
    const server = new ThriftServer({ call: () => undefined }, { onConnectionError: (e) => errors.push(e) });
    const listener = new FailingListener(0);
    const serving = server.serve(listener);
    await vi.advanceTimersByTimeAsync(0);
    await server.close();
    await serving;
    expect(errors).toEqual([]);
    expect(server.connections).toBe(0);
  });
});
