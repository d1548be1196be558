import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { debugAidsFromEnv, NO_DEBUG_AIDS, runBeforeStats } from './debug-aids.js';

describe('debugging aids', () => {
  it('are off unless the environment asks, and read LOCH_DEBUG_GC / LOCH_DEBUG_HEAPSNAPSHOT', () => {
    expect(debugAidsFromEnv({})).toEqual(NO_DEBUG_AIDS);
    expect(debugAidsFromEnv({ LOCH_DEBUG_GC: '0', LOCH_DEBUG_HEAPSNAPSHOT: '' })).toEqual(NO_DEBUG_AIDS);
    expect(debugAidsFromEnv({ LOCH_DEBUG_GC: '1', LOCH_DEBUG_HEAPSNAPSHOT: '/tmp/snaps' })).toEqual({
      gcBeforeStats: true,
      heapSnapshotDir: '/tmp/snaps',
    });
  });

  it('do nothing when off, and write one heap snapshot per stats into the directory when asked', () => {
    expect(runBeforeStats(NO_DEBUG_AIDS, 0)).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'loch-debug-aids-'));
    try {
      const path = runBeforeStats({ gcBeforeStats: true, heapSnapshotDir: dir }, 3);
      expect(path).toMatch(/worker-3-\d+\.heapsnapshot$/);
      expect(readdirSync(dir)).toHaveLength(1);
      expect(statSync(path!).size).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
