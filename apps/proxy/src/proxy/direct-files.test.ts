// io_uring direct descriptors by default (issue 18, direct-files.ts): the workers' table size and
// which listeners accept into it, from the key, the env and the server's kind.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { listensDirect, workerDirectFiles } from './direct-files.js';

const config = (runtime: string) =>
  parseConfig(
    `[runtime]\n${runtime}\n[servers.web]\nlistener = { type = "socket", value = "127.0.0.1:8080" }\n` +
      `[[servers.web.routes]]\npath = "/"\nupstreams = [{ endpoint = "http://127.0.0.1:9000" }]\n`,
  );
const noEnv = {};
const env = { LOCH_URING_DIRECT_FILES: '4096' };

describe('workerDirectFiles', () => {
  it('is "auto" without the key or the env; the key when given; left to the runtime (env) when only the env is set', () => {
    expect(workerDirectFiles(config(''), noEnv)).toBe('auto');
    expect(workerDirectFiles(config(''), { LOCH_URING_DIRECT_FILES: '' })).toBe('auto');
    expect(workerDirectFiles(config(''), env)).toBeUndefined();
    expect(workerDirectFiles(config('direct_files = 0'), noEnv)).toBe(0);
    expect(workerDirectFiles(config('direct_files = 0'), env)).toBe(0);
    expect(workerDirectFiles(config('direct_files = 300'), noEnv)).toBe(300);
    expect(workerDirectFiles(config('direct_files = "auto"'), noEnv)).toBe('auto');
  });
});

describe('listensDirect', () => {
  it('by default takes plain HTTP listeners only: TLS ones keep in-ring TLS, Thrift ones were not measured on direct', () => {
    const c = config('');
    expect([
      listensDirect(c, 'http', noEnv),
      listensDirect(c, 'https', noEnv),
      listensDirect(c, 'thrift', noEnv),
    ]).toEqual([true, false, false]);
  });

  it('takes every kind when the key or the env sets the table', () => {
    for (const [c, e] of [
      [config('direct_files = 4096'), noEnv],
      [config('direct_files = "auto"'), noEnv],
      [config(''), env],
    ] as const)
      for (const kind of ['http', 'https', 'thrift'] as const) expect(listensDirect(c, kind, e)).toBe(true);
  });
});
