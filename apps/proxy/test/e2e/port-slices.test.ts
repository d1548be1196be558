/**
 * The e2e harness's freePort() picks from apps/proxy's band of packages/http/test/free-port.ts
 * (whose own test checks that no two bands or pool ids overlap): a wrong band would share ports
 * with another package's workers running at the same time.
 */
import { describe, expect, it } from 'vitest';
import { ownSlice } from '../../../../packages/http/test/free-port.js';
import { freePort } from './harness.js';

describe('freePort slices', () => {
  it("hands out distinct ports from this worker's slice of apps/proxy's band only", async () => {
    const [low, high] = ownSlice('apps/proxy');
    const ports = [await freePort(), await freePort(), await freePort()];
    expect(new Set(ports).size).toBe(3);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(low);
      expect(port).toBeLessThan(high);
    }
  });
});
