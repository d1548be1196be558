/**
 * free-port.ts's slices: every (package band, vitest pool id) pair owns its own ports below the
 * ephemeral range, so two workers running at once, in one package or in two, never pick the same
 * port between a probe and a bind, and no outgoing connection takes a handed-out port as its source.
 */
import { describe, expect, it } from 'vitest';
import {
  CLAIM_DIR,
  claimPort,
  ephemeralFloor,
  freePort,
  MAX_POOL_ID,
  ownSlice,
  PORT_BANDS,
  portSlice,
} from './free-port.js';

describe('freePort slices', () => {
  it('numbers the bands 0..n-1, one per package', () => {
    const bands = Object.values(PORT_BANDS).sort((a, b) => a - b);
    expect(bands).toEqual(bands.map((_, i) => i));
  });

  it('gives every (band, pool id) a non-empty slice below the ephemeral range, no two overlapping', () => {
    const slices: [number, number][] = [];
    for (const band of Object.values(PORT_BANDS)) {
      for (let poolId = 1; poolId <= MAX_POOL_ID; poolId++)
        slices.push(portSlice(band, poolId, ephemeralFloor));
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

  // Only this package's band: probing another package's slice could take a port its worker of the
  // same pool id has just handed to a server that has not bound it yet.
  it("hands out distinct ports from this worker's slice only, never an ephemeral one", async () => {
    const [low, high] = ownSlice('packages/http');
    const ports = [
      await freePort('packages/http'),
      await freePort('packages/http'),
      await freePort('packages/http'),
    ];
    expect(new Set(ports).size).toBe(3);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(low);
      expect(port).toBeLessThan(high);
      expect(port).toBeLessThan(ephemeralFloor);
    }
  });
});

describe('freePort claims', () => {
  it("skips a port another live process claimed, takes over a dead process's claim", async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    mkdirSync(CLAIM_DIR, { recursive: true });
    const [low, high] = ownSlice('packages/http');
    // Past the ports this file's other tests may hand out: the slice's top end.
    const held = high - 1;
    const stale = high - 2;
    // The parent of this process (vitest's) is alive and not this process.
    writeFileSync(join(CLAIM_DIR, String(held)), String(process.ppid));
    // A pid that was alive and is gone: a child that has exited.
    const dead = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    writeFileSync(join(CLAIM_DIR, String(stale)), dead);
    try {
      expect(claimPort(held)).toBe(false);
      expect(claimPort(stale)).toBe(true);
      expect(readFileSync(join(CLAIM_DIR, String(stale)), 'utf8')).toBe(String(process.pid));
      // Claimed by this process now: not handed out twice.
      expect(claimPort(stale)).toBe(false);
      // A takeover in progress elsewhere (its lock beside the claim): this process keeps off.
      writeFileSync(join(CLAIM_DIR, String(stale - 1)), dead);
      mkdirSync(join(CLAIM_DIR, `${stale - 1}.taking`));
      expect(claimPort(stale - 1)).toBe(false);
      rmdirSync(join(CLAIM_DIR, `${stale - 1}.taking`));
      expect(claimPort(stale - 1)).toBe(true);
      expect(low).toBeLessThan(stale);
    } finally {
      unlinkSync(join(CLAIM_DIR, String(held)));
    }
  });
});
