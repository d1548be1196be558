import { getHeapSpaceStatistics } from 'node:v8';
import { waveCollector } from '@loch/native';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_WAVE_COLLECT_OPEN,
  resolveWaveCollectMs,
  resolveWaveCollectOpen,
  WAVE_CHECK_MS,
  WAVE_RETRIES,
  WaveCollector,
} from './wave-collect.js';

/**
 * A collector on a hand-driven clock and open-stream count (no timers); open waves on unless
 * `openWaves` says otherwise (not from the env: LOCH_WAVE_COLLECT_OPEN must not change the suite).
 */
function harness(minIntervalMs: number, open = 0, openWaves = true) {
  const state = { open, now: 0, collected: 0, heapUsed: 50_000_000 };
  const collector = new WaveCollector(
    minIntervalMs,
    {
      openStreams: () => state.open,
      now: () => state.now,
      collect: () => {
        state.collected++;
        state.now += 12; // the collection's own pause
        state.heapUsed -= 30_000_000; // the wave's garbage
      },
      heapUsed: () => state.heapUsed,
    },
    openWaves,
  );
  /** One timer step WAVE_CHECK_MS later, with `open` streams open. */
  const step = (openNow: number) => {
    state.now += WAVE_CHECK_MS;
    state.open = openNow;
    collector.check();
  };
  return { state, collector, step };
}

