// Unit tests of the ring's completion dispatch over a fake binding (no kernel): each queued record
// completes at once in the next submit, so the batch handed to dispatch is exactly what the test
// queued. Covers the slot bookkeeping that the stream ops rely on.

import { release } from 'node:os';
import type { NativeBinding } from '@loch/native';
import { describe, expect, it } from 'vitest';
import { createUringDriver, probeUring } from './index.js';
import { CQ_STRIDE, CQE_F_MORE, OP_NOP, OP_SEND, SQ_STRIDE } from './records.js';
import {
  type CompletionTarget,
  Ring,
  TARGET_HEAP_RECV,
  TARGET_LISTENER,
  TARGET_OTHER,
  TARGET_STREAM,
  TARGET_STREAM_OP,
  type TargetKind,
} from './ring.js';

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

/**
 * Sends `text` over a fresh loopback connection of `driver` (listen, connect, accept; `beforeSend`
 * right before the write) and returns what the accepted side received in its first chunk.
 */
async function sendOverLoopback(
  driver: ReturnType<typeof createUringDriver>,
  text: string,
  beforeSend: () => void = () => {},
): Promise<string> {
  const l = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
  const address = l.localAddress;
  if (address.family === 'unix') throw new Error('not a TCP listener');
  const accepted = l[Symbol.asyncIterator]();
  const c = await driver.connectTcp({ host: '127.0.0.1', port: address.port });
  const s = (await accepted.next()).value!;
  try {
    beforeSend();
    await c.writeAll(Buffer.from(text));
    const chunk = await s.recv();
    const got = Buffer.from(chunk!.bytes).toString();
    chunk!.release();
    return got;
  } finally {
    await c.close();
    await s.close();
    await l.close();
  }
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

  it('grows its op slots a page at a time, replacing nothing, and keeps every slot across pages (issue 18)', () => {
    // The generation each record carried (user_data's high half), by slot, as the binding saw it.
    const gens = new Map<number, number[]>();
    const base = fakeBinding();
    const binding = {
      ...base,
      init(s: Int32Array, c: Int32Array, ...rest: unknown[]) {
        const info = (base.init as (...a: unknown[]) => unknown)(s, c, ...rest);
        const submit = base.submit as (n: number) => number;
        binding.submit = (n: number) => {
          for (let i = 0; i < n; i++) {
            const slot = s[i * SQ_STRIDE + 2]!;
            if (slot >= 0) gens.set(slot, [...(gens.get(slot) ?? []), s[i * SQ_STRIDE + 3]!]);
          }
          return submit(n);
        };
        return info;
      },
    } as unknown as NativeBinding & { submit: (n: number) => number };
    const ring = new Ring(binding, OPTIONS);
    const inside = ring as unknown as { pages: { targets: unknown[]; gens: Uint32Array }[] };
    const first = inside.pages[0]!;
    const firstTargets = first.targets;
    // 3,000 slots held at once (as by idle connections' armed receives): past two page ends.
    const held = Array.from({ length: 3_000 }, () => new Target());
    const slots = held.map((t) => ring.alloc(t));
    expect(new Set(slots).size).toBe(3_000);
    expect(Math.max(...slots)).toBe(2_999);
    // Three pages of 1,024, the first one the same object with the same arrays: nothing copied.
    expect(inside.pages).toHaveLength(3);
    expect(inside.pages[0]).toBe(first);
    expect(first.targets).toBe(firstTargets);
    // Every slot's completion reaches its own target, on every page.
    // (record() flushes at the queue's capacity: the batches dispatch as they go.)
    for (const slot of slots) ring.push(OP_NOP, -1, slot, 0, new Uint8Array(1), 0);
    ring.flush();
    held.forEach((t, i) => {
      expect(t.seen).toEqual([slots[i]]);
    });
    // Each slot's generation went with its record; a freed slot comes back with the next one.
    for (const slot of [0, 1_023, 1_024, 2_047, 2_048, 2_999]) expect(gens.get(slot)).toEqual([1]);
    const again = new Target();
    const reused = ring.alloc(again);
    expect(reused).toBe(2_999); // the last freed, first
    ring.push(OP_NOP, -1, reused, 0, undefined, 0);
    ring.flush();
    expect(again.seen).toEqual([2_999]);
    expect(gens.get(2_999)).toEqual([1, 2]);
    expect(inside.pages).toHaveLength(3);
    ring.destroy();
  });

  it('destroy() cancels the ops in flight on every page', () => {
    const ring = new Ring(
      fakeBinding(() => true),
      OPTIONS,
    );
    const results: number[][] = [];
    const slots: number[] = [];
    for (let i = 0; i < 2_100; i++) {
      const seen: number[] = [];
      results.push(seen);
      slots.push(
        ring.alloc({
          onCompletion(res) {
            seen.push(res);
          },
        }),
      );
    }
    ring.destroy();
    // Each in-flight op hears -ECANCELED once, the ones past the first page's end too.
    for (const seen of results) expect(seen).toHaveLength(1);
    expect(results.every((seen) => seen[0]! < 0)).toBe(true);
    expect(slots[2_099]).toBe(2_099);
  });
});

