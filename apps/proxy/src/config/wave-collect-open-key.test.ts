import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { runtimeConfig } from '../../test/runtime-config.js';
import { describeConfig } from '../cli.js';
import { runtimeChanges, waveCollectOpenEnv } from '../proxy/run.js';
import { parseConfig } from './load.js';

describe('[runtime] wave_collect_open', () => {
  it('is off by default and on when set, and loch check shows it', () => {
    expect(parseConfig(runtimeConfig('')).runtime.waveCollectOpen).toBe(false);
    const c = parseConfig(runtimeConfig('wave_collect_open = true'));
    expect(c.runtime.waveCollectOpen).toBe(true);
    const shown = JSON.parse(describeConfig(c)) as { runtime: Record<string, unknown> };
    expect(shown.runtime).toMatchObject({ waveCollectOpen: true });
  });

  it('refuses what is not a boolean, naming the key', () => {
    expect(configIssues(runtimeConfig('wave_collect_open = "on"'))[0]!.path).toBe(
      'runtime.wave_collect_open',
    );
    expect(configIssues(runtimeConfig('wave_collect_open = 1'))[0]!.path).toBe('runtime.wave_collect_open');
  });

  it('reaches the workers as LOCH_WAVE_COLLECT_OPEN=1 unless that holds a value the runtime reads (env wins)', () => {
    const on = parseConfig(runtimeConfig('wave_collect_open = true'));
    const off = parseConfig(runtimeConfig('wave_collect_open = false'));
    expect(waveCollectOpenEnv(on, {})).toEqual({ LOCH_WAVE_COLLECT_OPEN: '1' });
    expect(waveCollectOpenEnv(on, { LOCH_WAVE_COLLECT_OPEN: '' })).toEqual({ LOCH_WAVE_COLLECT_OPEN: '1' });
    expect(waveCollectOpenEnv(on, { LOCH_WAVE_COLLECT_OPEN: '0' })).toEqual({});
    expect(waveCollectOpenEnv(on, { LOCH_WAVE_COLLECT_OPEN: 'off' })).toEqual({});
    // A value the runtime does not read would leave it off: the key wins over it (REVIEW F236).
    expect(waveCollectOpenEnv(on, { LOCH_WAVE_COLLECT_OPEN: 'true' })).toEqual({
      LOCH_WAVE_COLLECT_OPEN: '1',
    });
    // Off is the runtime's own default: nothing to add.
    expect(waveCollectOpenEnv(off, {})).toEqual({});
    expect(waveCollectOpenEnv(parseConfig(runtimeConfig('')), {})).toEqual({});
  });

  it('needs a restart: a reload that changes it is refused by name', () => {
    const a = parseConfig(runtimeConfig(''));
    const b = parseConfig(runtimeConfig('wave_collect_open = true'));
    expect(runtimeChanges(a, b)).toEqual(['runtime.wave_collect_open']);
    expect(runtimeChanges(b, b)).toEqual([]);
  });
});
