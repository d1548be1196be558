import { describe, expect, it } from 'vitest';
import { runtimeStats } from './runtime-stats.js';

describe('runtimeStats', () => {
  it("reads the runtime's wave collections and the thread's GC pauses", () => {
    const runtime = {
      openStreams: 5,
      tasks: 1,
      waveCollections: 2,
      waveOpenCollections: 3,
      waveCollectFreedBytes: 31_000_000,
      waveCollectLastMs: 19.5,
      waveCollectRetries: 1,
      waveCollectMisses: 0,
      waveHighWater: 16,
      bufferStats: () => undefined,
    };
    const gc = () => ({ markCompacts: 7, pauseMs: 52.5, lastPauseMs: 6.25, lastWavePauseMs: 11 });
    expect(runtimeStats(runtime, gc)).toEqual({
      openStreams: 5,
      tasks: 1,
      buffers: null,
      waves: {
        collections: 2,
        openCollections: 3,
        freedBytes: 31_000_000,
        lastCallMs: 19.5,
        lastPauseMs: 11,
        retries: 1,
        misses: 0,
        highWater: 16,
      },
      gc: { markCompacts: 7, pauseMs: 52.5, lastPauseMs: 6.25 },
    });
  });

  it('reads 0 for a runtime that does not count them, and nothing without a runtime', () => {
    expect(runtimeStats({}, () => undefined)?.waves).toEqual({
      collections: 0,
      openCollections: 0,
      freedBytes: 0,
      lastCallMs: 0,
      lastPauseMs: 0,
      retries: 0,
      misses: 0,
      highWater: 0,
    });
    expect(runtimeStats({}, () => undefined)?.gc).toBeNull();
    expect(runtimeStats(undefined)).toBeUndefined();
  });

  it("reads this thread's mark-compacts from the addon's GC hook by default", () => {
    const gc = runtimeStats({})?.gc;
    expect(gc).toMatchObject({ markCompacts: expect.any(Number), pauseMs: expect.any(Number) });
  });
});