describe('ring completion dispatch by target kind', () => {
  it('hands each kind its completions, multishot and final, and frees the slot after the final one', () => {
    let more = true;
    const ring = new Ring(
      fakeBinding(() => more),
      OPTIONS,
    );
    const kinds: TargetKind[] = [
      TARGET_OTHER,
      TARGET_STREAM,
      TARGET_STREAM_OP,
      TARGET_HEAP_RECV,
      TARGET_LISTENER,
    ];
    const targets = kinds.map(() => new Target());
    const slots = targets.map((t, i) => ring.alloc(t, kinds[i]!));
    for (const slot of slots) ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    ring.flush();
    more = false;
    for (const slot of slots) ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    ring.flush();
    targets.forEach((t, i) => {
      expect(t.seen).toEqual([slots[i], slots[i]]);
    });
    // Every slot is free again: the last freed comes first.
    expect(ring.alloc(new Target())).toBe(slots[slots.length - 1]);
  });

  it("calls each kind's completion function with the target, TARGET_OTHER's target directly", () => {
    const calls: string[] = [];
    const via =
      (name: string) =>
      (target: CompletionTarget, res: number, flags: number, slot: number): void => {
        calls.push(name);
        target.onCompletion(res, flags, slot);
      };
    const ring = new Ring(fakeBinding(), {
      ...OPTIONS,
      completions: {
        stream: via('stream'),
        streamOp: via('streamOp'),
        heapRecv: via('heapRecv'),
        listener: via('listener'),
      },
    });
    const kinds: TargetKind[] = [
      TARGET_LISTENER,
      TARGET_HEAP_RECV,
      TARGET_STREAM_OP,
      TARGET_STREAM,
      TARGET_OTHER,
    ];
    const targets = kinds.map(() => new Target());
    const slots = targets.map((t, i) => ring.alloc(t, kinds[i]!));
    for (const slot of slots) ring.push(OP_NOP, -1, slot, 0, undefined, 0);
    ring.flush();
    expect(calls).toEqual(['listener', 'heapRecv', 'streamOp', 'stream']);
    targets.forEach((t, i) => {
      expect(t.seen).toEqual([slots[i]]);
    });
  });
});

const probe = probeUring();