describe('WaveCollector', () => {
  it('never collects at a stable count, with churn around it, for an hour', () => {
    const { state, collector, step } = harness(30_000, 10_000);
    for (let i = 0; i < 7200; i++) step(10_000 + ((i * 37) % 900) - 450);
    expect(state.collected).toBe(0);
    expect(collector.collections).toBe(0);
  });

  it('never collects while the count only grows', () => {
    const { state, step } = harness(30_000);
    for (let i = 0; i < 200; i++) step(i * 100);
    expect(state.collected).toBe(0);
  });

  it('collects once after a wave: down to half or less and by 1,000 or more', () => {
    const { state, collector, step } = harness(30_000, 16);
    for (let n = 1000; n <= 19_000; n += 1000) step(n);
    expect(collector.highWater).toBe(19_000);
    step(9600); // above half
    expect(state.collected).toBe(0);
    step(16); // still falling: waits for the wave to finish closing
    expect(state.collected).toBe(0);
    step(16);
    expect(state.collected).toBe(1);
    expect(collector.collectMs).toBe(12);
    expect(collector.lastMs).toBe(12);
    expect(collector.highWater).toBe(16);
    for (let i = 0; i < 200; i++) step(16);
    expect(state.collected).toBe(1);
    // Read at the step after the collection, once (it may finish after collect() returns).
    expect(collector.freedBytes).toBe(30_000_000);
  });

  it('leaves a drop of fewer than 1,000 streams alone, however large a share', () => {
    const { state, step } = harness(30_000);
    step(999);
    step(0);
    for (let i = 0; i < 100; i++) step(0);
    expect(state.collected).toBe(0);
  });

  it('collects at most once per interval, and a wave inside it waits for the interval', () => {
    const { state, step } = harness(30_000);
    step(19_000);
    step(16);
    step(16);
    expect(state.collected).toBe(1);
    const firstAt = state.now;
    step(19_000);
    step(16);
    step(16);
    expect(state.collected).toBe(1); // 1.5 s later: rate-limited, the mark stays
    while (state.now - firstAt < 30_000 - WAVE_CHECK_MS) step(16);
    expect(state.collected).toBe(1);
    step(16);
    expect(state.collected).toBe(2);
  });

  it('waits while the count keeps falling, then collects once it holds', () => {
    const { state, step } = harness(30_000);
    step(19_000);
    for (let n = 9000; n >= 1000; n -= 2000) {
      step(n);
      expect(state.collected).toBe(0);
    }
    step(1000);
    expect(state.collected).toBe(1);
  });

  it('survives a collection that throws, and tries again after the interval', () => {
    let throwing = true;
    const state = { open: 0, now: 0, calls: 0 };
    const collector = new WaveCollector(30_000, {
      openStreams: () => state.open,
      now: () => state.now,
      collect: () => {
        state.calls++;
        if (throwing) throw new ReferenceError('gc is not defined');
      },
    });
    const step = (open: number) => {
      state.now += WAVE_CHECK_MS;
      state.open = open;
      collector.check();
    };
    step(19_000);
    step(16);
    expect(() => step(16)).not.toThrow();
    expect(state.calls).toBe(1);
    expect(collector.failures).toBe(1);
    throwing = false;
    step(19_000);
    step(16);
    while (state.calls < 2 && state.now < 40_000) step(16);
    expect(state.calls).toBe(2);
    expect(state.now).toBeGreaterThanOrEqual(30_000);
    expect(collector.failures).toBe(1);
  });

  it('counts what a collection that finishes after collect() returns freed, at the next step', () => {
    const state = { open: 0, now: 0, used: 40_000_000, started: false };
    const collector = new WaveCollector(30_000, {
      openStreams: () => state.open,
      now: () => state.now,
      collect: () => {
        state.started = true; // V8's incremental marking: nothing freed yet
      },
      heapUsed: () => state.used,
    });
    const step = (open: number) => {
      state.now += WAVE_CHECK_MS;
      state.open = open;
      if (state.started) state.used = 12_000_000; // finished in between, on the thread's own steps
      collector.check();
    };
    step(19_000);
    step(16);
    step(16);
    expect(collector.collections).toBe(1);
    expect(collector.freedBytes).toBe(0);
    step(16);
    expect(collector.freedBytes).toBe(28_000_000);
    for (let i = 0; i < 10; i++) step(16);
    expect(collector.freedBytes).toBe(28_000_000);
  });

  it('calls again at the next steps while a collection does not start (a marking already ran)', () => {
    // collectAfterWave answers false while V8's own marking still runs: here the first two calls.
    const state = {
      open: 0,
      now: 0,
      calls: 0,
      answers: [false, false, true],
      used: 60_000_000,
      started: false,
    };
    const collector = new WaveCollector(30_000, {
      openStreams: () => state.open,
      now: () => state.now,
      collect: () => {
        const answer = state.answers[state.calls++] ?? true;
        if (answer) state.started = true;
        return answer;
      },
      heapUsed: () => state.used,
    });
    const step = (open: number) => {
      state.now += WAVE_CHECK_MS;
      state.open = open;
      // V8's own marking frees 1 MB a step; the started collection 20 MB once.
      state.used -= 1_000_000;
      if (state.started) {
        state.used -= 20_000_000;
        state.started = false;
      }
      collector.check();
    };
    step(19_000);
    step(16);
    step(16);
    expect(state.calls).toBe(1);
    step(16);
    expect(state.calls).toBe(2);
    step(16);
    expect(state.calls).toBe(3); // started at last
    for (let i = 0; i < 20; i++) step(16);
    expect(state.calls).toBe(3);
    expect(collector.collections).toBe(1);
    expect(collector.retries).toBe(2);
    expect(collector.misses).toBe(0);
    // Only the started call's step counts: its 20 MB and that step's 1 MB of V8's own marking.
    expect(collector.freedBytes).toBe(21_000_000);
  });

  it(`gives up after ${WAVE_RETRIES} more calls that do not start, and counts a miss`, () => {
    const state = { open: 0, now: 0, calls: 0, waves: new Set<string>() };
    const collector = new WaveCollector(30_000, {
      openStreams: () => state.open,
      now: () => state.now,
      collect: (wave) => {
        state.calls++;
        state.waves.add(wave);
        return false;
      },
    });
    const step = (open: number) => {
      state.now += WAVE_CHECK_MS;
      state.open = open;
      collector.check();
    };
    step(19_000);
    step(16);
    for (let i = 0; i < 20; i++) step(16);
    expect(state.calls).toBe(1 + WAVE_RETRIES);
    expect(collector.retries).toBe(WAVE_RETRIES);
    expect(collector.misses).toBe(1);
    expect(collector.collections).toBe(1);
    expect([...state.waves]).toEqual(['close']); // the retries too
  });

  it('collects once after an open wave: up by 1,000 or more and settled, while they stay open', () => {
    const { state, collector, step } = harness(30_000, 16);
    for (let n = 1000; n <= 16_000; n += 1000) {
      step(n);
      expect(state.collected).toBe(0); // still opening
    }
    step(16_000);
    expect(state.collected).toBe(1);
    expect(collector.openCollections).toBe(1);
    expect(collector.collections).toBe(0); // the close waves' count
    expect(collector.lowWater).toBe(16_000);
    for (let i = 0; i < 200; i++) step(16_000 + (i % 7));
    expect(state.collected).toBe(1);
    // The close wave after it is its own: not held back by the open wave's interval.
    step(16);
    step(16);
    expect(state.collected).toBe(2);
    expect(collector.collections).toBe(1);
  });

  it('leaves a rise of fewer than 1,000 streams alone, and a rise that settles again waits for the interval', () => {
    const { state, collector, step } = harness(30_000, 5000);
    step(5999);
    step(5999);
    expect(state.collected).toBe(0);
    step(7000);
    step(7000);
    expect(collector.openCollections).toBe(1);
    const firstAt = state.now;
    step(9000); // the rest of a burst that paused: the mark restarted at 7,000
    step(9000);
    expect(state.collected).toBe(1);
    while (state.now - firstAt < 30_000 - WAVE_CHECK_MS) step(9000);
    expect(state.collected).toBe(1);
    step(9000);
    expect(state.collected).toBe(2);
    expect(collector.openCollections).toBe(2);
  });

  it('calls again after an open wave whose call did not start, up to the retries', () => {
    const state = { open: 0, now: 0, calls: 0, waves: new Set<string>() };
    const collector = new WaveCollector(
      30_000,
      {
        openStreams: () => state.open,
        now: () => state.now,
        collect: (wave) => {
          state.calls++;
          state.waves.add(wave);
          return false;
        },
      },
      true,
    );
    const step = (open: number) => {
      state.now += WAVE_CHECK_MS;
      state.open = open;
      collector.check();
    };
    step(5000);
    for (let i = 0; i < 20; i++) step(5000);
    expect(state.calls).toBe(1 + WAVE_RETRIES);
    expect(collector.openCollections).toBe(1);
    expect(collector.retries).toBe(WAVE_RETRIES);
    expect(collector.misses).toBe(1);
    expect([...state.waves]).toEqual(['open']); // the retries too
  });

  it('leaves an open wave alone with open waves off, and still collects the close wave', () => {
    const { state, collector, step } = harness(30_000, 16, false);
    for (let n = 1000; n <= 16_000; n += 1000) step(n);
    for (let i = 0; i < 200; i++) step(16_000);
    expect(state.collected).toBe(0);
    expect(collector.openCollections).toBe(0);
    step(16);
    step(16);
    expect(state.collected).toBe(1);
    expect(collector.collections).toBe(1);
  });

  it('does not start a timer when disabled', () => {
    const { collector } = harness(0);
    collector.start();
    collector.stop();
    expect(collector.collections).toBe(0);
  });
});

