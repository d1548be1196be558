// The ring's ride in 'immediate' flush mode, over a fake binding (no kernel): what a completion
// callback's targets queue goes to the kernel before the callback returns, not in a setImmediate
// of its own (one JavaScript entry per wakeup instead of two); a chain of completions that keeps
// queueing is bounded per callback; the other flush modes are unchanged.
import type { NativeBinding } from '@loch/native';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CQ_STRIDE, OP_NOP, SQ_STRIDE } from './records.js';
import { type CompletionTarget, type FlushMode, Ring } from './ring.js';

/**
 * A binding whose submit completes every record with a slot at once (returned as drained when
 * asked to drain), and whose completion callback the test calls as native's poll would.
 */
function fakeBinding() {
  let sq: Int32Array = new Int32Array(0);
  let cq: Int32Array = new Int32Array(0);
  let onComplete: (n: number) => void = () => {};
  const submits: number[] = [];
  const binding = {
    init(s: Int32Array, c: Int32Array, callback: (n: number) => void) {
      sq = s;
      cq = c;
      onComplete = callback;
      return { features: 0, flags: 0, bufferRing: false };
    },
    submit(n: number) {
      submits.push(n);
      let got = 0;
      for (let i = 0; i < n; i++) {
        const slot = sq[i * SQ_STRIDE + 2]!;
        if (slot < 0) continue;
        const o = got++ * CQ_STRIDE;
        cq[o] = slot;
        cq[o + 1] = 0;
        cq[o + 2] = 0;
      }
      return got;
    },
    destroy() {},
  };
  /** Native's poll handing `slots` to JavaScript as one completion batch. */
  const complete = (slots: readonly number[]): void => {
    slots.forEach((slot, i) => {
      cq[i * CQ_STRIDE] = slot;
      cq[i * CQ_STRIDE + 1] = 0;
      cq[i * CQ_STRIDE + 2] = 0;
    });
    onComplete(slots.length);
  };
  return { binding: binding as unknown as NativeBinding, submits, complete };
}

const options = (flushMode: FlushMode) =>
  ({ entries: 64, bufferCount: 4, bufferSize: 64, sqpoll: false, flushMode }) as const;

/** A target that queues a NOP of its own on each completion while `left` > 0 (a chain of ops). */
class Chain implements CompletionTarget {
  completions = 0;
  constructor(
    private readonly ring: () => Ring,
    private left: number,
  ) {}
  onCompletion(): void {
    this.completions++;
    if (this.left-- <= 0) return;
    const ring = this.ring();
    ring.push(OP_NOP, -1, ring.alloc(this), 0, undefined, 0);
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.restoreAllMocks();
});

