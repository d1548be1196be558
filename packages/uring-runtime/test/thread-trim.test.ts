/**
 * Runtime.trimThreadMemory(): what loch's main thread calls once its workers started (issue 18).
 * A young generation grown by a burst of work (V8 doubles a semi-space when many objects survive
 * scavenges) is given back at once, instead of when V8's memory reducer gets to it.
 */

import { getHeapSpaceStatistics } from 'node:v8';
import { memoryTrimmer } from '@loch/native';
import { describe, expect, it } from 'vitest';
import { Runtime } from '../src/runtime.js';

const hasAddon = memoryTrimmer() !== undefined;
const MiB = 1024 * 1024;

/** This thread's new space, committed bytes. */
function newSpace(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

describe.skipIf(!hasAddon)('Runtime.trimThreadMemory', () => {
  it('shrinks a young generation grown by surviving objects', () => {
    // Objects that survive a few scavenges each (a ring of 50,000): the new space grows.
    const ring: unknown[] = new Array(50_000);
    for (let i = 0; i < 20_000_000 && (i % 1000 !== 0 || newSpace() < 8 * MiB); i++) {
      ring[i % ring.length] = { i, pair: [i, i] };
    }
    const grown = newSpace();
    ring.length = 0;
    expect(grown).toBeGreaterThanOrEqual(8 * MiB);
    expect(Runtime.trimThreadMemory()).toBe(true);
    expect(newSpace()).toBeLessThanOrEqual(grown / 4);
  });
});
