// Unit tests of the ring's completion dispatch over a fake binding (no kernel): each queued record
// completes at once in the next submit, so the batch handed to dispatch is exactly what the test
// queued. Covers the slot bookkeeping that the stream ops rely on.
import type { NativeBinding } from '@loch/native';
import { describe, expect, it } from 'vitest';
import { CQ_STRIDE, CQE_F_MORE, OP_NOP, SQ_STRIDE } from './records.js';
import { type CompletionTarget, Ring } from './ring.js';

/** A binding whose submit completes every record with a slot right away (flags from `moreFor`). */
function fakeBinding(moreFor: (slot: number) => boolean = () => false): NativeBinding {
  let sq: Int32Array = new Int32Array(0);
  let cq: Int32Array = new Int32Array(0);
  const binding = {
    init(s: Int32Array, c: Int32Array) {
      sq = s;
      cq = c;
      return { features: 0, flags: 0, bufferRing: false };
    },
    submit(n: number) {
      let got = 0;
      for (let i = 0; i < n; i++) {
        const slot = sq[i * SQ_STRIDE + 2]!;
        if (slot < 0) continue;
        const o = got++ * CQ_STRIDE;
        cq[o] = slot;
        cq[o + 1] = 0;
        cq[o + 2] = moreFor(slot) ? CQE_F_MORE : 0;
      }
      return got;
    },
    destroy() {},
  };
  return binding as unknown as NativeBinding;
}

const OPTIONS = {
  entries: 64,
  bufferCount: 4,
  bufferSize: 64,
  sqpoll: false,
  flushMode: 'microtask',
} as const;

/** A target that records its completions, and throws when asked to. */
class Target implements CompletionTarget {
  readonly seen: number[] = [];
  constructor(private readonly fails = false) {}
  onCompletion(res: number, _flags: number, slot: number): void {
    this.seen.push(slot);
    if (this.fails) throw new Error(`target of slot ${slot} failed (res ${res})`);
  }
}

describe('ring completion dispatch', () => {
  it('hands every CQE of a batch to its target even when one target throws, then rethrows', () => {
    const ring = new Ring(fakeBinding(), OPTIONS);
    const before = new Target();
    const failing = new Target(true);
    const after = new Target();
    const slots = [before, failing, after].map((t) => {
      const slot = ring.alloc(t);
      ring.push(OP_NOP, -1, slot, 0, undefined, 0);
      return slot;
    });
    expect(() => ring.flush()).toThrow(/failed/);
    expect(before.seen).toEqual([slots[0]]);
    expect(failing.seen).toEqual([slots[1]]);
    expect(after.seen).toEqual([slots[2]]);
    // Every slot was freed, the failing one too: a new op gets one of them back first.
    const again = new Target();
    const slot = ring.alloc(again);
    expect(slots).toContain(slot);
    ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    ring.flush();
    expect(again.seen).toEqual([slot]);
  });

  it('completes every op once when a target destroys the ring mid-batch', () => {
    const ring = new Ring(fakeBinding(), OPTIONS);
    const results = new Map<string, number[]>();
    const record = (name: string, destroy: boolean): CompletionTarget => ({
      onCompletion(res) {
        results.set(name, [...(results.get(name) ?? []), res]);
        if (destroy) ring.destroy();
      },
    });
    for (const [name, destroy] of [
      ['first', true],
      ['second', false],
    ] as const) {
      const slot = ring.alloc(record(name, destroy));
      ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    }
    // A third op still in flight (not in the batch): destroy() cancels it.
    const pending = ring.alloc(record('pending', false));
    expect(pending).toBeGreaterThanOrEqual(0);
    ring.flush();
    expect(results.get('first')).toEqual([0]);
    expect(results.get('second')).toHaveLength(1);
    expect(results.get('pending')).toHaveLength(1);
    expect(results.get('pending')![0]).toBeLessThan(0);
  });

  it('keeps a multishot slot (CQE_F_MORE) and frees a final one', () => {
    let more = true;
    const ring = new Ring(
      fakeBinding(() => more),
      OPTIONS,
    );
    const multishot = new Target();
    const slot = ring.alloc(multishot);
    ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    ring.flush();
    // Still armed: the slot is not handed out again.
    const other = ring.alloc(new Target());
    expect(other).not.toBe(slot);
    more = false;
    ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    ring.flush();
    expect(multishot.seen).toEqual([slot, slot]);
    expect(ring.alloc(new Target())).toBe(slot);
  });

  it('grows its op slots in steps, not by doubling (each idle connection keeps one: issue 18)', () => {
    const ring = new Ring(fakeBinding(), OPTIONS);
    const slotArrays = ring as unknown as {
      gens: Uint32Array;
      states: Uint8Array;
      freeSlots: Int32Array;
      targets: unknown[];
      pinned: unknown[];
    };
    // 19,000 slots held at once, as by 19,000 idle connections' armed receives.
    const held = new Set<number>();
    for (let i = 0; i < 19_000; i++) held.add(ring.alloc(new Target()));
    expect(held.size).toBe(19_000);
    // Doubling from 1,024 would have made 32,768 slots; steps keep it within an eighth of use.
    const size = slotArrays.gens.length;
    expect(size).toBeGreaterThanOrEqual(19_000);
    expect(size).toBeLessThanOrEqual(19_000 + 19_000 / 8 + 1024);
    for (const n of [
      slotArrays.states.length,
      slotArrays.freeSlots.length,
      slotArrays.targets.length,
      slotArrays.pinned.length,
    ])
      expect(n).toBe(size);
    ring.destroy();
  });
});