describe("ring ride ('immediate' flush mode)", () => {
  it('submits what a completion callback queued before the callback returns, with no immediate', () => {
    const fake = fakeBinding();
    const ring: Ring = new Ring(fake.binding, options('immediate'));
    const immediates = vi.spyOn(globalThis, 'setImmediate');
    const chain = new Chain(() => ring, 1);
    const slot = ring.alloc(chain);
    fake.complete([slot]);
    // The NOP the completion queued went out in the callback, and its completion came back.
    expect(fake.submits).toEqual([1]);
    expect(chain.completions).toBe(2);
    expect(immediates).not.toHaveBeenCalled();
  });

  it('flushes what a flush delivered in the same callback, at most a few rounds, then in an immediate', async () => {
    const fake = fakeBinding();
    const ring: Ring = new Ring(fake.binding, options('immediate'));
    // Every completion queues one more op: a peer that always answers at once.
    const chain = new Chain(() => ring, 1_000);
    const slot = ring.alloc(chain);
    fake.complete([slot]);
    const inCallback = fake.submits.length;
    expect(inCallback).toBeGreaterThanOrEqual(2);
    expect(inCallback).toBeLessThanOrEqual(8);
    expect(chain.completions).toBe(inCallback + 1);
    // The rest was left to the next loop turn, which rides again.
    await turn();
    expect(fake.submits.length).toBeGreaterThan(inCallback);
    expect(fake.submits.length).toBeLessThanOrEqual(2 * inCallback + 1);
    ring.destroy();
  });

  it('leaves records queued outside a completion callback to one immediate per turn', async () => {
    const fake = fakeBinding();
    const ring: Ring = new Ring(fake.binding, options('immediate'));
    const a = new Chain(() => ring, 0);
    const b = new Chain(() => ring, 0);
    ring.push(OP_NOP, -1, ring.alloc(a), 0, undefined, 0);
    ring.push(OP_NOP, -1, ring.alloc(b), 0, undefined, 0);
    expect(fake.submits).toEqual([]);
    await turn();
    expect(fake.submits).toEqual([2]);
    expect(a.completions + b.completions).toBe(2);
  });

  it('still flushes after a target threw in the callback, and rides again afterwards', async () => {
    const fake = fakeBinding();
    const ring: Ring = new Ring(fake.binding, options('immediate'));
    const queued = new Chain(() => ring, 0);
    const thrower: CompletionTarget = {
      onCompletion() {
        ring.push(OP_NOP, -1, ring.alloc(queued), 0, undefined, 0);
        throw new Error('target failed');
      },
    };
    expect(() => fake.complete([ring.alloc(thrower)])).toThrow(/target failed/);
    expect(fake.submits).toEqual([1]);
    expect(queued.completions).toBe(1);
    // Not left riding: a record queued now goes in an immediate, a callback's in the callback.
    ring.push(OP_NOP, -1, ring.alloc(new Chain(() => ring, 0)), 0, undefined, 0);
    expect(fake.submits).toEqual([1]);
    await turn();
    expect(fake.submits).toEqual([1, 1]);
    fake.complete([ring.alloc(new Chain(() => ring, 1))]);
    expect(fake.submits).toEqual([1, 1, 1]);
  });

  it("keeps the callback's own error when a target of the ride's flush throws too, and reports both", () => {
    const fake = fakeBinding();
    const ring: Ring = new Ring(fake.binding, options('immediate'));
    const reported: (() => void)[] = [];
    vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((job) => {
      reported.push(job);
    });
    const second: CompletionTarget = {
      onCompletion() {
        throw new Error('second target failed');
      },
    };
    const first: CompletionTarget = {
      onCompletion() {
        ring.push(OP_NOP, -1, ring.alloc(second), 0, undefined, 0);
        throw new Error('first target failed');
      },
    };
    expect(() => fake.complete([ring.alloc(first)])).toThrow(/first target failed/);
    expect(fake.submits).toEqual([1]);
    // The ride's failure was not lost: it surfaces as an uncaught exception of its own.
    expect(reported).toHaveLength(1);
    expect(() => reported[0]!()).toThrow(/second target failed/);
  });

  it("rethrows a failure of the ride's flush when the callback itself did not fail", () => {
    const fake = fakeBinding();
    const ring: Ring = new Ring(fake.binding, options('immediate'));
    const thrower: CompletionTarget = {
      onCompletion() {
        throw new Error('ride target failed');
      },
    };
    const queuer: CompletionTarget = {
      onCompletion() {
        ring.push(OP_NOP, -1, ring.alloc(thrower), 0, undefined, 0);
      },
    };
    expect(() => fake.complete([ring.alloc(queuer)])).toThrow(/ride target failed/);
    // Not left riding: the next record waits for an immediate.
    ring.push(OP_NOP, -1, ring.alloc(new Chain(() => ring, 0)), 0, undefined, 0);
    expect(fake.submits).toEqual([1]);
  });

  it.each(['tick', 'microtask'] as const)(
    "'%s' mode does not ride: the flush waits for its own schedule",
    async (mode) => {
      const fake = fakeBinding();
      const ring: Ring = new Ring(fake.binding, options(mode));
      const chain = new Chain(() => ring, 1);
      fake.complete([ring.alloc(chain)]);
      expect(fake.submits).toEqual([]);
      await turn();
      expect(fake.submits).toEqual([1]);
      expect(chain.completions).toBe(2);
    },
  );
});
