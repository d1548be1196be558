import { describe, expect, it } from 'vitest';
import { LazyModule } from './lazy-module.js';

describe('LazyModule', () => {
  it('imports once: concurrent loads share the import, then the module is at hand', async () => {
    let imports = 0;
    const lazy = new LazyModule(async () => {
      imports++;
      return { answer: 42 };
    });
    expect(lazy.loaded).toBeUndefined();
    const [a, b] = await Promise.all([lazy.load(), lazy.load()]);
    expect(a).toBe(b);
    expect(lazy.loaded).toBe(a);
    expect(await lazy.load()).toBe(a);
    expect(imports).toBe(1);
  });

  it('forgets a failed import: the next load tries again', async () => {
    let imports = 0;
    const lazy = new LazyModule(async () => {
      if (++imports === 1) throw new Error('no such module');
      return { answer: 42 };
    });
    await expect(lazy.load()).rejects.toThrow('no such module');
    expect(lazy.loaded).toBeUndefined();
    expect((await lazy.load()).answer).toBe(42);
    expect(imports).toBe(2);
  });
});
