/**
 * LOCH_V8_FLAGS (cli.ts): the V8 flags `loch run` sets before its workers start. Only flags safe
 * to change once the main isolate runs are taken; anything else is refused by name, never passed
 * to V8 (`--single-threaded-gc` set at run time crashed the main isolate's next full GC).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_V8_FLAGS, main, v8FlagsFromEnv } from './cli.js';

describe('LOCH_V8_FLAGS', () => {
  it('defaults to serial scavenges when unset', () => {
    expect(DEFAULT_V8_FLAGS).toBe('--no-parallel-scavenge');
    expect(v8FlagsFromEnv(undefined)).toEqual({ flags: ['--no-parallel-scavenge'] });
  });

  it("empty means V8's own defaults; the parallel scavenge can be asked back", () => {
    expect(v8FlagsFromEnv('')).toEqual({ flags: [] });
    expect(v8FlagsFromEnv('  --parallel-scavenge ')).toEqual({ flags: ['--parallel-scavenge'] });
  });

  it('refuses flags that are not safe to set at run time, naming them', () => {
    const r = v8FlagsFromEnv('--no-parallel-scavenge --single-threaded-gc --expose-gc');
    expect(r).toHaveProperty('error');
    const error = (r as { error: string }).error;
    expect(error).toContain('"--single-threaded-gc"');
    expect(error).toContain('"--expose-gc"');
    expect(error).not.toContain('"--no-parallel-scavenge"');
  });

  it('caps what a refused flag echoes', () => {
    const r = v8FlagsFromEnv(`--${'x'.repeat(10_000)}`) as { error: string };
    expect(r.error.length).toBeLessThan(300);
  });

  it('loch run exits 2 on a refused flag before reading anything else', async () => {
    const before = process.env.LOCH_V8_FLAGS;
    const write = process.stderr.write;
    let err = '';
    process.env.LOCH_V8_FLAGS = '--single-threaded-gc';
    process.stderr.write = ((chunk: string) => {
      err += chunk;
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await main(['run', '-c', new URL('../test/monolake.toml', import.meta.url).pathname])).toBe(2);
    } finally {
      process.stderr.write = write;
      if (before === undefined) delete process.env.LOCH_V8_FLAGS;
      else process.env.LOCH_V8_FLAGS = before;
    }
    expect(err).toContain('LOCH_V8_FLAGS: "--single-threaded-gc" cannot be set here');
  });
});
