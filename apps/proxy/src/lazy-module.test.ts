/**
 * lazyModule's rule: one import for every load() until it settles, the module kept once loaded,
 * a failure forgotten (the next load() imports again).
 */
import { describe, expect, it } from 'vitest';
import { lazyModule } from './lazy-module.js';

/** An importer whose imports the test settles by hand. */
function manualImporter<M>() {
  const calls: { resolve: (m: M) => void; reject: (e: Error) => void }[] = [];
  const importer = () =>
    new Promise<M>((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { importer, calls };
}

describe('lazyModule', () => {
  it('imports once for every load() while the import is in flight, and keeps the module', async () => {
    const { importer, calls } = manualImporter<{ name: string }>();
    const lazy = lazyModule(importer);
    expect(lazy.loaded).toBeUndefined();
    const a = lazy.load();
    const b = lazy.load();
    expect(calls).toHaveLength(1);
    expect(lazy.loaded).toBeUndefined();
    const module = { name: 'm' };
    calls[0]!.resolve(module);
    expect(await a).toBe(module);
    expect(await b).toBe(module);
    expect(lazy.loaded).toBe(module);
    expect(await lazy.load()).toBe(module);
    expect(calls).toHaveLength(1);
  });

  it('rejects every waiting load() with the failure, forgets it, and imports again on the next', async () => {
    const { importer, calls } = manualImporter<{ name: string }>();
    const lazy = lazyModule(importer);
    const a = lazy.load();
    const b = lazy.load();
    calls[0]!.reject(new Error('cannot import'));
    await expect(a).rejects.toThrow('cannot import');
    await expect(b).rejects.toThrow('cannot import');
    expect(lazy.loaded).toBeUndefined();
    const again = lazy.load();
    expect(calls).toHaveLength(2);
    const module = { name: 'second' };
    calls[1]!.resolve(module);
    expect(await again).toBe(module);
    expect(lazy.loaded).toBe(module);
  });
});
