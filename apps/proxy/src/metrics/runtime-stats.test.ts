import { describe, expect, it } from 'vitest';
import { runtimeStats } from './runtime-stats.js';

describe('runtimeStats', () => {
  it("reads the runtime's wave collections: count, freed bytes, last call", () => {
    const runtime = {
      openStreams: 5,
      tasks: 1,
      waveCollections: 2,
      waveCollectFreedBytes: 31_000_000,
      waveCollectLastMs: 19.5,
      bufferStats: () => undefined,
    };
    expect(runtimeStats(runtime)).toEqual({
      openStreams: 5,
      tasks: 1,
      buffers: null,
      waves: { collections: 2, freedBytes: 31_000_000, lastCallMs: 19.5 },
    });
  });

  it('reads 0 for a runtime that does not count them, and nothing without a runtime', () => {
    expect(runtimeStats({})?.waves).toEqual({ collections: 0, freedBytes: 0, lastCallMs: 0 });
    expect(runtimeStats(undefined)).toBeUndefined();
  });
});
