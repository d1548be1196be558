/**
 * memory.cc's GC hook and the wave collection's answer: gcPauses() counts this thread's
 * mark-compacts and their pauses (a scavenge adds nothing), and collectAfterWave() says whether
 * it started a collection: not while a marking already runs (V8's moderate memory pressure is a
 * no-op then), so the wave-collect policy can try again (packages/uring-runtime wave-collect.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../index.js';

interface GcPauses {
  readonly markCompacts: number;
  readonly pauseMs: number;
  readonly lastPauseMs: number;
  readonly lastWavePauseMs: number;
}
interface MemoryCalls {
  collectAfterWave(): boolean;
  gcPauses(): GcPauses;
}

const loaded = loadNative();
const binding = 'binding' in loaded ? (loaded.binding as unknown as MemoryCalls) : undefined;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'major' | 'minor' }) => void;

describe('gcPauses and collectAfterWave', () => {
  it('loads with the addon', () => {
    expect('error' in loaded ? loaded.error : '').toBe('');
    expect(typeof binding?.gcPauses).toBe('function');
  });

  it('counts a mark-compact and its pause, not a scavenge', () => {
    const b = binding!;
    gc(); // settles any marking already running
    const before = b.gcPauses();
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    expect(b.gcPauses().markCompacts).toBe(before.markCompacts);
    gc();
    const after = b.gcPauses();
    expect(after.markCompacts).toBe(before.markCompacts + 1);
    expect(after.lastPauseMs).toBeGreaterThan(0);
    expect(after.pauseMs).toBeCloseTo(before.pauseMs + after.lastPauseMs, 6);
  });

  it('does not start a collection while a marking runs, and the wave pause is its final one', () => {
    const b = binding!;
    gc();
    const keep: object[] = [];
    for (let i = 0; i < 100_000; i++) keep.push({ i });
    const wavePauseBefore = b.gcPauses().lastWavePauseMs;
    expect(b.collectAfterWave()).toBe(true); // starts the memory-reducing marking
    expect(b.collectAfterWave()).toBe(false); // it still runs: this call is a no-op, a miss
    const compacts = b.gcPauses().markCompacts;
    gc(); // finishes the marking: that mark-compact's pause is the wave's (V8 may run one more)
    const after = b.gcPauses();
    expect(after.markCompacts).toBeGreaterThan(compacts);
    expect(after.lastWavePauseMs).toBeGreaterThan(0);
    expect(after.lastWavePauseMs).not.toBe(wavePauseBefore);
    expect(b.collectAfterWave()).toBe(true); // no marking runs any more: started again
    gc();
    expect(keep.length).toBe(100_000);
  });
});