describe("@loch/native's collectAfterWave", () => {
  const collect = waveCollector();
  it.skipIf(collect === undefined)(
    "collects an unreachable old-space object on the thread's own steps",
    async () => {
      let held: object | undefined = { payload: Array.from({ length: 100_000 }, (_, i) => ({ i })) };
      const ref = new WeakRef(held);
      // Promoted to old space (kept across many scavenges), so only a mark-compact frees it.
      for (let r = 0; r < 200; r++) Array.from({ length: 10_000 }, (_, i) => ({ i }));
      held = undefined;
      // A WeakRef's target is kept until the end of the job that created or read it.
      await new Promise((resolve) => setImmediate(resolve));
      expect(collect?.()).toBe(true);
      // Incremental: the marking goes on with allocation and tasks. No deref() meanwhile: a WeakRef
      // read keeps its target to the end of that job, and a marking running then sees it live. A
      // marking that was already running ignores the call, so call again if the first did not do.
      let collected = false;
      for (let round = 0; round < 5 && !collected; round++) {
        if (round > 0) collect?.();
        for (let turn = 0; turn < 200; turn++) {
          Array.from({ length: 1000 }, (_, i) => ({ i }));
          await new Promise((resolve) => setImmediate(resolve));
        }
        collected = ref.deref() === undefined;
      }
      expect(collected).toBe(true);
    },
  );
});

describe('V8 under collectAfterWave (what the open wave relies on)', () => {
  const collect = waveCollector();
  const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  it.skipIf(collect === undefined)(
    'shrinks a new space that survivors grew, once its marking finishes',
    async () => {
      // Objects that survive scavenges grow the semi-spaces (as a burst of connections does).
      const before = newSpace();
      const kept: object[] = [];
      for (let i = 0; i < 200_000 && newSpace() <= before; i++)
        kept.push({ i, list: [i, i + 1, i + 2], name: `connection ${i}` });
      for (let i = 0; i < 200_000; i++) kept.push({ i, list: [i, i + 1, i + 2], name: `connection ${i}` });
      const grown = newSpace();
      expect(grown).toBeGreaterThan(before);
      let called = false;
      for (let round = 0; round < 5 && newSpace() >= grown; round++) {
        called = collect?.() === true || called;
        for (let turn = 0; turn < 100; turn++) {
          Array.from({ length: 1000 }, (_, i) => ({ i }));
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      expect(called).toBe(true);
      expect(newSpace()).toBeLessThan(grown);
      expect(kept.length).toBeGreaterThan(0);
    },
  );
});

describe('resolveWaveCollectOpen', () => {
  it('takes the option, else the env (1/on, 0/off), else the default', () => {
    expect(resolveWaveCollectOpen(true, '0')).toBe(true);
    expect(resolveWaveCollectOpen(false, '1')).toBe(false);
    expect(resolveWaveCollectOpen(undefined, '0')).toBe(false);
    expect(resolveWaveCollectOpen(undefined, 'off')).toBe(false);
    expect(resolveWaveCollectOpen(undefined, '1')).toBe(true);
    expect(resolveWaveCollectOpen(undefined, 'on')).toBe(true);
    expect(resolveWaveCollectOpen(undefined, 'maybe')).toBe(DEFAULT_WAVE_COLLECT_OPEN);
    expect(resolveWaveCollectOpen(undefined, '')).toBe(DEFAULT_WAVE_COLLECT_OPEN);
  });
});

describe('resolveWaveCollectMs', () => {
  it('takes the option, else the env, else 30,000; 0 disables', () => {
    expect(resolveWaveCollectMs(5000, '7')).toBe(5000);
    expect(resolveWaveCollectMs(0, '7')).toBe(0);
    expect(resolveWaveCollectMs(undefined, '7')).toBe(7);
    expect(resolveWaveCollectMs(undefined, '0')).toBe(0);
    expect(resolveWaveCollectMs(undefined, '')).toBe(30_000);
    expect(resolveWaveCollectMs(undefined, 'often')).toBe(30_000);
    expect(resolveWaveCollectMs(-1, undefined)).toBe(30_000);
  });
});
