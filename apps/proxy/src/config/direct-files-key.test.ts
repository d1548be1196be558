// runtime.direct_files: the io_uring direct descriptor table per worker (@loch/uring-runtime's
// uring.directFiles). Absent: left to the runtime (off, or env LOCH_URING_DIRECT_FILES).
import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { runtimeConfig } from '../../test/runtime-config.js';
import { parseConfig } from './load.js';

describe('runtime.direct_files', () => {
  it('is left to the runtime when absent, and taken as slots or "auto"', () => {
    expect(parseConfig(runtimeConfig('')).runtime.directFiles).toBeUndefined();
    expect('directFiles' in parseConfig(runtimeConfig('')).runtime).toBe(false);
    expect(parseConfig(runtimeConfig('direct_files = 30000')).runtime.directFiles).toBe(30_000);
    expect(parseConfig(runtimeConfig('direct_files = "auto"')).runtime.directFiles).toBe('auto');
    expect(parseConfig(runtimeConfig('direct_files = 0')).runtime.directFiles).toBe(0);
  });

  it('refuses other values, naming the key', () => {
    expect(configIssues(runtimeConfig('direct_files = "all"'))[0]!.path).toBe('runtime.direct_files');
    expect(configIssues(runtimeConfig('direct_files = -1'))[0]!.path).toBe('runtime.direct_files');
    expect(configIssues(runtimeConfig('direct_files = 2000000'))[0]!.path).toBe('runtime.direct_files');
  });
});
