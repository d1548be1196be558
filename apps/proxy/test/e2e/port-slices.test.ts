/**
 * The e2e harness's freePort() slices (harness.ts portSlice): every (helper band, vitest pool id)
 * pair owns its own ports below the ephemeral range, so two workers of one run, in this package
 * or in packages/transports (band 1), never pick the same port between a probe and a bind.
 */
import { describe, expect, it } from 'vitest';
import { ephemeralFloor, freePort, portSlice } from './harness.js';

const BANDS = 2;
const MAX_POOL_ID = 64;

describe('freePort slices', () => {
  it('gives every (band, pool id) a non-empty slice below the ephemeral range, no two overlapping', () => {
    const slices: [number, number][] = [];
    for (let band = 0; band < BANDS; band++) {
      for (let poolId = 1; poolId <= MAX_POOL_ID; poolId++) {
        slices.push(portSlice(band, poolId, ephemeralFloor));
      }
    }
    slices.sort((a, b) => a[0] - b[0]);
    for (const [low, high] of slices) {
      // 10080 is the highest port fetch() refuses ("bad port"): tests fetch the ports handed out.
      expect(low).toBeGreaterThan(10_080);
      expect(high).toBeGreaterThan(low + 50);
      expect(high).toBeLessThanOrEqual(ephemeralFloor);
    }
    for (let i = 1; i < slices.length; i++) expect(slices[i]![0]).toBeGreaterThanOrEqual(slices[i - 1]![1]);
  });

  it('refuses a pool id it has no slice for', () => {
    expect(() => portSlice(0, 0, ephemeralFloor)).toThrow(/VITEST_POOL_ID/);
    expect(() => portSlice(0, MAX_POOL_ID + 1, ephemeralFloor)).toThrow(/VITEST_POOL_ID/);
  });

  it("hands out distinct ports from this worker's slice only", async () => {
    const [low, high] = portSlice(0, Number(process.env.VITEST_POOL_ID ?? 1), ephemeralFloor);
    const ports = [await freePort(), await freePort(), await freePort()];
    expect(new Set(ports).size).toBe(3);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(low);
      expect(port).toBeLessThan(high);
    }
  });
});