describe.skipIf(!probe.available)('ring slot kinds of a real stream', () => {
  it("gives a stream's receive, its ops, its heap receives and a listener's accept their own kind", async () => {
    // Three pooled buffers held by readers send the next stream's base read to the heap.
    const driver = createUringDriver({ entries: 64, bufferCount: 4, bufferSize: 1024 });
    const ring = driver.host.ring;
    const seen = new Map<string, Set<number>>();
    const alloc = ring.alloc.bind(ring);
    ring.alloc = (target: CompletionTarget, kind?: TargetKind): number => {
      const name = target.constructor.name;
      if (!seen.has(name)) seen.set(name, new Set());
      seen.get(name)!.add(kind ?? TARGET_OTHER);
      return alloc(target, kind);
    };
    try {
      const l = await driver.listenTcp({ host: '127.0.0.1', port: 0 });
      const address = l.localAddress;
      if (address.family === 'unix') throw new Error('not a TCP listener');
      const accepted = l[Symbol.asyncIterator]();
      const held: { release(): void }[] = [];
      const peers = [];
      for (let i = 0; i < 4; i++) {
        const c = await driver.connectTcp({ host: '127.0.0.1', port: address.port });
        peers.push(c);
        const s = (await accepted.next()).value!;
        await c.writeAll(Buffer.from(`hello ${i}`));
        const chunk = await s.recv();
        expect(chunk).not.toBeNull();
        await s.writeAll(chunk!.bytes);
        held.push(chunk!);
      }
      for (const c of peers) await c.close();
      for (const chunk of held) chunk.release();
      await l.close();
    } finally {
      await driver.close();
    }
    expect(seen.get('UringListener')).toEqual(new Set([TARGET_LISTENER]));
    expect(seen.get('UringStream')).toEqual(new Set([TARGET_STREAM]));
    expect(seen.get('StreamOp')).toEqual(new Set([TARGET_STREAM_OP]));
    expect(seen.get('HeapRecv')).toEqual(new Set([TARGET_HEAP_RECV]));
  });
  it("hands a flush's lone buffer to submit as itself where the addon takes it (submitView), else in an array", () => {
    const seen: unknown[] = [];
    const binding = (submitView: boolean): NativeBinding => {
      const inner = fakeBinding() as unknown as {
        init(...a: unknown[]): object;
        submit(n: number, bufs: unknown, drain: boolean): number;
      };
      return {
        ...inner,
        init: (...a: unknown[]) => ({ ...inner.init(...a), ...(submitView ? { submitView } : {}) }),
        submit(n: number, bufs: unknown, drain: boolean) {
          seen.push(Array.isArray(bufs) ? [...bufs] : bufs);
          return inner.submit(n, bufs, drain);
        },
      } as unknown as NativeBinding;
    };
    const a = new Uint8Array([1]);
    const b = new Uint8Array([2]);
    for (const submitView of [true, false]) {
      seen.length = 0;
      const ring = new Ring(binding(submitView), OPTIONS);
      ring.push(OP_SEND, 3, ring.alloc(new Target()), 1, a, 0);
      ring.flush();
      ring.push(OP_SEND, 3, ring.alloc(new Target()), 1, a, 0);
      ring.push(OP_SEND, 3, ring.alloc(new Target()), 1, b, 0);
      ring.flush();
      ring.push(OP_NOP, -1, ring.alloc(new Target()), 0, undefined, 0);
      ring.flush();
      // An older addon (no submitView) reads every buffer from the array.
      expect(seen).toEqual([submitView ? a : [a], [a, b], undefined]);
      ring.destroy();
    }
  });

  it('sends a lone buffer given to the real addon as itself, through submitShared', async () => {
    // A descriptor stream's flush (a direct one's records carry the FIXED bit: other words).
    const driver = createUringDriver({ entries: 64, bufferCount: 4, bufferSize: 1024, directFiles: 0 });
    const ring = driver.host.ring;
    expect((ring.info as { submitView?: boolean }).submitView).toBe(true);
    expect((ring.info as { submitArgs?: boolean }).submitArgs).toBe(true);
    // What each flush passed as bufs, and what it told the addon that was (submitArgs[2]).
    const submits: { bufs: unknown; kind: number }[] = [];
    const internals = ring as unknown as {
      binding: { submit(...a: unknown[]): number; submitShared(b: unknown): number };
      submitArgs: Int32Array;
    };
    const binding = internals.binding;
    const submit = binding.submit;
    const submitShared = binding.submitShared;
    let plainSubmits = 0;
    binding.submit = (...a: unknown[]) => {
      plainSubmits++;
      return submit.apply(binding, a);
    };
    binding.submitShared = (b: unknown) => {
      submits.push({ bufs: b, kind: internals.submitArgs[2] ?? -1 });
      return submitShared.call(binding, b);
    };
    try {
      const got = await sendOverLoopback(driver, 'one buffer', () => {
        submits.length = 0;
      });
      expect(got).toBe('one buffer');
      expect(plainSubmits).toBe(0);
      // The send's flush: its lone buffer as itself, said to be a view (SubmitBufs.VIEW).
      expect(submits.some(({ bufs, kind }) => bufs instanceof Uint8Array && kind === 1)).toBe(true);
      for (const { bufs, kind } of submits) {
        expect(kind).toBe(bufs === undefined ? 0 : bufs instanceof Uint8Array ? 1 : 2);
      }
    } finally {
      binding.submit = submit;
      binding.submitShared = submitShared;
      await driver.close();
    }
  });

  it('registers its ring fd with the ring, so an io_uring_enter does not look the fd up', async () => {
    const driver = createUringDriver({ entries: 64, bufferCount: 4, bufferSize: 1024 });
    try {
      // io_uring_register_ring_fd came with 5.18: older kernels enter with the fd (false).
      const [major = 0, minor = 0] = release()
        .split('.')
        .map((part) => Number.parseInt(part, 10));
      const registers = major > 5 || (major === 5 && minor >= 18);
      expect(driver.host.ring.info.registeredRing).toBe(registers);
      // And the registered ring still submits and completes (a connect and a send over loopback).
      expect(await sendOverLoopback(driver, 'registered')).toBe('registered');
    } finally {
      await driver.close();
    }
  });

  it('warns once when the DEFER_TASKRUN experiment (LOCH_URING_DEFER_TASKRUN=1) took', async () => {
    const warnings: { message: string; code: string | undefined }[] = [];
    const onWarning = (w: Error & { code?: string }): void => {
      warnings.push({ message: w.message, code: w.code });
    };
    process.on('warning', onWarning);
    process.env.LOCH_URING_DEFER_TASKRUN = '1';
    const drivers = [];
    try {
      for (let i = 0; i < 2; i++)
        drivers.push(createUringDriver({ entries: 64, bufferCount: 4, bufferSize: 1024 }));
      await new Promise((resolve) => setImmediate(resolve));
      const deferred = drivers.filter((d) => d.host.ring.info.deferTaskrun).length;
      const ours = warnings.filter((w) => w.code === 'LOCH_URING_DEFER_TASKRUN');
      // One per thread however many rings; none where the kernel refused the flags.
      expect(ours).toHaveLength(deferred > 0 ? 1 : 0);
      if (deferred > 0) expect(ours[0]!.message).toMatch(/grace period/);
    } finally {
      delete process.env.LOCH_URING_DEFER_TASKRUN;
      process.off('warning', onWarning);
      for (const d of drivers) await d.close();
    }
  });
});
