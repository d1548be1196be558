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
    for (let i = 0; i < 20; i++) step(250, false);
    expect(state.trimmed).toBe(1);
    step(250, true);
    for (let i = 0; i < 5; i++) step(250, false);
    expect(state.trimmed).toBe(2);
    expect(trimmer.trims).toBe(2);
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
