import { describe, expect, it } from 'vitest';
import { ConnectionLimit } from './connection-limit.js';

describe('ConnectionLimit', () => {
  it('answers null below the limit, one shared promise at it, settled by a release with room', async () => {
    let open = 0;
    const pauses: number[] = [];
    const limit = new ConnectionLimit(
      2,
      () => open,
      (max) => pauses.push(max),
    );
    expect(limit.whenFull()).toBeNull();
    open = 2;
    const a = limit.whenFull();
    expect(a).toBeInstanceOf(Promise);
    expect(limit.whenFull()).toBe(a);
    expect(pauses).toEqual([2]);
    let settled = false;
    void a!.then(() => {
      settled = true;
    });
    limit.released(); // still full: nothing happens
    await Promise.resolve();
    expect(settled).toBe(false);
    open = 1;
    limit.released();
    await Promise.resolve();
    expect(settled).toBe(true);
    expect(limit.whenFull()).toBeNull();
  });

  it('logs at most one pause per interval, counting the ones in between', () => {
    let open = 1;
    const calls: [number, number][] = [];
    const limit = new ConnectionLimit(
      1,
      () => open,
      (max, n) => calls.push([max, n]),
    );
    for (let i = 0; i < 3; i++) {
      void limit.whenFull();
      open = 0;
      limit.released();
      open = 1;
    }
    expect(calls).toEqual([[1, 1]]);
    limit.stop();
  });

  it('a raised limit (reload) resumes at the next release; stop() resumes unconditionally', async () => {
    const open = 3;
    const limit = new ConnectionLimit(
      3,
      () => open,
      () => {},
    );
    const p = limit.whenFull()!;
    limit.max = 10;
    limit.released();
    await p;
    limit.max = 3;
    const q = limit.whenFull()!;
    limit.stop();
    await q;
  });
});
