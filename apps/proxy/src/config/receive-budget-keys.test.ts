import { describe, expect, it } from 'vitest';
import { configIssues } from '../../test/config-issues.js';
import { runtimeConfig } from '../../test/runtime-config.js';
import { describeConfig } from '../cli.js';
import { receiveBudgets, runtimeChanges } from '../proxy/run.js';
import { parseConfig } from './load.js';

describe('[runtime] receive budget keys', () => {
  it('default to the runtime defaults (1 MiB per connection, 12 MiB per worker)', () => {
    const c = parseConfig(runtimeConfig(''));
    expect(c.runtime.streamBufferBytes).toBe(1024 * 1024);
    expect(c.runtime.workerBufferBytes).toBe(12 * 1024 * 1024);
  });

  it('the per-connection default follows a smaller worker budget, as the runtime', () => {
    const c = parseConfig(runtimeConfig('worker_buffer_bytes = "512k"'));
    expect(c.runtime.streamBufferBytes).toBe(512 * 1024);
    expect(c.runtime.workerBufferBytes).toBe(512 * 1024);
  });

  it('read sizes in nginx spelling or bytes, and loch check shows them', () => {
    const c = parseConfig(runtimeConfig('stream_buffer_bytes = "512k"\nworker_buffer_bytes = 33554432'));
    expect(c.runtime.streamBufferBytes).toBe(512 * 1024);
    expect(c.runtime.workerBufferBytes).toBe(32 * 1024 * 1024);
    const shown = JSON.parse(describeConfig(c)) as { runtime: Record<string, unknown> };
    expect(shown.runtime).toMatchObject({
      streamBufferBytes: 512 * 1024,
      workerBufferBytes: 32 * 1024 * 1024,
    });
  });

  it('refuse what the runtime would refuse, naming the key', () => {
    expect(configIssues(runtimeConfig('stream_buffer_bytes = "32k"'))[0]).toMatchObject({
      path: 'runtime.stream_buffer_bytes',
      message: 'must be at least 64k',
    });
    expect(
      configIssues(runtimeConfig('stream_buffer_bytes = "1m"\nworker_buffer_bytes = "512k"'))[0]!.path,
    ).toBe('runtime.worker_buffer_bytes');
    expect(configIssues(runtimeConfig('worker_buffer_bytes = "12 MB"'))[0]!.path).toBe(
      'runtime.worker_buffer_bytes',
    );
  });

  it('go to the workers unless LOCH_STREAM_BUFFER_BYTES / LOCH_WORKER_BUFFER_BYTES are set (env wins)', () => {
    const c = parseConfig(runtimeConfig('stream_buffer_bytes = "128k"\nworker_buffer_bytes = "4m"'));
    expect(receiveBudgets(c, {})).toEqual({ streamBytes: 128 * 1024, workerBytes: 4 * 1024 * 1024 });
    // Left out, the runtime reads the env variable itself.
    expect(receiveBudgets(c, { LOCH_STREAM_BUFFER_BYTES: '65536' })).toEqual({
      workerBytes: 4 * 1024 * 1024,
    });
    expect(receiveBudgets(c, { LOCH_WORKER_BUFFER_BYTES: '8388608' })).toEqual({ streamBytes: 128 * 1024 });
    expect(receiveBudgets(c, { LOCH_STREAM_BUFFER_BYTES: '' })).toEqual({
      streamBytes: 128 * 1024,
      workerBytes: 4 * 1024 * 1024,
    });
  });

  it('need a restart: a reload that changes them is refused by name', () => {
    const a = parseConfig(runtimeConfig(''));
    const b = parseConfig(runtimeConfig('stream_buffer_bytes = "128k"\nworker_buffer_bytes = "4m"'));
    expect(runtimeChanges(a, b)).toEqual(['runtime.stream_buffer_bytes', 'runtime.worker_buffer_bytes']);
    expect(runtimeChanges(a, a)).toEqual([]);
  });
});
