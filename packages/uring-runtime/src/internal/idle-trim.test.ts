import { describe, expect, it } from 'vitest';
import { IdleTrimmer, resolveIdleTrimMs } from './idle-trim.js';

/** A trimmer on a hand-driven clock and counter (no timers). */
function harness(idleMs: number) {
  const state = { activity: 0, now: 0, trimmed: 0 };
  const trimmer = new IdleTrimmer(idleMs, {
    activity: () => state.activity,
    now: () => state.now,
    trim: () => {
      state.trimmed++;
    },
  });
  const step = (ms: number, busy: boolean) => {
    state.now += ms;
    if (busy) state.activity++;
    trimmer.check();
  };
  return { state, trimmer, step };
}

describe('IdleTrimmer', () => {
  it('does not trim a thread that never had activity', () => {
    const { state, step } = harness(1000);
    for (let i = 0; i < 20; i++) step(250, false);
    expect(state.trimmed).toBe(0);
  });

  it('never trims while activity continues, however long', () => {
    const { state, step } = harness(1000);
    for (let i = 0; i < 100; i++) step(250, true);
    expect(state.trimmed).toBe(0);
  });

  it('trims once after the idle period, and again only after new activity', () => {
    const { state, trimmer, step } = harness(1000);
    step(250, true);
    step(250, false);
    step(250, false);
    step(250, false);
    expect(state.trimmed).toBe(0);
    step(250, false);
    expect(state.trimmed).toBe(1);
    // Quiet for longer than the back-off window (32 s): the next activity starts from 1 s again.
    for (let i = 0; i < 140; i++) step(250, false);
    expect(state.trimmed).toBe(1);
    step(250, true);
    for (let i = 0; i < 5; i++) step(250, false);
    expect(state.trimmed).toBe(2);
    expect(trimmer.trims).toBe(2);
    expect(trimmer.periodMs).toBe(1000);
  });

  it('backs off when bursts keep coming soon after a trim: 1, 2, 4 ... 32 s, then stops trimming', () => {
    const { state, trimmer, step } = harness(1000);
    // A request every 1.5 s: trimmed twice (the first return after a trim is let go), then the
    // period doubles past the gap.
    for (let i = 0; i < 40; i++) {
      step(250, true);
      for (let j = 0; j < 5; j++) step(250, false);
    }
    expect(state.trimmed).toBe(2);
    expect(trimmer.periodMs).toBe(2000);
    // Bursts with 10 s gaps: trims at 2 s, 4 s and 8 s periods, then 16 s is longer than the gap.
    for (let i = 0; i < 20; i++) {
      step(250, true);
      for (let j = 0; j < 40; j++) step(250, false);
    }
    expect(state.trimmed).toBe(5);
    expect(trimmer.periodMs).toBe(16_000);
    // A gap of 60 s: trimmed after 16 s, and the activity 44 s later (beyond the 32 s window)
    // resets the period to 1 s.
    step(250, true);
    for (let j = 0; j < 240; j++) step(250, false);
    expect(state.trimmed).toBe(6);
    step(250, true);
    expect(trimmer.periodMs).toBe(1000);
  });

  it('lets one return soon after a trim go: the period stays until the second in a row', () => {
    const { state, trimmer, step } = harness(1000);
    step(250, true);
    for (let j = 0; j < 5; j++) step(250, false);
    expect(state.trimmed).toBe(1);
    step(250, true);
    expect(trimmer.periodMs).toBe(1000);
    for (let j = 0; j < 5; j++) step(250, false);
    expect(state.trimmed).toBe(2);
    step(250, true);
    expect(trimmer.periodMs).toBe(2000);
  });

  it('never backs off beyond 32 times the configured period', () => {
    const { state, trimmer, step } = harness(1000);
    for (let i = 0; i < 12; i++) {
      step(250, true);
      // Quiet just long enough for the current period, then activity 250 ms after the trim.
      const steps = trimmer.periodMs / 250 + 1;
      for (let j = 0; j < steps; j++) step(250, false);
    }
    expect(state.trimmed).toBe(12);
    expect(trimmer.periodMs).toBe(32_000);
  });

  it('counts the time spent in trim()', () => {
    const state = { activity: 0, now: 0 };
    const trimmer = new IdleTrimmer(1000, {
      activity: () => state.activity,
      now: () => state.now,
      trim: () => {
        state.now += 170;
      },
    });
    state.activity++;
    trimmer.check();
    state.now += 1000;
    trimmer.check();
    expect(trimmer.trims).toBe(1);
    expect(trimmer.trimMs).toBe(170);
  });

  it('a burst inside the idle period restarts it', () => {
    const { state, step } = harness(1000);
    step(250, true);
    step(250, false);
    step(250, false);
    step(250, true);
    step(250, false);
    step(250, false);
    step(250, false);
    expect(state.trimmed).toBe(0);
    step(250, false);
    expect(state.trimmed).toBe(1);
  });
});

describe('resolveIdleTrimMs', () => {
  it('takes the option, then LOCH_IDLE_TRIM_MS, then 1000; 0 disables', () => {
    expect(resolveIdleTrimMs(250, '5')).toBe(250);
    expect(resolveIdleTrimMs(0, '5')).toBe(0);
    expect(resolveIdleTrimMs(undefined, '5')).toBe(5);
    expect(resolveIdleTrimMs(undefined, '0')).toBe(0);
    expect(resolveIdleTrimMs(undefined, '')).toBe(1000);
    expect(resolveIdleTrimMs(undefined, 'soon')).toBe(1000);
    expect(resolveIdleTrimMs(-1, undefined)).toBe(1000);
  });
});
